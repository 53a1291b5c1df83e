"""Search quality: FLAT VSEARCH equals a brute-force answer computed here (all
three metrics, exact-tie order, after deletions), and HNSW recall@10 on
seeded clustered data.  Pure Python (no numpy), fixed seeds.

engram-only: real Redis 7.0 has no vector commands."""

import math
import operator
import random
import struct

from engram_test import SANITIZE, ServerTestCase, encode, engram_only, main


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def blob(vals):
    return struct.pack("<%df" % len(vals), *vals)


def f32vec(vals):
    """The vector as the server stores it (float32 components)."""
    return list(struct.unpack("<%df" % len(vals), blob(vals)))


def dot(a, b):
    return sum(map(operator.mul, a, b))


def distance(metric, q, v):
    """The reported distance, in double precision, for float32 inputs."""
    if metric == "l2":
        return math.sqrt(sum((x - y) * (x - y) for x, y in zip(q, v)))
    if metric == "dot":
        return -dot(q, v)
    nq, nv = math.sqrt(dot(q, q)), math.sqrt(dot(v, v))
    if nq == 0 or nv == 0:
        return 1.0
    return 1.0 - dot(q, v) / (nq * nv)


def tolerance(metric, q, v):
    """How far a float32 computation may land from the double one."""
    if metric == "cosine":
        return 1e-5
    if metric == "dot":
        return 1e-5 * (1.0 + sum(abs(x * y) for x, y in zip(q, v)))
    return 1e-5 * (1.0 + distance("l2", q, v))


def load(c, name, items, chunk=500):
    """VADD every (key, vector) pipelined; every reply must be :1."""
    items = list(items)
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        c.send(b"".join(encode("VADD", name, k, blob(v)) for k, v in part))
        for k, _ in part:
            r = c.read()
            assert r == 1, (k, r)


class SearchTestCase(ServerTestCase):
    def search(self, c, name, q, k, *opts):
        r = c.cmd("VSEARCH", name, blob(q), str(k), *opts)
        self.assertIsInstance(r, list, r)
        self.assertEqual(len(r) % 2, 0)
        return [x.decode() for x in r[0::2]], [float(x) for x in r[1::2]]

    def assert_matches_brute_force(self, metric, vecs, q, keys, dists, k):
        """keys/dists (the server's answer) against the exact answer over
        vecs ({key: (insertion_rank, f32 vector)}), ties by insertion rank.
        Where two true distances are closer than float32 precision, either
        order is accepted; elsewhere keys must match exactly."""
        ranked = sorted(((distance(metric, q, v), rank, key) for key, (rank, v) in vecs.items()))
        want = ranked[:k]
        self.assertEqual(len(keys), len(want), "result size (k=%d, live=%d)" % (k, len(vecs)))
        self.assertEqual(len(set(keys)), len(keys), "duplicate keys %r" % keys)
        # every reported distance is the key's true distance
        for key, d in zip(keys, dists):
            self.assertIn(key, vecs)
            v = vecs[key][1]
            self.assertAlmostEqual(d, distance(metric, q, v), delta=tolerance(metric, q, v),
                                   msg="distance of %r" % key)
        # the distance sequence is the exact one
        for i, (d, (wd, _, wkey)) in enumerate(zip(dists, want)):
            tol = tolerance(metric, q, vecs[wkey][1])
            self.assertAlmostEqual(d, wd, delta=tol, msg="distance #%d" % i)
        self.assertEqual(dists, sorted(dists))
        # keys: exact wherever the answer is unambiguous
        allr = ranked[:k + 1]
        for i, (wd, _, wkey) in enumerate(want):
            tol = 2 * tolerance(metric, q, vecs[wkey][1])
            near = [r for r in allr if r[2] != wkey and abs(r[0] - wd) <= tol and r[0] != wd]
            if not near:
                self.assertEqual(keys[i], wkey, "rank %d (k=%d): want %r got %r\nwant %r\ngot %r"
                                 % (i, k, wkey, keys[i], [w[2] for w in want], keys))


