"""Search indices from redis-py, unchanged: Debian's python3-redis (4.3 on
Debian 12) `r.ft(name)` making the calls redisvl makes (see
tests/integration/data/search-transcripts/redisvl.txt): create_index with
an IndexDefinition and Tag/Numeric/Text/Vector fields (HNSW and FLAT), a
pipelined hset(mapping=...) load, KNN queries with a tag and a numeric
prefilter and VECTOR_RANGE queries checked against a brute force in
numpy, FilterQuery / CountQuery shapes, info() as a dict of pairs, and
dropindex with and without the documents.

redis-py 4.3 drops an index with the old FT.DROP: `FT.DROP idx KEEPDOCS`
keeps the hashes, and delete_documents=True sends `FT.DROP idx ""`, which
RediSearch 2.0-2.4 took as "delete them" (later versions answer "Unknown
argument"); engram deletes them.

engram-only: the harness's Redis 7.0 has no search module."""

import numpy as np

from engram_test import ServerTestCase, engram_only, main

DIM = 8
USERS = ("john", "mary", "joe", "ann")
JOBS = ("engineer", "doctor", "dentist", "teacher", "pilot")


def data(n, seed=7):
    rng = np.random.RandomState(seed)
    vecs = rng.uniform(-1, 1, size=(n, DIM)).astype(np.float32)
    docs = []
    for i in range(n):
        docs.append({"user": USERS[i % len(USERS)], "job": JOBS[(i * 7) % len(JOBS)],
                     "age": str(18 + (i * 13) % 60), "emb": vecs[i].tobytes()})
    return vecs, docs


def cosine_dist(vecs, q):
    v = vecs.astype(np.float64)
    qq = q.astype(np.float64)
    return 1.0 - (v @ qq) / (np.linalg.norm(v, axis=1) * np.linalg.norm(qq))


