"""A redis-py (Debian python3-redis) session against the server."""

import time
import unittest

import redis

from engram_test import ServerTestCase, main


def redis_py_version():
    return tuple(int(x) for x in redis.__version__.split(".")[:2])


class TestRedisPy(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.r = self.client()

    def test_basic_commands(self):
        r = self.r
        self.assertTrue(r.ping())
        self.assertTrue(r.set("k", "v"))
        self.assertEqual(r.get("k"), b"v")
        self.assertIsNone(r.get("missing"))
        self.assertEqual(r.incr("n"), 1)
        self.assertEqual(r.incrby("n", 10), 11)
        self.assertEqual(r.decr("n"), 10)
        self.assertAlmostEqual(r.incrbyfloat("f", 1.5), 1.5)
        self.assertTrue(r.expire("k", 100))
        self.assertTrue(98 <= r.ttl("k") <= 100)
        self.assertTrue(r.persist("k"))
        self.assertEqual(r.ttl("k"), -1)
        self.assertEqual(r.ttl("missing"), -2)
        self.assertEqual(r.exists("k", "n", "missing"), 2)
        self.assertEqual(r.type("k"), b"string")
        self.assertEqual(r.delete("k", "n", "missing"), 2)
        self.assertTrue(r.set("x", "1", nx=True))
        self.assertIsNone(r.set("x", "2", nx=True))
        self.assertEqual(r.set("x", "3", get=True), b"1")
        self.assertTrue(r.set("e", "v", ex=100))
        self.assertTrue(r.set("p", "v", px=100000, xx=False))
        self.assertEqual(r.getdel("e"), b"v")
        self.assertEqual(r.append("x", "45"), 3)
        self.assertEqual(r.strlen("x"), 3)
        self.assertEqual(r.getrange("x", 0, 1), b"34")
        self.assertEqual(r.setrange("x", 1, "ab"), 3)
        self.assertEqual(r.get("x"), b"3ab")

    def test_errors(self):
        self.r.set("s", "abc")
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.incr("s")
        self.assertEqual(str(cm.exception), "value is not an integer or out of range")
        with self.assertRaises(redis.ResponseError):
            self.r.execute_command("NOSUCHCOMMAND")

    def test_mget_mset(self):
        self.assertTrue(self.r.mset({"a": "1", "b": "2", "c": "3"}))
        self.assertEqual(self.r.mget(["a", "b", "missing", "c"]), [b"1", b"2", None, b"3"])
        self.assertTrue(self.r.msetnx({"d": "4"}))
        self.assertFalse(self.r.msetnx({"d": "5", "e": "6"}))
        self.assertEqual(self.r.mget("d", "e"), [b"4", None])

    def test_pipeline_without_transaction(self):
        p = self.r.pipeline(transaction=False)
        for i in range(1000):
            p.set("key:%d" % i, i)
        for i in range(1000):
            p.incr("key:%d" % i)
        res = p.execute()
        self.assertEqual(res[:1000], [True] * 1000)
        self.assertEqual(res[1000:], list(range(1, 1001)))
        self.assertEqual(self.r.dbsize(), 1000)

    def test_pipeline_with_transaction(self):
        p = self.r.pipeline(transaction=True)
        p.set("a", "1").incr("a").expire("a", 100).ttl("a").get("a")
        self.assertEqual(p.execute(), [True, 2, True, 100, b"2"])

    def test_scan_iter(self):
        self.r.mset({"user:%d" % i: i for i in range(500)})
        self.r.mset({"other:%d" % i: i for i in range(50)})
        got = set(self.r.scan_iter(match="user:*", count=37))
        self.assertEqual(got, {b"user:%d" % i for i in range(500)})
        self.assertEqual(len(set(self.r.scan_iter())), 550)
        self.assertEqual(len(set(self.r.scan_iter(_type="string"))), 550)
        self.assertEqual(sorted(self.r.keys("other:1*")),
                         sorted([b"other:1"] + [b"other:1%d" % i for i in range(10)]))

    def test_client_setname(self):
        self.assertTrue(self.r.client_setname("pyclient"))
        # redis-py 4 returns CLIENT GETNAME as bytes, 5 as str
        self.assertIn(self.r.client_getname(), (b"pyclient", "pyclient"))
        self.assertIsInstance(self.r.client_id(), int)
        names = [c.get("name") for c in self.r.client_list()]
        self.assertIn("pyclient", names)

    def test_info(self):
        self.r.set("a", "1")
        self.r.set("b", "1", ex=100)
        info = self.r.info()
        self.assertIsInstance(info, dict)
        self.assertIn("redis_version", info)
        self.assertEqual(info["tcp_port"], self.port)
        self.assertIsInstance(info["connected_clients"], int)
        self.assertIsInstance(info["used_memory"], int)
        self.assertEqual(info["loading"], 0)
        self.assertEqual(info["db0"]["keys"], 2)
        self.assertEqual(info["db0"]["expires"], 1)
        ks = self.r.info("keyspace")
        self.assertEqual(list(ks), ["db0"])
        self.assertEqual(self.r.dbsize(), 2)

    def test_config(self):
        self.assertEqual(self.r.config_get("maxclients"), {"maxclients": "10000"})
        self.assertTrue(self.r.config_set("timeout", 30))
        self.assertEqual(self.r.config_get("timeout"), {"timeout": "30"})
        self.assertTrue(self.r.config_set("timeout", 0))

    def test_time_and_flush(self):
        secs, usecs = self.r.time()
        self.assertLess(abs(secs - time.time()), 5)
        self.r.set("a", 1)
        self.assertTrue(self.r.flushdb())
        self.assertTrue(self.r.flushall(asynchronous=True))
        self.assertEqual(self.r.dbsize(), 0)

    def test_binary_and_unicode(self):
        val = bytes(range(256)) * 3
        self.r.set(b"bin\x00key", val)
        self.assertEqual(self.r.get(b"bin\x00key"), val)
        self.r.set("ключ", "значение ✓")
        self.assertEqual(self.r.get("ключ").decode(), "значение ✓")
        d = self.client(decode_responses=True)
        self.assertEqual(d.get("ключ"), "значение ✓")

    def test_connection_pool_many_clients(self):
        pool = redis.ConnectionPool(host="127.0.0.1", port=self.port, max_connections=20)
        self.addCleanup(pool.disconnect)
        clients = [redis.Redis(connection_pool=pool) for _ in range(20)]
        for i, c in enumerate(clients):
            c.incr("shared")
        self.assertEqual(self.r.get("shared"), b"20")

    @unittest.skipIf(redis_py_version() < (5, 0),
                     "installed redis-py %s has no protocol=3" % redis.__version__)
    def test_resp3(self):
        r = self.client(protocol=3)
        self.assertTrue(r.set("a", "1"))
        self.assertEqual(r.get("a"), b"1")
        self.assertIsNone(r.get("missing"))
        cfg = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
               for k, v in r.config_get("maxclients").items()}
        self.assertEqual(cfg, {"maxclients": "10000"})
        self.assertIn("redis_version", r.info())


if __name__ == "__main__":
    main()
