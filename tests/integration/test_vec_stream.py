"""Streaming memory over the wire: indices with embedders (VNEW ... EMBED,
VADD/VSEARCH ... TEXT, `embedder NAME PATH` models from the config),
VSEARCH MAXDIST, ring indices (CAPACITY, FIFO eviction, VINFO counters),
auto ids (VADD index *), payloads (PAYLOAD, WITHPAYLOAD, VGET WITHPAYLOAD),
and their persistence across restarts.

engram-only: real Redis 7.0 has no vector commands."""

import os
import shutil
import struct
import tempfile
import unittest

from engram_test import IS_REDIS, Server, ServerTestCase, RespError, main

# A tiny word2vec-style text model: "disk" and "storage" point one way,
# "user" and "login" another.
MODEL = """6 4
disk 1 0 0 0
storage 0.9 0.1 0 0
full 0.8 0.2 0.1 0
user 0 0 1 0
login 0 0 0.9 0.1
alice 0 0.1 0.8 0
"""


def blob(*vals):
    return struct.pack("<%df" % len(vals), *vals)


def pairs(reply):
    """A RESP2 flat VSEARCH reply as [(key, float distance)]."""
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


@unittest.skipIf(IS_REDIS, "engram only")
class EmbedTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.mdir = tempfile.mkdtemp(prefix="engram-model-")
        cls.model = os.path.join(cls.mdir, "tiny.vec")
        with open(cls.model, "w") as f:
            f.write(MODEL)
        cls.server_config = "embedder tiny %s\n" % cls.model
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.mdir, ignore_errors=True)

    def test_hash_embedder_ranks_similar_text_first(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "logs", "128", "EMBED", "hash"), "OK")
        self.assertEqual(c.cmd("VADD", "logs", "a", "TEXT", "disk full on /var"), 1)
        self.assertEqual(c.cmd("VADD", "logs", "b", "TEXT", "user alice logged in from 10.0.0.1"), 1)
        self.assertEqual(c.cmd("VADD", "logs", "c", "TEXT", "the disk is full on /var/log"), 1)
        got = pairs(c.cmd("VSEARCH", "logs", "TEXT", "disk full", "3"))
        self.assertEqual([k for k, _ in got][:2], [b"a", b"c"])
        self.assertEqual(got[2][0], b"b")
        self.assertLess(got[1][1], got[2][1])
        info = c.cmd("VINFO", "logs", "FULL")
        self.assertEqual(info[info.index(b"embed") + 1], b"hash")
        # Bare vectors still work on an index with an embedder.
        self.assertEqual(c.cmd("VADD", "logs", "v", blob(*([0.5] * 128))), 1)
        self.assertEqual(len(c.cmd("VSEARCH", "logs", blob(*([0.5] * 128)), "1")), 2)

    def test_maxdist(self):
        c = self.conn()
        c.cmd("VNEW", "m", "2", "METRIC", "l2")
        for k, v in (("a", (0, 0)), ("b", (3, 0)), ("c", (0, 10))):
            c.cmd("VADD", "m", k, blob(*v))
        self.assertEqual(pairs(c.cmd("VSEARCH", "m", blob(0, 0), "3", "MAXDIST", "3")),
                         [(b"a", 0.0), (b"b", 3.0)])
        self.assertEqual(c.cmd("VSEARCH", "m", blob(100, 100), "3", "MAXDIST", "1"), [])
        self.assertEqual(len(c.cmd("VSEARCH", "m", blob(0, 0), "3", "MAXDIST", "inf")), 6)
        for bad in ("-1", "nan", "x"):
            r = c.cmd("VSEARCH", "m", blob(0, 0), "3", "MAXDIST", bad)
            self.assertIsInstance(r, RespError)
            self.assertIn("MAXDIST must be a non-negative number, got '%s'" % bad, r)

    def test_model_embedder(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "w", "4", "EMBED", "tiny"), "OK")
        c.cmd("VADD", "w", "d", "TEXT", "Disk storage FULL")
        c.cmd("VADD", "w", "u", "TEXT", "user login alice")
        got = pairs(c.cmd("VSEARCH", "w", "TEXT", "storage", "2"))
        self.assertEqual(got[0][0], b"d")
        self.assertEqual(pairs(c.cmd("VSEARCH", "w", "TEXT", "alice", "1"))[0][0], b"u")
        r = c.cmd("VNEW", "w2", "8", "EMBED", "tiny")
        self.assertEqual(r, "ERR embedder 'tiny' has dimension 4, the index 8")

    def test_errors(self):
        c = self.conn()
        r = c.cmd("VNEW", "x", "8", "EMBED", "nosuch")
        self.assertIn("ERR unknown embedder 'nosuch'", r)
        self.assertEqual(c.cmd("VLIST"), [])
        c.cmd("VNEW", "plain", "4")
        r = c.cmd("VADD", "plain", "k", "TEXT", "hello")
        self.assertEqual(r, "ERR index 'plain' has no embedder: create it with VNEW ... EMBED "
                            "name to use TEXT")
        c.cmd("VNEW", "e", "16", "EMBED", "hash")
        self.assertEqual(c.cmd("VADD", "e", "k", "TEXT", "  ...  !!"), "ERR text has no words to embed")
        self.assertEqual(c.cmd("VSEARCH", "e", "TEXT", "", "3"), "ERR text has no words to embed")
        self.assertEqual(c.cmd("VCARD", "e"), 0)
        # Any bytes are text: invalid UTF-8 and NULs never crash.
        self.assertEqual(c.cmd("VADD", "e", "bin", "TEXT", b"\xff\xfe abc\x00def \xc3"), 1)


