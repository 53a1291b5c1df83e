// engram's FT.* commands driven by node-redis v6's own search methods
// (ft.create, ft.search, ft.searchNoContent, ft.info, ft._list, ft.tagVals,
// ft.dropIndex) over hashes written with hSet, once with the client's
// default protocol (RESP3 since node-redis 6: FT.SEARCH and FT.INFO are
// maps) and once with RESP: 2.  What node-redis sends and how it reads the
// replies is its own code (packages/search/lib/commands/*.ts); the
// expectations are RediSearch's (/work/notes/search.md): KNN distances (L2
// squared, COSINE 1 - cos) checked against a brute force here.
//
// Usage: node search.mjs <port>.  Exits 0 when every assertion holds.

import assert from 'node:assert/strict';
import { createClient, RESP_TYPES, SCHEMA_FIELD_TYPE, SCHEMA_VECTOR_FIELD_ALGORITHM } from 'redis';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node search.mjs <port>');
  process.exit(2);
}

let where = 'connecting';
const DIM = 4;
const N = 60;
const COLORS = ['red', 'green', 'blue'];

// deterministic data: a small LCG
let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const docs = [];
for (let i = 0; i < N; i++) {
  const v = Array.from({ length: DIM }, () => Math.fround(rnd() * 2 - 1));
  docs.push({
    v, color: COLORS[i % 3], price: 5 * (i % 20), title: i % 4 === 0 ? `red widget ${i}` : `gadget number ${i}`,
  });
}
const buf = (v) => Buffer.from(new Float32Array(v).buffer);
const l2sq = (a, b) => a.reduce((s, x, i) => s + (x - b[i]) * (x - b[i]), 0);
const cosd = (a, b) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return 1 - d / Math.sqrt(na * nb);
};
const str = (x) => (Buffer.isBuffer(x) ? x.toString() : String(x));

function brute(q, dist, pred, k) {
  return docs.map((d, i) => ({ i, d: dist(q, d.v) })).filter((x) => pred(docs[x.i]))
    .sort((a, b) => a.d - b.d).slice(0, k);
}

function checkKnn(res, q, dist, pred, k, alias, prefix) {
  const want = brute(q, dist, pred, k);
  assert.equal(res.total, want.length);
  assert.equal(res.documents.length, want.length);
  res.documents.forEach((doc, r) => {
    const i = Number(str(doc.id).slice(prefix.length));
    assert.ok(pred(docs[i]), `${doc.id} fails the prefilter`);
    const got = Number(str(doc.value[alias]));
    assert.ok(Math.abs(got - want[r].d) < 1e-5, `rank ${r}: ${got} vs ${want[r].d}`);
    assert.ok(Math.abs(got - dist(q, docs[i].v)) < 1e-5);
    assert.equal(str(doc.value.title), docs[i].title);
    assert.equal(Number(str(doc.value.price)), docs[i].price);
    assert.deepEqual(Object.keys(doc.value).sort(), ['color', 'price', 'title', alias].sort());
  });
}

