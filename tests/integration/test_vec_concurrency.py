"""Vector searches run on the worker pool while the loop thread keeps serving:
reply order in pipelines (searches mixed with writes, errors, PING, HELLO,
MULTI and AUTH; more searches than a client may have in flight), many
searchers against a writer, clients that leave mid-search, VDROP/FLUSHALL
under in-flight searches, SIGTERM with searches in flight, PING while
searches run, and VSEARCH inside MULTI/EXEC.

Every server is stopped with SIGTERM and must exit 0 without sanitizer
output (the harness checks), which is the point of running this under ASan
and TSan.  engram-only: real Redis 7.0 has no vector commands."""

import math
import random
import socket
import struct
import threading
import time

from engram_test import (SANITIZE, Conn, RespError, Server, ServerTestCase, encode,
                         engram_only, main, parse_info)

SCALE = 2 if SANITIZE else 1


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def blob(vals):
    return struct.pack("<%df" % len(vals), *vals)


def l2(a, b):
    return math.sqrt(sum((x - y) * (x - y) for x, y in zip(a, b)))


def load(c, name, items, chunk=1000):
    items = list(items)
    for i in range(0, len(items), chunk):
        part = items[i:i + chunk]
        c.send(b"".join(encode("VADD", name, k, blob(v)) for k, v in part))
        for k, _ in part:
            r = c.read()
            assert r in (0, 1), (k, r)


def rand_vecs(seed, n, dim, lo=-1.0, hi=1.0):
    rnd = random.Random(seed)
    return [[f32(rnd.uniform(lo, hi)) for _ in range(dim)] for _ in range(n)]


class ConcurrencyTestCase(ServerTestCase):
    # more workers than this machine may have cores: searches really overlap
    server_flags = ("--search-threads", "4")

    def run_threads(self, fns, timeout=120):
        """Run callables in threads; re-raise the first failure here."""
        errors = []

        def wrap(fn):
            try:
                fn()
            except BaseException as e:      # noqa: B902 -- reported below
                errors.append(e)
        ts = [threading.Thread(target=wrap, args=(fn,), daemon=True) for fn in fns]
        for t in ts:
            t.start()
        deadline = time.monotonic() + timeout * SCALE
        for t in ts:
            t.join(max(0.0, deadline - time.monotonic()))
        self.assertFalse([t for t in ts if t.is_alive()], "threads still running")
        if errors:
            raise errors[0]

    def big_flat(self, c, name, n, dim, seed):
        self.assertEqual(c.cmd("VNEW", name, str(dim), "METRIC", "l2", "TYPE", "flat"), "OK")
        vecs = rand_vecs(seed, n, dim)
        load(c, name, (("b%d" % i, v) for i, v in enumerate(vecs)))
        return vecs

    def assert_alive(self):
        c = self.conn()
        self.assertEqual(c.cmd("PING"), "PONG")
        return c


# ---- pipelines keep their order ------------------------------------------------