@engram_only
class TestRedisPySearch(ServerTestCase):
    N = 300

    def setUp(self):
        super().setUp()
        self.r = self.client()

    def create(self, name, algo, prefix="doc"):
        from redis.commands.search.field import NumericField, TagField, TextField, VectorField
        from redis.commands.search.indexDefinition import IndexDefinition, IndexType
        attrs = {"TYPE": "FLOAT32", "DIM": DIM, "DISTANCE_METRIC": "COSINE"}
        if algo == "HNSW":      # redisvl always sends all four
            attrs.update({"M": 16, "EF_CONSTRUCTION": 200, "EF_RUNTIME": 10, "EPSILON": 0.01})
        fields = [TagField("user", separator=","), TextField("job", weight=1.0),
                  NumericField("age"), VectorField("emb", algo, attrs)]
        ok = self.r.ft(name).create_index(
            fields, definition=IndexDefinition(prefix=[prefix], index_type=IndexType.HASH))
        self.assertEqual(ok, b"OK")

    def load(self, docs, prefix="doc"):
        p = self.r.pipeline(transaction=False)
        for i, d in enumerate(docs):
            p.hset("%s:%d" % (prefix, i), mapping=d)
        self.assertEqual(p.execute(), [4] * len(docs))

    def knn(self, name, filt, q, k=5, extra=None):
        from redis.commands.search.query import Query
        text = "%s=>[KNN %d @emb $vec%s AS dist]" % (filt, k, " EF_RUNTIME $EF" if extra else "")
        query = (Query(text).return_fields("user", "age", "job", "dist").sort_by("dist")
                 .paging(0, k).dialect(2))
        params = {"vec": q.tobytes()}
        if extra:
            params.update(extra)
        return self.r.ft(name).search(query, query_params=params)

    def check_knn(self, res, vecs, docs, q, mask, k=5):
        """res against the brute force over the documents mask selects."""
        dist = cosine_dist(vecs, q)
        cand = [i for i in range(len(docs)) if mask(docs[i])]
        want = sorted(cand, key=lambda i: dist[i])[:k]
        self.assertEqual(res.total, min(k, len(cand)))
        got = [int(d.id.split(":")[1]) for d in res.docs]
        self.assertEqual(len(got), min(k, len(cand)))
        got_d = [float(d.dist) for d in res.docs]
        self.assertEqual(got_d, sorted(got_d), "SORTBY dist ASC")
        for i, d in zip(got, res.docs):
            self.assertTrue(mask(docs[i]), "%s does not pass the prefilter" % d.id)
            self.assertAlmostEqual(float(d.dist), dist[i], places=5)
            self.assertEqual(d.user, docs[i]["user"])
            self.assertEqual(d.age, docs[i]["age"])
            self.assertEqual(d.job, docs[i]["job"])
            self.assertEqual(sorted(vars(d)), ["age", "dist", "id", "job", "payload", "user"])
        # the same documents as the brute force (ties aside: distances equal)
        self.assertEqual([round(dist[i], 5) for i in got], [round(dist[i], 5) for i in want])

    def check_range(self, name, filt, q, radius, vecs, docs, mask):
        """redisvl's VectorRangeQuery against the brute force."""
        from redis.commands.search.query import Query
        rq = "@emb:[VECTOR_RANGE $distance_threshold $vector]=>{$YIELD_DISTANCE_AS: vector_distance}"
        text = "(%s %s)" % (rq, filt) if filt else rq
        query = (Query(text).return_fields("user", "age", "vector_distance")
                 .sort_by("vector_distance").paging(0, 1000).dialect(2))
        res = self.r.ft(name).search(query, query_params={"vector": q.tobytes(),
                                                          "distance_threshold": radius})
        dist = cosine_dist(vecs, q)
        want = sorted((i for i in range(len(docs)) if mask(docs[i]) and dist[i] <= radius),
                      key=lambda i: dist[i])
        # the boundary may go either way by float32 rounding: compare away from it
        want_sure = [i for i in want if dist[i] < radius - 1e-5]
        got = [int(d.id.split(":")[1]) for d in res.docs]
        self.assertEqual(res.total, len(got))
        self.assertTrue(set(want_sure) <= set(got) <= set(want) | {i for i in range(len(docs))
                                                                    if abs(dist[i] - radius) < 1e-5})
        got_d = [float(d.vector_distance) for d in res.docs]
        self.assertEqual(got_d, sorted(got_d))
        for i, d in zip(got, res.docs):
            self.assertAlmostEqual(float(d.vector_distance), dist[i], places=5)
            self.assertTrue(mask(docs[i]))
            self.assertEqual(d.user, docs[i]["user"])
        return got

    def session(self, algo):
        from redis.commands.search.query import Query
        r = self.r
        name = "idx_" + algo.lower()
        self.create(name, algo)
        self.assertIn(name.encode(), r.execute_command("FT._LIST"))
        vecs, docs = data(self.N)
        self.load(docs)
        r.set("doc:not-a-hash", "x")          # other types under the prefix: ignored
        r.hset("other:1", mapping=docs[0])     # outside the prefix: ignored
        rng = np.random.RandomState(11)
        for _ in range(4):
            q = rng.uniform(-1, 1, DIM).astype(np.float32)
            # no filter (HNSW: EF_RUNTIME large enough for an exact answer here)
            ef = {"EF": 300} if algo == "HNSW" else None
            self.check_knn(self.knn(name, "*", q, extra=ef), vecs, docs, q, lambda d: True)
            # a tag prefilter
            self.check_knn(self.knn(name, "(@user:{mary})", q), vecs, docs, q,
                           lambda d: d["user"] == "mary")
            self.check_knn(self.knn(name, "@user:{mary}", q), vecs, docs, q,
                           lambda d: d["user"] == "mary")
            # tag and numeric
            self.check_knn(self.knn(name, "(@user:{john | joe} @age:[(30 50])", q), vecs, docs, q,
                           lambda d: d["user"] in ("john", "joe") and 30 < int(d["age"]) <= 50)
            # text
            self.check_knn(self.knn(name, "(@job:(pilot) -@user:{ann})", q), vecs, docs, q,
                           lambda d: d["job"] == "pilot" and d["user"] != "ann")
            # VectorRangeQuery: every document within the radius, alone and with a filter
            for radius in (0.3, 0.8):
                got = self.check_range(name, "", q, radius, vecs, docs, lambda d: True)
                self.assertTrue(radius < 0.5 or len(got) > 5, "radius %s: %d" % (radius, len(got)))
                self.check_range(name, "@age:[40 +inf]", q, radius, vecs, docs,
                                 lambda d: int(d["age"]) >= 40)
        # the document's own vector: distance 0, itself first
        q = vecs[42]
        res = self.knn(name, "*", q, k=1, extra={"EF": 300} if algo == "HNSW" else None)
        self.assertEqual(res.docs[0].id, "doc:42")
        self.assertAlmostEqual(float(res.docs[0].dist), 0.0, places=6)
        # the distance name and EF_RUNTIME as query attributes (RediSearch 2.6+)
        query = (Query("*=>[KNN 3 @emb $vec]=>{$YIELD_DISTANCE_AS: d; $EF_RUNTIME: $EF}")
                 .return_fields("user", "d").sort_by("d").dialect(2))
        res = r.ft(name).search(query, query_params={"vec": vecs[7].tobytes(), "EF": 300})
        self.assertEqual((res.total, res.docs[0].id), (3, "doc:7"))
        self.assertAlmostEqual(float(res.docs[0].d), 0.0, places=6)
        # a prefilter matching nothing
        res = self.knn(name, "@user:{nobody}", vecs[0])
        self.assertEqual((res.total, res.docs), (0, []))

        # FilterQuery and CountQuery (redisvl's shapes)
        res = r.ft(name).search(Query("@user:{john}").return_fields("user", "age").dialect(2))
        nj = sum(1 for d in docs if d["user"] == "john")
        self.assertEqual(res.total, nj)
        self.assertEqual(len(res.docs), 10)
        for d in res.docs:
            self.assertEqual(d.user, "john")
            self.assertEqual(d.age, docs[int(d.id.split(":")[1])]["age"])
        res = r.ft(name).search(Query("@user:{john}").no_content().paging(0, 0).dialect(2))
        self.assertEqual((res.total, res.docs), (nj, []))
        res = r.ft(name).search(Query("@age:[20 29]").sort_by("age", asc=False).paging(0, 1000)
                                .dialect(2))
        want = [d for d in docs if 20 <= int(d["age"]) <= 29]
        self.assertEqual(res.total, len(want))
        ages = [int(d.age) for d in res.docs]
        self.assertEqual(ages, sorted((int(d["age"]) for d in want), reverse=True))
        # every field without RETURN, the vector blob verbatim
        d0 = r.execute_command("FT.SEARCH", name, "@user:{ann} @age:[%s %s]" % (
            docs[3]["age"], docs[3]["age"]), "DIALECT", "2")
        keys = d0[1::2]
        self.assertIn(b"doc:3", keys)
        f = d0[1 + 2 * keys.index(b"doc:3") + 1]
        self.assertEqual(dict(zip(f[::2], f[1::2])), {k.encode(): (v if isinstance(v, bytes) else
                                                               v.encode())
                                                      for k, v in docs[3].items()})

        # info(): a dict from the pairs
        info = r.ft(name).info()
        self.assertEqual(info["index_name"], name)
        self.assertEqual(int(float(info["num_docs"])), self.N)
        self.assertEqual(int(float(info["hash_indexing_failures"])), 0)
        self.assertEqual(int(float(info["indexing"])), 0)
        self.assertEqual(float(info["percent_indexed"]), 1.0)
        idef = info["index_definition"]
        self.assertEqual(idef[0:2], [b"key_type", b"HASH"])
        self.assertEqual(idef[2:4], [b"prefixes", [b"doc"]])
        attrs = info["attributes"]
        self.assertEqual([a[1] for a in attrs], [b"user", b"job", b"age", b"emb"])
        self.assertEqual([a[5] for a in attrs], [b"TAG", b"TEXT", b"NUMERIC", b"VECTOR"])
        vattr = dict(zip(attrs[3][6::2], attrs[3][7::2]))
        self.assertEqual(vattr[b"algorithm"], algo.encode())
        self.assertEqual(vattr[b"data_type"], b"FLOAT32")
        self.assertEqual(int(vattr[b"dim"]), DIM)
        self.assertEqual(vattr[b"distance_metric"], b"COSINE")
        self.assertEqual(dict(zip(attrs[0][6::2], attrs[0][7::2])), {b"SEPARATOR": b","})
        self.assertEqual(float(dict(zip(attrs[1][6::2], attrs[1][7::2]))[b"WEIGHT"]), 1.0)

        # deletes and overwrites follow the keyspace
        r.delete("doc:0", "doc:1")
        r.hset("doc:2", "user", "zed")
        self.assertEqual(int(float(r.ft(name).info()["num_docs"])), self.N - 2)
        res = r.ft(name).search(Query("@user:{zed}").no_content().dialect(2))
        self.assertEqual([d.id for d in res.docs], ["doc:2"])
        return name

    def test_hnsw(self):
        name = self.session("HNSW")
        self.assertEqual(self.r.ft(name).dropindex(delete_documents=True), b"OK")
        self.assertNotIn(name.encode(), self.r.execute_command("FT._LIST"))
        self.assertEqual(self.r.keys("doc:*"), [b"doc:not-a-hash"])
        self.assertEqual(self.r.exists("other:1"), 1)

    def test_flat(self):
        name = self.session("FLAT")
        self.assertEqual(self.r.ft(name).dropindex(delete_documents=False), b"OK")
        self.assertNotIn(name.encode(), self.r.execute_command("FT._LIST"))
        self.assertEqual(len(self.r.keys("doc:*")), self.N - 2 + 1)

    def test_dropindex_dd(self):
        """redisvl with a newer redis-py: FT.DROPINDEX idx DD / without DD."""
        x = self.r.execute_command
        for dd in (True, False):
            self.create("idx", "FLAT")
            vecs, docs = data(20)
            self.load(docs)
            args = ("FT.DROPINDEX", "idx", "DD") if dd else ("FT.DROPINDEX", "idx")
            self.assertEqual(x(*args), b"OK")
            self.assertEqual(x("FT._LIST"), [])
            self.assertEqual(len(self.r.keys("doc:*")), 0 if dd else 20)
        # a dropped index: the errors RediSearch sends
        with self.assertRaises(Exception) as cm:
            x("FT.DROPINDEX", "idx")
        self.assertEqual(str(cm.exception), "Unknown Index name")
        with self.assertRaises(Exception) as cm:
            self.r.ft("idx").search("*")
        self.assertEqual(str(cm.exception), "idx: no such index")

    def test_existing_keys_indexed_on_create(self):
        """mem0 drops without DD and creates again: the hashes are indexed."""
        vecs, docs = data(50)
        self.load(docs)
        self.create("idx", "HNSW")
        self.assertEqual(int(float(self.r.ft("idx").info()["num_docs"])), 50)
        self.check_knn(self.knn("idx", "@user:{joe}", vecs[5]), vecs, docs, vecs[5],
                       lambda d: d["user"] == "joe")


if __name__ == "__main__":
    main()
