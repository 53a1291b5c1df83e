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
        info = c.cmd("VINFO", "logs")
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
            info = c.cmd("VINFO", "logs")
            self.assertEqual(info[info.index(b"embed") + 1], b"hash")
            c.close()
            s2.stop()
            s2.cleanup()
            s.cleanup()
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
