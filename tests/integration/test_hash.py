"""Hashes: the Redis 7.0 hash commands next to a live Redis 7.0, Redis 7.4-8's
field expiry from its documented behaviour, the keyspace commands on
hashes, and persistence.

  * TestAgainstRedis: the same requests give byte-identical replies from
    engram and from a Redis 7.0 started in the same run, in RESP2 and RESP3:
    every 7.0 hash command (HSET ... HSCAN, HRANDFIELD, HMSET), their errors
    and their order of checks, WRONGTYPE both ways, OBJECT ENCODING across
    both thresholds (CONFIG SET), TYPE / SCAN TYPE / RENAME / COPY / MOVE /
    SWAPDB / EXPIRE on hashes, MULTI/EXEC, WATCH and pipelining.  Small
    hashes answer in Redis's listpack order, so whole replies compare; a
    hash table's order is its own, so big hashes compare as sets.
  * TestFieldExpiry (engram-only: Redis 7.0 has no field expiry): HEXPIRE,
    HPEXPIRE, HEXPIREAT, HPEXPIREAT (-2/0/1/2 and NX|XX|GT|LT), HTTL,
    HPTTL, HEXPIRETIME, HPEXPIRETIME, HPERSIST, HGETDEL, HGETEX, HSETEX --
    grammar, error texts and replies as Redis 8 gives them; lazy expiry
    (HLEN counts an expired field, a read deletes it, the last one takes
    the key), active expiry (both encodings, after RENAME / MOVE / COPY /
    SWAPDB too), listpackex and its order, WATCH, INFO expired_subkeys.
  * TestHashPersistence (engram-only): the same hashes -- fields, values,
    deadlines, key TTLs, encodings, databases -- after kill -9 (log only),
    after SAVE + kill -9 (snapshot only) and snapshot + log; a deadline that
    passes while the server is down; a key recreated over a stale one.
"""

import time

from engram_test import (IS_REDIS, SLOW, RespError, Server, ServerTestCase, encode,
                         engram_only, main, parse_info, wait_until)
import test_persist as tp

E_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def pairs(flat):
    """A flat field/value list (or a RESP3 map) as a dict."""
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


REDIS = []     # the module's Redis 7.0, started once


def setUpModule():
    REDIS.append(Server(redis=True).start())


def tearDownModule():
    while REDIS:
        REDIS.pop().stop()


