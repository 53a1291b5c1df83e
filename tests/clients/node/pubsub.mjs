// engram's pub/sub and keyspace notifications driven by node-redis v6's own
// methods (subscribe, pSubscribe, sSubscribe, their unsubscribes, publish,
// sPublish, pubSubChannels, pubSubNumSub, pubSubNumPat, pubSubShardChannels,
// pubSubShardNumSub), once with the client's default protocol (RESP3 since
// node-redis 6: pushes, and commands on the subscribed connection) and once
// with RESP: 2 (a dedicated subscriber connection).  How node-redis sends
// the commands and reads the replies and messages is its own code.
//
// Usage: node pubsub.mjs <port>.  Exits 0 when every assertion holds, 1
// (with the failed assertion on stderr) otherwise.

import assert from 'node:assert/strict';
import { createClient } from 'redis';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node pubsub.mjs <port>');
  process.exit(2);
}

let where = 'connecting';   // the section running, printed on failure

// Resolves once `n` messages have arrived in `box` (or rejects after 5 s).
function waitFor(box, n) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = () => {
      if (box.length >= n) return resolve(box);
      if (Date.now() - t0 > 5000) return reject(new Error(`${where}: got ${JSON.stringify(box)}, wanted ${n}`));
      setTimeout(poll, 5);
    };
    poll();
  });
}

async function session(resp) {
  const options = { socket: { host: '127.0.0.1', port, reconnectStrategy: false } };
  if (resp !== undefined) options.RESP = resp;
  const tag = `RESP ${resp ?? 'default'}`;
  const pub = createClient(options);
  pub.on('error', (err) => { console.error(`client error (${tag}):`, err); });
  await pub.connect();
  const sub = pub.duplicate();
  sub.on('error', (err) => { console.error(`subscriber error (${tag}):`, err); });
  await sub.connect();
  const p = `node${resp ?? 'default'}:`;        // each run uses its own names

  where = `SUBSCRIBE (${tag})`;
  const got = [];
  await sub.subscribe([p + 'a', p + 'b'], (message, channel) => got.push(['message', channel, message]));
  await sub.pSubscribe(p + 'pat.*', (message, channel) => got.push(['pmessage', channel, message]));
  await sub.sSubscribe(p + 'shard', (message, channel) => got.push(['smessage', channel, message]));

  where = `PUBLISH (${tag})`;
  assert.equal(await pub.publish(p + 'a', 'hello'), 1);
  assert.equal(await pub.publish(p + 'pat.x', 'by pattern'), 1);
  assert.equal(await pub.publish(p + 'nobody', 'lost'), 0);
  assert.equal(await pub.sPublish(p + 'shard', 'sharded'), 1);
  assert.equal(await pub.publish(p + 'shard', 'not to shard subscribers'), 0);
  assert.equal(await pub.publish(p + 'b', 'ünïcödé'), 1);
  await waitFor(got, 4);
  assert.deepEqual(got, [
    ['message', p + 'a', 'hello'],
    ['pmessage', p + 'pat.x', 'by pattern'],
    ['smessage', p + 'shard', 'sharded'],
    ['message', p + 'b', 'ünïcödé'],
  ]);

  where = `PUBSUB (${tag})`;
  assert.deepEqual((await pub.pubSubChannels(p + '*')).sort(), [p + 'a', p + 'b']);
  assert.deepEqual(await pub.pubSubNumSub([p + 'a', p + 'none']), { [p + 'a']: 1, [p + 'none']: 0 });
  assert.equal(await pub.pubSubNumPat(), 1);
  assert.deepEqual(await pub.pubSubShardChannels(p + '*'), [p + 'shard']);
  assert.deepEqual(await pub.pubSubShardNumSub([p + 'shard']), { [p + 'shard']: 1 });

  if ((resp ?? 3) === 3) {
    // RESP3: the subscribed connection runs ordinary commands too
    where = `commands while subscribed (${tag})`;
    assert.equal(await sub.set(p + 'k', 'v'), 'OK');
    assert.equal(await sub.get(p + 'k'), 'v');
    assert.equal(await sub.ping(), 'PONG');
  }

  where = `keyspace notifications (${tag})`;
  await pub.configSet('notify-keyspace-events', 'KEA');
  assert.equal((await pub.configGet('notify-keyspace-events'))['notify-keyspace-events'], 'AKE');
  const events = [];
  await sub.pSubscribe('__keyevent@0__:*', (key, channel) => {
    if (key.startsWith(p)) events.push([channel.slice('__keyevent@0__:'.length), key]);
  });
  await pub.set(p + 'ev', '1');
  await pub.incrBy(p + 'ev', 2);
  await pub.expire(p + 'ev', 100);
  await pub.rename(p + 'ev', p + 'ev2');
  await pub.del(p + 'ev2');
  await pub.vAdd(p + 'vs', [1, 0], 'a');
  await waitFor(events, 7);
  assert.deepEqual(events, [
    ['set', p + 'ev'], ['incrby', p + 'ev'], ['expire', p + 'ev'], ['rename_from', p + 'ev'],
    ['rename_to', p + 'ev2'], ['del', p + 'ev2'], ['vadd', p + 'vs'],
  ]);
  await pub.configSet('notify-keyspace-events', '');
  await sub.pUnsubscribe('__keyevent@0__:*');

  where = `UNSUBSCRIBE (${tag})`;
  await sub.unsubscribe(p + 'a');
  assert.equal(await pub.publish(p + 'a', 'gone'), 0);
  assert.equal(await pub.publish(p + 'b', 'still'), 1);
  await waitFor(got, 5);
  assert.deepEqual(got[4], ['message', p + 'b', 'still']);
  await sub.unsubscribe();
  await sub.pUnsubscribe();
  await sub.sUnsubscribe();
  assert.equal(await pub.publish(p + 'b', 'gone'), 0);
  assert.equal(await pub.pubSubNumPat(), 0);
  assert.equal(sub.isPubSubActive, false);
  assert.equal(await sub.get(p + 'k'), (resp ?? 3) === 3 ? 'v' : null);

  await pub.del([p + 'k', p + 'vs']);
  sub.destroy();
  pub.destroy();
}

try {
  await session(undefined);      // node-redis 6's default: RESP3
  await session(2);
  console.log('all assertions passed');
} catch (err) {
  console.error(`FAILED in ${where}:`, err);
  process.exit(1);
}
