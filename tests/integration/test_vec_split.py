"""Exact FLAT searches split across the search pool.

A FLAT index holding more than ~6 MB of vectors per worker is scanned in
parts, one per worker, and the parts' top-k are joined (cmd_vec.c).  These
tests check that the answer is exactly the brute-force one -- ties, holes
left by deletes, all three metrics, MAXDIST, WITHPAYLOAD -- and that
searches racing with writes still answer consistently.

engram-only: real Redis 7.0 has no vector commands."""

import math
import random
import struct
import threading
import unittest

from engram_test import IS_REDIS, ServerTestCase, main

DIM = 384
N = 8192                            # 12.6 MB of vectors: two parts of 6 MB


def blob(v):
    return struct.pack("<%df" % len(v), *v)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def dist(metric, a, b):
    if metric == "l2":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    dot = sum(x * y for x, y in zip(a, b))
    if metric == "dot":
        return -dot
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return 1 - dot / (na * nb)


@unittest.skipIf(IS_REDIS, "engram only")
class SplitTest(ServerTestCase):
    server_flags = ("--search-threads", "2")
    flush_between_tests = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rnd = random.Random(5)
        # Integer-valued components: every float32 sum is exact, so the
        # test's brute force and the server agree to the bit on l2 and dot.
        cls.vecs = {}
        for i in range(N):
            cls.vecs["k%d" % i] = [float(rnd.randint(-3, 3)) for _ in range(DIM)]
        c = cls.server.conn()
        for metric in ("l2", "dot", "cosine"):
            assert c.cmd("VNEW", "s" + metric, str(DIM), "TYPE", "flat", "METRIC", metric) == "OK"
            for i, (k, v) in enumerate(cls.vecs.items()):
                c.send_cmd("VADD", "s" + metric, k, blob(v), "PAYLOAD", "p" + k)
                if i % 512 == 511:
                    for _ in range(512):
                        c.read()
            for _ in range(N % 512):
                c.read()
        c.close()

    def brute(self, metric, q, k, live):
        d = sorted(((f32(dist(metric, q, self.vecs[key])), int(key[1:]), key) for key in live))
        return [(key, dd) for dd, _, key in d[:k]]

    def test_exact_with_holes_all_metrics(self):
        c = self.conn()
        rnd = random.Random(9)
        live = set(self.vecs)
        # Holes all over the id space (free slots are skipped per block).
        gone = rnd.sample(sorted(live), 700)
        for metric in ("l2", "dot", "cosine"):
            for k in gone:
                c.send_cmd("VDEL", "s" + metric, k)
            for _ in gone:
                self.assertEqual(c.read(), 1)
        live -= set(gone)
        try:
            self.check_exact(c, rnd, live)
        finally:
            # Put them back for the other tests.
            for metric in ("l2", "dot", "cosine"):
                for k in gone:
                    c.send_cmd("VADD", "s" + metric, k, blob(self.vecs[k]), "PAYLOAD", "p" + k)
                for _ in gone:
                    self.assertEqual(c.read(), 1)

    def check_exact(self, c, rnd, live):
        for metric in ("l2", "dot", "cosine"):
            for _ in range(4):
                q = [float(rnd.randint(-3, 3)) for _ in range(DIM)]
                got = c.cmd("VSEARCH", "s" + metric, blob(q), "10")
                keys = [x.decode() for x in got[0::2]]
                want = self.brute(metric, q, 10, live)
                if metric == "cosine":     # float rounding: compare distances loosely
                    for (wk, wd), gk, gd in zip(want, keys, got[1::2]):
                        self.assertAlmostEqual(float(gd), wd, places=5)
                else:
                    self.assertEqual(keys, [w[0] for w in want])
                    self.assertEqual([f32(float(x)) for x in got[1::2]], [w[1] for w in want])

    def split_searches(self, c):
        info = c.cmd("INFO", "vectors").decode()
        return int(info.split("split_searches:")[1].split()[0])

    def test_ties_maxdist_and_payloads(self):
        c = self.conn()
        before = self.split_searches(c)
        q = self.vecs["k100"]
        got = c.cmd("VSEARCH", "sl2", blob(q), "5", "WITHPAYLOAD")
        self.assertEqual(got[0:3], [b"k100", b"0", b"pk100"])
        want = self.brute("l2", q, 5, set(self.vecs))
        self.assertEqual([x.decode() for x in got[0::3]], [w[0] for w in want])
        cut = want[2][1]
        got = c.cmd("VSEARCH", "sl2", blob(q), "50", "MAXDIST", repr(cut))
        within = sum(1 for k in self.vecs if f32(dist("l2", q, self.vecs[k])) <= cut)
        self.assertEqual(len(got) // 2, min(50, within))
        self.assertTrue(all(f32(float(d)) <= cut for d in got[1::2]))
        # A vector present many times: the ties come back by insertion order.
        c.cmd("VNEW", "ties", str(DIM), "TYPE", "flat", "METRIC", "l2")
        same = blob([1.0] * DIM)
        for i in range(N):
            c.send_cmd("VADD", "ties", "t%05d" % i, same)
        for _ in range(N):
            c.read()
        got = c.cmd("VSEARCH", "ties", same, "20")
        self.assertEqual(got[0::2], [b"t%05d" % i for i in range(20)])
        c.cmd("VDROP", "ties")
        # These really ran in parts (two workers, > 12 MB of vectors).
        self.assertGreaterEqual(self.split_searches(c) - before, 3)

    def test_searches_racing_writes_stay_consistent(self):
        """Writers change the index while split searches run: every answer
        must be one the index could give at some instant (here: the nearest
        is the query's own key while it exists, and no deleted key shows)."""
        stop = threading.Event()
        errors = []

        def writer():
            w = self.server.conn()
            rnd = random.Random(3)
            try:
                while not stop.is_set():
                    k = "w%d" % rnd.randrange(50)
                    w.cmd("VADD", "sl2", k, blob([float(rnd.randint(-3, 3)) for _ in range(DIM)]))
                    w.cmd("VDEL", "sl2", k)
            except Exception as e:   # pragma: no cover - reported below
                errors.append(e)
            finally:
                w.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            c = self.conn()
            for i in range(30):
                q = self.vecs["k%d" % (i * 37)]
                got = c.cmd("VSEARCH", "sl2", blob(q), "3")
                self.assertEqual(got[0], b"k%d" % (i * 37))
                self.assertEqual(got[1], b"0")
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    main()
