// @langchain/redis's RedisVectorStore (on node-redis v4, its own dependency)
// against engram, unchanged: fromTexts, similaritySearchWithScore with and
// without a filter, addDocuments onto an existing index (key numbering
// from FT.INFO's num_docs, read by node-redis v4's positional parser),
// delete({ids}), delete({deleteAll: true}); then FluentRedisVectorStore
// with a TAG / NUMERIC / TEXT metadata schema and its filter expressions
// (Tag eq/ne, Num ranges, Text eq/ne/match/wildcard/fuzzy, and/or), every
// result checked against a brute force.  Embeddings: @langchain/core's
// SyntheticEmbeddings (deterministic, from the text's letters).
// tests/integration/test_langchain.py runs it: node langchain.mjs <port>.
import assert from "node:assert/strict";
import { createClient } from "redis";
import { FluentRedisVectorStore, Num, RedisVectorStore, Tag, Text } from "@langchain/redis";
import { SyntheticEmbeddings } from "@langchain/core/utils/testing";

const port = Number(process.argv[2]);
const client = createClient({ url: `redis://127.0.0.1:${port}` });
client.on("error", (e) => { console.error("client error", e); process.exit(1); });
await client.connect();

const DIM = 8;
const embeddings = new SyntheticEmbeddings({ vectorSize: DIM });
const texts = [
  "the quick brown fox jumps over the lazy dog",
  "engram keeps vectors in memory for fast recall",
  "redis compatible servers speak the resp protocol",
  "a nearest neighbour search walks a small world graph",
  "hashes hold fields and values under one key",
  "langchain splits documents into chunks before embedding",
  "cosine distance ignores the length of a vector",
  "tags are matched exactly while text is tokenised",
];
const metadatas = texts.map((_, i) => ({ n: i, group: i % 2 ? "odd" : "even", source: `web-page-${i}` }));

// brute force: cosine distance in float32 inputs, float64 math
const f32 = (v) => v.map((x) => Math.fround(x));
const cos = (a, b) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return 1 - d / Math.sqrt(na * nb);
};
const vecs = (await embeddings.embedDocuments(texts)).map(f32);
for (const v of vecs) assert.ok(v.some((x) => x !== 0), "a zero embedding");
for (let i = 0; i < vecs.length; i++)
  for (let j = 0; j < i; j++) assert.ok(cos(vecs[i], vecs[j]) > 1e-4, `texts ${i} and ${j} embed alike`);

const INDEX = "docs";
assert.deepEqual(await client.sendCommand(["FT._LIST"]), []);
const store = await RedisVectorStore.fromTexts(texts, metadatas, embeddings,
  { redisClient: client, indexName: INDEX });
assert.deepEqual(await client.sendCommand(["FT._LIST"]), [INDEX]);
const info = await client.ft.info(INDEX);
assert.equal(Number(info.numDocs), texts.length);
assert.equal(info.indexName, INDEX);
for (let i = 0; i < texts.length; i++) {
  const h = await client.hGetAll(`doc:${INDEX}:${i}`);
  assert.equal(h.content, texts[i]);
}

function expected(qv, pred, k) {
  return texts.map((t, i) => ({ t, i, d: cos(qv, vecs[i]) }))
    .filter((x) => pred(x.i)).sort((a, b) => a.d - b.d).slice(0, k);
}

function check(got, qv, pred, k) {
  const want = expected(qv, pred, k);
  assert.equal(got.length, want.length);
  for (let r = 0; r < got.length; r++) {
    const [doc, score] = got[r];
    const i = texts.indexOf(doc.pageContent);
    assert.ok(i >= 0, `unknown content ${doc.pageContent}`);
    assert.ok(pred(i), `result ${i} fails the filter`);
    assert.deepEqual(doc.metadata, metadatas[i]);
    assert.ok(Math.abs(score - cos(qv, vecs[i])) < 1e-5, `distance ${score} vs ${cos(qv, vecs[i])}`);
    assert.ok(Math.abs(score - want[r].d) < 1e-5, `rank ${r}: ${score} vs ${want[r].d}`);
    if (r) assert.ok(score >= got[r - 1][1], "not sorted by distance");
  }
}

// every text finds itself first, at distance ~0
for (let i = 0; i < texts.length; i++) {
  const res = await store.similaritySearchWithScore(texts[i], 3);
  assert.equal(res.length, 3);
  assert.equal(res[0][0].pageContent, texts[i]);
  assert.ok(Math.abs(res[0][1]) < 1e-6, `self distance ${res[0][1]}`);
  check(res, vecs[i], () => true, 3);
}
// an unrelated query
const qv = f32(await embeddings.embedQuery("what does a vector database do"));
check(await store.similaritySearchWithScore("what does a vector database do", 5), qv, () => true, 5);