# ---- FLAT is exact --------------------------------------------------------------

@engram_only
class TestFlatExact(SearchTestCase):
    N = 300 if SANITIZE else 700
    DIM = 16

    def dataset(self, seed):
        rnd = random.Random(seed)
        vecs = [f32vec([rnd.uniform(-1, 1) for _ in range(self.DIM)]) for _ in range(self.N)]
        queries = [f32vec([rnd.uniform(-1, 1) for _ in range(self.DIM)]) for _ in range(12)]
        # a stored vector and a scaled one as queries too (distance 0 / cosine 0)
        queries.append(vecs[5])
        queries.append(f32vec([3 * x for x in vecs[9]]))
        return vecs, queries

    def check_metric(self, metric, seed):
        c = self.conn()
        name = "flat_" + metric
        self.assertEqual(c.cmd("VNEW", name, str(self.DIM), "METRIC", metric, "TYPE", "flat"),
                         "OK")
        vecs, queries = self.dataset(seed)
        load(c, name, (("k%d" % i, v) for i, v in enumerate(vecs)))
        model = {"k%d" % i: (i, v) for i, v in enumerate(vecs)}
        for qi, q in enumerate(queries):
            for k in (1, 10, 57):
                with self.subTest(metric=metric, query=qi, k=k):
                    keys, dists = self.search(c, name, q, k)
                    self.assert_matches_brute_force(metric, model, q, keys, dists, k)
        # k beyond the count returns everything, in order
        keys, dists = self.search(c, name, queries[0], self.N + 10)
        self.assert_matches_brute_force(metric, model, queries[0], keys, dists, self.N + 10)

        # delete a third, overwrite some: still exact over what is live
        rnd = random.Random(seed + 1)
        gone = rnd.sample(sorted(model), self.N // 3)
        c.send(b"".join(encode("VDEL", name, k) for k in gone))
        for _ in gone:
            self.assertEqual(c.read(), 1)
        for k in gone:
            del model[k]
        changed = rnd.sample(sorted(model), 40)
        for k in changed:
            v = f32vec([rnd.uniform(-1, 1) for _ in range(self.DIM)])
            self.assertEqual(c.cmd("VADD", name, k, blob(v)), 0)
            model[k] = (model[k][0], v)
        self.assertEqual(c.cmd("VCARD", name), len(model))
        for qi, q in enumerate(queries[:6]):
            for k in (1, 10, 57):
                with self.subTest(metric=metric, query=qi, k=k, phase="after deletes"):
                    keys, dists = self.search(c, name, q, k)
                    # random data: no exact ties, so the id order does not matter
                    self.assert_matches_brute_force(metric, model, q, keys, dists, k)

    def test_l2(self):
        self.check_metric("l2", 101)

    def test_cosine(self):
        self.check_metric("cosine", 202)

    def test_dot(self):
        self.check_metric("dot", 303)


@engram_only
class TestFlatTies(SearchTestCase):
    """Exact ties (duplicate vectors) come back in insertion order."""

    def test_duplicates_in_insertion_order(self):
        c = self.conn()
        rnd = random.Random(55)
        dim = 6
        base = [[float(rnd.randint(-4, 4)) for _ in range(dim)] for _ in range(8)]
        base = [b for b in base if any(b)]
        # 160 keys, each a copy of one of the base vectors: many exact ties
        copies = [rnd.randrange(len(base)) for _ in range(160)]
        queries = [[float(rnd.randint(-4, 4)) for _ in range(dim)] for _ in range(20)]
        for metric in ("l2", "cosine", "dot"):
            name = "ties_" + metric
            self.assertEqual(c.cmd("VNEW", name, str(dim), "METRIC", metric, "TYPE", "flat"),
                             "OK")
            load(c, name, (("d%03d" % i, base[b]) for i, b in enumerate(copies)))
            used = 0
            for qi, q in enumerate(queries):
                if not any(q):
                    continue
                dd = sorted(set(distance(metric, q, b) for b in base))
                # only queries where distinct base vectors are well apart
                # (identical vectors tie exactly; near ties would be float noise)
                if any(b - a < 1e-4 for a, b in zip(dd, dd[1:])):
                    continue
                used += 1
                want = sorted((distance(metric, q, base[b]), i) for i, b in enumerate(copies))
                for k in (1, 7, 30, 100, 160):
                    with self.subTest(metric=metric, query=qi, k=k):
                        keys, _ = self.search(c, name, q, k)
                        self.assertEqual(keys, ["d%03d" % i for _, i in want[:k]])
            self.assertGreaterEqual(used, 5, metric)

    def test_tie_order_follows_id_reuse(self):
        # vindex.h: ids are stable across overwrites, and a deleted key's id
        # is reused, most recently freed first; exact ties go by id.
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "t", "2", "METRIC", "l2", "TYPE", "flat"), "OK")
        same = [1.0, 1.0]
        ids, free, nxt = {}, [], 0

        def add(key):
            nonlocal nxt
            r = c.cmd("VADD", "t", key, blob(same))
            if key in ids:
                self.assertEqual(r, 0)
                return
            self.assertEqual(r, 1)
            if free:
                ids[key] = free.pop()
            else:
                ids[key] = nxt
                nxt += 1

        def delete(key):
            self.assertEqual(c.cmd("VDEL", "t", key), 1)
            free.append(ids.pop(key))

        for i in range(10):
            add("a%d" % i)
        delete("a3")
        delete("a7")
        add("b0")       # takes a7's id
        add("b1")       # takes a3's id
        add("a5")       # overwrite: keeps its id
        delete("a0")
        add("b2")       # takes a0's id
        add("b3")       # a fresh id
        keys, dists = self.search(c, "t", [0, 0], 20)
        self.assertEqual(keys, sorted(ids, key=ids.get))
        self.assertEqual(set(f32(d) for d in dists), {f32(math.sqrt(2))})


