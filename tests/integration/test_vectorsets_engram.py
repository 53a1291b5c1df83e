"""What engram adds to Redis's vector sets, and what issue 14 asks of the
filtered search:

- RERANK: `VADD ... Q8|BIN RERANK` makes a quantised set that keeps a
  float32 copy; `VSIM ... RERANK` re-orders the EF best by the float
  distance (scores are then float cosine scores).  The copy survives a
  restart, from a snapshot and from the log.
- VSEARCH ... FILTER expr [FILTER-EF n]: engram's dialect filters on the
  same attributes (payloads) with the same language.
- A filtered VSIM at 1%, 10% and 50% selectivity returns COUNT results
  whenever that many match within FILTER-EF, checked against an exact
  answer computed here.

engram-only: Redis 7.0 (the harness's reference) has no vector sets, and
RERANK / VSEARCH are engram's own."""

import json
import random
import shutil
import struct
import tempfile
import threading
import time
import unittest

from engram_test import RespError, Server, ServerTestCase, engram_only, main, parse_info
from test_vectorsets import brute_top, cos, rand_vec, vadd, vadd_many, values


def fp32(vec):
    return struct.pack("<%df" % len(vec), *vec)


def loaded(c, timeout=60):
    """The connection, once the server has finished loading its data (it
    lets clients in while it loads: they get -LOADING)."""
    deadline = time.monotonic() + timeout
    while True:
        info = c.cmd("INFO", "persistence")
        text = info.decode() if isinstance(info, bytes) else str(info)
        if "loading:0" in text:
            return c
        if time.monotonic() > deadline:
            raise AssertionError("still loading after %d s" % timeout)
        time.sleep(0.05)