async function session(resp) {
  const options = { socket: { host: '127.0.0.1', port, reconnectStrategy: false } };
  if (resp !== undefined) options.RESP = resp;
  const client = createClient(options);
  client.on('error', (err) => { console.error(`client error (RESP ${resp ?? 'default'}):`, err); });
  await client.connect();
  const tag = `RESP ${resp ?? 'default'}`;
  const idx = `idx${resp ?? 3}`;
  const prefix = `item${resp ?? 3}:`;

  where = `ft.create (${tag})`;
  assert.equal(await client.ft.create(idx, {
    hv: { type: SCHEMA_FIELD_TYPE.VECTOR, ALGORITHM: SCHEMA_VECTOR_FIELD_ALGORITHM.HNSW, TYPE: 'FLOAT32',
          DIM, DISTANCE_METRIC: 'L2', M: 8, EF_CONSTRUCTION: 100, EF_RUNTIME: 200 },
    fv: { type: SCHEMA_FIELD_TYPE.VECTOR, ALGORITHM: SCHEMA_VECTOR_FIELD_ALGORITHM.FLAT, TYPE: 'FLOAT32',
          DIM, DISTANCE_METRIC: 'COSINE', INITIAL_CAP: 100, BLOCK_SIZE: 64 },
    color: { type: SCHEMA_FIELD_TYPE.TAG, SEPARATOR: ',' },
    price: { type: SCHEMA_FIELD_TYPE.NUMERIC, SORTABLE: true },
    title: { type: SCHEMA_FIELD_TYPE.TEXT, WEIGHT: 2 },
  }, { ON: 'HASH', PREFIX: prefix }), 'OK');
  await assert.rejects(client.ft.create(idx, { title: SCHEMA_FIELD_TYPE.TEXT }, { ON: 'HASH' }),
    /Index already exists/);

  where = `hSet (${tag})`;
  for (let i = 0; i < N; i++) {
    const d = docs[i];
    assert.equal(await client.hSet(`${prefix}${i}`, {
      hv: buf(d.v), fv: buf(d.v), color: d.color, price: d.price, title: d.title,
    }), 5);
  }

  where = `ft._list (${tag})`;
  const list = (await client.ft._list()).map(str);
  assert.ok(list.includes(idx), `${idx} not in ${list}`);

  where = `ft.info (${tag})`;
  const info = await client.ft.info(idx);
  assert.equal(str(info.index_name), idx);
  assert.equal(Number(info.num_docs), N);
  assert.equal(Number(info.hash_indexing_failures), 0);
  assert.equal(Number(info.percent_indexed), 1);
  assert.equal(Number(info.indexing), 0);
  assert.equal(str(info.index_definition.key_type), 'HASH');
  assert.deepEqual(info.index_definition.prefixes.map(str), [prefix]);
  const attrs = info.attributes;
  assert.deepEqual(attrs.map((a) => str(a.identifier)), ['hv', 'fv', 'color', 'price', 'title']);
  assert.deepEqual(attrs.map((a) => str(a.type)), ['VECTOR', 'VECTOR', 'TAG', 'NUMERIC', 'TEXT']);
  assert.equal(str(attrs[0].algorithm), 'HNSW');
  assert.equal(str(attrs[1].algorithm), 'FLAT');
  assert.equal(Number(attrs[0].dim), DIM);
  assert.equal(str(attrs[0].distance_metric), 'L2');
  assert.equal(str(attrs[1].distance_metric), 'COSINE');
  assert.equal(str(attrs[2].SEPARATOR), ',');
  assert.deepEqual(attrs[3].flags.map(str), ['SORTABLE']);
  assert.equal(Number(attrs[4].WEIGHT), 2);
  assert.ok(typeof info.gc_stats === 'object' && info.gc_stats !== null);
  assert.equal(Number(info.cursor_stats.index_capacity), 128);

  // KNN over the HNSW field (L2 squared), with PARAMS, RETURN, SORTBY, DIALECT 2
  where = `ft.search KNN (${tag})`;
  for (let t = 0; t < 5; t++) {
    const q = Array.from({ length: DIM }, () => Math.fround(rnd() * 2 - 1));
    let res = await client.ft.search(idx, '*=>[KNN 5 @hv $B AS dist]', {
      PARAMS: { B: buf(q) }, RETURN: ['title', 'price', 'color', 'dist'], SORTBY: 'dist', DIALECT: 2,
      LIMIT: { from: 0, size: 5 },
    });
    checkKnn(res, q, l2sq, () => true, 5, 'dist', prefix);
    // a tag and numeric prefilter, spaces around =>, SORTBY with a direction
    res = await client.ft.search(idx, '(@color:{red | blue} @price:[10 (60]) => [KNN 4 @hv $B AS dist]', {
      PARAMS: { B: buf(q) }, RETURN: ['title', 'price', 'color', 'dist'],
      SORTBY: { BY: 'dist', DIRECTION: 'ASC' }, DIALECT: 2,
    });
    checkKnn(res, q, l2sq, (d) => (d.color === 'red' || d.color === 'blue') && d.price >= 10 && d.price < 60,
      4, 'dist', prefix);
    // FLAT, cosine; K from a parameter; the default score name
    res = await client.ft.search(idx, '@color:{green}=>[KNN $K @fv $B]', {
      PARAMS: { B: buf(q), K: 3 }, RETURN: ['title', 'price', 'color', '__fv_score'],
      SORTBY: '__fv_score', DIALECT: 2,
    });
    checkKnn(res, q, cosd, (d) => d.color === 'green', 3, '__fv_score', prefix);
  }
  // a document's own vector: itself, distance 0
  let res = await client.ft.search(idx, '*=>[KNN 1 @hv $B AS dist]', {
    PARAMS: { B: buf(docs[17].v) }, RETURN: ['dist'], SORTBY: 'dist', DIALECT: 2,
  });
  assert.equal(res.total, 1);
  assert.equal(str(res.documents[0].id), `${prefix}17`);
  assert.equal(str(res.documents[0].value.dist), '0');
  // LIMIT pages through the k results
  const all = await client.ft.search(idx, '*=>[KNN 10 @fv $B AS s]', {
    PARAMS: { B: buf(docs[3].v) }, RETURN: ['s'], SORTBY: 's', LIMIT: { from: 0, size: 10 },
  });
  const page = await client.ft.search(idx, '*=>[KNN 10 @fv $B AS s]', {
    PARAMS: { B: buf(docs[3].v) }, RETURN: ['s'], SORTBY: 's', LIMIT: { from: 4, size: 3 },
  });
  assert.equal(all.total, 10);
  assert.equal(page.total, 10);
  assert.deepEqual(page.documents.map((d) => str(d.id)), all.documents.slice(4, 7).map((d) => str(d.id)));
  // a wrong-size blob: RediSearch's error
  await assert.rejects(client.ft.search(idx, '*=>[KNN 1 @hv $B]', { PARAMS: { B: Buffer.alloc(8) } }),
    /query vector blob size \(8\) does not match index's expected size \(16\)/);

  // text, tag and numeric queries; SORTBY a SORTABLE numeric field
  where = `ft.search text (${tag})`;
  res = await client.ft.search(idx, '@title:widget', {
    RETURN: ['title', 'price'], SORTBY: { BY: 'price', DIRECTION: 'DESC' }, LIMIT: { from: 0, size: 100 },
  });
  const widgets = docs.map((d, i) => ({ ...d, i })).filter((d) => d.title.includes('widget'));
  assert.equal(res.total, widgets.length);
  const prices = res.documents.map((d) => Number(str(d.value.price)));
  assert.deepEqual(prices, widgets.map((d) => d.price).sort((a, b) => b - a));
  res.documents.forEach((d) => assert.match(str(d.value.title), /^red widget /));
  res = await client.ft.search(idx, '@color:{blue} @price:[50 +inf]', { LIMIT: { from: 0, size: 0 } });
  assert.equal(res.total, docs.filter((d) => d.color === 'blue' && d.price >= 50).length);
  assert.deepEqual(res.documents, []);
  // every field without RETURN: the vectors come back verbatim
  const bufs = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  res = await bufs.ft.search(idx, '@price:[0 0] @color:{red}', {});
  assert.equal(res.total, 1);
  assert.equal(str(res.documents[0].id), `${prefix}0`);
  assert.ok(buf(docs[0].v).equals(Buffer.from(res.documents[0].value.hv)));
  // searchNoContent: the ids only
  const nc = await client.ft.searchNoContent(idx, '@color:{red}', { LIMIT: { from: 0, size: 100 } });
  assert.equal(nc.total, N / 3);
  assert.deepEqual(nc.documents.map(str).sort(),
    docs.map((d, i) => [d, i]).filter(([d]) => d.color === 'red').map(([, i]) => `${prefix}${i}`).sort());

  where = `ft.tagVals (${tag})`;
  assert.deepEqual((await client.ft.tagVals(idx, 'color')).map(str).sort(), ['blue', 'green', 'red']);

  // writes follow: DEL, and an overwrite that moves a document out of a tag
  where = `updates (${tag})`;
  await client.del(`${prefix}0`);
  await client.hSet(`${prefix}4`, "color", "red");
  assert.equal(Number((await client.ft.info(idx)).num_docs), N - 1);
  res = await client.ft.searchNoContent(idx, '@color:{red}', { LIMIT: { from: 0, size: 100 } });
  assert.equal(res.total, N / 3);      // one red deleted, one made red
  assert.ok(res.documents.map(str).includes(`${prefix}4`));

  // the raw shapes: RESP3 maps (Redis 8's keys), RESP2 flat arrays
  where = `raw replies (${tag})`;
  const rawS = await client.sendCommand(['FT.SEARCH', idx, '@price:[5 5]', 'RETURN', '1', 'price',
    'WITHSCORES', 'LIMIT', '0', '1']);
  const rawI = await client.sendCommand(['FT.INFO', idx]);
  if (resp === 2) {
    assert.ok(Array.isArray(rawS));
    assert.equal(rawS[0], docs.filter((d) => d.price === 5).length);
    assert.equal(rawS.length, 4);      // total, id, score, fields
    assert.deepEqual(rawS[3], ['price', '5']);
    assert.ok(Array.isArray(rawI) && rawI.length >= 48 && str(rawI[0]) === 'index_name');
  } else {
    assert.ok(!Array.isArray(rawS) && typeof rawS === 'object');
    assert.deepEqual(Object.keys(rawS).sort(), ['attributes', 'format', 'results', 'total_results', 'warning']);
    assert.equal(rawS.total_results, docs.filter((d) => d.price === 5).length);
    assert.equal(str(rawS.format), 'STRING');
    assert.equal(rawS.results.length, 1);
    const row = rawS.results[0];
    assert.deepEqual(Object.keys(row).sort(), ['extra_attributes', 'id', 'score', 'values']);
    assert.equal(typeof row.score, 'number');
    assert.deepEqual({ ...row.extra_attributes }, { price: '5' });
    assert.ok(!Array.isArray(rawI) && str(rawI.index_name) === idx);
  }

  // errors
  where = `errors (${tag})`;
  await assert.rejects(client.ft.info('nosuch'), /no such index|Unknown Index name/);
  await assert.rejects(client.ft.search('nosuch', '*'), /nosuch: no such index/);

  where = `ft.dropIndex (${tag})`;
  assert.equal(await client.ft.dropIndex(idx, { DD: true }), 'OK');
  assert.ok(!(await client.ft._list()).map(str).includes(idx));
  assert.deepEqual(await client.keys(`${prefix}*`), []);
  await assert.rejects(client.ft.dropIndex(idx), /Unknown Index name/);
  // without DD the hashes stay
  assert.equal(await client.ft.create(idx, { title: SCHEMA_FIELD_TYPE.TEXT }, { ON: 'HASH', PREFIX: prefix }), 'OK');
  await client.hSet(`${prefix}x`, 'title', 'kept');
  assert.equal((await client.ft.search(idx, 'kept')).total, 1);
  assert.equal(await client.ft.dropIndex(idx), 'OK');
  assert.equal(await client.hGet(`${prefix}x`, 'title'), 'kept');
  await client.del(`${prefix}x`);

  await client.close();
}

try {
  await session(undefined);     // node-redis 6's default: RESP3
  await session(2);
  console.log('node-redis search: all assertions passed');
  process.exit(0);
} catch (err) {
  console.error(`failed in ${where}:`);
  console.error(err);
  process.exit(1);
}