# ---- HNSW recall --------------------------------------------------------------------

def clustered(seed, n, dim, nclusters, nqueries):
    rnd = random.Random(seed)
    centres = [[rnd.uniform(-1, 1) for _ in range(dim)] for _ in range(nclusters)]

    def point():
        ctr = centres[rnd.randrange(nclusters)]
        return f32vec([x + rnd.gauss(0, 0.2) for x in ctr])
    data = [point() for _ in range(n)]
    queries = [point() for _ in range(nqueries)]
    return data, queries


def exact_topk(metric, data, q, k):
    if metric == "l2":
        qq = dot(q, q)
        scored = ((dot(v, v) + qq - 2 * dot(v, q), i) for i, v in enumerate(data))
    elif metric == "cosine":
        nq = math.sqrt(dot(q, q))
        scored = ((1 - dot(v, q) / (math.sqrt(dot(v, v)) * nq), i) for i, v in enumerate(data))
    else:
        scored = ((-dot(v, q), i) for i, v in enumerate(data))
    return [i for _, i in sorted(scored)[:k]]


@engram_only
class TestHnswRecall(SearchTestCase):
    N = 2000 if SANITIZE else 3000
    NQ = 30 if SANITIZE else 50
    DIM = 32

    def check_recall(self, metric, seed, *opts):
        c = self.conn()
        name = "hnsw_" + metric
        self.assertEqual(c.cmd("VNEW", name, str(self.DIM), "METRIC", metric, *opts), "OK")
        data, queries = clustered(seed, self.N, self.DIM, 40, self.NQ)
        load(c, name, (("p%d" % i, v) for i, v in enumerate(data)))
        self.assertEqual(c.cmd("VCARD", name), self.N)
        hits = total = 0
        for q in queries:
            truth = set("p%d" % i for i in exact_topk(metric, data, q, 10))
            keys, dists = self.search(c, name, q, 10)
            self.assertEqual(len(keys), 10)
            self.assertEqual(dists, sorted(dists))
            hits += len(truth & set(keys))
            total += 10
            # reported distances are the true ones
            for key, d in zip(keys, dists):
                v = data[int(key[1:])]
                self.assertAlmostEqual(d, distance(metric, q, v), delta=tolerance(metric, q, v))
        recall = hits / total
        self.assertGreaterEqual(recall, 0.95, "%s recall@10 = %.3f" % (metric, recall))
        # a wide beam does at least as well
        hits_wide = 0
        for q in queries[:10]:
            truth = set("p%d" % i for i in exact_topk(metric, data, q, 10))
            keys, _ = self.search(c, name, q, 10, "EF", "400")
            hits_wide += len(truth & set(keys))
        self.assertGreaterEqual(hits_wide / 100, 0.98, "%s recall@10 with EF 400" % metric)
        return recall

    def test_recall_l2(self):
        self.check_recall("l2", 4242)

    def test_recall_cosine(self):
        self.check_recall("cosine", 4343)

    def test_recall_l2_m32(self):
        # more links per node must not make the graph worse
        self.check_recall("l2", 4242, "M", "32")

    def test_self_retrieval(self):
        # every stored vector, searched for with the default beam, finds
        # itself (no duplicates in this data): a graph where some nodes are
        # hard to reach fails this long before recall@10 shows it
        c = self.conn()
        for metric in ("l2", "cosine"):
            name = "self_" + metric
            self.assertEqual(c.cmd("VNEW", name, str(self.DIM), "METRIC", metric), "OK")
            data, _ = clustered(4646, self.N, self.DIM, 40, 0)
            load(c, name, (("p%d" % i, v) for i, v in enumerate(data)))
            misses = []
            for start in range(0, self.N, 500):
                part = range(start, min(start + 500, self.N))
                c.send(b"".join(encode("VSEARCH", name, blob(data[i]), "1") for i in part))
                for i in part:
                    r = c.read()
                    if r[:1] != [b"p%d" % i]:
                        misses.append((i, r))
            with self.subTest(metric=metric):
                self.assertLessEqual(len(misses), self.N // 200,
                                     "%s: %d of %d stored vectors not found by their own "
                                     "vector (k=1, default EF); first: %r"
                                     % (metric, len(misses), self.N, misses[:3]))

    def test_recall_after_deletions(self):
        # delete 40% and search again: results only live keys, still good recall
        c = self.conn()
        metric, name = "l2", "hnsw_del"
        self.assertEqual(c.cmd("VNEW", name, str(self.DIM), "METRIC", metric), "OK")
        n = self.N // 2
        data, queries = clustered(4444, n, self.DIM, 20, 20)
        load(c, name, (("p%d" % i, v) for i, v in enumerate(data)))
        rnd = random.Random(4445)
        gone = set(rnd.sample(range(n), int(n * 0.4)))
        c.send(b"".join(encode("VDEL", name, "p%d" % i) for i in sorted(gone)))
        for _ in gone:
            self.assertEqual(c.read(), 1)
        live = [i for i in range(n) if i not in gone]
        live_data = [data[i] for i in live]
        hits = 0
        for q in queries:
            truth = set("p%d" % live[j] for j in exact_topk(metric, live_data, q, 10))
            keys, _ = self.search(c, name, q, 10)
            self.assertEqual(len(keys), 10)
            self.assertFalse(set(int(k[1:]) for k in keys) & gone, keys)
            hits += len(truth & set(keys))
        recall = hits / (10 * len(queries))
        self.assertGreaterEqual(recall, 0.95, "recall@10 after deletions = %.3f" % recall)


if __name__ == "__main__":
    main()
