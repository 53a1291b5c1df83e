"""One keyspace: a key holds a string or a vector set, in one of 16
databases.

  * every generic key command works on a vector set (TYPE, DEL, UNLINK,
    EXISTS, RENAME, RENAMENX, COPY, MOVE, EXPIRE family, PERSIST, TTL,
    KEYS, SCAN ... TYPE, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL, OBJECT
    ENCODING, MEMORY USAGE); string commands on one answer Redis's
    WRONGTYPE, and the vector commands on a string likewise;
  * VNEW creates a vector-set key (an error if the key exists), VDROP is
    DEL for vector sets, VLIST lists the current database's sets;
  * SELECT, SWAPDB and MOVE; every database holds every type, and a set in
    one is invisible in another; WATCH sees changes per database;
  * the replies of SELECT, SWAPDB, MOVE, COPY ... DB, OBJECT ENCODING and
    MEMORY USAGE on strings, and their errors, are byte-identical to a
    live Redis 7.0's;
  * searches on a set whose key is deleted, unlinked, renamed, expired,
    moved, swapped away or flushed finish (with results or "no such
    index"), never crash;
  * all of it survives a restart: from the write-ahead log after kill -9,
    and from a snapshot.
"""

import os
import shutil
import struct
import tempfile
import unittest

from engram_test import (BesideRedisTestCase, RespError, Server, ServerError, ServerTestCase,
                         encode, engram_only, main, parse_info, wait_until)

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def blob(*vals):
    return struct.pack("<%df" % len(vals), *vals)


def add_vectors(c, key, n, dim=4, start=0):
    c.send(b"".join(encode("VADD", key, "k%d" % i, blob(*([float(i)] * dim)))
                    for i in range(start, start + n)))
    for _ in range(n):
        r = c.read()
        assert r in (0, 1), r