class TestAgainstRedis(ServerTestCase):
    """engram (the class's server) next to the module's Redis 7.0."""

    @property
    def redis(self):
        return REDIS[0]

    def setUp(self):
        super().setUp()
        r = self.redis.conn()
        r.cmd("FLUSHALL")
        r.cmd("CONFIG", "SET", "hash-max-listpack-entries", "128")
        r.cmd("CONFIG", "SET", "hash-max-listpack-value", "64")
        r.close()
        c = self.conn()
        c.cmd("CONFIG", "SET", "hash-max-listpack-entries", "128")
        c.cmd("CONFIG", "SET", "hash-max-listpack-value", "64")

    def both(self, requests, resp=2):
        """The same requests on a fresh connection to each server (RESP3
        after HELLO 3, whose reply is not compared); their raw replies."""
        out = []
        for srv in (self.server, self.redis):
            c = srv.conn()
            if resp == 3:
                c.cmd("HELLO", "3")
            out.append([c.raw_cmd(*req) for req in requests])
            c.close()
        return out

    def same(self, *requests, resp=(2, 3)):
        for proto in resp:
            for srv in (self.server, self.redis):
                srv.conn().cmd("FLUSHALL")
            mine, theirs = self.both(requests, proto)
            for req, a, b in zip(requests, mine, theirs):
                self.assertEqual(a, b, "RESP%d: reply to %r differs from Redis's" % (proto, req))

    # -- the commands

    def test_set_get_del(self):
        self.same(
            ("HSET", "h", "a", "1", "b", "2", "c", "3"), ("HSET", "h", "a", "9", "d", "4"),
            ("HGET", "h", "a"), ("HGET", "h", "zz"), ("HGET", "nokey", "a"),
            ("HMGET", "h", "a", "zz", "d"), ("HMGET", "nokey", "a", "b"),
            ("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"), ("HLEN", "h"),
            ("HGETALL", "nokey"), ("HKEYS", "nokey"), ("HVALS", "nokey"), ("HLEN", "nokey"),
            ("HSTRLEN", "h", "a"), ("HSTRLEN", "h", "zz"), ("HSTRLEN", "nokey", "a"),
            ("HEXISTS", "h", "b"), ("HEXISTS", "h", "zz"), ("HEXISTS", "nokey", "b"),
            ("HSETNX", "h", "a", "x"), ("HSETNX", "h", "e", "5"), ("HSETNX", "new", "f", "v"),
            ("HMSET", "h", "f", "6", "a", "10"), ("HGETALL", "h"),
            ("HDEL", "h", "a", "zz", "a"), ("HDEL", "nokey", "a"), ("HGETALL", "h"),
            ("HDEL", "h", "b", "c", "d", "e", "f"), ("EXISTS", "h"), ("HLEN", "h"),
            ("HSET", "bin", b"\x00f", b"v\x00", "", ""), ("HGETALL", "bin"),
            ("HGET", "bin", ""), ("HGET", "bin", b"\x00f"),
        )

    def test_arity_and_syntax(self):
        self.same(
            ("HSET", "h"), ("HSET", "h", "a"), ("HSET", "h", "a", "1", "b"),
            ("HMSET", "h", "a"), ("HMSET", "h", "a", "1", "b"), ("HGET", "h"),
            ("HGET", "h", "a", "b"), ("HMGET", "h"), ("HDEL", "h"), ("HLEN",),
            ("HSETNX", "h", "a"), ("HINCRBY", "h", "a"), ("HINCRBYFLOAT", "h"),
            ("HGETALL", "h", "x"), ("HSCAN", "h"), ("HRANDFIELD",), ("HSTRLEN", "h"),
            ("HEXISTS", "h"), ("HKEYS",), ("HVALS", "h", "x"),
        )

    def test_wrongtype(self):
        self.same(
            ("SET", "s", "v"), ("HSET", "h", "f", "1"),
            ("HSET", "s", "a", "1"), ("HSETNX", "s", "a", "1"), ("HMSET", "s", "a", "1"),
            ("HGET", "s", "a"), ("HMGET", "s", "a"), ("HDEL", "s", "a"), ("HLEN", "s"),
            ("HSTRLEN", "s", "a"), ("HEXISTS", "s", "a"), ("HINCRBY", "s", "a", "1"),
            ("HINCRBYFLOAT", "s", "a", "1"), ("HGETALL", "s"), ("HKEYS", "s"), ("HVALS", "s"),
            ("HSCAN", "s", "0"), ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "2"),
            ("GET", "h"), ("SET", "h2", "x", "GET"), ("GETSET", "h", "x"), ("GETDEL", "h"),
            ("GETEX", "h", "EX", "10"), ("APPEND", "h", "x"), ("STRLEN", "h"),
            ("INCR", "h"), ("DECRBY", "h", "3"), ("INCRBYFLOAT", "h", "1.5"),
            ("GETRANGE", "h", "0", "1"), ("SETRANGE", "h", "0", "x"), ("MGET", "h", "s"),
            ("SET", "h", "v", "XX", "GET"), ("TYPE", "h"), ("TYPE", "s"),
            ("SET", "h", "now a string"), ("TYPE", "h"), ("GET", "h"),
        )

    def test_incr(self):
        self.same(
            ("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "n", "-7"), ("HINCRBY", "h", "n", "x"),
            ("HINCRBY", "h", "n", "1.5"), ("HSET", "h", "s", "abc", "big", "9223372036854775807"),
            ("HINCRBY", "h", "s", "1"), ("HINCRBY", "h", "big", "1"), ("HINCRBY", "h", "big", "0"),
            ("HSET", "h", "neg", "-9223372036854775808"), ("HINCRBY", "h", "neg", "-1"),
            ("HINCRBY", "nokey", "a", "99999999999999999999"), ("EXISTS", "nokey"),
            ("HINCRBYFLOAT", "h", "f", "10.5"), ("HINCRBYFLOAT", "h", "f", "0.1"),
            ("HINCRBYFLOAT", "h", "f", "-5"), ("HINCRBYFLOAT", "h", "f", "5.0e3"),
            ("HINCRBYFLOAT", "h", "f", "1e-17"), ("HINCRBYFLOAT", "h", "s", "1"),
            ("HINCRBYFLOAT", "h", "f", "abc"), ("HINCRBYFLOAT", "h", "f", "inf"),
            ("HINCRBYFLOAT", "h", "f", "nan"), ("HINCRBYFLOAT", "huge", "n", "1e308"),
            ("HINCRBYFLOAT", "huge", "n", "1e308"), ("HINCRBYFLOAT", "h", "i", "3"),
            ("HINCRBY", "h", "i", "1"), ("HGETALL", "h"), ("HINCRBYFLOAT", "nokey2", "x", "y"),
            ("EXISTS", "nokey2"),
        )

    def test_randfield(self):
        self.same(
            ("HSET", "h", "a", "1", "b", "2", "c", "3"),
            ("HRANDFIELD", "h", "3"), ("HRANDFIELD", "h", "10"), ("HRANDFIELD", "h", "3", "WITHVALUES"),
            ("HRANDFIELD", "h", "99", "withvalues"), ("HRANDFIELD", "h", "0"),
            ("HRANDFIELD", "h", "0", "WITHVALUES"), ("HRANDFIELD", "nokey"),
            ("HRANDFIELD", "nokey", "5"), ("HRANDFIELD", "nokey", "-5", "WITHVALUES"),
            ("HRANDFIELD", "h", "x"), ("HRANDFIELD", "h", "1", "x"),
            ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
            ("HRANDFIELD", "h", "-9223372036854775808"),
            ("HRANDFIELD", "h", "9223372036854775807", "WITHVALUES"),
            ("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"),
            ("HSET", "one", "f", "v"), ("HRANDFIELD", "one"), ("HRANDFIELD", "one", "-3"),
            ("HRANDFIELD", "one", "-2", "WITHVALUES"), ("HRANDFIELD", "one", "1", "WITHVALUES"),
        )
        # random picks: right shapes and members, in both protocols
        c = self.conn()
        fields = [b"f%d" % i for i in range(300)]
        for i in range(0, 300, 100):
            c.cmd("HSET", "big", *[x for f in fields[i:i + 100] for x in (f, b"v" + f)])
        for n in (1, 5, 150, 299, 300, 400):
            got = c.cmd("HRANDFIELD", "big", n)
            self.assertEqual(len(got), min(n, 300))
            self.assertEqual(len(set(got)), len(got))
            self.assertTrue(set(got) <= set(fields))
        got = c.cmd("HRANDFIELD", "big", -500)
        self.assertEqual(len(got), 500)
        self.assertTrue(set(got) <= set(fields))
        got = c.cmd("HRANDFIELD", "big", 7, "WITHVALUES")
        self.assertEqual(len(got), 14)
        for f, v in pairs(got).items():
            self.assertEqual(v, b"v" + f)
        c.cmd("HELLO", "3")
        got = c.cmd("HRANDFIELD", "big", -3, "WITHVALUES")
        self.assertEqual(len(got), 3)
        for f, v in got:
            self.assertEqual(v, b"v" + f)
        self.assertIn(c.cmd("HRANDFIELD", "big"), fields)

    def test_scan(self):
        self.same(
            ("HSET", "h", "a1", "1", "b1", "2", "a2", "3"),
            ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "MATCH", "a*"),
            ("HSCAN", "h", "0", "MATCH", "*", "COUNT", "1"), ("HSCAN", "h", "0", "COUNT", "0"),
            ("HSCAN", "h", "0", "COUNT", "x"), ("HSCAN", "h", "0", "MATCH"),
            ("HSCAN", "h", "0", "foo", "bar"), ("HSCAN", "h", "x"), ("HSCAN", "h", "-1"),
            ("HSCAN", "nokey", "0"), ("HSCAN", "nokey", "0", "foo"), ("HSCAN", "h", "0", "TYPE", "hash"),
            ("HSCAN", "h", "18446744073709551616"),
        )
        # a hash table: a full iteration sees every field
        c = self.conn()
        want = {b"f%d" % i: b"v%d" % i for i in range(1000)}
        c.cmd("HSET", "big", *[x for kv in want.items() for x in kv])
        self.assertEqual(c.cmd("OBJECT", "ENCODING", "big"), b"hashtable")
        seen, cursor, steps = {}, b"0", 0
        while True:
            cursor, items = c.cmd("HSCAN", "big", cursor, "COUNT", 50)
            seen.update(pairs(items))
            steps += 1
            if cursor == b"0":
                break
        self.assertEqual(seen, want)
        self.assertGreater(steps, 5)
        cursor, items = c.cmd("HSCAN", "big", 0, "MATCH", "f99*", "COUNT", 5000)
        self.assertEqual(sorted(items[0::2]), sorted(k for k in want if k.startswith(b"f99")))

    def test_encodings(self):
        fields = ["f%d" % i for i in range(129)]
        pairs_ = [x for f in fields for x in (f, "v")]
        self.same(
            ("HSET", "h", *pairs_[:256]), ("OBJECT", "ENCODING", "h"),
            ("HSET", "h", *pairs_[256:]), ("OBJECT", "ENCODING", "h"),
            ("HDEL", "h", *fields[:120]), ("OBJECT", "ENCODING", "h"),       # never back
            ("HSET", "v", "f", "x" * 64), ("OBJECT", "ENCODING", "v"),
            ("HSET", "v", "g", "x" * 65), ("OBJECT", "ENCODING", "v"),
            ("HSET", "w", "y" * 65, "1"), ("OBJECT", "ENCODING", "w"),
            ("HSETNX", "x", "f", "x" * 65), ("OBJECT", "ENCODING", "x"),
            ("HSET", "n", "f", "1"), ("HINCRBYFLOAT", "n", "f", "1e60"), ("OBJECT", "ENCODING", "n"),
            ("HINCRBYFLOAT", "n", "f", "1e60"), ("OBJECT", "ENCODING", "n"),
            ("CONFIG", "SET", "hash-max-listpack-entries", "2"),
            ("HSET", "c", "a", "1", "b", "2"), ("OBJECT", "ENCODING", "c"),
            ("HSET", "c", "c", "3"), ("OBJECT", "ENCODING", "c"),
            ("CONFIG", "SET", "hash-max-listpack-entries", "0"),
            ("HSET", "z", "a", "1"), ("OBJECT", "ENCODING", "z"),
            ("CONFIG", "SET", "hash-max-listpack-entries", "128"),
            ("CONFIG", "SET", "hash-max-listpack-value", "3"),
            ("HSET", "d", "a", "123"), ("OBJECT", "ENCODING", "d"),
            ("HSET", "d", "b", "1234"), ("OBJECT", "ENCODING", "d"),
            ("CONFIG", "SET", "hash-max-listpack-value", "64"),
            ("CONFIG", "GET", "hash-max-listpack-entries"), ("CONFIG", "GET", "hash-max-listpack-value"),
            ("CONFIG", "SET", "hash-max-listpack-entries", "-1"),
            ("CONFIG", "SET", "hash-max-listpack-value", "1kb"),
            ("CONFIG", "GET", "hash-max-listpack-value"),
            resp=(2,),
        )
        c = self.conn()
        self.assertIsInstance(c.cmd("MEMORY", "USAGE", "h"), int)

    def test_keyspace_commands(self):
        self.same(
            ("HSET", "h", "a", "1", "b", "2"), ("TYPE", "h"), ("EXISTS", "h", "h"),
            ("SET", "s", "x"), ("SCAN", "0", "TYPE", "hash"), ("SCAN", "0", "TYPE", "HASH"),
            ("KEYS", "h*"), ("DBSIZE",),
            ("RENAME", "h", "h2"), ("HGETALL", "h2"), ("EXISTS", "h"),
            ("HSET", "h3", "z", "9"), ("RENAMENX", "h2", "h3"), ("RENAME", "h2", "s"),
            ("TYPE", "s"), ("HGETALL", "s"), ("COPY", "s", "c"), ("COPY", "s", "c"),
            ("HSET", "c", "n", "1"), ("HGETALL", "s"), ("HGETALL", "c"),
            ("COPY", "c", "s", "REPLACE"), ("HGETALL", "s"), ("COPY", "s", "x", "DB", "5"),
            ("MOVE", "c", "5"), ("MOVE", "s", "5"), ("SELECT", "5"), ("HGETALL", "c"),
            ("HGETALL", "x"), ("TYPE", "x"), ("SELECT", "0"), ("EXISTS", "c"),
            ("SWAPDB", "0", "5"), ("HGETALL", "c"), ("DBSIZE",), ("SWAPDB", "0", "5"),
            ("EXPIRE", "s", "100"), ("TTL", "s"), ("PERSIST", "s"), ("TTL", "s"),
            ("PEXPIRE", "s", "0"), ("EXISTS", "s"), ("HGETALL", "s"),
            ("HSET", "u", "a", "1"), ("UNLINK", "u", "h3"), ("EXISTS", "u", "h3"),
            ("HSET", "d", "a", "1"), ("DEL", "d"), ("HGET", "d", "a"),
            ("HSET", "f", "a", "1"), ("FLUSHDB",), ("DBSIZE",),
            ("HSET", "f", "a", "1"), ("SET", "f", "str"), ("TYPE", "f"),
            ("HSET", "g", "a", "1"), ("OBJECT", "ENCODING", "g"), ("OBJECT", "ENCODING", "nokey"),
        )
        c = self.conn()
        c.cmd("FLUSHALL")
        c.cmd("HSET", "only", "a", "1")
        self.assertEqual(c.cmd("RANDOMKEY"), b"only")
        # big hashes go to the lazy-free thread on UNLINK and DEL alike
        c.cmd("HSET", "big", *[x for i in range(20000) for x in (b"f%d" % i, b"x" * 60)])
        self.assertGreater(c.cmd("MEMORY", "USAGE", "big"), 1 << 20)
        self.assertEqual(c.cmd("DEL", "big"), 1)
        self.assertEqual(c.cmd("EXISTS", "big"), 0)

    def test_transactions_and_watch(self):
        self.same(
            ("MULTI",), ("HSET", "h", "a", "1"), ("HINCRBY", "h", "a", "2"), ("HGET", "h", "a"),
            ("HSET", "h", "odd"), ("EXEC",),
            ("MULTI",), ("HSET", "h", "b", "1"), ("HINCRBY", "h", "a", "x"), ("HGETALL", "h"),
            ("EXEC",),
        )
        c, other = self.conn(), self.conn()
        for write in (("HSET", "w", "a", "2"), ("HDEL", "w", "a"), ("HINCRBY", "w", "a", "1"),
                      ("HINCRBYFLOAT", "w", "a", "1"), ("HSETNX", "w", "new", "1"),
                      ("HMSET", "w", "a", "3")):
            other.cmd("HSET", "w", "a", "1")
            self.assertEqual(c.cmd("WATCH", "w"), "OK")
            other.cmd(*write)
            c.cmd("MULTI")
            c.cmd("HGET", "w", "a")
            self.assertIsNone(c.cmd("EXEC"), "%r did not invalidate WATCH" % (write,))
        # reads and writes that change nothing do not
        for noop in (("HGET", "w", "a"), ("HGETALL", "w"), ("HDEL", "w", "nope"),
                     ("HSETNX", "w", "a", "9")):
            self.assertEqual(c.cmd("WATCH", "w"), "OK")
            other.cmd(*noop)
            c.cmd("MULTI")
            c.cmd("HGET", "w", "a")
            self.assertIsNotNone(c.cmd("EXEC"), "%r invalidated WATCH" % (noop,))

    def test_pipelining(self):
        reqs = []
        for i in range(300):
            reqs.append(("HSET", "p%d" % (i % 7), "f%d" % i, "v%d" % i))
            reqs.append(("HINCRBY", "cnt", "f%d" % (i % 5), i))
            if i % 10 == 0:
                reqs.append(("HDEL", "p%d" % (i % 7), "f%d" % (i - 10)))
                reqs.append(("HLEN", "p%d" % (i % 7)))
        reqs += [("HGETALL", "cnt"), ("HLEN", "p3")]
        for srv in (self.server, self.redis):
            srv.conn().cmd("FLUSHALL")
        out = []
        for srv in (self.server, self.redis):
            c = srv.conn()
            c.send(b"".join(encode(*r) for r in reqs))
            out.append([c.read_raw() for _ in reqs])
        self.assertEqual(out[0], out[1])


