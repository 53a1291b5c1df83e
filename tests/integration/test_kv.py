"""String keyspace commands: replies and error texts exactly as Redis 7.0."""

import time

from engram_test import SANITIZE, RespError, ServerTestCase, encode, main, wait_until

E_INT = "ERR value is not an integer or out of range"
E_SYNTAX = "ERR syntax error"
E_FLOAT = "ERR value is not a valid float"


class KVTestCase(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.c = self.conn()

    def cmd(self, *args):
        return self.c.cmd(*args)

    def ok(self, *args):
        self.assertEqual(self.cmd(*args), "OK", args)

    def err(self, args, text):
        self.assert_error(self.cmd(*args), text)


class TestSetGet(KVTestCase):
    def test_set_get(self):
        self.ok("SET", "k", "v")
        self.assertEqual(self.cmd("GET", "k"), b"v")
        self.ok("SET", "k", "v2")
        self.assertEqual(self.cmd("GET", "k"), b"v2")
        self.assertIsNone(self.cmd("GET", "missing"))
        self.assert_reply(encode("GET", "missing"), b"$-1\r\n", conn=self.c)
        self.ok("SET", "empty", "")
        self.assert_reply(encode("GET", "empty"), b"$0\r\n\r\n", conn=self.c)

    def test_set_ex_px(self):
        self.ok("SET", "k", "v", "EX", "100")
        self.assertTrue(98 <= self.cmd("TTL", "k") <= 100)
        self.ok("SET", "k", "v", "PX", "100000")
        self.assertTrue(98000 <= self.cmd("PTTL", "k") <= 100000)
        self.ok("set", "k", "v", "ex", "50")
        self.assertTrue(48 <= self.cmd("TTL", "k") <= 50)
        # a plain SET clears the TTL
        self.ok("SET", "k", "v")
        self.assertEqual(self.cmd("TTL", "k"), -1)

    def test_set_exat_pxat(self):
        now = int(time.time())
        self.ok("SET", "k", "v", "EXAT", str(now + 100))
        self.assertTrue(97 <= self.cmd("TTL", "k") <= 100)
        self.ok("SET", "k", "v", "PXAT", str((now + 200) * 1000))
        self.assertTrue(197000 <= self.cmd("PTTL", "k") <= 200000)
        # a time in the past: the key is gone
        self.ok("SET", "k", "v", "PXAT", str((now - 10) * 1000))
        self.assertIsNone(self.cmd("GET", "k"))

    def test_set_nx_xx(self):
        self.assertIsNone(self.cmd("SET", "k", "v", "XX"))
        self.assert_reply(encode("SET", "k", "v", "XX"), b"$-1\r\n", conn=self.c)
        self.assertIsNone(self.cmd("GET", "k"))
        self.ok("SET", "k", "v1", "NX")
        self.assertIsNone(self.cmd("SET", "k", "v2", "NX"))
        self.assertEqual(self.cmd("GET", "k"), b"v1")
        self.ok("SET", "k", "v3", "XX")
        self.assertEqual(self.cmd("GET", "k"), b"v3")

    def test_set_keepttl(self):
        self.ok("SET", "k", "v", "EX", "100")
        self.ok("SET", "k", "v2", "KEEPTTL")
        self.assertTrue(98 <= self.cmd("TTL", "k") <= 100)
        self.assertEqual(self.cmd("GET", "k"), b"v2")
        self.ok("SET", "k", "v3")
        self.assertEqual(self.cmd("TTL", "k"), -1)

    def test_set_get_option(self):
        self.assertIsNone(self.cmd("SET", "k", "v1", "GET"))
        self.assertEqual(self.cmd("SET", "k", "v2", "GET"), b"v1")
        self.assertEqual(self.cmd("GET", "k"), b"v2")
        self.assertEqual(self.cmd("SET", "k", "v3", "GET", "EX", "100"), b"v2")
        self.assertTrue(self.cmd("TTL", "k") > 0)
        # NX + GET (Redis 7): returns old value, does not set
        self.assertEqual(self.cmd("SET", "k", "v4", "NX", "GET"), b"v3")
        self.assertEqual(self.cmd("GET", "k"), b"v3")
        self.assertIsNone(self.cmd("SET", "k2", "x", "XX", "GET"))
        self.assertEqual(self.cmd("EXISTS", "k2"), 0)

    def test_set_errors(self):
        self.err(("SET", "k", "v", "EX", "0"), "ERR invalid expire time in 'set' command")
        self.err(("SET", "k", "v", "EX", "-1"), "ERR invalid expire time in 'set' command")
        self.err(("SET", "k", "v", "PX", "0"), "ERR invalid expire time in 'set' command")
        self.err(("SET", "k", "v", "EX", "abc"), E_INT)
        self.err(("SET", "k", "v", "NX", "XX"), E_SYNTAX)
        self.err(("SET", "k", "v", "EX", "10", "PX", "100"), E_SYNTAX)
        self.err(("SET", "k", "v", "EX", "10", "KEEPTTL"), E_SYNTAX)
        self.err(("SET", "k", "v", "EX"), E_SYNTAX)
        self.err(("SET", "k", "v", "FOO"), E_SYNTAX)
        self.err(("SET", "k"), "ERR wrong number of arguments for 'set' command")
        self.assertEqual(self.cmd("EXISTS", "k"), 0)

    def test_getdel(self):
        self.ok("SET", "k", "v")
        self.assertEqual(self.cmd("GETDEL", "k"), b"v")
        self.assertIsNone(self.cmd("GETDEL", "k"))
        self.assertEqual(self.cmd("EXISTS", "k"), 0)

    def test_getset(self):
        self.assertIsNone(self.cmd("GETSET", "k", "a"))
        self.assertEqual(self.cmd("GETSET", "k", "b"), b"a")
        self.ok("SET", "k", "c", "EX", "100")
        self.assertEqual(self.cmd("GETSET", "k", "d"), b"c")
        self.assertEqual(self.cmd("TTL", "k"), -1)

    def test_setnx(self):
        self.assertEqual(self.cmd("SETNX", "k", "a"), 1)
        self.assertEqual(self.cmd("SETNX", "k", "b"), 0)
        self.assertEqual(self.cmd("GET", "k"), b"a")

    def test_setex_psetex(self):
        self.ok("SETEX", "k", "100", "v")
        self.assertTrue(98 <= self.cmd("TTL", "k") <= 100)
        self.ok("PSETEX", "k2", "100000", "v")
        self.assertTrue(98000 <= self.cmd("PTTL", "k2") <= 100000)
        self.err(("SETEX", "k", "0", "v"), "ERR invalid expire time in 'setex' command")
        self.err(("SETEX", "k", "-5", "v"), "ERR invalid expire time in 'setex' command")
        self.err(("PSETEX", "k", "0", "v"), "ERR invalid expire time in 'psetex' command")
        self.err(("SETEX", "k", "x", "v"), E_INT)

    def test_mget_mset(self):
        self.ok("MSET", "a", "1", "b", "2", "c", "3")
        self.assertEqual(self.cmd("MGET", "a", "b", "nope", "c"), [b"1", b"2", None, b"3"])
        self.assert_reply(encode("MGET", "a", "nope"), b"*2\r\n$1\r\n1\r\n$-1\r\n", conn=self.c)
        self.err(("MSET", "a"), "ERR wrong number of arguments for 'mset' command")
        self.err(("MSET", "a", "1", "b"), "ERR wrong number of arguments for 'mset' command")
        # the last value wins when a key repeats
        self.ok("MSET", "x", "1", "x", "2")
        self.assertEqual(self.cmd("GET", "x"), b"2")

    def test_msetnx(self):
        self.assertEqual(self.cmd("MSETNX", "a", "1", "b", "2"), 1)
        self.assertEqual(self.cmd("MSETNX", "b", "x", "c", "3"), 0)
        self.assertEqual(self.cmd("MGET", "a", "b", "c"), [b"1", b"2", None])
        self.err(("MSETNX", "a", "1", "b"), "ERR wrong number of arguments for 'msetnx' command")

    def test_del_unlink_exists(self):
        self.ok("MSET", "a", "1", "b", "2", "c", "3")
        self.assertEqual(self.cmd("EXISTS", "a", "a", "b", "nope"), 3)
        self.assertEqual(self.cmd("DEL", "a", "a", "nope"), 1)
        self.assertEqual(self.cmd("UNLINK", "b", "c", "nope"), 2)
        self.assertEqual(self.cmd("EXISTS", "a", "b", "c"), 0)
        self.assertEqual(self.cmd("DEL", "nope"), 0)

    def test_append_strlen(self):
        self.assertEqual(self.cmd("APPEND", "k", "Hello"), 5)
        self.assertEqual(self.cmd("APPEND", "k", " World"), 11)
        self.assertEqual(self.cmd("GET", "k"), b"Hello World")
        self.assertEqual(self.cmd("STRLEN", "k"), 11)
        self.assertEqual(self.cmd("STRLEN", "missing"), 0)
        self.assertEqual(self.cmd("APPEND", "e", ""), 0)
        self.assertEqual(self.cmd("EXISTS", "e"), 1)
        self.ok("SET", "n", "10")
        self.assertEqual(self.cmd("APPEND", "n", "5"), 3)
        self.assertEqual(self.cmd("INCR", "n"), 106)

    def test_getrange(self):
        self.ok("SET", "k", "This is a string")
        self.assertEqual(self.cmd("GETRANGE", "k", "0", "3"), b"This")
        self.assertEqual(self.cmd("GETRANGE", "k", "-3", "-1"), b"ing")
        self.assertEqual(self.cmd("GETRANGE", "k", "0", "-1"), b"This is a string")
        self.assertEqual(self.cmd("GETRANGE", "k", "10", "100"), b"string")
        self.assertEqual(self.cmd("GETRANGE", "k", "5", "3"), b"")
        self.assertEqual(self.cmd("GETRANGE", "k", "-100", "3"), b"This")
        self.assertEqual(self.cmd("GETRANGE", "k", "100", "200"), b"")
        self.assertEqual(self.cmd("GETRANGE", "missing", "0", "-1"), b"")
        self.assert_reply(encode("GETRANGE", "missing", "0", "10"), b"$0\r\n\r\n", conn=self.c)
        self.err(("GETRANGE", "k", "a", "1"), E_INT)

    def test_setrange(self):
        self.ok("SET", "k", "Hello World")
        self.assertEqual(self.cmd("SETRANGE", "k", "6", "Redis"), 11)
        self.assertEqual(self.cmd("GET", "k"), b"Hello Redis")
        self.assertEqual(self.cmd("SETRANGE", "pad", "5", "x"), 6)
        self.assertEqual(self.cmd("GET", "pad"), b"\x00\x00\x00\x00\x00x")
        self.assertEqual(self.cmd("SETRANGE", "k", "20", "!"), 21)
        self.assertEqual(self.cmd("GET", "k"), b"Hello Redis" + b"\x00" * 9 + b"!")
        # empty value on a missing key creates nothing
        self.assertEqual(self.cmd("SETRANGE", "none", "10", ""), 0)
        self.assertEqual(self.cmd("EXISTS", "none"), 0)
        self.assertEqual(self.cmd("SETRANGE", "k", "100", ""), 21)
        self.err(("SETRANGE", "k", "-1", "x"), "ERR offset is out of range")
        self.err(("SETRANGE", "k", "536870912", "x"),
                 "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        self.err(("SETRANGE", "k", "abc", "x"), E_INT)
        self.assertEqual(self.cmd("STRLEN", "k"), 21)


class TestCounters(KVTestCase):
    def test_incr_decr(self):
        self.assertEqual(self.cmd("INCR", "n"), 1)
        self.assertEqual(self.cmd("INCR", "n"), 2)
        self.assertEqual(self.cmd("DECR", "n"), 1)
        self.assertEqual(self.cmd("INCRBY", "n", "10"), 11)
        self.assertEqual(self.cmd("DECRBY", "n", "20"), -9)
        self.assertEqual(self.cmd("INCRBY", "n", "-1"), -10)
        self.assertEqual(self.cmd("GET", "n"), b"-10")
        self.assertEqual(self.cmd("DECR", "m"), -1)
        self.ok("SET", "k", "41", "EX", "100")
        self.assertEqual(self.cmd("INCR", "k"), 42)
        self.assertTrue(self.cmd("TTL", "k") > 0, "INCR keeps the TTL")

    def test_non_integer(self):
        for v in ("abc", "1.5", " 1", "1 ", "", "12a", "99999999999999999999"):
            self.ok("SET", "k", v)
            self.err(("INCR", "k"), E_INT)
            self.err(("DECR", "k"), E_INT)
        self.err(("INCRBY", "n", "abc"), E_INT)
        self.err(("INCRBY", "n", "1.0"), E_INT)
        self.err(("DECRBY", "n", "x"), E_INT)

    def test_overflow(self):
        self.ok("SET", "k", "9223372036854775807")
        self.err(("INCR", "k"), "ERR increment or decrement would overflow")
        self.err(("INCRBY", "k", "1"), "ERR increment or decrement would overflow")
        self.assertEqual(self.cmd("GET", "k"), b"9223372036854775807")
        self.ok("SET", "k", "-9223372036854775808")
        self.err(("DECR", "k"), "ERR increment or decrement would overflow")
        self.err(("DECRBY", "k", "1"), "ERR increment or decrement would overflow")
        self.err(("DECRBY", "z", "-9223372036854775808"), "ERR decrement would overflow")
        self.assertEqual(self.cmd("INCRBY", "z", "-9223372036854775808"), -9223372036854775808)

    def test_incrbyfloat(self):
        self.ok("SET", "k", "10.5")
        self.assertEqual(self.cmd("INCRBYFLOAT", "k", "0.1"), b"10.6")
        self.assertEqual(self.cmd("INCRBYFLOAT", "k", "-5"), b"5.6")
        self.assertEqual(self.cmd("GET", "k"), b"5.6")
        self.ok("SET", "k", "5.0e3")
        self.assertEqual(self.cmd("INCRBYFLOAT", "k", "2.0e2"), b"5200")
        self.assertEqual(self.cmd("INCRBYFLOAT", "new", "3"), b"3")
        self.assertEqual(self.cmd("INCRBYFLOAT", "new", "1.5"), b"4.5")
        self.assertEqual(self.cmd("INCRBYFLOAT", "i", "10"), b"10")
        self.assertEqual(self.cmd("INCR", "i"), 11)

    def test_incrbyfloat_errors(self):
        self.ok("SET", "k", "abc")
        self.err(("INCRBYFLOAT", "k", "1"), E_FLOAT)
        self.err(("INCRBYFLOAT", "n", "abc"), E_FLOAT)
        self.err(("INCRBYFLOAT", "n", "inf"), "ERR increment would produce NaN or Infinity")
        self.err(("INCRBYFLOAT", "n", "nan"), E_FLOAT)
        self.err(("INCRBYFLOAT", "n", "-inf"), "ERR increment would produce NaN or Infinity")
        self.err(("INCRBYFLOAT", "n", "1.5x"), E_FLOAT)
        self.assertEqual(self.cmd("EXISTS", "n"), 0)


class TestExpire(KVTestCase):
    def test_ttl_pttl_persist(self):
        self.assertEqual(self.cmd("TTL", "missing"), -2)
        self.assertEqual(self.cmd("PTTL", "missing"), -2)
        self.ok("SET", "k", "v")
        self.assertEqual(self.cmd("TTL", "k"), -1)
        self.assertEqual(self.cmd("PTTL", "k"), -1)
        self.assertEqual(self.cmd("PERSIST", "k"), 0)
        self.assertEqual(self.cmd("EXPIRE", "k", "100"), 1)
        self.assertEqual(self.cmd("TTL", "k"), 100)
        self.assertEqual(self.cmd("PERSIST", "k"), 1)
        self.assertEqual(self.cmd("TTL", "k"), -1)
        self.assertEqual(self.cmd("PERSIST", "missing"), 0)

    def test_expire_family(self):
        self.ok("SET", "k", "v")
        self.assertEqual(self.cmd("PEXPIRE", "k", "100000"), 1)
        self.assertTrue(99000 <= self.cmd("PTTL", "k") <= 100000)
        now = int(time.time())
        self.assertEqual(self.cmd("EXPIREAT", "k", str(now + 200)), 1)
        self.assertTrue(197 <= self.cmd("TTL", "k") <= 200)
        self.assertEqual(self.cmd("PEXPIREAT", "k", str((now + 300) * 1000)), 1)
        self.assertTrue(297 <= self.cmd("TTL", "k") <= 300)
        self.assertEqual(self.cmd("EXPIRE", "missing", "100"), 0)
        self.assertEqual(self.cmd("PEXPIREAT", "missing", "1"), 0)
        self.err(("EXPIRE", "k", "abc"), E_INT)
        self.err(("EXPIRE", "k", "9223372036854775807"),
                 "ERR invalid expire time in 'expire' command")
        self.err(("PEXPIRE", "k", "9223372036854775807"),
                 "ERR invalid expire time in 'pexpire' command")

    def test_expire_in_past_deletes(self):
        self.ok("MSET", "a", "1", "b", "2", "c", "3")
        self.assertEqual(self.cmd("EXPIRE", "a", "-1"), 1)
        self.assertEqual(self.cmd("EXPIRE", "b", "0"), 1)
        self.assertEqual(self.cmd("EXPIREAT", "c", "1"), 1)
        self.assertEqual(self.cmd("EXISTS", "a", "b", "c"), 0)
        self.assertEqual(self.cmd("DBSIZE"), 0)

    def test_expire_options(self):
        self.ok("SET", "k", "v")
        self.assertEqual(self.cmd("EXPIRE", "k", "100", "XX"), 0)   # no ttl yet
        self.assertEqual(self.cmd("EXPIRE", "k", "100", "GT"), 0)   # none counts as infinite
        self.assertEqual(self.cmd("TTL", "k"), -1)
        self.assertEqual(self.cmd("EXPIRE", "k", "100", "NX"), 1)
        self.assertEqual(self.cmd("EXPIRE", "k", "200", "NX"), 0)
        self.assertEqual(self.cmd("EXPIRE", "k", "200", "XX"), 1)
        self.assertEqual(self.cmd("EXPIRE", "k", "100", "GT"), 0)
        self.assertEqual(self.cmd("EXPIRE", "k", "300", "GT"), 1)
        self.assertEqual(self.cmd("EXPIRE", "k", "400", "LT"), 0)
        self.assertEqual(self.cmd("EXPIRE", "k", "50", "lt"), 1)
        self.assertEqual(self.cmd("TTL", "k"), 50)
        self.ok("SET", "p", "v")
        self.assertEqual(self.cmd("PEXPIRE", "p", "100000", "LT"), 1)  # none > any ttl
        self.assertEqual(self.cmd("PEXPIRE", "p", "200000", "XX", "GT"), 1)
        self.err(("EXPIRE", "k", "10", "NX", "XX"),
                 "ERR NX and XX, GT or LT options at the same time are not compatible")
        self.err(("EXPIRE", "k", "10", "GT", "LT"),
                 "ERR GT and LT options at the same time are not compatible")
        self.err(("EXPIRE", "k", "10", "FOO"), "ERR Unsupported option FOO")
        self.assertEqual(self.cmd("TTL", "k"), 50)

    def test_lazy_expiry(self):
        self.ok("SET", "k", "v", "PX", "100")
        self.assertEqual(self.cmd("GET", "k"), b"v")
        time.sleep(0.25)
        self.assertIsNone(self.cmd("GET", "k"))
        self.assertEqual(self.cmd("TTL", "k"), -2)
        self.assertEqual(self.cmd("EXISTS", "k"), 0)

    def test_active_expiry(self):
        n = 200
        self.c.send(b"".join(encode("SET", "e:%d" % i, "v", "PX", "100") for i in range(n)))
        for _ in range(n):
            self.assertEqual(self.c.read(), "OK")
        self.ok("SET", "keeper", "v")
        self.assertEqual(self.cmd("DBSIZE"), n + 1)
        # DBSIZE does not touch keys: only the active cycle can remove them
        left = wait_until(lambda: self.cmd("DBSIZE") == 1, 1.5)
        self.assertEqual(self.cmd("DBSIZE"), 1, "expired keys not removed by the active cycle")
        self.assertTrue(left)
        self.assertEqual(self.cmd("KEYS", "*"), [b"keeper"])

    def test_type(self):
        self.ok("SET", "k", "v")
        self.assert_reply(encode("TYPE", "k"), b"+string\r\n", conn=self.c)
        self.assert_reply(encode("TYPE", "nope"), b"+none\r\n", conn=self.c)


class TestKeyspace(KVTestCase):
    def test_keys_patterns(self):
        self.ok("MSET", "hello", "1", "hallo", "2", "hxllo", "3", "hllo", "4",
                "heeeello", "5", "a*b", "6", "axb", "7")
        def keys(p):
            return sorted(self.cmd("KEYS", p))
        self.assertEqual(keys("h?llo"), [b"hallo", b"hello", b"hxllo"])
        self.assertEqual(keys("h*llo"), [b"hallo", b"heeeello", b"hello", b"hllo", b"hxllo"])
        self.assertEqual(keys("h[ae]llo"), [b"hallo", b"hello"])
        self.assertEqual(keys("h[^e]llo"), [b"hallo", b"hxllo"])
        self.assertEqual(keys("h[a-b]llo"), [b"hallo"])
        self.assertEqual(keys("a\\*b"), [b"a*b"])
        self.assertEqual(keys("a*b"), [b"a*b", b"axb"])
        self.assertEqual(len(keys("*")), 7)
        self.assertEqual(keys("nomatch*"), [])
        self.assert_reply(encode("KEYS", "zzz*"), b"*0\r\n", conn=self.c)

    def scan_all(self, *opts):
        cursor, seen, rounds = b"0", [], 0
        while True:
            reply = self.cmd("SCAN", cursor, *opts)
            self.assertIsInstance(reply, list, reply)
            self.assertEqual(len(reply), 2)
            cursor, keys = reply
            self.assertIsInstance(cursor, bytes)
            seen.extend(keys)
            rounds += 1
            self.assertLess(rounds, 100000)
            if cursor == b"0":
                return seen, rounds

    def test_scan(self):
        n = 1000
        self.c.send(b"".join(encode("SET", "key:%d" % i, "v") for i in range(n)))
        for _ in range(n):
            self.c.read()
        self.ok("MSET", "other:1", "x", "other:2", "y")
        seen, rounds = self.scan_all()
        self.assertEqual(set(seen), {b"key:%d" % i for i in range(n)} | {b"other:1", b"other:2"})
        self.assertGreater(rounds, 1, "COUNT defaults to 10: SCAN must take several calls")
        seen, _ = self.scan_all("MATCH", "other:*")
        self.assertEqual(set(seen), {b"other:1", b"other:2"})
        seen, rounds = self.scan_all("COUNT", "100000")
        self.assertEqual(len(set(seen)), n + 2)
        seen, _ = self.scan_all("MATCH", "key:1?", "COUNT", "50")
        self.assertEqual(set(seen), {b"key:%d" % i for i in range(10, 20)})
        seen, _ = self.scan_all("TYPE", "string", "MATCH", "other:*")
        self.assertEqual(set(seen), {b"other:1", b"other:2"})
        seen, _ = self.scan_all("TYPE", "hash")
        self.assertEqual(seen, [])

    def test_scan_errors(self):
        self.err(("SCAN", "abc"), "ERR invalid cursor")
        self.err(("SCAN", "0", "COUNT", "0"), E_SYNTAX)
        self.err(("SCAN", "0", "COUNT", "x"), E_INT)
        self.err(("SCAN", "0", "FOO"), E_SYNTAX)
        self.assertEqual(self.cmd("SCAN", "0"), [b"0", []])

    def test_randomkey(self):
        self.assertIsNone(self.cmd("RANDOMKEY"))
        self.ok("MSET", "a", "1", "b", "2")
        for _ in range(20):
            self.assertIn(self.cmd("RANDOMKEY"), (b"a", b"b"))

    def test_rename(self):
        self.err(("RENAME", "nope", "x"), "ERR no such key")
        self.err(("RENAMENX", "nope", "x"), "ERR no such key")
        self.ok("SET", "a", "1", "EX", "100")
        self.ok("RENAME", "a", "b")
        self.assertEqual(self.cmd("EXISTS", "a"), 0)
        self.assertEqual(self.cmd("GET", "b"), b"1")
        self.assertTrue(self.cmd("TTL", "b") > 0, "RENAME keeps the TTL")
        self.ok("SET", "c", "3")
        self.ok("RENAME", "b", "c")
        self.assertEqual(self.cmd("GET", "c"), b"1")
        self.ok("RENAME", "c", "c")
        self.ok("SET", "d", "4")
        self.assertEqual(self.cmd("RENAMENX", "c", "d"), 0)
        self.assertEqual(self.cmd("RENAMENX", "c", "e"), 1)
        self.assertEqual(self.cmd("MGET", "c", "d", "e"), [None, b"4", b"1"])

    def test_dbsize_flush(self):
        self.assertEqual(self.cmd("DBSIZE"), 0)
        self.ok("MSET", "a", "1", "b", "2", "c", "3")
        self.assertEqual(self.cmd("DBSIZE"), 3)
        self.ok("FLUSHDB")
        self.assertEqual(self.cmd("DBSIZE"), 0)
        self.ok("MSET", "a", "1", "b", "2")
        self.ok("FLUSHALL", "ASYNC")
        self.assertEqual(self.cmd("DBSIZE"), 0)
        self.ok("SET", "a", "1")
        self.ok("FLUSHALL", "SYNC")
        self.assertEqual(self.cmd("DBSIZE"), 0)
        self.ok("SET", "a", "1")
        self.ok("FLUSHDB", "ASYNC")
        self.ok("FLUSHDB", "sync")
        self.assertEqual(self.cmd("DBSIZE"), 0)
        self.ok("SET", "a", "1")
        self.err(("FLUSHALL", "FOO"), E_SYNTAX)
        self.err(("FLUSHDB", "FOO"), E_SYNTAX)
        self.assertEqual(self.cmd("DBSIZE"), 1)

    def test_many_keys(self):
        n = 5000 if SANITIZE else 50000
        self.c.send(b"".join(encode("SET", "k%d" % i, "v%d" % i) for i in range(n)))
        self.c.read_bytes(5 * n, timeout=120)
        self.assertEqual(self.cmd("DBSIZE"), n)
        self.assertEqual(self.cmd("GET", "k%d" % (n - 1)), b"v%d" % (n - 1))
        self.c.send(b"".join(encode("DEL", "k%d" % i) for i in range(0, n, 2)))
        self.c.read_bytes(4 * (n // 2), timeout=120)
        self.assertEqual(self.cmd("DBSIZE"), n // 2)
        self.assertIsNone(self.cmd("GET", "k0"))
        self.assertEqual(self.cmd("GET", "k1"), b"v1")


if __name__ == "__main__":
    main()