@engram_only
class TestTypes(ServerTestCase):
    def test_type_and_wrongtype(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "vs", "4"), "OK")
        self.assertEqual(c.cmd("SET", "s", "1"), "OK")
        self.assertEqual(c.cmd("TYPE", "vs"), "vectorset")
        self.assertEqual(c.cmd("TYPE", "s"), "string")
        self.assertEqual(c.cmd("TYPE", "none"), "none")
        for cmd in (("GET", "vs"), ("APPEND", "vs", "x"), ("INCR", "vs"), ("INCRBY", "vs", "2"),
                    ("INCRBYFLOAT", "vs", "1.5"), ("DECR", "vs"), ("STRLEN", "vs"),
                    ("GETRANGE", "vs", "0", "1"), ("SETRANGE", "vs", "0", "x"),
                    ("GETSET", "vs", "x"), ("GETDEL", "vs"), ("GETEX", "vs", "PERSIST"),
                    ("SET", "vs", "x", "GET")):
            self.assertEqual(c.cmd(*cmd), WRONGTYPE, cmd)
        self.assertEqual(c.cmd("TYPE", "vs"), "vectorset", "a refused command changed the key")
        self.assertEqual(c.cmd("MGET", "s", "vs", "none"), [b"1", None, None])
        for cmd in (("VADD", "s", "k", blob(1, 2, 3, 4)), ("VSEARCH", "s", blob(1, 2, 3, 4), "1"),
                    ("VGET", "s", "k"), ("VDEL", "s", "k"), ("VINFO", "s", "FULL"), ("VCARD", "s"),
                    ("VEXISTS", "s", "k"), ("VDROP", "s")):
            self.assertEqual(c.cmd(*cmd), WRONGTYPE, cmd)
        self.assertEqual(c.cmd("VNEW", "s", "4"), "ERR index already exists")
        self.assertEqual(c.cmd("VNEW", "vs", "4"), "ERR index already exists")
        # SET, MSET and SETEX overwrite any type, as in Redis
        self.assertEqual(c.cmd("SET", "vs", "now a string"), "OK")
        self.assertEqual(c.cmd("TYPE", "vs"), "string")
        self.assertEqual(c.cmd("VLIST"), [])

    def test_generic_commands_on_vector_sets(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "a", "4", "METRIC", "l2"), "OK")
        add_vectors(c, "a", 10)
        self.assertEqual(c.cmd("EXISTS", "a", "a", "nope"), 2)
        self.assertEqual(c.cmd("DBSIZE"), 1)
        self.assertEqual(c.cmd("KEYS", "*"), [b"a"])
        self.assertEqual(c.cmd("RANDOMKEY"), b"a")
        self.assertEqual(c.cmd("OBJECT", "ENCODING", "a"), b"raw")
        self.assertGreater(c.cmd("MEMORY", "USAGE", "a"), 10 * 4 * 4)
        # TTLs
        self.assertEqual(c.cmd("TTL", "a"), -1)
        self.assertEqual(c.cmd("EXPIRE", "a", "100"), 1)
        self.assertTrue(0 < c.cmd("TTL", "a") <= 100)
        self.assertEqual(c.cmd("PERSIST", "a"), 1)
        self.assertEqual(c.cmd("PTTL", "a"), -1)
        # RENAME keeps the set (and its TTL)
        c.cmd("PEXPIRE", "a", "100000")
        self.assertEqual(c.cmd("RENAME", "a", "b"), "OK")
        self.assertEqual(c.cmd("VCARD", "b"), 10)
        self.assertEqual(c.cmd("VCARD", "a"), 0)
        self.assertGreater(c.cmd("PTTL", "b"), 0)
        self.assertEqual(c.cmd("VSEARCH", "b", blob(3, 3, 3, 3), "1"), [b"k3", b"0"])
        self.assertEqual(c.cmd("SET", "s", "x"), "OK")
        self.assertEqual(c.cmd("RENAMENX", "b", "s"), 0)
        self.assertEqual(c.cmd("RENAME", "s", "b"), "OK")     # a string over the set
        self.assertEqual(c.cmd("TYPE", "b"), "string")
        # COPY is deep: changing the copy leaves the original
        self.assertEqual(c.cmd("VNEW", "o", "4", "METRIC", "l2"), "OK")
        add_vectors(c, "o", 5)
        self.assertEqual(c.cmd("COPY", "o", "p"), 1)
        self.assertEqual(c.cmd("COPY", "o", "p"), 0)
        self.assertEqual(c.cmd("VDEL", "p", "k0"), 1)
        self.assertEqual(c.cmd("VCARD", "o"), 5)
        self.assertEqual(c.cmd("VCARD", "p"), 4)
        self.assertEqual(c.cmd("COPY", "o", "p", "REPLACE"), 1)
        self.assertEqual(c.cmd("VCARD", "p"), 5)
        self.assertEqual(c.cmd("VSEARCH", "p", blob(0, 0, 0, 0), "1"), [b"k0", b"0"])
        # SCAN TYPE
        self.assertEqual(c.cmd("SET", "str", "1"), "OK")
        self.assertEqual(sorted(c.cmd("SCAN", "0", "TYPE", "vectorset", "COUNT", "100")[1]),
                         [b"o", b"p"])
        self.assertEqual(sorted(c.cmd("SCAN", "0", "TYPE", "string", "COUNT", "100")[1]),
                         [b"b", b"str"])
        self.assertEqual(c.cmd("SCAN", "0", "TYPE", "hash", "COUNT", "100")[1], [])
        self.assertEqual(c.cmd("VLIST"), [b"o", b"p"])
        # DEL, UNLINK, VDROP
        self.assertEqual(c.cmd("DEL", "o"), 1)
        self.assertEqual(c.cmd("UNLINK", "p", "str"), 2)
        self.assertEqual(c.cmd("VLIST"), [])
        self.assertEqual(c.cmd("VNEW", "d", "4"), "OK")
        self.assertEqual(c.cmd("VDROP", "d"), "OK")
        self.assertEqual(c.cmd("VDROP", "d"), "ERR no such index 'd'")
        self.assertEqual(c.cmd("EXISTS", "d"), 0)

    def test_expiry_deletes_a_set(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "e", "4"), "OK")
        add_vectors(c, "e", 3)
        self.assertEqual(c.cmd("PEXPIRE", "e", "50"), 1)
        self.assertTrue(wait_until(lambda: c.cmd("EXISTS", "e") == 0, 5))
        self.assertEqual(c.cmd("VLIST"), [])
        self.assertEqual(c.cmd("VCARD", "e"), 0)
        info = parse_info(c.cmd("INFO", "stats"))
        self.assertGreaterEqual(int(info["expired_keys"]), 1)