@engram_only
class TestPipelines(ConcurrencyTestCase):
    def mixed_pipeline(self, resp3):
        """~800 commands in one write; every reply checked against a model."""
        rnd = random.Random(17)
        c = self.conn()
        if resp3:
            self.assertIsInstance(c.cmd("HELLO", "3"), dict)
        self.assertEqual(c.cmd("VNEW", "f", "3", "METRIC", "l2", "TYPE", "flat"), "OK")
        self.assertEqual(c.cmd("VNEW", "h", "3", "METRIC", "l2"), "OK")
        model = {}          # key -> (id, vector)  (FLAT: exact answers)
        free, nxt = [], 0   # vindex.h: freed ids are reused, most recent first
        hkeys = {}
        ctr = 0
        reqs, checks = [], []
        # exact ties (integer vectors) come back by id: smaller first
        for step in range(800):
            op = rnd.random()
            if op < 0.3:
                key = "k%d" % rnd.randrange(150)
                vec = [float(rnd.randint(-20, 20)) for _ in range(3)]
                reqs.append(encode("VADD", "f", key, blob(vec)))
                checks.append(("int", 0 if key in model else 1))
                if key in model:
                    vid = model[key][0]         # an overwrite keeps the id
                elif free:
                    vid = free.pop()
                else:
                    vid, nxt = nxt, nxt + 1
                model[key] = (vid, vec)
            elif op < 0.4:
                key = "h%d" % step
                vec = [f32(rnd.uniform(-1, 1)) for _ in range(3)]
                reqs.append(encode("VADD", "h", key, blob(vec)))
                checks.append(("int", 1))
                hkeys[key] = vec
                # the search right behind the VADD must already see it
                reqs.append(encode("VSEARCH", "h", blob(vec), "1"))
                checks.append(("hits", [(key, 0.0)]))
            elif op < 0.55:
                q = [float(rnd.randint(-20, 20)) for _ in range(3)]
                k = rnd.choice((0, 1, 3, 10))
                ranked = sorted((l2(q, v), r, key) for key, (r, v) in model.items())[:k]
                reqs.append(encode("VSEARCH", "f", blob(q), str(k)))
                checks.append(("hits", [(key, f32(d)) for d, _, key in ranked]))
            elif op < 0.62 and model:
                key = rnd.choice(sorted(model))
                reqs.append(encode("VDEL", "f", key))
                checks.append(("int", 1))
                free.append(model.pop(key)[0])
            elif op < 0.72:
                reqs.append(encode("PING", "p%d" % step))
                checks.append(("bulk", b"p%d" % step))
            elif op < 0.82:
                reqs.append(encode("INCR", "ctr"))
                ctr += 1
                checks.append(("int", ctr))
            elif op < 0.9:
                reqs.append(encode("SET", "s%d" % (step % 7), "v%d" % step))
                checks.append(("ok", None))
                reqs.append(encode("GET", "s%d" % (step % 7)))
                checks.append(("bulk", b"v%d" % step))
            else:
                reqs.append(encode("VCARD", "f"))
                checks.append(("int", len(model)))
        c.send(b"".join(reqs))
        for i, (kind, want) in enumerate(checks):
            got = c.read()
            where = "reply #%d (%s)" % (i, reqs[i][:60])
            if kind == "int":
                self.assertEqual(got, want, where)
            elif kind == "bulk":
                self.assertEqual(got, want, where)
            elif kind == "ok":
                self.assertEqual(got, "OK", where)
            else:
                if resp3:
                    self.assertTrue(all(isinstance(p, list) and len(p) == 2 for p in got),
                                    (where, got))
                    pairs = [(p[0].decode(), f32(p[1])) for p in got]
                else:
                    self.assertIsInstance(got, list, (where, got))
                    pairs = [(got[j].decode(), f32(float(got[j + 1])))
                             for j in range(0, len(got), 2)]
                self.assertEqual(pairs, want, where)

    def test_recycled_jobs_across_dims_forms_and_errors(self):
        """Search jobs (and their query buffers) are recycled: pipelines that
        mix a small and a large dimension, blob and VALUES queries, bad
        vectors and k above and below 64 get exact answers, round after
        round."""
        rnd = random.Random(29)
        c = self.conn()
        dims = {"small": 3, "large": 1100}     # 1100 floats: larger than a recycled buffer
        data = {}
        for name, dim in dims.items():
            self.assertEqual(c.cmd("VNEW", name, str(dim), "METRIC", "l2", "TYPE", "flat"), "OK")
            vecs = [[float(rnd.randint(-9, 9)) for _ in range(dim)] for _ in range(120)]
            load(c, name, (("%s%d" % (name, i), v) for i, v in enumerate(vecs)))
            data[name] = vecs
        for _ in range(4):
            reqs, checks = [], []
            for _ in range(60):
                name = rnd.choice(sorted(dims))
                dim = dims[name]
                q = [float(rnd.randint(-9, 9)) for _ in range(dim)]
                op = rnd.random()
                if op < 0.15:
                    bad = list(q)
                    bad[rnd.randrange(dim)] = float("nan")
                    reqs.append(encode("VSEARCH", name, blob(bad), "5"))
                    checks.append(("err", "NaN or infinite"))
                    continue
                if op < 0.25:
                    other = dims["large" if name == "small" else "small"]
                    reqs.append(encode("VSEARCH", name, blob(q[:1] * other), "5"))
                    checks.append(("err", "wrong vector dimension"))
                    continue
                k = rnd.choice((1, 10, 64, 65, 100))
                if op < 0.6:
                    reqs.append(encode("VSEARCH", name, blob(q), str(k)))
                else:
                    reqs.append(encode("VSEARCH", name, "VALUES", str(dim),
                                       *("%g" % x for x in q), str(k)))
                ranked = sorted((l2(q, v), i) for i, v in enumerate(data[name]))[:k]
                checks.append(("hits", [("%s%d" % (name, i), f32(d)) for d, i in ranked]))
            c.send(b"".join(reqs))
            for i, (kind, want) in enumerate(checks):
                got = c.read()
                if kind == "err":
                    self.assertIsInstance(got, RespError, (i, got))
                    self.assertIn(want, str(got), i)
                else:
                    pairs = [(got[j].decode(), f32(float(got[j + 1])))
                             for j in range(0, len(got), 2)]
                    self.assertEqual(pairs, want, i)

    def test_mixed_pipeline_resp2(self):
        self.mixed_pipeline(False)

    def test_protocol_error_after_searches_answers_last(self):
        """A protocol error pipelined behind searches is answered after them,
        then the connection closes."""
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "pe", "2", "METRIC", "l2"), "OK")
        self.assertEqual(c.cmd("VADD", "pe", "a", blob([1.0, 0.0])), 1)
        c.send(encode("VSEARCH", "pe", blob([1.0, 0.0]), "1") * 50 + b"*1\r\n$abc\r\n")
        for _ in range(50):
            self.assertEqual(c.read(), [b"a", b"0"])
        r = c.read()
        self.assertIsInstance(r, RespError)
        self.assertEqual(str(r), "ERR Protocol error: invalid bulk length")
        self.assertTrue(c.is_closed())

    def test_mixed_pipeline_resp3(self):
        self.mixed_pipeline(True)

    def test_long_search_pipeline_with_errors(self):
        # hundreds of searches in one write (more than a client may have in
        # flight), invalid ones and other commands among them: every reply
        # in its place
        c = self.conn()
        dim = 8
        vecs = self.big_flat(c, "f", 1000, dim, 6)
        bad = [
            (encode("VSEARCH", "nope", blob(vecs[0]), "1"), "ERR no such index 'nope'"),
            (encode("VSEARCH", "f", blob(vecs[0][:3]), "1"),
             "ERR wrong vector dimension: index expects 8, got 3"),
            (encode("VSEARCH", "f", blob(vecs[0]), "10001"),
             "ERR k must be an integer between 0 and 10000, got '10001'"),
            (encode("VSEARCH", "f", blob(vecs[0]), "1", "EF"), "ERR syntax error"),
            (encode("VSEARCH", "f", b"12345", "1"),
             "ERR invalid vector encoding: 5 bytes is not 1 to 65536 float32 values"),
            (encode("VSEARCH", "f", blob(vecs[0]), "1", "EF", "0"),
             "ERR EF must be an integer between 1 and 100000, got '0'"),
            (encode("VSEARCH", "f", blob(vecs[0])),
             "ERR wrong number of arguments for 'vsearch' command"),
        ]
        reqs, want, n = [], [], 0
        for i in range(900):
            if i % 7 == 3:
                b, e = bad[(i // 7) % len(bad)]
                reqs.append(b)
                want.append(RespError(e))
            elif i % 50 == 25:
                reqs.append(encode("PING", "x%d" % i))
                want.append(b"x%d" % i)
            elif i % 50 == 40:
                reqs.append(encode("INCR", "n"))
                n += 1
                want.append(n)
            else:
                j = i % len(vecs)
                reqs.append(encode("VSEARCH", "f", blob(vecs[j]), "1"))
                want.append([b"b%d" % j, b"0"])
        c.send(b"".join(reqs))
        for i, w in enumerate(want):
            got = c.read()
            self.assertEqual(type(got), type(w), "reply #%d: %r" % (i, got))
            self.assertEqual(got, w, "reply #%d" % i)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_writes_wait_for_earlier_searches(self):
        # a search pipelined before a VADD/VDEL never sees it; one after
        # always does
        c = self.conn()
        dim = 8
        vecs = self.big_flat(c, "f", 3000 // SCALE, dim, 7)
        q = [5.0] * dim             # far from every base vector
        far = [b"b%d" % min(range(len(vecs)),
                            key=lambda i: sum((x - 5.0) ** 2 for x in vecs[i]))]
        s = [encode("VSEARCH", "f", blob(q), "1")] * 30
        reqs = (s + [encode("VADD", "f", "new", blob(q))] + s + [encode("VDEL", "f", "new")] + s)
        c.send(b"".join(reqs))
        for i in range(30):
            self.assertEqual(c.read()[:1], far, "search #%d before the VADD" % i)
        self.assertEqual(c.read(), 1)
        for i in range(30):
            self.assertEqual(c.read(), [b"new", b"0"], "search #%d after the VADD" % i)
        self.assertEqual(c.read(), 1)
        for i in range(30):
            self.assertEqual(c.read()[:1], far, "search #%d after the VDEL" % i)

    def test_protocol_switch_and_multi_inside_search_pipeline(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "f", "2", "METRIC", "l2", "TYPE", "flat"), "OK")
        self.assertEqual(c.cmd("VADD", "f", "a", blob([0, 0])), 1)
        self.assertEqual(c.cmd("VADD", "f", "b", blob([3, 4])), 1)
        s = encode("VSEARCH", "f", blob([0, 0]), "2")
        r2 = b"*4\r\n$1\r\na\r\n$1\r\n0\r\n$1\r\nb\r\n$1\r\n5\r\n"
        r3 = b"*2\r\n*2\r\n$1\r\na\r\n,0\r\n*2\r\n$1\r\nb\r\n,5\r\n"
        # searches sent before HELLO 3 answer in RESP2, those after in RESP3
        c.send(s * 20 + encode("HELLO", "3") + s * 20 + encode("HELLO", "2") + s * 5)
        for i in range(20):
            self.assertEqual(c.read_raw(), r2, "before HELLO 3, #%d" % i)
        self.assertIsInstance(c.read(), dict)
        for i in range(20):
            self.assertEqual(c.read_raw(), r3, "after HELLO 3, #%d" % i)
        self.assertIsInstance(c.read(), list)
        for i in range(5):
            self.assertEqual(c.read_raw(), r2, "after HELLO 2, #%d" % i)
        # MULTI behind searches: queued commands, then EXEC, then more searches
        self.assert_reply(
            s * 10 + encode("MULTI") + encode("VADD", "f", "c", blob([1, 0])) + s +
            encode("EXEC") + s,
            r2 * 10 + b"+OK\r\n+QUEUED\r\n+QUEUED\r\n"
            b"*2\r\n:1\r\n*4\r\n$1\r\na\r\n$1\r\n0\r\n$1\r\nc\r\n$1\r\n1\r\n"
            b"*4\r\n$1\r\na\r\n$1\r\n0\r\n$1\r\nc\r\n$1\r\n1\r\n", conn=c)

    def test_many_clients_pipelining_searches(self):
        # each client's replies answer its own queries, in its own order
        c = self.conn()
        dim = 16
        vecs = self.big_flat(c, "f", 2000 // SCALE, dim, 5)

        def client(seed):
            rnd = random.Random(seed)
            cc = Conn(self.port)
            try:
                for _ in range(4):
                    qs = [rnd.randrange(len(vecs)) for _ in range(40)]
                    cc.send(b"".join(encode("VSEARCH", "f", blob(vecs[i]), "2") +
                                     encode("PING", str(i)) for i in qs))
                    for i in qs:
                        r = cc.read()
                        assert r[0] == b"b%d" % i and r[1] == b"0", (i, r)
                        assert cc.read() == str(i).encode()
            finally:
                cc.close()
        self.run_threads([lambda s=s: client(s) for s in range(8)])

    def test_multi_exec_with_vadd_and_vsearch(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "i", "2", "METRIC", "l2", "TYPE", "flat"), "OK")
        self.assertEqual(c.cmd("VNEW", "h", "2", "METRIC", "l2"), "OK")
        self.assert_reply(
            encode("MULTI") + encode("VADD", "i", "a", blob([0, 0])) +
            encode("VSEARCH", "i", blob([3, 4]), "5") + encode("VADD", "i", "b", blob([3, 4])) +
            encode("VSEARCH", "i", blob([3, 4]), "5") + encode("VCARD", "i") + encode("EXEC"),
            b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
            b"*5\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\n5\r\n:1\r\n"
            b"*4\r\n$1\r\nb\r\n$1\r\n0\r\n$1\r\na\r\n$1\r\n5\r\n:2\r\n", conn=c)
        # HNSW inside EXEC, a runtime error inside EXEC, and commands after it
        self.assert_reply(
            encode("MULTI") + encode("VADD", "h", "x", blob([1, 1])) +
            encode("VSEARCH", "h", blob([1, 1]), "1") +
            encode("VSEARCH", "nope", blob([1, 1]), "1") +
            encode("VSEARCH", "h", blob([1, 1, 1]), "1") + encode("EXEC") + encode("PING"),
            b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
            b"*4\r\n:1\r\n*2\r\n$1\r\nx\r\n$1\r\n0\r\n-ERR no such index 'nope'\r\n"
            b"-ERR wrong vector dimension: index expects 2, got 3\r\n+PONG\r\n", conn=c)
        # RESP3 inside EXEC
        self.assertIsInstance(c.cmd("HELLO", "3"), dict)
        self.assert_reply(
            encode("MULTI") + encode("VSEARCH", "i", blob([0, 0]), "2") + encode("EXEC"),
            b"+OK\r\n+QUEUED\r\n*1\r\n*2\r\n*2\r\n$1\r\na\r\n,0\r\n*2\r\n$1\r\nb\r\n,5\r\n",
            conn=c)
        # a transaction aborted at queue time runs nothing
        self.assert_reply(
            encode("MULTI") + encode("VADD", "i", "zz", blob([9, 9])) + encode("VSEARCH", "i") +
            encode("EXEC"),
            b"+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'vsearch' command\r\n"
            b"-EXECABORT Transaction discarded because of previous errors.\r\n", conn=c)
        self.assertEqual(c.cmd("VEXISTS", "i", "zz"), 0)


# ---- searchers against a writer -------------------------------------------------------

@engram_only
class TestSearchersAndWriter(ConcurrencyTestCase):
    def test_searchers_while_another_client_writes(self):
        c = self.conn()
        dim, nbase, nchurn = 8, 1500 // SCALE, 300 // SCALE
        base = rand_vecs(21, nbase, dim)
        churn = rand_vecs(22, nchurn, dim)       # churn key j always has vector churn[j]
        for name, typ in (("f", "flat"), ("h", "hnsw")):
            self.assertEqual(c.cmd("VNEW", name, str(dim), "METRIC", "l2", "TYPE", typ), "OK")
            load(c, name, (("b%d" % i, v) for i, v in enumerate(base)))
        known = {"b%d" % i: v for i, v in enumerate(base)}
        known.update({"c%d" % j: v for j, v in enumerate(churn)})
        stop = threading.Event()
        batches = []
        k = 10

        def searcher(seed):
            rnd = random.Random(seed)
            cc = Conn(self.port)
            try:
                for _ in range(12):
                    qs = rand_vecs(rnd.randrange(1 << 30), 20, dim)
                    name = rnd.choice(("f", "h"))
                    cc.send(b"".join(encode("VSEARCH", name, blob(q), str(k)) for q in qs))
                    for q in qs:
                        r = cc.read()
                        assert isinstance(r, list), r
                        keys = [x.decode() for x in r[0::2]]
                        dists = [float(x) for x in r[1::2]]
                        if name == "f":
                            assert len(keys) == k, r
                        else:
                            assert 0 < len(keys) <= k, r
                        assert len(set(keys)) == len(keys), r
                        assert dists == sorted(dists), r
                        for key, d in zip(keys, dists):
                            assert abs(d - l2(q, known[key])) <= 1e-5 * (1 + d), (key, d)
                        if name == "f":
                            # exact over a snapshot that holds every base key
                            for i, v in enumerate(base):
                                dv = l2(q, v)
                                if dv < dists[-1] - 1e-5 * (1 + dv):
                                    assert "b%d" % i in keys, ("missed", i, dv, r)
            finally:
                cc.close()

        def writer():
            rnd = random.Random(23)
            cc = Conn(self.port)
            live = set()
            try:
                while not stop.is_set():
                    batch = []
                    for _ in range(50):
                        j = rnd.randrange(nchurn)
                        name = rnd.choice(("f", "h"))
                        if (name, j) in live:
                            batch.append((encode("VDEL", name, "c%d" % j), 1))
                            live.discard((name, j))
                        else:
                            batch.append((encode("VADD", name, "c%d" % j, blob(churn[j])), 1))
                            live.add((name, j))
                    cc.send(b"".join(b for b, _ in batch))
                    for _, want in batch:
                        r = cc.read()
                        assert r == want, r
                    batches.append(len(batch))
            finally:
                cc.close()

        writer_errors = []

        def run_writer():
            try:
                writer()
            except BaseException as e:      # noqa: B902 -- reported below
                writer_errors.append(e)
        wt = threading.Thread(target=run_writer, daemon=True)
        wt.start()
        try:
            self.run_threads([lambda s=s: searcher(s) for s in range(6)])
        finally:
            stop.set()
            wt.join(60 * SCALE)
        self.assertFalse(wt.is_alive())
        if writer_errors:
            raise writer_errors[0]
        self.assertGreater(len(batches), 0, "the writer never got a batch through")
        for name in ("f", "h"):
            self.assertGreaterEqual(c.cmd("VCARD", name), nbase)
        info = c.cmd("INFO", "vectors").decode()
        self.assertIn("searches_inflight:0", info)


class BigFlatTestCase(ConcurrencyTestCase):
    """Each test starts with a FLAT index "big" of N random DIM-d vectors
    (self.vecs, seeded by SEED) and a connection self.c."""
    N = 20000 // SCALE
    DIM = 64
    SEED = 31

    def setUp(self):
        super().setUp()
        self.c = self.conn()
        self.vecs = self.big_flat(self.c, "big", self.N, self.DIM, self.SEED)


# ---- replies of a pipelined batch go out together, but are never held long ----------------

@engram_only
class TestReplyBatching(BigFlatTestCase):
    """A client's finished replies wait for the rest of what it sent in one
    go (one write instead of many), at most a few milliseconds
    (cmd_vec.c, VSEARCH_HOLD_MS); a batch cut in the middle of a request is
    answered whole.  One worker, so the order of execution is known."""
    server_flags = ("--search-threads", "1")
    SEED = 51

    def setUp(self):
        super().setUp()
        self.assertEqual(self.c.cmd("VNEW", "small", "2", "METRIC", "l2", "TYPE", "flat"), "OK")
        load(self.c, "small", (("s%d" % i, [float(i), 0.0]) for i in range(10)))

    def test_finished_reply_not_held_behind_a_long_batch(self):
        c = self.conn()
        n = 200         # fewer than a client may have in flight: one batch
        # (EF only makes the first request 64 bytes long: no 16 KB read of
        # these requests ends exactly between two, so the only batch end the
        # server sees is the last search)
        c.send(encode("VSEARCH", "small", blob([3.25, 0.0]), "1", "EF", "5") +
               encode("VSEARCH", "big", blob(self.vecs[7]), "1") * n)
        self.assertEqual(c.read(), [b"s3", b"0.25"])
        # the first answer came out while the slow searches behind it, sent
        # in the same write, still run (each scans N x 64 floats)
        info = parse_info(self.c.cmd("INFO", "vectors").decode())
        self.assertGreater(int(info["searches_inflight"]), 0)
        for _ in range(n):
            self.assertEqual(c.read(), [b"b7", b"0"])

    def test_batch_cut_inside_requests(self):
        c = self.conn()
        qs = [[i + 0.4, 0.0] for i in range(30)]
        data = b"".join(encode("VSEARCH", "small", blob(q), "2") for q in qs)
        cuts = [0, len(data) // 3 + 5, 2 * len(data) // 3 + 11, len(data)]
        for a, b in zip(cuts, cuts[1:]):
            c.send(data[a:b])
            time.sleep(0.03)
        for i, q in enumerate(qs):
            r = c.read()
            near = min(i, 9)
            self.assertEqual(r[0], b"s%d" % near, (i, r))
            self.assertEqual(len(r), 4)

    def test_search_nice_setting(self):
        c = self.conn()
        self.assertEqual(c.cmd("CONFIG", "GET", "search-nice"), [b"search-nice", b"10"])
        self.assertEqual(c.cmd("CONFIG", "SET", "search-nice", "3"),
                         RespError("ERR CONFIG SET failed (possibly related to argument "
                                   "'search-nice') - can't set immutable config"))
        info = parse_info(c.cmd("INFO", "vectors").decode())
        self.assertEqual(info["search_nice"], "10")


# ---- clients leaving, indices disappearing -----------------------------------------------

@engram_only
class TestLifetimes(BigFlatTestCase):
    def test_client_disconnects_mid_search(self):
        q = blob(self.vecs[0])
        for i in range(12):
            cc = Conn(self.port)
            cc.send(encode("VSEARCH", "big", q, "10") * 100)
            if i % 2:
                # reset rather than FIN
                cc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            cc.close()
        # a client that leaves half-way through reading its replies
        cc = Conn(self.port)
        cc.send(encode("VSEARCH", "big", q, "10") * 100)
        cc.read()
        cc.close()
        # the server keeps serving, searches included
        c = self.assert_alive()
        r = c.cmd("VSEARCH", "big", q, "1")
        self.assertEqual(r, [b"b0", b"0"])
        self.assertEqual(c.cmd("VCARD", "big"), self.N)

    def test_vdrop_with_searches_in_flight(self):
        for rnd_i in range(3):
            if rnd_i:
                self.vecs = self.big_flat(self.c, "big", self.N // 4, self.DIM, 31 + rnd_i)
            conns = [self.conn() for _ in range(4)]
            # more than a client may have in flight at once, so some wait
            nq = 300
            for j, cc in enumerate(conns):
                cc.send(b"".join(encode("VSEARCH", "big", blob(self.vecs[j + t]), "5")
                                 for t in range(nq)))
            # let the first searches start, then drop the index under them
            conns[0].read()
            self.assertEqual(self.c.cmd("VDROP", "big"), "OK")
            for j, cc in enumerate(conns):
                for t in range(1 if j == 0 else 0, nq):
                    r = cc.read()
                    if isinstance(r, RespError):
                        self.assertEqual(str(r), "ERR no such index 'big'")
                    else:
                        # a search that ran before the drop: a whole answer
                        self.assertEqual(len(r), 10, r)
                        self.assertEqual(r[0], b"b%d" % (j + t))
                # Whether any of the racing searches saw the drop depends on
                # timing; a search sent after it always must.
                self.assertEqual(str(cc.cmd("VSEARCH", "big", blob(self.vecs[j]), "5")),
                                 "ERR no such index 'big'")
                cc.close()
            self.assertEqual(self.c.cmd("VLIST"), [])
            self.assertEqual(self.c.cmd("VCARD", "big"), 0)
        self.assert_alive()

    def test_flushall_with_searches_in_flight(self):
        conns = [self.conn() for _ in range(3)]
        for j, cc in enumerate(conns):
            cc.send(encode("VSEARCH", "big", blob(self.vecs[j]), "3") * 40)
        conns[1].read()
        self.assertEqual(self.c.cmd("FLUSHALL"), "OK")
        for j, cc in enumerate(conns):
            for t in range(1 if j == 1 else 0, 40):
                r = cc.read()
                if isinstance(r, RespError):
                    self.assertEqual(str(r), "ERR no such index 'big'")
                else:
                    self.assertEqual(r[0], b"b%d" % j)
        self.assertEqual(self.c.cmd("VLIST"), [])
        self.assert_alive()

    def test_vdrop_and_recreate_while_searching(self):
        # searches see the old index, 'no such index', or the new one
        # (whose dimension differs): nothing else, and no crash
        stop = threading.Event()
        q = blob(self.vecs[1])

        def searcher():
            cc = Conn(self.port)
            try:
                while not stop.is_set():
                    cc.send(encode("VSEARCH", "big", q, "3") * 10)
                    for _ in range(10):
                        r = cc.read()
                        if isinstance(r, RespError):
                            assert str(r) in ("ERR no such index 'big'",
                                              "ERR wrong vector dimension: index expects 4, "
                                              "got 64"), r
                        else:
                            # the new index may be empty or still loading
                            assert isinstance(r, list) and len(r) <= 6, r
                            if b"b1" in r[0::2]:
                                assert r[:2] == [b"b1", b"0"], r
            finally:
                cc.close()

        def dropper():
            cc = Conn(self.port)
            try:
                for i in range(10):
                    time.sleep(0.02)
                    assert cc.cmd("VDROP", "big") == "OK"
                    if i % 2 == 0:
                        assert cc.cmd("VNEW", "big", "4") == "OK"
                        assert cc.cmd("VDROP", "big") == "OK"
                    assert cc.cmd("VNEW", "big", str(self.DIM), "METRIC", "l2",
                                  "TYPE", "flat") == "OK"
                    load(cc, "big", (("b%d" % t, self.vecs[t]) for t in range(500)))
            finally:
                stop.set()
                cc.close()
        self.run_threads([searcher, searcher, searcher, dropper])
        self.assert_alive()

    def test_ping_answers_while_searches_run(self):
        busy = [self.conn() for _ in range(3)]
        n = 150 // SCALE
        for j, cc in enumerate(busy):
            cc.send(encode("VSEARCH", "big", blob(self.vecs[j]), "10") * n)
        other = self.conn()
        for i in range(20):
            self.assertEqual(other.cmd("PING"), "PONG")
            self.assertEqual(other.cmd("SET", "k", str(i)), "OK")
            self.assertEqual(other.cmd("GET", "k"), str(i).encode())
            self.assertEqual(other.cmd("VCARD", "big"), self.N)
        for j, cc in enumerate(busy):
            for _ in range(n):
                r = cc.read()
                self.assertEqual(r[:2], [b"b%d" % j, b"0"])
            cc.close()


@engram_only
class TestPipelinesWithAuth(ConcurrencyTestCase):
    server_flags = ("--search-threads", "4", "--requirepass", "pw")
    password = "pw"

    def test_unauthenticated_searches_keep_order(self):
        c = self.conn()
        self.assertEqual(c.cmd("AUTH", "pw"), "OK")
        self.assertEqual(c.cmd("VNEW", "f", "2", "METRIC", "l2", "TYPE", "flat"), "OK")
        self.assertEqual(c.cmd("VADD", "f", "a", blob([0, 0])), 1)
        s = encode("VSEARCH", "f", blob([0, 0]), "1")
        hit = b"*2\r\n$1\r\na\r\n$1\r\n0\r\n"
        noauth = b"-NOAUTH Authentication required.\r\n"
        u = self.conn()
        self.assert_reply(s * 3 + encode("AUTH", "pw") + s * 3 + encode("AUTH", "wrong") + s * 2,
                          noauth * 3 + b"+OK\r\n" + hit * 3 +
                          b"-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
                          hit * 2, conn=u)


# ---- SIGTERM while searches are in flight ------------------------------------------------

@engram_only
class TestShutdownWithSearches(ServerTestCase):
    """Own server per test: each ends by stopping it."""
    flush_between_tests = False

    @classmethod
    def setUpClass(cls):
        cls.server = None

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        self._conns = []
        self.srv = Server(("--search-threads", "2")).start()
        self.addCleanup(self.srv.kill)
        self.addCleanup(self.srv.cleanup)

    def tearDown(self):
        for c in self._conns:
            c.close()

    def conn(self, **kw):
        c = Conn(self.srv.port, **kw)
        self._conns.append(c)
        return c

    def loaded(self, n):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "big", "64", "METRIC", "l2", "TYPE", "flat"), "OK")
        vecs = rand_vecs(41, n, 64)
        load(c, "big", (("b%d" % i, v) for i, v in enumerate(vecs)))
        return c, vecs

    def test_sigterm_with_pipelined_searches_in_flight(self):
        c, vecs = self.loaded(20000 // SCALE)
        busy = [self.conn() for _ in range(3)]
        # more searches than a client may have in flight, and searches with
        # another command between them: both leave requests waiting in the
        # query buffer when the server is told to stop
        busy[0].send(encode("VSEARCH", "big", blob(vecs[0]), "10") * 400)
        busy[1].send((encode("VSEARCH", "big", blob(vecs[1]), "10") * 50 + encode("PING")) * 4)
        busy[2].send(encode("VSEARCH", "big", blob(vecs[2]), "10") * 100)
        for cc in busy:
            cc.read()           # searches are running now
        self.srv.stop()         # SIGTERM: exit 0, no sanitizer report

    def test_sigterm_after_clients_left_mid_search(self):
        c, vecs = self.loaded(20000 // SCALE)
        for j in range(4):
            cc = Conn(self.srv.port)
            cc.send(encode("VSEARCH", "big", blob(vecs[j]), "10") * 100)
            cc.close()
        self.assertEqual(c.cmd("PING"), "PONG")
        self.srv.stop()


if __name__ == "__main__":
    main()