def vinfo(c, name):
    r = c.cmd("VINFO", name, "FULL")
    return {r[i].decode(): r[i + 1] for i in range(0, len(r), 2)}


@unittest.skipIf(IS_REDIS, "engram only")
class RingTest(ServerTestCase):
    def test_fifo_eviction_hnsw_and_flat(self):
        c = self.conn()
        for typ in ("hnsw", "flat"):
            name = "r" + typ
            self.assertEqual(c.cmd("VNEW", name, "2", "METRIC", "l2", "TYPE", typ, "CAPACITY", "4"), "OK")
            for i in range(10):
                self.assertEqual(c.cmd("VADD", name, "k%d" % i, blob(i, 0)), 1)
            # Only the four newest remain, strictly first in, first out.
            self.assertEqual(c.cmd("VCARD", name), 4)
            for i in range(10):
                self.assertEqual(c.cmd("VEXISTS", name, "k%d" % i), 1 if i >= 6 else 0)
            # An overwrite neither evicts nor moves the entry in the order.
            self.assertEqual(c.cmd("VADD", name, "k6", blob(60, 0)), 0)
            self.assertEqual(c.cmd("VADD", name, "k10", blob(10, 0)), 1)
            self.assertEqual(c.cmd("VEXISTS", name, "k6"), 0)
            self.assertEqual(c.cmd("VEXISTS", name, "k7"), 1)
            info = vinfo(c, name)
            self.assertEqual((info["count"], info["capacity"], info["ingested"], info["evicted"]),
                             (4, 4, 11, 7))
            got = pairs(c.cmd("VSEARCH", name, blob(0, 0), "10"))
            self.assertEqual([k for k, _ in got], [b"k7", b"k8", b"k9", b"k10"])

    def test_memory_flat_under_endless_ingestion(self):
        c = self.conn()
        c.cmd("VNEW", "ring", "16", "CAPACITY", "200")
        rnd = __import__("random").Random(7)
        mem = []
        for rounds in range(6):
            for _ in range(400):
                c.send_cmd("VADD", "ring", "*", blob(*[rnd.random() for _ in range(16)]))
            for _ in range(400):
                c.read()
            info = vinfo(c, "ring")
            self.assertEqual(info["count"], 200)
            mem.append(info["memory"])
        self.assertLessEqual(max(mem[1:]), mem[1] * 1.1)
        self.assertEqual(vinfo(c, "ring")["slots"] <= 201 + 16, True)

    def test_auto_ids(self):
        c = self.conn()
        c.cmd("VNEW", "a", "2")
        self.assertEqual(c.cmd("VADD", "a", "*", blob(1, 0)), b"1")
        self.assertEqual(c.cmd("VADD", "a", "*", blob(0, 1)), b"2")
        # Explicit decimal keys move the counter past them, as stream ids do.
        self.assertEqual(c.cmd("VADD", "a", "7", blob(1, 1)), 1)
        self.assertEqual(c.cmd("VADD", "a", "*", blob(1, 2)), b"8")
        self.assertEqual(c.cmd("VADD", "a", "x", blob(1, 3)), 1)
        self.assertEqual(c.cmd("VADD", "a", "*", blob(1, 4)), b"9")
        self.assertEqual(vinfo(c, "a")["next_id"], 10)

    def test_payloads(self):
        c = self.conn()
        c.cmd("VNEW", "p", "2", "METRIC", "l2")
        self.assertEqual(c.cmd("VADD", "p", "a", blob(0, 0), "PAYLOAD", b'{"line":"x\x00y"}'), 1)
        self.assertEqual(c.cmd("VADD", "p", "b", blob(1, 0)), 1)
        self.assertEqual(c.cmd("VADD", "p", "e", blob(2, 0), "PAYLOAD", ""), 1)
        self.assertEqual(c.cmd("VSEARCH", "p", blob(0, 0), "3", "WITHPAYLOAD"),
                         [b"a", b"0", b'{"line":"x\x00y"}', b"b", b"1", None, b"e", b"2", b""])
        # Kept on overwrite without PAYLOAD, replaced with it.
        c.cmd("VADD", "p", "a", blob(0, 0.5))
        self.assertEqual(c.cmd("VGET", "p", "a", "WITHPAYLOAD")[1], b'{"line":"x\x00y"}')
        c.cmd("VADD", "p", "a", blob(0, 0.5), "PAYLOAD", "new")
        self.assertEqual(c.cmd("VGET", "p", "a", "WITHPAYLOAD"), [blob(0, 0.5), b"new"])
        self.assertEqual(c.cmd("VGET", "p", "b", "WITHPAYLOAD"), [blob(1, 0), None])
        self.assertIsNone(c.cmd("VGET", "p", "zz", "WITHPAYLOAD"))
        # RESP3: [key, distance, payload] triples.
        c.cmd("HELLO", "3")
        r = c.cmd("VSEARCH", "p", blob(1, 0), "1", "WITHPAYLOAD")
        self.assertEqual(r, [[b"b", 0.0, None]])
        # Syntax: PAYLOAD needs its value and comes last.
        self.assertEqual(c.cmd("VADD", "p", "z", blob(0, 0), "PAYLOAD"), "ERR syntax error")
        self.assertEqual(c.cmd("VADD", "p", "z", blob(0, 0), "PAYLOAD", "a", "b"), "ERR syntax error")

    def test_text_is_the_default_payload(self):
        c = self.conn()
        c.cmd("VNEW", "logs", "64", "EMBED", "hash", "CAPACITY", "100")
        self.assertEqual(c.cmd("VADD", "logs", "*", "TEXT", "disk full on /var"), b"1")
        self.assertEqual(c.cmd("VADD", "logs", "*", "TEXT", "cpu hot", "PAYLOAD", "{}"), b"2")
        r = c.cmd("VSEARCH", "logs", "TEXT", "disk full", "2", "WITHPAYLOAD")
        self.assertEqual(r[0:3:2], [b"1", b"disk full on /var"])
        self.assertEqual(r[5], b"{}")

    def test_errors(self):
        c = self.conn()
        for bad in ("0", "-1", "x", str(2 ** 31)):
            r = c.cmd("VNEW", "r", "4", "CAPACITY", bad)
            self.assertIsInstance(r, RespError)
            self.assertIn("CAPACITY must be an integer between 1 and", r)
        self.assertEqual(c.cmd("VLIST"), [])