@engram_only
class TestDatabases(ServerTestCase):
    def test_select_isolates(self):
        a, b = self.conn(), self.conn()
        self.assertEqual(b.cmd("SELECT", "3"), "OK")
        self.assertEqual(a.cmd("SET", "k", "db0"), "OK")
        self.assertEqual(b.cmd("SET", "k", "db3"), "OK")
        self.assertEqual(a.cmd("VNEW", "v", "4"), "OK")
        self.assertEqual(b.cmd("VNEW", "v", "2"), "OK")          # same name, another db
        self.assertEqual(b.cmd("VADD", "v", "x", blob(1, 2)), 1)
        self.assertEqual(a.cmd("VCARD", "v"), 0)
        self.assertEqual(b.cmd("VCARD", "v"), 1)
        self.assertEqual(a.cmd("GET", "k"), b"db0")
        self.assertEqual(b.cmd("GET", "k"), b"db3")
        self.assertEqual(a.cmd("DBSIZE"), 2)
        self.assertEqual(b.cmd("VLIST"), [b"v"])
        self.assertEqual(b.cmd("SELECT", "4"), "OK")
        self.assertEqual(b.cmd("VLIST"), [])
        self.assertEqual(b.cmd("DBSIZE"), 0)
        info = parse_info(a.cmd("INFO", "keyspace"))
        self.assertEqual(info["db0"], "keys=2,expires=0,avg_ttl=0")
        self.assertEqual(info["db3"], "keys=2,expires=0,avg_ttl=0")
        self.assertNotIn("db4", info)
        # FLUSHDB is the selected db's, FLUSHALL everyone's
        self.assertEqual(b.cmd("SELECT", "3"), "OK")
        self.assertEqual(b.cmd("FLUSHDB"), "OK")
        self.assertEqual(b.cmd("DBSIZE"), 0)
        self.assertEqual(a.cmd("DBSIZE"), 2)
        self.assertEqual(b.cmd("SET", "z", "1"), "OK")
        self.assertEqual(a.cmd("FLUSHALL", "ASYNC"), "OK")
        self.assertEqual(a.cmd("DBSIZE"), 0)
        self.assertEqual(b.cmd("DBSIZE"), 0)
        # RESET goes back to db 0
        self.assertEqual(b.cmd("SET", "z", "1"), "OK")
        self.assertEqual(b.cmd("RESET"), "RESET")
        self.assertEqual(b.cmd("EXISTS", "z"), 0)

    def test_move_and_swapdb(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "v", "4", "METRIC", "l2"), "OK")
        add_vectors(c, "v", 20)
        self.assertEqual(c.cmd("SET", "s", "str"), "OK")
        self.assertEqual(c.cmd("PEXPIRE", "v", "100000"), 1)
        self.assertEqual(c.cmd("MOVE", "v", "5"), 1)
        self.assertEqual(c.cmd("MOVE", "s", "5"), 1)
        self.assertEqual(c.cmd("EXISTS", "v", "s"), 0)
        self.assertEqual(c.cmd("SET", "s", "again"), "OK")
        self.assertEqual(c.cmd("MOVE", "s", "5"), 0)             # exists there
        self.assertEqual(c.cmd("SELECT", "5"), "OK")
        self.assertEqual(c.cmd("VCARD", "v"), 20)
        self.assertGreater(c.cmd("PTTL", "v"), 0)
        self.assertEqual(c.cmd("VSEARCH", "v", blob(7, 7, 7, 7), "1"), [b"k7", b"0"])
        # COPY into another database, deep
        self.assertEqual(c.cmd("COPY", "v", "w", "DB", "6"), 1)
        self.assertEqual(c.cmd("EXISTS", "w"), 0)
        self.assertEqual(c.cmd("SWAPDB", "5", "6"), "OK")
        self.assertEqual(c.cmd("VCARD", "w"), 20)               # db 5 now holds db 6's
        self.assertEqual(c.cmd("EXISTS", "v", "s"), 0)
        self.assertEqual(c.cmd("SELECT", "6"), "OK")
        self.assertEqual(c.cmd("VCARD", "v"), 20)
        self.assertEqual(c.cmd("GET", "s"), b"str")

    def test_watch_per_database(self):
        a, b = self.conn(), self.conn()
        self.assertEqual(a.cmd("WATCH", "k"), "OK")              # db 0's k
        self.assertEqual(b.cmd("SELECT", "1"), "OK")
        self.assertEqual(b.cmd("SET", "k", "other db"), "OK")    # not the watched one
        self.assertEqual(a.cmd("MULTI"), "OK")
        self.assertEqual(a.cmd("SET", "x", "1"), "QUEUED")
        self.assertEqual(a.cmd("EXEC"), ["OK"])
        self.assertEqual(a.cmd("WATCH", "k"), "OK")
        self.assertEqual(b.cmd("SWAPDB", "0", "1"), "OK")        # db 0 changes as a whole
        self.assertEqual(a.cmd("MULTI"), "OK")
        self.assertEqual(a.cmd("SET", "x", "2"), "QUEUED")
        self.assertIsNone(a.cmd("EXEC"))