@engram_only
class TestRerank(ServerTestCase):
    def test_rerank_is_float_exact_and_needs_the_copy(self):
        c = self.conn()
        rnd = random.Random(7)
        vecs = {"e%d" % i: rand_vec(rnd, 16) for i in range(300)}
        for name, v in vecs.items():
            self.assertEqual(vadd(c, "r", v, name, "Q8", "RERANK"), 1)
            self.assertEqual(vadd(c, "plain", v, name, "Q8"), 1)
        # the copy is kept (VINFO FULL says so) and costs memory
        full = c.cmd("VINFO", "r", "FULL")
        self.assertEqual(full[full.index(b"float_copy") + 1], 1)
        full = c.cmd("VINFO", "plain", "FULL")
        self.assertEqual(full[full.index(b"float_copy") + 1], 0)
        self.assertGreater(c.cmd("MEMORY", "USAGE", "r"), c.cmd("MEMORY", "USAGE", "plain") + 300 * 60)
        # Redis's nine fields are the same as for any Q8 set
        info = dict(zip(c.cmd("VINFO", "r")[::2], c.cmd("VINFO", "r")[1::2]))
        self.assertEqual(info["quant-type"], "int8")
        for _ in range(10):
            q = rand_vec(rnd, 16)
            r = c.cmd("VSIM", "r", *values(q), "WITHSCORES", "COUNT", "5", "EF", "300", "RERANK")
            got = [(r[i].decode(), float(r[i + 1])) for i in range(0, len(r), 2)]
            want = brute_top(q, vecs, 5)
            self.assertEqual([n for n, _ in got], want)
            for n, s in got:        # float scores (1 - cosine distance / 2), not Q8's
                self.assertAlmostEqual(s, (1 + cos(q, vecs[n])) / 2, places=5)
            # TRUTH + RERANK is the float ground truth too
            t = c.cmd("VSIM", "r", *values(q), "COUNT", "5", "TRUTH", "RERANK")
            self.assertEqual([x.decode() for x in t], want)
        # a quantised set without the copy refuses RERANK; NOQUANT takes it
        self.assertEqual(str(c.cmd("VSIM", "plain", *values(vecs["e1"]), "RERANK")),
                         "ERR RERANK needs a set that keeps float vectors: create it with "
                         "VADD ... RERANK")
        self.assertEqual(vadd(c, "nq", vecs["e1"], "e1", "NOQUANT"), 1)
        self.assertEqual(c.cmd("VSIM", "nq", *values(vecs["e1"]), "RERANK"), [b"e1"])
        # on an existing set RERANK at VADD is accepted and changes nothing
        self.assertEqual(vadd(c, "plain", vecs["e1"], "new", "Q8", "RERANK"), 1)
        full = c.cmd("VINFO", "plain", "FULL")
        self.assertEqual(full[full.index(b"float_copy") + 1], 0)

    def test_rerank_recall_matches_noquant(self):
        """At the same EF, Q8 with RERANK recalls what NOQUANT recalls
        (issue 14: within 0.01), and BIN gains most from it."""
        c = self.conn()
        rnd = random.Random(11)
        vecs = {"e%d" % i: rand_vec(rnd, 24) for i in range(1500)}
        items = list(vecs.items())
        for kind, opts in (("nq", ["NOQUANT"]), ("q8", ["Q8", "RERANK"]), ("bin", ["BIN", "RERANK"])):
            vadd_many(c, kind, items, *opts)
        recall = {}
        queries = [rand_vec(rnd, 24) for _ in range(40)]
        truth = [set(brute_top(q, vecs, 10)) for q in queries]
        for kind, extra in (("nq", []), ("q8", ["RERANK"]), ("q8-plain", []), ("bin", ["RERANK"]),
                            ("bin-plain", [])):
            key = kind.split("-")[0]
            hit = 0
            for q, t in zip(queries, truth):
                r = c.cmd("VSIM", key, *values(q), "COUNT", "10", "EF", "40", *extra)
                hit += len(t & set(x.decode() for x in r))
            recall[kind] = hit / (10 * len(queries))
        self.assertGreaterEqual(recall["q8"], recall["nq"] - 0.01, recall)
        self.assertGreater(recall["bin"], recall["bin-plain"] + 0.1, recall)

    def test_copy_survives_restart(self):
        d = tempfile.mkdtemp(prefix="engram-rerank-")
        self.addCleanup(shutil.rmtree, d, True)
        rnd = random.Random(3)
        vecs = {"e%d" % i: rand_vec(rnd, 8) for i in range(50)}
        q = rand_vec(rnd, 8)
        for how in ("save", "kill"):
            s = Server(["--dir", d, "--appendfsync", "always"]).start()
            try:
                c = loaded(s.conn())
                c.cmd("FLUSHALL")
                for name, v in vecs.items():
                    self.assertEqual(vadd(c, "r", v, name, "BIN", "RERANK"), 1)
                want = c.cmd("VSIM", "r", *values(q), "WITHSCORES", "COUNT", "5", "RERANK")
                if how == "save":
                    self.assertEqual(c.cmd("SAVE"), "OK")
                    s.stop()
                else:
                    s.kill()
            finally:
                if s.alive():
                    s.kill()
                s.cleanup()
            s = Server(["--dir", d, "--appendfsync", "always"]).start()
            try:
                c = loaded(s.conn())
                self.assertEqual(c.cmd("VSIM", "r", *values(q), "WITHSCORES", "COUNT", "5",
                                       "RERANK"), want, how)
                full = c.cmd("VINFO", "r", "FULL")
                self.assertEqual(full[full.index(b"float_copy") + 1], 1)
                s.stop()
            finally:
                if s.alive():
                    s.kill()
                s.cleanup()