@engram_only
class TestFieldExpiry(ServerTestCase):
    """Redis 7.4-8's field expiry, as its documentation and tests describe it."""

    def setUp(self):
        super().setUp()
        self.c = self.conn()
        self.c.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "1")

    def cmd(self, *a):
        return self.c.cmd(*a)

    def err(self, req, text):
        v = self.c.cmd(*req)
        self.assertIsInstance(v, RespError, "%r: expected %r, got %r" % (req, text, v))
        self.assertEqual(str(v), text, req)

    def now_ms(self):
        s, us = self.cmd("TIME")
        return int(s) * 1000 + int(us) // 1000

    def lazy_only(self):
        self.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        self.addCleanup(lambda: self.conn().cmd("DEBUG", "SET-ACTIVE-EXPIRE", "1"))

    def test_hexpire_codes_and_conditions(self):
        for cmdname in ("HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT"):
            self.assertEqual(self.cmd(cmdname, "nokey", 1000, "FIELDS", 2, "a", "b"), [-2, -2])
        self.cmd("HSET", "h", "f1", "v1", "f2", "v2", "f3", "v3")
        self.assertEqual(self.cmd("HPEXPIRE", "h", 100000, "NX", "FIELDS", 1, "f1"), [1])
        self.assertEqual(self.cmd("HPEXPIRE", "h", 100000, "NX", "FIELDS", 2, "f1", "f2"), [0, 1])
        self.assertEqual(self.cmd("HPEXPIRE", "h", 200000, "XX", "FIELDS", 2, "f1", "f3"), [1, 0])
        self.assertEqual(self.cmd("HPEXPIRE", "h", 150000, "GT", "FIELDS", 3, "f1", "f2", "f3"),
                         [0, 1, 0])
        # a field without a deadline meets LT (Redis 8) and NX, not XX or GT
        self.assertEqual(self.cmd("HPEXPIRE", "h", 120000, "LT", "FIELDS", 3, "f1", "f2", "f3"),
                         [1, 1, 1])
        self.assertEqual(self.cmd("HPTTL", "h", "FIELDS", 3, "f1", "f2", "f3", "nope"),
                         RespError("ERR The `numfields` parameter must match the number of arguments"))
        ttl = self.cmd("HPTTL", "h", "FIELDS", 4, "f1", "f2", "f3", "nope")
        self.assertTrue(all(110000 < t <= 120000 for t in ttl[:3]), ttl)
        self.assertEqual(ttl[3], -2)
        # a deadline not in the future deletes (2), the last field takes the key
        past = self.now_ms() // 1000 - 1
        self.assertEqual(self.cmd("HEXPIREAT", "h", past, "FIELDS", 4, "f1", "f2", "zz", "f1"),
                         [2, 2, -2, -2])
        self.assertEqual(self.cmd("HKEYS", "h"), [b"f3"])
        self.assertEqual(self.cmd("HPEXPIRE", "h", 0, "FIELDS", 1, "f3"), [2])
        self.assertEqual(self.cmd("EXISTS", "h"), 0)
        stats = parse_info(self.cmd("INFO", "stats"))
        self.assertGreaterEqual(int(stats["expired_subkeys"]), 3)

    def test_hexpire_errors(self):
        self.cmd("HSET", "h", "f1", "v1")
        self.cmd("SET", "s", "v")
        self.err(("HEXPIRE", "s", 10, "FIELDS", 1, "f"), E_WRONGTYPE)
        self.err(("HEXPIRE", "s", "x", "FIELDS", 1, "f"), E_WRONGTYPE)      # the type first
        self.err(("HEXPIRE", "h", -1, "FIELDS", 1, "f1"), "ERR invalid expire time, must be >= 0")
        self.err(("HEXPIRE", "h", "x", "FIELDS", 1, "f1"),
                 "ERR value is not an integer or out of range")
        self.err(("HEXPIRE", "h", (1 << 48) // 1000, "FIELDS", 1, "f1"),
                 "ERR invalid expire time in 'hexpire' command")
        self.err(("HPEXPIRE", "h", 1 << 48, "FIELDS", 1, "f1"),
                 "ERR invalid expire time in 'hpexpire' command")
        self.err(("HPEXPIREAT", "h", (1 << 46), "FIELDS", 1, "f1"),
                 "ERR invalid expire time in 'hpexpireat' command")
        self.assertEqual(self.cmd("HPEXPIREAT", "h", (1 << 46) - 1, "FIELDS", 1, "f1"), [1])
        self.err(("HEXPIRE", "h", 10, "FIELD", 1, "f1"),
                 "ERR Mandatory argument FIELDS is missing or not at the right position")
        self.err(("HEXPIRE", "h", 10, "NX", "XX", "FIELDS", 1, "f1"),
                 "ERR Mandatory argument FIELDS is missing or not at the right position")
        for n in ("0", "-1", "x"):
            self.err(("HEXPIRE", "h", 10, "FIELDS", n, "f1"),
                     "ERR Parameter `numFields` should be greater than 0")
        self.err(("HEXPIRE", "h", 10, "FIELDS", 2, "f1"),
                 "ERR The `numfields` parameter must match the number of arguments")
        self.err(("HEXPIRE", "h", 10, "FIELDS", 1), "ERR wrong number of arguments for 'hexpire' command")
        for name in ("HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME", "HPERSIST", "HGETDEL",
                     "HGETEX"):
            self.err((name, "s", "FIELDS", 1, "f"), E_WRONGTYPE)
            self.err((name, "h", "FIELDS", 0, "f"), "ERR Number of fields must be a positive integer")
            self.err((name, "h", "FIELDS", 2, "f"),
                     "ERR The `numfields` parameter must match the number of arguments")
            self.err((name, "h", "FIELDX", 1, "f"),
                     "ERR Mandatory argument FIELDS is missing or not at the right position")
        self.err(("HSETEX", "s", "FIELDS", 1, "f", "v"), E_WRONGTYPE)

    def test_ttl_family_and_persist(self):
        self.assertEqual(self.cmd("HTTL", "nokey", "FIELDS", 2, "a", "b"), [-2, -2])
        self.assertEqual(self.cmd("HPERSIST", "nokey", "FIELDS", 1, "a"), [-2])
        self.cmd("HSET", "h", "a", "1", "b", "2")
        self.assertEqual(self.cmd("HTTL", "h", "FIELDS", 2, "a", "zz"), [-1, -2])
        at = self.now_ms() + 100500
        self.assertEqual(self.cmd("HPEXPIREAT", "h", at, "FIELDS", 1, "a"), [1])
        self.assertEqual(self.cmd("HPEXPIRETIME", "h", "FIELDS", 2, "a", "b"), [at, -1])
        self.assertEqual(self.cmd("HEXPIRETIME", "h", "FIELDS", 1, "a"), [(at + 999) // 1000])
        ttl = self.cmd("HTTL", "h", "FIELDS", 1, "a")[0]
        self.assertIn(ttl, (100, 101))                       # rounded up, as Redis
        self.assertEqual(self.cmd("HPERSIST", "h", "FIELDS", 3, "a", "b", "zz"), [1, -1, -2])
        self.assertEqual(self.cmd("HTTL", "h", "FIELDS", 1, "a"), [-1])
        # an expired field not yet removed answers -2 and stays
        self.lazy_only()
        self.cmd("HPEXPIRE", "h", 1, "FIELDS", 1, "b")
        time.sleep(0.01)
        self.assertEqual(self.cmd("HTTL", "h", "FIELDS", 1, "b"), [-2])
        self.assertEqual(self.cmd("HPERSIST", "h", "FIELDS", 1, "b"), [-2])
        self.assertEqual(self.cmd("HLEN", "h"), 2)

    def test_lazy_expiry(self):
        self.lazy_only()
        self.cmd("HSET", "h", "f1", "v1", "f2", "v2", "f3", "v3", "f4", "v4")
        self.cmd("HPEXPIRE", "h", 1, "NX", "FIELDS", 3, "f1", "f2", "f3")
        time.sleep(0.01)
        self.assertEqual(self.cmd("EXISTS", "h"), 1)
        self.assertEqual(self.cmd("HLEN", "h"), 4)               # counts expired fields
        self.assertEqual(self.cmd("HGETALL", "h"), [b"f4", b"v4"])
        self.assertEqual(self.cmd("HKEYS", "h"), [b"f4"])
        self.assertEqual(self.cmd("HSCAN", "h", 0), [b"0", [b"f4", b"v4"]])
        self.assertEqual(self.cmd("HLEN", "h"), 4)               # none of those deleted
        self.assertEqual(self.cmd("HEXISTS", "h", "f1"), 0)      # this one deletes
        self.assertEqual(self.cmd("HLEN", "h"), 3)
        self.assertIsNone(self.cmd("HGET", "h", "f2"))
        self.assertEqual(self.cmd("HDEL", "h", "f3"), 1)         # HDEL counts it, as Redis
        self.assertEqual(self.cmd("HMGET", "h", "f1", "f4"), [None, b"v4"])
        self.cmd("HPEXPIRE", "h", 1, "FIELDS", 1, "f4")
        time.sleep(0.01)
        self.assertEqual(self.cmd("HSTRLEN", "h", "f4"), 0)      # the last field takes the key
        self.assertEqual(self.cmd("EXISTS", "h"), 0)
        # HINCRBY starts over on an expired field (no deadline any more)
        self.cmd("HSET", "n", "c", "10", "d", "1")
        self.cmd("HPEXPIRE", "n", 1, "FIELDS", 1, "c")
        time.sleep(0.01)
        self.assertEqual(self.cmd("HINCRBY", "n", "c", 1), 1)
        self.assertEqual(self.cmd("HTTL", "n", "FIELDS", 1, "c"), [-1])
        # HRANDFIELD removes every expired field first
        self.cmd("HSET", "r", "a", "1", "b", "2", "c", "3")
        self.cmd("HPEXPIRE", "r", 1, "FIELDS", 2, "a", "b")
        time.sleep(0.01)
        self.assertEqual(self.cmd("HRANDFIELD", "r", 5), [b"c"])
        self.assertEqual(self.cmd("HLEN", "r"), 1)
        self.cmd("HPEXPIRE", "r", 1, "FIELDS", 1, "c")
        time.sleep(0.01)
        self.assertEqual(self.cmd("HRANDFIELD", "r", 5), [])
        self.assertEqual(self.cmd("EXISTS", "r"), 0)
        # HSET over an expired field: a new field, without the old deadline
        self.cmd("HSET", "s", "a", "1", "b", "2")
        self.cmd("HPEXPIRE", "s", 1, "FIELDS", 1, "a")
        time.sleep(0.01)
        self.assertEqual(self.cmd("HSET", "s", "a", "9"), 1)
        self.assertEqual(self.cmd("HTTL", "s", "FIELDS", 1, "a"), [-1])

    def test_active_expiry(self):
        c = self.c
        for enc, n in (("listpackex", 5), ("hashtable", 300)):
            key = "act-" + enc
            c.cmd("HSET", key, *[x for i in range(n) for x in ("f%d" % i, "v")])
            c.cmd("HSET", key + "-mix", *[x for i in range(n) for x in ("f%d" % i, "v")])
            c.cmd("HPEXPIRE", key, 50, "FIELDS", n, *["f%d" % i for i in range(n)])
            c.cmd("HPEXPIRE", key + "-mix", 50, "FIELDS", n - 2, *["f%d" % i for i in range(n - 2)])
            self.assertEqual(c.cmd("OBJECT", "ENCODING", key), enc.encode())
        ok = wait_until(lambda: c.cmd("EXISTS", "act-listpackex", "act-hashtable") == 0, 5)
        self.assertTrue(ok, "fully expired hashes were not deleted by active expiry")
        ok = wait_until(lambda: c.cmd("HLEN", "act-hashtable-mix") == 2 and
                        c.cmd("HLEN", "act-listpackex-mix") == 2, 5)
        self.assertTrue(ok, "expired fields were not removed by active expiry")
        self.assertEqual(c.cmd("HKEYS", "act-listpackex-mix"), [b"f3", b"f4"])
        # after RENAME, MOVE, COPY and SWAPDB too
        for how in ("rename", "move", "copy", "swapdb"):
            c.cmd("SELECT", 0)
            c.cmd("FLUSHALL")
            c.cmd("HSET", "src", "a", "1", "b", "2")
            c.cmd("HPEXPIRE", "src", 80, "FIELDS", 2, "a", "b")
            if how == "rename":
                c.cmd("RENAME", "src", "dst")
            elif how == "move":
                c.cmd("MOVE", "src", 2)
                c.cmd("SELECT", 2)
            elif how == "copy":
                c.cmd("COPY", "src", "dst", "DB", 3)
                c.cmd("SELECT", 3)
            else:
                c.cmd("SWAPDB", 0, 4)
                c.cmd("SELECT", 4)
            self.assertEqual(c.cmd("DBSIZE"), 1, how)
            ok = wait_until(lambda: c.cmd("DBSIZE") == 0, 5)
            self.assertTrue(ok, "the hash was not actively expired after %s" % how)
        c.cmd("SELECT", 0)

    def test_listpackex_order(self):
        self.cmd("HSET", "h", "a", "1", "b", "2", "c", "3")
        self.assertEqual(self.cmd("OBJECT", "ENCODING", "h"), b"listpack")
        self.assertEqual(self.cmd("HEXPIRE", "h", 100, "FIELDS", 1, "zz"), [-2])
        self.assertEqual(self.cmd("OBJECT", "ENCODING", "h"), b"listpackex")   # as Redis
        self.cmd("HEXPIRE", "h", 300, "FIELDS", 1, "c")
        self.cmd("HEXPIRE", "h", 200, "FIELDS", 1, "a")
        self.assertEqual(self.cmd("HKEYS", "h"), [b"a", b"c", b"b"])          # by deadline
        self.cmd("HSET", "h", "a", "9")                                       # drops it: last
        self.assertEqual(self.cmd("HKEYS", "h"), [b"c", b"b", b"a"])
        self.cmd("HPERSIST", "h", "FIELDS", 1, "c")
        self.assertEqual(self.cmd("HKEYS", "h"), [b"b", b"a", b"c"])
        self.assertEqual(self.cmd("OBJECT", "ENCODING", "h"), b"listpackex")   # for good
        self.cmd("HSET", "h", *[x for i in range(130) for x in ("f%d" % i, "v")])
        self.assertEqual(self.cmd("OBJECT", "ENCODING", "h"), b"hashtable")

    def test_hgetdel(self):
        self.assertEqual(self.cmd("HGETDEL", "nokey", "FIELDS", 2, "a", "b"), [None, None])
        self.cmd("HSET", "h", "a", "1", "b", "2", "c", "3")
        self.assertEqual(self.cmd("HGETDEL", "h", "FIELDS", 3, "a", "zz", "a"), [b"1", None, None])
        self.assertEqual(self.cmd("HGETALL", "h"), [b"b", b"2", b"c", b"3"])
        self.assertEqual(self.cmd("HGETDEL", "h", "FIELDS", 2, "b", "c"), [b"2", b"3"])
        self.assertEqual(self.cmd("EXISTS", "h"), 0)
        self.lazy_only()
        self.cmd("HSETEX", "h", "PX", 1, "FIELDS", 1, "f1", "10")
        time.sleep(0.01)
        self.assertEqual(self.cmd("HGETDEL", "h", "FIELDS", 1, "f1"), [None])
        self.assertEqual(self.cmd("EXISTS", "h"), 0)

    def test_hgetex(self):
        self.assertEqual(self.cmd("HGETEX", "nokey", "EX", 10, "FIELDS", 1, "a"), [None])
        self.cmd("HSET", "h", "a", "1", "b", "2", "c", "strval")
        self.assertEqual(self.cmd("HGETEX", "h", "FIELDS", 3, "a", "b", "zz"), [b"1", b"2", None])
        self.assertEqual(self.cmd("HTTL", "h", "FIELDS", 2, "a", "b"), [-1, -1])
        self.assertEqual(self.cmd("OBJECT", "ENCODING", "h"), b"listpack")
        self.assertEqual(self.cmd("HGETEX", "h", "EX", 1000, "FIELDS", 1, "a"), [b"1"])
        self.assertIn(self.cmd("HTTL", "h", "FIELDS", 1, "a")[0], (999, 1000))
        self.assertEqual(self.cmd("HGETEX", "h", "PX", 500000, "FIELDS", 1, "b"), [b"2"])
        at = self.now_ms() // 1000 + 2000
        self.assertEqual(self.cmd("HGETEX", "h", "EXAT", at, "FIELDS", 1, "c"), [b"strval"])
        self.assertEqual(self.cmd("HEXPIRETIME", "h", "FIELDS", 1, "c"), [at])
        self.assertEqual(self.cmd("HGETEX", "h", "PXAT", at * 1000 + 1, "FIELDS", 1, "c"),
                         [b"strval"])
        self.assertEqual(self.cmd("HPEXPIRETIME", "h", "FIELDS", 1, "c"), [at * 1000 + 1])
        self.assertEqual(self.cmd("HGETEX", "h", "PERSIST", "FIELDS", 2, "a", "zz"), [b"1", None])
        self.assertEqual(self.cmd("HTTL", "h", "FIELDS", 1, "a"), [-1])
        self.assertEqual(self.cmd("HGETEX", "h", "PXAT", 1, "FIELDS", 3, "a", "b", "c"),
                         [b"1", b"2", b"strval"])
        self.assertEqual(self.cmd("EXISTS", "h"), 0)              # a past deadline deletes
        self.cmd("HSET", "h", "a", "1")
        self.err(("HGETEX", "h", "EX", "bla", "FIELDS", 1, "a"),
                 "ERR value is not an integer or out of range")
        self.err(("HGETEX", "h", "PX", -1, "FIELDS", 1, "a"), "ERR invalid expire time, must be >= 0")
        self.err(("HGETEX", "h", "EX", 1 << 48, "FIELDS", 1, "a"),
                 "ERR invalid expire time in 'hgetex' command")
        self.err(("HGETEX", "h", "PXAT", 1, 1), "ERR Mandatory argument FIELDS is missing or not at the right position")
        self.err(("HGETEX", "h", "PERSIST", 1, "FIELDS", 1, "a"),
                 "ERR Mandatory argument FIELDS is missing or not at the right position")
        self.err(("HGETEX", "h", "FIELDS", 9223372036854775808, "a"),
                 "ERR Number of fields must be a positive integer")

    def test_hsetex(self):
        self.assertEqual(self.cmd("HSETEX", "h", "FIELDS", 1, "f1", "v1"), 1)
        self.assertEqual(self.cmd("HSETEX", "h", "FIELDS", 2, "f1", "v11", "f2", "v2"), 1)
        self.assertEqual(self.cmd("HGETALL", "h"), [b"f1", b"v11", b"f2", b"v2"])
        self.assertEqual(self.cmd("HSETEX", "nokey", "FXX", "FIELDS", 1, "a", "b"), 0)
        self.assertEqual(self.cmd("EXISTS", "nokey"), 0)
        self.assertEqual(self.cmd("HSETEX", "h", "FXX", "FIELDS", 2, "f1", "x", "f3", "y"), 0)
        self.assertEqual(self.cmd("HSETEX", "h", "FNX", "FIELDS", 2, "f3", "x", "f1", "y"), 0)
        self.assertEqual(self.cmd("HGETALL", "h"), [b"f1", b"v11", b"f2", b"v2"])
        self.assertEqual(self.cmd("HSETEX", "h", "FNX", "EX", 100, "FIELDS", 1, "f3", "v3"), 1)
        self.assertIn(self.cmd("HTTL", "h", "FIELDS", 1, "f3")[0], (99, 100))
        self.assertEqual(self.cmd("HSETEX", "h", "PX", 50000, "FXX", "FIELDS", 2, "f1", "a", "f2", "b"), 1)
        self.assertEqual(self.cmd("HSETEX", "h", "KEEPTTL", "FIELDS", 1, "f1", "aa"), 1)
        self.assertTrue(0 < self.cmd("HPTTL", "h", "FIELDS", 1, "f1")[0] <= 50000)
        self.assertEqual(self.cmd("HSETEX", "h", "FIELDS", 1, "f1", "aaa"), 1)   # no option: TTL goes
        self.assertEqual(self.cmd("HTTL", "h", "FIELDS", 1, "f1"), [-1])
        at = self.now_ms() + 100000
        self.assertEqual(self.cmd("HSETEX", "h", "PXAT", at, "FIELDS", 1, "f4", "v4"), 1)
        self.assertEqual(self.cmd("HPEXPIRETIME", "h", "FIELDS", 1, "f4"), [at])
        self.assertEqual(self.cmd("HSETEX", "h", "EXAT", 1, "FIELDS", 2, "f1", "x", "f5", "y"), 1)
        self.assertEqual(self.cmd("HEXISTS", "h", "f1") + self.cmd("HEXISTS", "h", "f5"), 0)
        self.assertEqual(self.cmd("HSETEX", "new", "PX", 0, "FIELDS", 1, "a", "b"), 1)
        self.assertEqual(self.cmd("EXISTS", "new"), 0)
        for req, text in (
                (("HSETEX", "h", "FIELDS"), "ERR wrong number of arguments for 'hsetex' command"),
                (("HSETEX", "h", "FIELDS", 2, "a", "b", "c"), "ERR wrong number of arguments for 'hsetex' command"),
                (("HSETEX", "h", "FIELDS", 1, "a", "b", "unknown"), "ERR wrong number of arguments for 'hsetex' command"),
                (("HSETEX", "h", "FIELDS", 3, "a", "b"), "ERR wrong number of arguments for 'hsetex' command"),
                (("HSETEX", "h", "NX", "FIELDS", 1, "a", "b"), "ERR unknown argument: NX"),
                (("HSETEX", "h", "FXX", "FNX", "FIELDS", 1, "a", "b"), "ERR Only one of FXX or FNX arguments can be specified"),
                (("HSETEX", "h", "FNX", "FNX", "FIELDS", 1, "a", "b"), "ERR Only one of FXX or FNX arguments can be specified"),
                (("HSETEX", "h", "EX", 100, "PX", 1000, "FIELDS", 1, "a", "b"), "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
                (("HSETEX", "h", "KEEPTTL", "KEEPTTL", "FIELDS", 1, "a", "b"), "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
                (("HSETEX", "h", "EX", 100, "KEEPTTL", "FIELDS", 1, "a", "b"), "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
                (("HSETEX", "h", "EX", "FIELDS", 1, "a", "b"), "ERR value is not an integer or out of range"),
                (("HSETEX", "h", "EXAT", 1 << 48, 1, "a", "b"), "ERR invalid expire time in 'hsetex' command"),
                (("HSETEX", "h", "EXAT", -1, 1, "a", "b"), "ERR invalid expire time, must be >= 0"),
                (("HSETEX", "h", "FIELDS", "x", "a", "b"), "ERR invalid number of fields"),
                (("HSETEX", "h", "FIELDS", 0, "a", "b"), "ERR invalid number of fields"),
                (("HSETEX", "h", "FIELDS", -1, "a", "b"), "ERR invalid number of fields")):
            self.err(req, text)

    def test_resp3_and_multi(self):
        c = self.conn()
        c.cmd("HELLO", "3")
        c.cmd("HSET", "h", "a", "1")
        self.assert_reply(encode("HEXPIRE", "h", 100, "FIELDS", 2, "a", "b"), b"*2\r\n:1\r\n:-2\r\n", conn=c)
        self.assert_reply(encode("HGETEX", "h", "FIELDS", 2, "a", "b"), b"*2\r\n$1\r\n1\r\n_\r\n", conn=c)
        self.assert_reply(encode("HGETDEL", "h", "FIELDS", 1, "b"), b"*1\r\n_\r\n", conn=c)
        self.assert_reply(encode("HGETALL", "h"), b"%1\r\n$1\r\na\r\n$1\r\n1\r\n", conn=c)
        self.assert_reply(encode("HGETALL", "nokey"), b"%0\r\n", conn=c)
        c.cmd("MULTI")
        c.cmd("HSETEX", "m", "PX", 100000, "FIELDS", 1, "x", "y")
        c.cmd("HPERSIST", "m", "FIELDS", 1, "x")
        c.cmd("HTTL", "m", "FIELDS", 1, "x")
        self.assertEqual(c.cmd("EXEC"), [1, [1], [-1]])

    def test_watch_sees_field_changes_and_expiry(self):
        other = self.conn()
        self.cmd("HSET", "w", "a", "1", "b", "2")
        for write in (("HEXPIRE", "w", 100, "FIELDS", 1, "a"), ("HPERSIST", "w", "FIELDS", 1, "a"),
                      ("HGETEX", "w", "EX", 50, "FIELDS", 1, "a"), ("HGETDEL", "w", "FIELDS", 1, "a"),
                      ("HSETEX", "w", "FIELDS", 1, "a", "1")):
            self.cmd("WATCH", "w")
            other.cmd(*write)
            self.cmd("MULTI")
            self.cmd("HLEN", "w")
            self.assertIsNone(self.cmd("EXEC"), write)
        self.lazy_only()
        self.cmd("HPEXPIRE", "w", 1, "FIELDS", 1, "b")
        time.sleep(0.01)
        self.cmd("WATCH", "w")
        other.cmd("HGET", "w", "b")                 # a read that expires the field
        self.cmd("MULTI")
        self.cmd("HLEN", "w")
        self.assertIsNone(self.cmd("EXEC"))


# ---- persistence ------------------------------------------------------------------

def hash_digest(c, dbs=(0, 3)):
    """Every hash of the databases: fields, values, deadlines, key TTL, encoding."""
    out = {}
    for db in dbs:
        c.cmd("SELECT", db)
        for key in c.cmd("KEYS", "*"):
            if c.cmd("TYPE", key) != "hash":
                out[(db, key)] = c.cmd("GET", key)
                continue
            h = pairs(c.cmd("HGETALL", key))
            fields = sorted(h)
            exp = c.cmd("HPEXPIRETIME", key, "FIELDS", len(fields), *fields) if fields else []
            enc = c.cmd("OBJECT", "ENCODING", key)
            order = c.cmd("HKEYS", key) if enc != b"hashtable" else sorted(h)
            out[(db, key)] = (sorted(h.items()), exp, c.cmd("PEXPIRETIME", key), enc, order)
    c.cmd("SELECT", 0)
    return out


@engram_only
class TestHashPersistence(tp.PersistCase):
    def populate(self, c):
        c.cmd("HSET", "plain", "a", "1", "b", "2", "c", "3")
        c.cmd("HSET", "ttl", "x", "1", "y", "2", "z", "3")
        c.cmd("HPEXPIRE", "ttl", 500000, "FIELDS", 2, "z", "x")
        c.cmd("HSET", "big", *[x for i in range(300) for x in (b"f%d" % i, b"v%d" % i)])
        c.cmd("HEXPIRE", "big", 1000, "FIELDS", 2, "f1", "f2")
        c.cmd("HDEL", "big", "f3", "f4")
        c.cmd("HSET", "keyttl", "k", "v")
        c.cmd("EXPIRE", "keyttl", 1000)
        c.cmd("HINCRBYFLOAT", "plain", "f", "1.5")
        c.cmd("HINCRBY", "ttl", "x", "5")                       # keeps its deadline
        c.cmd("HSETEX", "sx", "EX", 600, "FIELDS", 2, "p", "q", "r", "s")
        c.cmd("HSETEX", "sx", "PX", 0, "FIELDS", 1, "p", "gone")
        c.cmd("HGETEX", "sx", "PERSIST", "FIELDS", 1, "r")
        c.cmd("HSET", "gone", "a", "1")
        c.cmd("HDEL", "gone", "a")
        c.cmd("HSET", "tmp", "a", "1")
        c.cmd("RENAME", "tmp", "renamed")
        c.cmd("COPY", "ttl", "copied", "DB", 3)
        c.cmd("SELECT", 3)
        c.cmd("HSET", "db3", "m", "n")
        c.cmd("SELECT", 0)
        c.cmd("SET", "str", "v")

    def test_restart_from_log_and_snapshot(self):
        srv = self.start()
        c = self.conn(srv)
        self.populate(c)
        before = hash_digest(c)
        self.assertEqual(before[(0, b"big")][3], b"hashtable")
        self.assertEqual(before[(0, b"ttl")][3], b"listpackex")
        self.assertNotIn((0, b"gone"), before)
        self.crash(srv)
        srv = self.start()                                       # the log alone
        c = self.conn(srv)
        self.assertEqual(hash_digest(c), before)
        # a listpackex without deadlines is not a change the log records
        # (nor does Redis propagate it); a snapshot keeps it
        c.cmd("HSET", "lpex", "a", "1")
        c.cmd("HEXPIRE", "lpex", 100, "FIELDS", 1, "zz")
        before = hash_digest(c)
        self.assertEqual(before[(0, b"lpex")][3], b"listpackex")
        self.assertEqual(c.cmd("SAVE"), "OK")
        self.crash(srv)
        srv = self.start()                                       # the snapshot alone
        c = self.conn(srv)
        self.assertEqual(hash_digest(c), before)
        c.cmd("HSET", "plain", "after", "snap")                  # a BGSAVE + log
        self.assertIn("started", c.cmd("BGSAVE"))
        self.wait_bgsave_done(c)
        c.cmd("HPERSIST", "ttl", "FIELDS", 1, "z")
        c.cmd("HDEL", "big", "f0")
        before = hash_digest(c)
        self.crash(srv)
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(hash_digest(c), before)
        self.stop(srv)

    def test_deadlines_keep_running(self):
        srv = self.start()
        c = self.conn(srv)
        c.cmd("HSET", "h", "soon", "1", "later", "2")
        c.cmd("HPEXPIRE", "h", 300, "FIELDS", 1, "soon")
        c.cmd("HSET", "all", "a", "1")
        c.cmd("HPEXPIRE", "all", 300, "FIELDS", 1, "a")
        c.cmd("SAVE")
        c.cmd("HSET", "h2", "x", "1")
        c.cmd("HPEXPIRE", "h2", 300, "FIELDS", 1, "x")
        self.crash(srv)
        time.sleep(0.4 * SLOW)
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(c.cmd("HGETALL", "h"), [b"later", b"2"])
        ok = wait_until(lambda: c.cmd("EXISTS", "all", "h2") == 0, 5)
        self.assertTrue(ok, "hashes whose fields all expired while down were not removed")
        self.stop(srv)

    def test_recreated_over_stale_keys(self):
        """A key recreated live over one that had expired (not logged) must
        not meet the stale one on replay."""
        srv = self.start()
        c = self.conn(srv)
        c.cmd("SET", "k1", "old", "PX", 50)                      # a string that expires
        c.cmd("HSET", "k2", "old", "1")
        c.cmd("HPEXPIRE", "k2", 50, "FIELDS", 1, "old")          # a hash that empties
        c.cmd("HSET", "k3", "a", "1")
        c.cmd("PEXPIRE", "k3", 50)                               # a hash whose key expires
        time.sleep(0.1)
        for k in ("k1", "k2", "k3"):
            self.assertEqual(c.cmd("HSET", k, "new", "1"), 1, k)
        before = hash_digest(c)
        self.crash(srv)
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(hash_digest(c), before)
        for k in ("k1", "k2", "k3"):
            self.assertEqual(c.cmd("HGETALL", k), [b"new", b"1"], k)
            self.assertEqual(c.cmd("PTTL", k), -1, k)
        self.stop(srv)


if __name__ == "__main__":
    main()