class TestAgainstRedis(BesideRedisTestCase):
    """The same requests give the same replies on engram and a live Redis
    7.0 (which runs 16 databases too)."""

    def assert_same(self, *requests):
        out = []
        for srv in (self.server, self.redis):
            c = srv.conn()
            c.cmd("FLUSHALL")
            out.append([c.raw_cmd(*req) for req in requests])
            c.cmd("FLUSHALL")
            c.close()
        for req, a, b in zip(requests, out[0], out[1]):
            self.assertEqual(a, b, "reply to %r differs from Redis's" % (req,))

    def test_select_move_swapdb_copy(self):
        self.assert_same(
            ("SELECT", "16"), ("SELECT", "-1"), ("SELECT", "x"), ("SELECT", "15"), ("SELECT", "0"),
            ("SWAPDB", "0", "16"), ("SWAPDB", "x", "1"), ("SWAPDB", "1", "x"), ("SWAPDB", "0", "0"),
            ("SWAPDB", "0", "1"), ("SWAPDB", "-1", "1"),
            ("SET", "a", "1"), ("MOVE", "a", "0"), ("MOVE", "a", "1"), ("MOVE", "a", "1"),
            ("MOVE", "nosuch", "1"), ("MOVE", "a", "x"), ("MOVE", "a", "99"), ("MOVE", "a", "-1"),
            ("SELECT", "1"), ("GET", "a"), ("COPY", "a", "b", "DB", "0"), ("COPY", "a", "b", "DB", "0"),
            ("COPY", "a", "b", "DB", "0", "REPLACE"), ("COPY", "a", "a"), ("COPY", "a", "a", "DB", "1"),
            ("COPY", "a", "a", "DB", "2"), ("COPY", "a", "x", "DB", "16"), ("COPY", "a", "x", "DB", "y"),
            ("COPY", "a", "x", "FOO"), ("SELECT", "0"), ("GET", "b"),
            ("FLUSHALL", "FOO"), ("FLUSHDB", "ASYNC"), ("FLUSHALL", "SYNC"), ("DBSIZE",),
        )

    def test_object_and_memory_on_strings(self):
        self.assert_same(
            ("SET", "i", "12345"), ("SET", "e", "hello"), ("SET", "r", "x" * 45),
            ("SET", "n", "-9223372036854775808"), ("SET", "z", "012"),
            ("OBJECT", "ENCODING", "i"), ("OBJECT", "ENCODING", "e"), ("OBJECT", "ENCODING", "r"),
            ("OBJECT", "ENCODING", "n"), ("OBJECT", "ENCODING", "z"),
            ("OBJECT", "ENCODING", "nosuch"), ("OBJECT", "FOO"), ("OBJECT", "ENCODING"),
            ("MEMORY", "USAGE", "nosuch"), ("MEMORY", "USAGE", "i", "FOO"),
            ("MEMORY", "USAGE", "i", "SAMPLES"), ("MEMORY", "USAGE", "i", "SAMPLES", "x"),
            ("SCAN", "0", "TYPE", "bogus"),
        )
        for srv in (self.server, self.redis):
            c = srv.conn()
            c.cmd("SET", "i", "1")
            self.assertIsInstance(c.cmd("MEMORY", "USAGE", "i"), int)
            self.assertIsInstance(c.cmd("MEMORY", "USAGE", "i", "SAMPLES", "5"), int)
            c.cmd("FLUSHALL")