@engram_only
class TestCas(ServerTestCase):
    """VADD ... CAS searches for neighbours on the pool and commits on the
    loop: four clients adding with CAS while others search get every
    element in, each with its vector; the reply is 1 for a new element (0
    when the element exists: the synchronous path, as Redis)."""

    def test_concurrent_cas_inserts(self):
        c = self.conn()
        rnd = random.Random(987654)  # not one of the writers' seeds
        dim, per = 32, 400
        first = rand_vec(rnd, dim)
        self.assertEqual(vadd(c, "s", first, "seed", "CAS"), 1)     # a new key: synchronous
        self.assertEqual(vadd(c, "s", first, "seed", "CAS"), 0)     # an update: synchronous
        vecs = [{"t%d-%d" % (t, i): rand_vec(random.Random(t * 1000 + i), dim)
                 for i in range(per)} for t in range(4)]
        before = parse_info(c.cmd("INFO", "vectors").decode())
        errors = []
        stop = threading.Event()

        def writer(t):
            w = self.conn()
            try:
                # pipelined in chunks: every reply must be 1
                items = list(vecs[t].items())
                for at in range(0, len(items), 50):
                    chunk = items[at:at + 50]
                    w.send(b"".join(encode_vadd(n, v) for n, v in chunk))
                    for _ in chunk:
                        r = w.read()
                        if r != 1:
                            errors.append(("vadd", r))
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(("writer", repr(e)))

        def reader():
            r = self.conn()
            try:
                while not stop.is_set():
                    got = r.cmd("VSIM", "s", *values(first), "COUNT", "5")
                    if isinstance(got, RespError):
                        errors.append(("vsim", got))
            except Exception as e:      # noqa: BLE001
                errors.append(("reader", repr(e)))

        def encode_vadd(n, v):
            from engram_test import encode
            return encode("VADD", "s", "FP32", fp32(v), n, "CAS")

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        threads += [threading.Thread(target=reader) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads[:4]:
            th.join(120)
        stop.set()
        for th in threads[4:]:
            th.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(c.cmd("VCARD", "s"), 1 + 4 * per)
        for t in range(4):
            for n, v in list(vecs[t].items())[::37]:
                got = [float(x) for x in c.cmd("VEMB", "s", n)]
                self.assertGreater(cos(got, v), 0.99, n)
        info = parse_info(c.cmd("INFO", "vectors").decode())
        self.assertEqual(int(info["cas_inserts"]) - int(before["cas_inserts"]), 4 * per)
        # plans are used: the searches of different inserts overlap, so
        # some go stale and are redone on the loop -- but not all
        self.assertGreater(int(info["cas_inserts_planned"]) - int(before["cas_inserts_planned"]), 0)
        # the set is a valid graph: every element finds itself
        for n, v in list(vecs[0].items())[:20]:
            self.assertEqual(c.cmd("VSIM", "s", "ELE", n, "COUNT", "1")[0], n.encode())

    def test_next_commands_see_the_element(self):
        """A VSIM pipelined right behind a CAS VADD sees its element: the
        client's later commands wait for the commit, as a blocked Redis
        client's do."""
        from engram_test import encode
        c = self.conn()
        rnd = random.Random(31)
        for i in range(300):
            vadd(c, "p", rand_vec(rnd, 32), "e%d" % i)
        for i in range(30):
            v = rand_vec(rnd, 32)
            c.send(encode("VADD", "p", "FP32", fp32(v), "new%d" % i, "CAS") +
                   encode("VSIM", "p", "FP32", fp32(v), "COUNT", "1") +
                   encode("VISMEMBER", "p", "new%d" % i))
            self.assertEqual(c.read(), 1)
            self.assertEqual(c.read(), [b"new%d" % i])
            self.assertEqual(c.read(), 1)

    def test_cas_when_the_key_goes(self):
        """The key deleted or replaced while a CAS search runs: the reply
        is still 1, nothing is added to whatever holds the key now."""
        c = self.conn()
        rnd = random.Random(9)
        for i in range(200):
            vadd(c, "k", rand_vec(rnd, 64), "e%d" % i)
        w = self.conn()
        from engram_test import encode
        payload = b"".join(encode("VADD", "k", "FP32", fp32(rand_vec(rnd, 64)), "n%d" % i, "CAS")
                           for i in range(100))
        w.send(payload)
        self.assertEqual(c.cmd("DEL", "k"), 1)
        replies = [w.read() for _ in range(100)]
        self.assertTrue(all(r == 1 for r in replies), replies)
        # whatever the replies, the key holds at most the CAS elements that
        # created a new set after the DEL (the first one after the DEL does)
        card = c.cmd("VCARD", "k")
        self.assertLessEqual(card, 100)


class TestCasDurability(unittest.TestCase):
    """A CAS insert is a write like any other: its reply waits for the log,
    and when writing the log fails the client gets "write not persisted"
    (then the connection closes) instead of 1; later CAS inserts get
    MISCONF until a snapshot succeeds."""

    def test_cas_reply_waits_for_the_log(self):
        from engram_test import encode
        d = tempfile.mkdtemp(prefix="engram-cas-")
        self.addCleanup(shutil.rmtree, d, True)
        s = Server(["--dir", d, "--appendfsync", "always"]).start()
        try:
            c = loaded(s.conn())
            rnd = random.Random(8)
            for i in range(100):
                vadd(c, "k", rand_vec(rnd, 16), "e%d" % i)
            self.assertEqual(c.cmd("DEBUG", "WAL-FAULT", "write", "ENOSPC"), "OK")
            c.send(encode("VADD", "k", "FP32", fp32(rand_vec(rnd, 16)), "new", "CAS"))
            r = c.read()
            self.assertIsInstance(r, RespError)
            self.assertTrue(r.startswith("ERR write not persisted"), r)
            self.assertTrue(c.is_closed(5))
            c2 = s.conn()
            r = c2.cmd("VADD", "k", "FP32", fp32(rand_vec(rnd, 16)), "new2", "CAS")
            self.assertIsInstance(r, RespError)
            self.assertTrue(r.startswith("MISCONF"), r)
            s.stop()
        finally:
            if s.alive():
                s.kill()
            s.cleanup()


@engram_only
class TestEdges(ServerTestCase):
    def test_empty_set_from_engrams_dialect(self):
        """VNEW makes an empty set, which Redis never has: the Redis commands
        answer for it as for no set where they would otherwise need an
        element."""
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "e", "3"), "OK")
        self.assertIsNone(c.cmd("VRANDMEMBER", "e"))
        self.assertEqual(c.cmd("VRANDMEMBER", "e", "-2"), [])
        self.assertEqual(c.cmd("VRANDMEMBER", "e", "2"), [])
        self.assertEqual(c.cmd("VSIM", "e", "VALUES", "3", "1", "0", "0"), [])
        self.assertEqual(c.cmd("VRANGE", "e", "-", "+"), [])
        self.assertEqual(c.cmd("VCARD", "e"), 0)
        self.assertEqual(c.cmd("VDIM", "e"), 3)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_failed_first_add_leaves_no_key(self):
        c = self.conn()
        r = c.cmd("VADD", "big", "VALUES", "2", "3e38", "3e38", "e")
        self.assertIsInstance(r, RespError)
        self.assertEqual(c.cmd("EXISTS", "big"), 0)
        self.assertEqual(c.cmd("TYPE", "big"), "none")

    def test_module_views(self):
        c = self.conn()
        names = sorted(x.decode() for x in c.cmd("COMMAND", "LIST", "FILTERBY", "MODULE",
                                                 "vectorset"))
        self.assertEqual(names, sorted(["VADD", "VREM", "VSIM", "VDIM", "VCARD", "VEMB", "VLINKS",
                                        "VINFO", "VSETATTR", "VGETATTR", "VRANDMEMBER",
                                        "VISMEMBER", "VRANGE"]))
        names = sorted(x.decode() for x in c.cmd("COMMAND", "LIST", "FILTERBY", "MODULE", "search"))
        self.assertEqual(names, sorted(["FT.CREATE", "FT.SEARCH", "FT.INFO", "FT._LIST",
                                        "FT.DROPINDEX", "FT.DROP", "FT.ALTER", "FT.TAGVALS",
                                        "FT.EXPLAIN"]))
        self.assertEqual(c.cmd("COMMAND", "LIST", "FILTERBY", "MODULE", "nope"), [])
        c3 = self.conn()
        hello = c3.cmd("HELLO", "3")
        mods = hello[b"modules"] if isinstance(hello, dict) else hello[hello.index(b"modules") + 1]
        self.assertEqual([m[b"name"] for m in mods], [b"vectorset", b"search"])
        self.assertEqual(mods[1][b"ver"], 20600)

    def test_wide_embedder_set(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "wide", "40000", "EMBED", "hash"), "OK")
        self.assertEqual(c.cmd("VADD", "wide", "a", "TEXT", "hello world"), 1)