// a filter: terms of the metadata TEXT field (its JSON, escaped by the
// store; a whole "key":value pair is one token)
const odd = await store.similaritySearchWithScore("what does a vector database do", 5,
  ['"group":"odd"']);
check(odd, qv, (i) => i % 2 === 1, 5);
assert.ok(odd.every(([d]) => d.metadata.group === "odd"));
const two = await store.similaritySearchWithScore("what does a vector database do", 5,
  ['"n":2', '"source":"web-page-5"']);
check(two, qv, (i) => i === 2 || i === 5, 5);
assert.equal(two.length, 2);
assert.deepEqual((await store.similaritySearchWithScore(texts[0], 3, ['"group":"none"'])), []);

// more documents onto the existing index: FT.INFO's num_docs numbers the keys
const more = ["a second batch of text arrives later", "keys continue after the last count"];
await store.addDocuments(more.map((t) => ({ pageContent: t, metadata: { group: "late" } })));
for (let i = 0; i < more.length; i++) {
  assert.equal(await client.hGet(`doc:${INDEX}:${texts.length + i}`, "content"), more[i]);
}
assert.equal(Number((await client.ft.info(INDEX)).numDocs), texts.length + more.length);
let res = await store.similaritySearchWithScore(more[1], 1);
assert.equal(res[0][0].pageContent, more[1]);
assert.deepEqual(res[0][0].metadata, { group: "late" });

// delete({ids}): plain DEL, the index follows
await store.delete({ ids: ["1", "3"] });
assert.equal(await client.exists([`doc:${INDEX}:1`, `doc:${INDEX}:3`]), 0);
assert.equal(Number((await client.ft.info(INDEX)).numDocs), texts.length + more.length - 2);
res = await store.similaritySearchWithScore(texts[1], 20);
assert.equal(res.length, texts.length + more.length - 2);
assert.ok(res.every(([d]) => d.pageContent !== texts[1] && d.pageContent !== texts[3]));
assert.ok(res[0][1] > 1e-6, "the deleted text still found");

// delete({deleteAll: true}): FT.DROPINDEX docs DD
await store.delete({ deleteAll: true });
assert.deepEqual(await client.sendCommand(["FT._LIST"]), []);
assert.deepEqual(await client.keys(`doc:${INDEX}:*`), []);
assert.equal(await client.dbSize(), 0);
assert.equal(await store.checkIndexExists(), false);

// and again from nothing: the index is created anew, keys from 0
await store.addDocuments([{ pageContent: texts[4], metadata: { again: true } }]);
assert.equal(await client.hGet(`doc:${INDEX}:0`, "content"), texts[4]);
res = await store.similaritySearchWithScore(texts[4], 2);
assert.equal(res.length, 1);
assert.equal(res[0][0].pageContent, texts[4]);
assert.deepEqual(res[0][0].metadata, { again: true });

// a FLAT L2 store beside it (another index, another prefix)
const flat = await RedisVectorStore.fromTexts(texts.slice(0, 4), metadatas.slice(0, 4), embeddings, {
  redisClient: client, indexName: "flat", indexOptions: { ALGORITHM: "FLAT", DISTANCE_METRIC: "L2" },
});
res = await flat.similaritySearchWithScore(texts[2], 4);
assert.equal(res.length, 4);
assert.equal(res[0][0].pageContent, texts[2]);
assert.equal(res[0][1], 0);
const l2sq = (a, b) => a.reduce((s, x, i) => s + (x - b[i]) * (x - b[i]), 0);
for (let r = 0; r < res.length; r++) {
  const i = texts.indexOf(res[r][0].pageContent);
  assert.ok(Math.abs(res[r][1] - l2sq(vecs[2], vecs[i])) < 1e-5);
  if (r) assert.ok(res[r][1] >= res[r - 1][1]);
}
assert.deepEqual((await client.sendCommand(["FT._LIST"])).sort(), ["docs", "flat"]);
await flat.delete({ deleteAll: true });
await store.delete({ deleteAll: true });
assert.equal(await client.dbSize(), 0);