@engram_only
class TestSearchesWhileTheKeyGoes(ServerTestCase):
    """A set whose key goes away while searches run: they finish (a whole
    answer, or 'no such index'), nothing crashes, and the server serves on."""

    N = 4000

    def big(self, c, key="big"):
        self.assertEqual(c.cmd("VNEW", key, "16", "TYPE", "flat", "METRIC", "l2"), "OK")
        c.send(b"".join(encode("VADD", key, "b%d" % i, blob(*([float(i)] * 16)))
                        for i in range(self.N)))
        for _ in range(self.N):
            c.read()

    def run_case(self, action):
        c = self.conn()
        self.big(c)
        conns = [self.conn() for _ in range(3)]
        q = blob(*([5.0] * 16))
        for cc in conns:
            cc.send(encode("VSEARCH", "big", q, "3") * 60)
        conns[0].read()
        action(c)
        for j, cc in enumerate(conns):
            for t in range(1 if j == 0 else 0, 60):
                r = cc.read()
                if isinstance(r, RespError):
                    self.assertEqual(str(r), "ERR no such index 'big'")
                else:
                    self.assertEqual(r[0], b"b5")
            cc.close()
        self.assertEqual(c.cmd("PING"), "PONG")
        c.cmd("FLUSHALL")

    def test_del(self):
        self.run_case(lambda c: self.assertEqual(c.cmd("DEL", "big"), 1))

    def test_unlink(self):
        self.run_case(lambda c: self.assertEqual(c.cmd("UNLINK", "big"), 1))

    def test_rename(self):
        self.run_case(lambda c: self.assertEqual(c.cmd("RENAME", "big", "other"), "OK"))

    def test_expire(self):
        self.run_case(lambda c: self.assertEqual(c.cmd("PEXPIRE", "big", "1"), 1))

    def test_move_and_swapdb(self):
        self.run_case(lambda c: self.assertEqual(c.cmd("MOVE", "big", "2"), 1))
        self.run_case(lambda c: self.assertEqual(c.cmd("SWAPDB", "0", "9"), "OK"))

    def test_flush_async_and_overwrite(self):
        self.run_case(lambda c: self.assertEqual(c.cmd("FLUSHALL", "ASYNC"), "OK"))
        self.run_case(lambda c: self.assertEqual(c.cmd("SET", "big", "a string now"), "OK"))

    def test_lazy_free_thread(self):
        """UNLINK of a big set hands it to the lazy-free thread; INFO counts
        the objects still waiting, and the server answers meanwhile."""
        c = self.conn()
        self.big(c, "lz")
        self.assertEqual(c.cmd("UNLINK", "lz"), 1)
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertTrue(wait_until(lambda: parse_info(c.cmd("INFO", "memory"))
                                   ["lazyfree_pending_objects"] == "0", 10))