class TestReplaySameGraph(unittest.TestCase):
    """Redis-grammar VADDs into a set with another build beam replay into
    the very graph they built (the log names the beam used)."""

    def test_replay(self):
        d = tempfile.mkdtemp(prefix="engram-replay-")
        self.addCleanup(shutil.rmtree, d, True)
        rnd = random.Random(4)
        s = Server(["--dir", d, "--appendfsync", "always"]).start()
        try:
            c = loaded(s.conn())
            self.assertEqual(c.cmd("VNEW", "v", "8", "EF_CONSTRUCTION", "40"), "OK")
            for i in range(300):
                self.assertEqual(c.cmd("VADD", "v", *values(rand_vec(rnd, 8)), "e%d" % i,
                                       "NOQUANT"), 1)
            for i in range(0, 300, 7):      # and a set made by VADD, with EF given
                self.assertEqual(c.cmd("VADD", "r", *values(rand_vec(rnd, 8)), "e%d" % i,
                                       "EF", "31"), 1)
            links = {(k, i): c.cmd("VLINKS", k, "e%d" % i) for k in ("v", "r")
                     for i in range(300) if k == "v" or i % 7 == 0}
            s.kill()
        finally:
            if s.alive():
                s.kill()
            s.cleanup()
        s = Server(["--dir", d, "--appendfsync", "always"]).start()
        try:
            c = loaded(s.conn())
            for (k, i), want in links.items():
                self.assertEqual(c.cmd("VLINKS", k, "e%d" % i), want, (k, i))
            s.stop()
        finally:
            if s.alive():
                s.kill()
            s.cleanup()