// ---- FluentRedisVectorStore (the non-deprecated store): a metadata schema
// of TAG, NUMERIC and TEXT fields, and its filter expressions
const items = [
  ["a paperback novel about the sea", "books", 12, "quick read for the beach"],
  ["a hardcover atlas of old maps", "books", 45, "heavy and detailed"],
  ["a wooden toy train with tracks", "toys", 30, "quick assembly for kids"],
  ["a puzzle of a thousand pieces", "toys", 18, "slow and calm evening"],
  ["a cordless drill with two batteries", "tools", 89, "quick charging battery"],
  ["a set of screwdrivers in a case", "tools", 22, "precise tips"],
  ["a cookbook of summer salads", "books", 25, "fresh quick recipes"],
  ["a kite shaped like a dragon", "toys", 15, "flies in light wind"],
  ["a hammer with a fiberglass handle", "tools", 19, "balanced swing"],
];
const ftexts = items.map((x) => x[0]);
const fmeta = items.map(([, category, price, blurb]) => ({ category, price, blurb }));
const fvecs = (await embeddings.embedDocuments(ftexts)).map(f32);
const fluent = await FluentRedisVectorStore.fromTexts(ftexts, fmeta, embeddings, {
  redisClient: client, indexName: "fluent",
  customSchema: [
    { name: "category", type: "tag" },
    { name: "price", type: "numeric" },
    { name: "blurb", type: "text" },
  ],
});
const finfo = await client.ft.info("fluent");
assert.equal(Number(finfo.numDocs), items.length);
assert.deepEqual(finfo.attributes.map((a) => a.identifier),
  ["content_vector", "content", "category", "price", "blurb"]);

async function fcheck(query, filter, pred, k = 20) {
  const qv = f32(await embeddings.embedQuery(query));
  const got = await fluent.similaritySearchWithScore(query, k, filter);
  const want = items.map((x, i) => ({ i, d: cos(qv, fvecs[i]) })).filter((x) => pred(items[x.i]))
    .sort((a, b) => a.d - b.d).slice(0, k);
  assert.equal(got.length, want.length, `filter ${filter}: ${got.length} results, want ${want.length}`);
  got.forEach(([doc, score], r) => {
    const i = ftexts.indexOf(doc.pageContent);
    assert.ok(i >= 0 && pred(items[i]), `filter ${filter}: ${doc.pageContent}`);
    assert.deepEqual(doc.metadata, fmeta[i]);
    assert.ok(Math.abs(score - want[r].d) < 1e-5, `filter ${filter} rank ${r}: ${score} vs ${want[r].d}`);
  });
  return got;
}
const fq = "something quick for the weekend";
await fcheck(fq, undefined, () => true);
await fcheck(fq, Tag("category").eq("books"), (x) => x[1] === "books");
await fcheck(fq, Tag("category").eq(["books", "toys"]), (x) => x[1] !== "tools");
await fcheck(fq, Tag("category").ne("tools"), (x) => x[1] !== "tools");
await fcheck(fq, Num("price").between(15, 30), (x) => x[2] >= 15 && x[2] <= 30);
await fcheck(fq, Num("price").gt(25), (x) => x[2] > 25);
await fcheck(fq, Num("price").lte(19), (x) => x[2] <= 19);
await fcheck(fq, Num("price").eq(22), (x) => x[2] === 22);
await fcheck(fq, Tag("category").eq("toys").and(Num("price").lt(20)), (x) => x[1] === "toys" && x[2] < 20);
await fcheck(fq, Tag("category").eq("tools").or(Num("price").gte(40)), (x) => x[1] === "tools" || x[2] >= 40);
await fcheck(fq, Text("blurb").match("quick"), (x) => /\bquick\b/.test(x[3]));
await fcheck(fq, Text("blurb").eq("quick read"), (x) => x[3].includes("quick read"));
await fcheck(fq, Text("blurb").ne("quick read"), (x) => !x[3].includes("quick read"));
await fcheck(fq, Text("blurb").wildcard("bat*"), (x) => /\bbat\w*/.test(x[3]));
await fcheck(fq, Text("blurb").fuzzy("quikc"), (x) => /\bquick\b/.test(x[3]));
await fcheck(fq, Text("blurb").match("quick").and(Tag("category").ne("books")),
  (x) => /\bquick\b/.test(x[3]) && x[1] !== "books");
const self = await fcheck(items[5][0], undefined, () => true, 1);
assert.equal(self[0][0].pageContent, items[5][0]);
assert.ok(Math.abs(self[0][1]) < 1e-6);
await fluent.delete({ deleteAll: true });
assert.deepEqual(await client.keys("doc:fluent:*"), []);
assert.deepEqual(await client.sendCommand(["FT._LIST"]), []);

await client.quit();
console.log("all assertions passed");
