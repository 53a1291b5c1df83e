"""redis-benchmark runs cleanly against the server (a smoke test of
concurrency and pipelining, not a performance measurement: no timing is
asserted beyond "requests per second > 0")."""

import re
import subprocess

from engram_test import REDIS_BENCHMARK, SANITIZE, SLOW, ServerTestCase, main

N = 5000 if SANITIZE else 20000
EXPECTED = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]
RESULT = re.compile(r"^(.+?): ([0-9.]+) requests per second")


class TestBenchmark(ServerTestCase):
    flush_between_tests = False

    def bench(self, *extra):
        cmd = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(self.port),
               "-t", "ping,set,get,incr,mset", "-n", str(N), "-q"] + list(extra)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=180 * SLOW)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, "redis-benchmark exited %d\nstdout:%s\nstderr:%s"
                         % (p.returncode, out[-2000:], err[-2000:]))
        self.assertNotRegex(err, r"ERR|Error|error|WARN",
                            "redis-benchmark reported problems on stderr:\n%s" % err[-2000:])
        results = {}
        for line in re.split(r"[\r\n]+", out):
            m = RESULT.match(line.strip())
            if m:
                results[m.group(1)] = float(m.group(2))
        self.assertEqual(sorted(results), sorted(EXPECTED), "stdout:\n%s" % out[-3000:])
        for name, rps in results.items():
            self.assertGreater(rps, 0, name)
        return results

    def test_config_fields_redis_benchmark_reads(self):
        # redis-benchmark starts with CONFIG GET save / CONFIG GET appendonly
        # and warns "Could not fetch server CONFIG" unless each returns a
        # name/value pair.
        c = self.conn()
        for name in ("save", "appendonly"):
            reply = c.cmd("CONFIG", "GET", name)
            self.assertIsInstance(reply, list)
            self.assertEqual(len(reply), 2, "CONFIG GET %s -> %r" % (name, reply))
            self.assertEqual(reply[0], name.encode())

    def test_benchmark(self):
        c = self.conn()
        self.assertEqual(c.cmd("FLUSHALL"), "OK")
        self.bench()
        # every INCR went to the one literal key "counter:__rand_int__"
        self.assertEqual(c.cmd("GET", "counter:__rand_int__"), b"%d" % N)
        self.assertEqual(c.cmd("STRLEN", "key:__rand_int__"), 3)   # -d 3 (default)
        self.bench("-P", "16")
        # With pipelining, redis-benchmark may send a few more than -n: the
        # pipelines already in flight when the count is reached (seen against
        # slow servers, e.g. under ASan).  Never fewer, never more than one
        # pipeline per client over.
        n = int(c.cmd("GET", "counter:__rand_int__"))
        self.assertGreaterEqual(n, 2 * N)
        self.assertLess(n, 2 * N + 50 * 16)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_benchmark_random_keys_larger_values(self):
        c = self.conn()
        self.assertEqual(c.cmd("FLUSHALL"), "OK")
        self.bench("-r", "1000", "-d", "1000", "-c", "20")
        n = c.cmd("DBSIZE")
        self.assertGreater(n, 100)
        self.assertLessEqual(n, 2000)
        keys = c.cmd("KEYS", "key:*")
        self.assertTrue(keys)
        self.assertEqual(c.cmd("STRLEN", keys[0]), 1000)


if __name__ == "__main__":
    main()