@engram_only
class TestVsearchFilter(ServerTestCase):
    def test_filter_on_payloads(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "ix", "2", "METRIC", "l2", "TYPE", "flat"), "OK")
        for i in range(20):
            self.assertEqual(c.cmd("VADD", "ix", "k%d" % i, fp32([float(i), 0.0]), "PAYLOAD",
                                   json.dumps({"even": i % 2 == 0, "i": i})), 1)
        self.assertEqual(c.cmd("VADD", "ix", "nopay", fp32([0.5, 0.0])), 1)
        r = c.cmd("VSEARCH", "ix", fp32([0.0, 0.0]), "4", "FILTER", ".even")
        self.assertEqual(r[::2], [b"k0", b"k2", b"k4", b"k6"])
        self.assertEqual([float(x) for x in r[1::2]], [0.0, 2.0, 4.0, 6.0])
        r = c.cmd("VSEARCH", "ix", fp32([0.0, 0.0]), "3", "FILTER", ".i >= 10 and !.even",
                  "WITHPAYLOAD")
        self.assertEqual(r[::3], [b"k11", b"k13", b"k15"])
        self.assertEqual(json.loads(r[2]), {"even": False, "i": 11})
        # elements without a payload never pass; the last FILTER wins
        r = c.cmd("VSEARCH", "ix", fp32([0.5, 0.0]), "1", "FILTER", ".nope", "FILTER", "1")
        self.assertEqual(r[0], b"k0")
        # errors: Redis's text for the language, a bounded FILTER-EF
        self.assertEqual(str(c.cmd("VSEARCH", "ix", fp32([0.0, 0.0]), "3", "FILTER", ".i ==")),
                         "ERR syntax error in FILTER expression near: .i ==")
        self.assertIsInstance(c.cmd("VSEARCH", "ix", fp32([0.0, 0.0]), "3", "FILTER-EF", "0"),
                              RespError)
        # an HNSW index: FILTER-EF bounds the walk
        self.assertEqual(c.cmd("VNEW", "h", "2"), "OK")
        rnd = random.Random(5)
        for i in range(500):
            c.cmd("VADD", "h", "k%d" % i, fp32(rand_vec(rnd, 2)), "PAYLOAD",
                  json.dumps({"rare": i == 250}))
        q = fp32([1.0, 0.0])
        self.assertEqual(c.cmd("VSEARCH", "h", q, "5", "FILTER", ".rare", "FILTER-EF", "1000")[0],
                         b"k250")
        self.assertLessEqual(len(c.cmd("VSEARCH", "h", q, "5", "FILTER", ".rare", "FILTER-EF", "1")),
                             2)


@engram_only
class TestSelectivity(ServerTestCase):
    """A filtered VSIM at 1%, 10% and 50% selectivity returns COUNT results
    whenever that many match within FILTER-EF, and they are the true best
    matches (recall against an exact filtered answer)."""

    def test_selectivity(self):
        c = self.conn()
        rnd = random.Random(2026)
        n = 3000
        vecs = {"e%d" % i: rand_vec(rnd, 16) for i in range(n)}
        for i, (name, v) in enumerate(vecs.items()):
            vadd_many(c, "s", [(name, v)], "NOQUANT", "SETATTR", json.dumps({"b": i % 100}))
        for pct in (1, 10, 50):
            matching = {name: v for i, (name, v) in enumerate(vecs.items()) if i % 100 < pct}
            hit = total = 0
            for _ in range(25):
                q = rand_vec(rnd, 16)
                r = c.cmd("VSIM", "s", *values(q), "COUNT", "10", "FILTER", ".b < %d" % pct)
                got = [x.decode() for x in r]
                # COUNT results: there are at least 30 matching elements, all
                # reachable within the default FILTER-EF (COUNT x 100 = 1000)
                self.assertEqual(len(got), 10, (pct, got))
                self.assertTrue(all(g in matching for g in got))
                want = set(brute_top(q, matching, 10))
                hit += len(want & set(got))
                total += 10
            self.assertGreaterEqual(hit / total, 0.9, "selectivity %d%%: recall %.3f"
                                    % (pct, hit / total))


if __name__ == "__main__":
    main()
