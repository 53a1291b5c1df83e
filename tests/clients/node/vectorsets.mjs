// engram's Redis 8.8 vector sets driven by node-redis v6's own methods
// (vAdd, vCard, vDim, vEmb, vEmbRaw, vGetAttr, vSetAttr, vInfo, vLinks,
// vLinksWithScores, vRandMember, vRange, vRem, vSim, vSimWithScores), once
// with the client's default protocol (RESP3 since node-redis 6) and once
// with RESP: 2.  What node-redis sends and how it reads the replies is its
// own code (packages/client/lib/commands/V*.ts); the expectations are those
// of /work/notes/vectorsets.md (Redis 8.8's behaviour).
//
// Usage: node vectorsets.mjs <port>.  Exits 0 when every assertion holds,
// 1 (with the failed assertion on stderr) otherwise.

import assert from 'node:assert/strict';
import { createClient, RESP_TYPES } from 'redis';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node vectorsets.mjs <port>');
  process.exit(2);
}

const sorted = (a) => [...a].sort();
let where = 'connecting';   // the section running, printed on failure

async function session(resp) {
  const options = { socket: { host: '127.0.0.1', port, reconnectStrategy: false } };
  if (resp !== undefined) options.RESP = resp;
  const client = createClient(options);
  client.on('error', (err) => { console.error(`client error (RESP ${resp ?? 'default'}):`, err); });
  await client.connect();
  const p = `node${resp ?? 'default'}:`;        // each run uses its own keys
  const k = p + 's';

  // VADD: booleans either way; NOQUANT, SETATTR as an object (JSON.stringify)
  where = `VADD (RESP ${resp ?? 'default'})`;
  assert.equal(await client.vAdd(k, [1, 0], 'a', { QUANT: 'NOQUANT', SETATTR: { x: 1 } }), true);
  assert.equal(await client.vAdd(k, [0, 1], 'b', { QUANT: 'NOQUANT' }), true);
  assert.equal(await client.vAdd(k, [0, 1], 'b', { QUANT: 'NOQUANT' }), false);
  assert.equal(await client.type(k), 'vectorset');
  assert.equal(await client.vCard(k), 2);
  assert.equal(await client.vDim(k), 2);
  assert.equal(await client.vCard(p + 'missing'), 0);
  await assert.rejects(client.vDim(p + 'missing'), /key does not exist/);

  // VEMB: numbers in both protocols; integral values exact
  where = `VEMB (RESP ${resp ?? 'default'})`;
  assert.deepEqual(await client.vEmb(k, 'a'), [1, 0]);
  assert.equal(await client.vEmb(k, 'missing'), null);
  assert.equal(await client.vEmb(p + 'missing', 'a'), null);

  // VEMB RAW: f32 / int8 / bin, the range only for int8
  where = `VEMB RAW (RESP ${resp ?? 'default'})`;
  const bufs = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  const rawF = await bufs.vEmbRaw(k, 'a');
  assert.equal(rawF.quantization, 'f32');
  assert.ok(Buffer.isBuffer(rawF.raw));
  assert.equal(rawF.raw.length, 8);
  assert.equal(rawF.raw.readFloatLE(0), 1);
  assert.equal(rawF.raw.readFloatLE(4), 0);
  assert.equal(rawF.l2Norm, 1);
  assert.equal(rawF.quantizationRange, undefined);
  assert.equal(await client.vAdd(p + 'q8', [3, 4], 'e'), true);            // Q8 by default
  const rawQ = await bufs.vEmbRaw(p + 'q8', 'e');
  assert.equal(rawQ.quantization, 'int8');
  assert.deepEqual([...rawQ.raw], [95, 127]);
  assert.equal(rawQ.l2Norm, 5);
  assert.ok(Math.abs(rawQ.quantizationRange - 0.8) < 1e-6);
  assert.equal(await client.vAdd(p + 'bin', [1, -2, 3], 'e', { QUANT: 'BIN' }), true);
  const rawB = await bufs.vEmbRaw(p + 'bin', 'e');
  assert.equal(rawB.quantization, 'bin');
  assert.deepEqual([...rawB.raw], [5, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(rawB.quantizationRange, undefined);
  assert.deepEqual(await client.vEmb(p + 'bin', 'e'), [1, -1, 1]);
  assert.equal(await client.vEmbRaw(k, 'missing'), null);

  // VSIM and VSIM ... WITHSCORES (an object in both protocols)
  where = `VSIM (RESP ${resp ?? 'default'})`;
  assert.deepEqual(await client.vSim(k, 'a'), ['a', 'b']);
  assert.deepEqual(await client.vSim(k, [1, 0], { COUNT: 1 }), ['a']);
  assert.deepEqual(await client.vSim(k, [0.1, 1]), ['b', 'a']);
  assert.deepEqual(await client.vSimWithScores(k, 'a'), { a: 1, b: 0.5 });
  assert.deepEqual(await client.vSimWithScores(k, [-1, 0]), { b: 0.5, a: 0 });
  assert.deepEqual(await client.vSim(k, 'a', { FILTER: '.x == 1' }), ['a']);
  assert.deepEqual(await client.vSim(k, 'a', { EPSILON: 0.4 }), ['a']);
  assert.deepEqual(await client.vSim(k, 'a', { EF: 10, TRUTH: true, NOTHREAD: true }), ['a', 'b']);
  assert.deepEqual(await client.vSim(k, 'a', { FILTER: '.x > 0', 'FILTER-EF': 5 }), ['a']);
  assert.deepEqual(await client.vSim(p + 'missing', 'a'), []);
  await assert.rejects(client.vSim(k, 'missing'), /element not found in set/);
  await assert.rejects(client.vSim(k, 'a', { FILTER: '.x == @' }),
    /syntax error in FILTER expression near: @/);
  await assert.rejects(client.vSim(k, [1, 2, 3]), /Vector dimension mismatch - got 3 but set has 2/);

  // attributes
  where = `VSETATTR/VGETATTR (RESP ${resp ?? 'default'})`;
  assert.deepEqual(await client.vGetAttr(k, 'a'), { x: 1 });
  assert.equal(await client.vGetAttr(k, 'b'), null);
  assert.equal(await client.vGetAttr(k, 'missing'), null);
  assert.equal(await client.vSetAttr(k, 'b', { y: [1, 'two'] }), true);
  assert.deepEqual(await client.vGetAttr(k, 'b'), { y: [1, 'two'] });
  assert.equal(await client.vSetAttr(k, 'b', ''), true);                  // '' removes it
  assert.equal(await client.vGetAttr(k, 'b'), null);
  assert.equal(await client.vSetAttr(k, 'missing', { z: 1 }), false);
  assert.equal(await client.vSetAttr(p + 'missing', 'a', { z: 1 }), false);

  // VLINKS: levels highest first, layer 0 last
  where = `VLINKS (RESP ${resp ?? 'default'})`;
  const links = await client.vLinks(k, 'a');
  assert.ok(Array.isArray(links) && links.length >= 1);
  assert.deepEqual(links[links.length - 1], ['b']);
  const scored = await client.vLinksWithScores(k, 'a');
  assert.equal(scored.length, links.length);
  assert.deepEqual(scored[scored.length - 1], { b: 0.5 });
  assert.equal(await client.vLinks(k, 'missing'), null);

  // VINFO: the 9 fields (an object in both protocols)
  where = `VINFO (RESP ${resp ?? 'default'})`;
  const info = await client.vInfo(k);
  assert.deepEqual(Object.keys(info), ['quant-type', 'hnsw-m', 'vector-dim',
    'projection-input-dim', 'size', 'max-level', 'attributes-count', 'vset-uid',
    'hnsw-max-node-uid']);
  assert.equal(info['quant-type'], 'f32');
  assert.equal(info['hnsw-m'], 16);
  assert.equal(info['vector-dim'], 2);
  assert.equal(info['projection-input-dim'], 0);
  assert.equal(info.size, 2);
  assert.equal(info['attributes-count'], 1);
  assert.equal(info['hnsw-max-node-uid'], 3);       // b was added twice: delete + insert
  assert.equal(await client.vInfo(p + 'missing'), null);

  // REDUCE, CAS, EF, M
  where = `REDUCE/CAS/EF/M (RESP ${resp ?? 'default'})`;
  assert.equal(await client.vAdd(p + 'r', [1, 2, 3, 4], 'e', { REDUCE: 2 }), true);
  assert.equal(await client.vDim(p + 'r'), 2);
  assert.equal((await client.vInfo(p + 'r'))['projection-input-dim'], 4);
  assert.equal(await client.vAdd(p + 'r', [4, 3, 2, 1], 'f', { REDUCE: 2, CAS: true }), true);
  await assert.rejects(client.vAdd(p + 'r', [4, 3, 2, 1], 'g'),
    /Vector dimension mismatch - got 4 but set has 2/);
  assert.equal(await client.vAdd(p + 'm', [1, 2, 3], 'e', { QUANT: 'Q8', EF: 200, M: 8, CAS: true }), true);
  const infoM = await client.vInfo(p + 'm');
  assert.equal(infoM['hnsw-m'], 8);
  assert.equal(infoM['quant-type'], 'int8');
  await assert.rejects(client.vAdd(p + 'm', [1, 2, 3], 'f'), /asked M value mismatch/);

  // VRANDMEMBER, VRANGE
  where = `VRANDMEMBER/VRANGE (RESP ${resp ?? 'default'})`;
  assert.ok(['a', 'b'].includes(await client.vRandMember(k)));
  assert.deepEqual(sorted(await client.vRandMember(k, 5)), ['a', 'b']);
  const dup = await client.vRandMember(k, -5);
  assert.equal(dup.length, 5);
  assert.ok(dup.every((e) => e === 'a' || e === 'b'));
  assert.deepEqual(await client.vRandMember(k, 0), []);
  assert.equal(await client.vRandMember(p + 'missing'), null);
  assert.deepEqual(await client.vRandMember(p + 'missing', 3), []);
  assert.deepEqual(await client.vRange(k, '-', '+'), ['a', 'b']);
  assert.deepEqual(await client.vRange(k, '(a', '+', 10), ['b']);
  assert.deepEqual(await client.vRange(k, '-', '+', 1), ['a']);
  assert.deepEqual(await client.vRange(p + 'missing', '-', '+'), []);

  // VREM: booleans; the last element takes the key with it
  where = `VREM (RESP ${resp ?? 'default'})`;
  assert.equal(await client.vRem(k, 'a'), true);
  assert.equal(await client.vRem(k, 'a'), false);
  assert.equal(await client.vRem(k, 'b'), true);
  assert.equal(await client.exists(k), 0);
  assert.equal(await client.vRem(p + 'missing', 'a'), false);

  // a bigger set through a pipeline
  where = `MULTI (RESP ${resp ?? 'default'})`;
  const multi = client.multi();
  for (let i = 0; i < 50; i++) multi.vAdd(p + 'big', [i % 7, i % 5, i % 3, 1], `e${i}`);
  const added = await multi.exec();
  assert.deepEqual(added, new Array(50).fill(true));
  assert.equal(await client.vCard(p + 'big'), 50);
  const top = await client.vSimWithScores(p + 'big', 'e10', { COUNT: 5 });
  assert.equal(Object.keys(top).length, 5);
  assert.ok(Object.values(top).every((s) => typeof s === 'number' && s >= 0 && s <= 1));

  await client.close();
}

try {
  await session(undefined);     // node-redis 6's default: RESP3
  await session(2);
  console.log('node-redis vector sets: all assertions passed');
  process.exit(0);
} catch (err) {
  console.error(`failed in ${where}:`);
  console.error(err);
  process.exit(1);
}