class PersistBase(unittest.TestCase):
    """Servers of our own on a data directory that outlives them."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="engram-ks-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.srvs = []

    def tearDown(self):
        for s in self.srvs:
            if s.alive():
                s.kill()
            s.cleanup()

    def start(self, *flags):
        s = Server(["--dir", self.dir, "--appendfsync", "always"] + list(flags)).start()
        self.srvs.append(s)
        c = s.conn()
        self.assertTrue(wait_until(lambda: parse_info(c.cmd("INFO", "persistence"))["loading"]
                                   == "0", 20))
        return s, c


@engram_only
class TestPersistence(PersistBase):
    """Databases, vector-set keys and the key commands on them survive a
    restart, from the log (kill -9) and from a snapshot."""

    def populate(self, c):
        self.assertEqual(c.cmd("SET", "s0", "zero"), "OK")
        self.assertEqual(c.cmd("VNEW", "v", "4", "METRIC", "l2"), "OK")
        add_vectors(c, "v", 30)
        self.assertEqual(c.cmd("PEXPIRE", "v", "3600000"), 1)
        self.assertEqual(c.cmd("SELECT", "2"), "OK")
        self.assertEqual(c.cmd("SET", "s2", "two"), "OK")
        self.assertEqual(c.cmd("VNEW", "w", "2", "TYPE", "flat", "EMBED", "hash"), "OK")
        self.assertEqual(c.cmd("VADD", "w", "x", blob(1, 0)), 1)
        self.assertEqual(c.cmd("COPY", "w", "wc", "DB", "3"), 1)
        self.assertEqual(c.cmd("SELECT", "0"), "OK")
        self.assertEqual(c.cmd("COPY", "v", "vc"), 1)
        self.assertEqual(c.cmd("VDEL", "vc", "k0"), 1)
        self.assertEqual(c.cmd("RENAME", "vc", "vr"), "OK")
        self.assertEqual(c.cmd("MOVE", "vr", "4"), 1)
        self.assertEqual(c.cmd("SET", "gone", "1"), "OK")
        self.assertEqual(c.cmd("MOVE", "gone", "7"), 1)
        self.assertEqual(c.cmd("SWAPDB", "7", "8"), "OK")
        self.assertEqual(c.cmd("VNEW", "dropped", "4"), "OK")
        self.assertEqual(c.cmd("UNLINK", "dropped"), 1)

    def check(self, c):
        self.assertEqual(c.cmd("GET", "s0"), b"zero")
        self.assertEqual(c.cmd("VCARD", "v"), 30)
        self.assertGreater(c.cmd("PTTL", "v"), 3000000)
        self.assertEqual(c.cmd("VSEARCH", "v", blob(9, 9, 9, 9), "1"), [b"k9", b"0"])
        self.assertEqual(c.cmd("EXISTS", "dropped", "vc"), 0)
        self.assertEqual(c.cmd("SELECT", "2"), "OK")
        self.assertEqual(c.cmd("GET", "s2"), b"two")
        self.assertEqual(info_field(c.cmd("VINFO", "w", "FULL"), b"embed"), b"hash")
        self.assertEqual(c.cmd("SELECT", "3"), "OK")
        self.assertEqual(c.cmd("VCARD", "wc"), 1)
        self.assertEqual(info_field(c.cmd("VINFO", "wc", "FULL"), b"embed"), b"hash")
        self.assertEqual(c.cmd("SELECT", "4"), "OK")
        self.assertEqual(c.cmd("VCARD", "vr"), 29)
        self.assertGreater(c.cmd("TTL", "vr"), 3000)             # COPY copies the TTL, as Redis
        self.assertEqual(c.cmd("SELECT", "7"), "OK")
        self.assertEqual(c.cmd("DBSIZE"), 0)
        self.assertEqual(c.cmd("SELECT", "8"), "OK")
        self.assertEqual(c.cmd("GET", "gone"), b"1")
        self.assertEqual(c.cmd("SELECT", "0"), "OK")

    def test_log_after_kill9(self):
        s, c = self.start()
        self.populate(c)
        s.kill()
        s2, c2 = self.start()
        self.check(c2)

    def test_snapshot(self):
        s, c = self.start()
        self.populate(c)
        self.assertEqual(c.cmd("SAVE"), "OK")
        s.kill()
        s2, c2 = self.start()
        self.check(c2)
        # and a snapshot written by the restarted server, after more log
        self.assertEqual(c2.cmd("SELECT", "9"), "OK")
        self.assertEqual(c2.cmd("SET", "later", "1"), "OK")
        self.assertEqual(c2.cmd("SAVE"), "OK")
        s2.stop()
        s3, c3 = self.start()
        self.check(c3)
        self.assertEqual(c3.cmd("SELECT", "9"), "OK")
        self.assertEqual(c3.cmd("GET", "later"), b"1")

    def test_a_log_for_more_databases_than_configured_is_refused(self):
        s, c = self.start()
        self.assertEqual(c.cmd("SELECT", "12"), "OK")
        self.assertEqual(c.cmd("SET", "k", "1"), "OK")
        s.stop()
        bad = Server(["--dir", self.dir, "--databases", "4"])
        # it refuses to start; it may have let clients in (they get -LOADING)
        # while loading, so it may exit just before or just after accepting
        try:
            bad.start()
        except ServerError as e:
            msg = str(e)
        else:
            self.assertNotEqual(bad.wait_exit(20), 0)
            msg = bad.stderr()
            bad.cleanup()
        self.assertIn("database 12, past the 4 configured (databases)", msg)


@engram_only
class TestOldFormat(PersistBase):
    """A data directory from before databases (snapshot format 1 and its
    log, tests/integration/data/v1-dataset) loads into database 0, its
    indices as vector-set keys, and is written back in the new format."""

    def test_v1_dataset_loads(self):
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "v1-dataset")
        for name in os.listdir(src):
            if name != "README.md":
                shutil.copy(os.path.join(src, name), self.dir)
        for round_ in range(2):
            s, c = self.start()
            self.assertEqual(c.cmd("GET", "plain"), b"value")
            self.assertEqual(c.cmd("GET", "after"), b"1")
            self.assertIn(c.cmd("TTL", "ttl"), range(-2, 100001))   # it may have expired since
            self.assertEqual(sorted(c.cmd("VLIST")), [b"cos", b"late", b"ring"])
            self.assertEqual(c.cmd("TYPE", "cos"), "vectorset")
            self.assertEqual(c.cmd("VCARD", "cos"), 21)            # 20 + t1 + k99 - k0
            self.assertEqual(c.cmd("VEXISTS", "cos", "k0"), 0)
            self.assertEqual(c.cmd("VEXISTS", "cos", "k99"), 1)
            self.assertEqual(info_field(c.cmd("VINFO", "cos", "FULL"), b"embed"), b"hash")
            self.assertEqual(c.cmd("VCARD", "ring"), 5)
            self.assertEqual(c.cmd("VGET", "ring", "8", "WITHPAYLOAD")[1], b"p7")
            self.assertEqual(c.cmd("VCARD", "late"), 1)
            self.assertEqual(c.cmd("EXISTS", "gone"), 0)
            self.assertEqual(c.cmd("DBSIZE"), 6 if c.cmd("EXISTS", "ttl") else 5)
            if round_ == 0:
                self.assertEqual(c.cmd("SAVE"), "OK")          # now in the new format
            s.stop()


def info_field(reply, name):
    return dict(zip(reply[::2], reply[1::2]))[name]


if __name__ == "__main__":
    main()