@unittest.skipIf(IS_REDIS, "engram only")
class RingPersistTest(unittest.TestCase):
    def test_ring_state_survives_restart(self):
        d = tempfile.mkdtemp(prefix="engram-ring-")
        try:
            data = os.path.join(d, "data")
            s = Server(["--dir", data]).start()
            c = s.conn()
            c.cmd("VNEW", "r", "2", "METRIC", "l2", "CAPACITY", "5")
            for i in range(8):
                c.cmd("VADD", "r", "*", blob(i, 0), "PAYLOAD", "p%d" % i)
            self.assertEqual(c.cmd("SAVE"), "OK")
            for i in range(8, 12):                    # these come back from the log
                c.cmd("VADD", "r", "*", blob(i, 0), "PAYLOAD", "p%d" % i)
            want = c.cmd("VSEARCH", "r", blob(0, 0), "10", "WITHPAYLOAD")
            winfo = vinfo(c, "r")
            c.close()
            s.kill()
            s2 = Server(["--dir", data]).start()
            c = s2.conn()
            self.assertEqual(c.cmd("VSEARCH", "r", blob(0, 0), "10", "WITHPAYLOAD"), want)
            info = vinfo(c, "r")
            for f in ("count", "capacity", "ingested", "evicted", "next_id", "payloads"):
                self.assertEqual(info[f], winfo[f], f)
            # ... and it goes on evicting in the same order.
            self.assertEqual(c.cmd("VADD", "r", "*", blob(99, 0)), b"13")
            self.assertEqual(c.cmd("VEXISTS", "r", "8"), 0)
            self.assertEqual(c.cmd("VEXISTS", "r", "9"), 1)
            c.close()
            s2.stop()
            s2.cleanup()
            s.cleanup()
        finally:
            shutil.rmtree(d, ignore_errors=True)


@unittest.skipIf(IS_REDIS, "engram only")
class EmbedPersistTest(unittest.TestCase):
    def test_embedder_survives_restart(self):
        d = tempfile.mkdtemp(prefix="engram-stream-")
        try:
            data = os.path.join(d, "data")
            s = Server(["--dir", data]).start()
            c = s.conn()
            c.cmd("VNEW", "logs", "64", "EMBED", "hash")
            c.cmd("VADD", "logs", "a", "TEXT", "disk full on /var")
            c.cmd("VADD", "logs", "b", "TEXT", "user alice logged in")
            before = c.cmd("VSEARCH", "logs", "TEXT", "disk is full", "2")
            self.assertEqual(c.cmd("SAVE"), "OK")
            c.cmd("VADD", "logs", "c", "TEXT", "the disk is full again")
            c.close()
            s.kill()
            s2 = Server(["--dir", data]).start()
            c = s2.conn()
            after = dict(pairs(c.cmd("VSEARCH", "logs", "TEXT", "disk is full", "3")))
            self.assertEqual(set(after), {b"a", b"b", b"c"})
            # The restored embedder embeds the query exactly as before.
            for k, dist in pairs(before):
                self.assertEqual(after[k], dist)
            info = c.cmd("VINFO", "logs", "FULL")
            self.assertEqual(info[info.index(b"embed") + 1], b"hash")
            c.close()
            s2.stop()
            s2.cleanup()
            s.cleanup()
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
