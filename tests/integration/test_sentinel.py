"""Unmodified Redis Sentinel (Debian's redis-server 7.0 started with
--sentinel, three of them) monitoring an engram primary and two engram
replicas (docs/replication.md):

  * the Sentinels discover both replicas and each other (INFO, pub/sub);
  * kill -9 of the primary: a replica is promoted within 20 s, the other
    one follows it, redis-py's Sentinel client finds the new primary, and
    every write acknowledged by WAIT 2 before the kill is there;
  * the killed node, restarted from its dir, is turned into a replica of
    the new primary by the Sentinels and gets its data;
  * several such cycles in a row (ENGRAM_SENTINEL_CYCLES, default 3), with
    a writer of keys and vectors running all along through redis-py's
    Sentinel client: every write WAIT 2 acknowledged is on the last primary.

Every process is started on a free port and stopped by its pid.  engram
only."""

import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from engram_test import REDIS_SERVER, SLOW, Conn, Server, engram_only, free_port, main, parse_info, \
    wait_until

CYCLES = int(os.environ.get("ENGRAM_SENTINEL_CYCLES", "3"))
DIM = 8


class Sentinel:
    def __init__(self, master_port):
        self.dir = tempfile.mkdtemp(prefix="engram-it-sentinel-")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"
                    "sentinel monitor mymaster 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds mymaster %d\n"
                    "sentinel failover-timeout mymaster %d\n"
                    % (self.port, self.dir, os.path.join(self.dir, "sentinel.log"), master_port,
                       2000 * SLOW, 5000 * SLOW))
        self.proc = subprocess.Popen([REDIS_SERVER, self.conf, "--sentinel"], cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def master_port(self):
        try:
            addr = self.client().execute_command("SENTINEL", "get-master-addr-by-name",
                                                 "mymaster")
            return int(addr[1])
        except Exception:   # noqa: not up yet
            return None

    def log(self):
        try:
            with open(os.path.join(self.dir, "sentinel.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def role(port):
    """INFO replication of the server on port, {} while it is down."""
    try:
        with Conn(port, timeout=5) as c:
            return parse_info(c.cmd("INFO", "replication"))
    except Exception:   # noqa: down
        return {}


@engram_only
class TestSentinelFailover(unittest.TestCase):
    def setUp(self):
        self.nodes = {}          # port -> (Server, data dir)
        self.sentinels = []

    def tearDown(self):
        for s in self.sentinels:
            s.stop()
        for srv, d in self.nodes.values():
            try:
                if srv.alive():
                    srv.stop(check=False)
            finally:
                srv.cleanup()
                shutil.rmtree(d, ignore_errors=True)

    def start_node(self, port=None, data=None, master=None):
        data = data or tempfile.mkdtemp(prefix="engram-it-node-")
        conf = "replicaof 127.0.0.1 %d\n" % master if master else ""
        srv = Server(["--dir", data, "--appendfsync", "everysec"], config=conf,
                     port=port).start()
        self.nodes[srv.port] = (srv, data)
        return srv

    def test_failover_cycles(self):
        import redis
        from redis.sentinel import Sentinel as PySentinel
        rng = random.Random(11)
        primary = self.start_node()
        for _ in range(2):
            self.start_node(master=primary.port)
        self.sentinels = [Sentinel(primary.port) for _ in range(3)]
        sc = self.sentinels[0].client()

        def discovered():
            try:
                reps = sc.execute_command("SENTINEL", "replicas", "mymaster")
                sens = sc.execute_command("SENTINEL", "sentinels", "mymaster")
            except Exception:   # noqa
                return False
            return len(reps) == 2 and len(sens) == 2
        self.assertTrue(wait_until(discovered, 30), self.sentinels[0].log())
        acked = {}
        seq = 0
        # a writer through redis-py's Sentinel client runs all along: keys
        # and vectors, WAIT 2 after every batch; what WAIT acknowledged must
        # survive every failover
        stop = threading.Event()
        wacked = {}
        wstats = {"batches": 0, "errors": 0}

        def writer():
            ps = PySentinel([("127.0.0.1", s.port) for s in self.sentinels], socket_timeout=5)
            wrng = random.Random(12)
            n = 0
            while not stop.is_set():
                try:
                    m = ps.master_for("mymaster", socket_timeout=5)
                    batch = {}
                    for _ in range(10):
                        n += 1
                        m.set("w%d" % n, n)
                        m.execute_command("VADD", "wv", "VALUES", DIM,
                                          *["%.3f" % wrng.uniform(-1, 1) for _ in range(DIM)],
                                          "w%d" % n)
                        batch["w%d" % n] = str(n).encode()
                    if m.execute_command("WAIT", 2, 2000) == 2:
                        wacked.update(batch)
                        wstats["batches"] += 1
                except Exception:   # noqa: failing over
                    wstats["errors"] += 1
                    time.sleep(0.2)

        wt = threading.Thread(target=writer)
        wt.start()
        self.addCleanup(stop.set)
        for cycle in range(CYCLES):
            master_port = self.sentinels[0].master_port()
            m = redis.Redis(host="127.0.0.1", port=master_port, socket_timeout=10)
            self.assertTrue(wait_until(
                lambda: role(master_port).get("connected_slaves") == "2" and all(
                    role(p).get("master_link_status") == "up"
                    for p in self.nodes if p != master_port), 60),
                "cycle %d: replicas not all up" % cycle)
            for _ in range(50):
                seq += 1
                m.set("k%d" % seq, seq)
                m.execute_command("VADD", "vs", "VALUES", DIM,
                                  *["%.3f" % rng.uniform(-1, 1) for _ in range(DIM)],
                                  "e%d" % seq)
            self.assertEqual(m.execute_command("WAIT", 2, 10000), 2)
            acked.update({"k%d" % i: str(i).encode() for i in range(1, seq + 1)})
            # kill -9 the primary
            old, data = self.nodes[master_port]
            old.kill()
            t0 = time.monotonic()
            self.assertTrue(wait_until(
                lambda: all(s.master_port() not in (None, master_port) for s in self.sentinels),
                20), "cycle %d: no promotion within 20 s\n%s" % (cycle, self.sentinels[0].log()))
            elapsed = time.monotonic() - t0
            new_port = self.sentinels[0].master_port()
            self.assertIn(new_port, self.nodes)
            # redis-py's Sentinel client finds it, and it has every acked write
            ps = PySentinel([("127.0.0.1", s.port) for s in self.sentinels], socket_timeout=5)
            self.assertEqual(ps.discover_master("mymaster"), ("127.0.0.1", new_port))
            nm = ps.master_for("mymaster", socket_timeout=10)
            self.assertTrue(wait_until(lambda: role(new_port).get("role") == "master", 10))
            for k, v in acked.items():
                self.assertEqual(nm.get(k), v, "cycle %d: %s lost" % (cycle, k))
            self.assertEqual(nm.execute_command("VCARD", "vs"), seq)
            nm.set("after%d" % cycle, "1")
            # the killed node restarts from its dir and becomes a replica
            del self.nodes[master_port]
            old.cleanup()
            back = self.start_node(port=master_port, data=data)
            # (on a crowded machine a Sentinel may fail over once more meanwhile:
            # the old primary must follow whichever node is primary now)
            self.assertTrue(wait_until(
                lambda: role(master_port).get("master_port") ==
                str(self.sentinels[0].master_port()) and
                role(master_port).get("master_link_status") == "up", 60),
                "cycle %d: the old primary did not rejoin\n%s" % (cycle, self.sentinels[0].log()))
            r = redis.Redis(host="127.0.0.1", port=master_port, socket_timeout=10)
            self.assertTrue(wait_until(lambda: r.get("after%d" % cycle) == b"1", 20))
            self.assertEqual(r.execute_command("VCARD", "vs"), seq)
            print("cycle %d: promoted in %.1f s" % (cycle, elapsed))
            back.conn().close()
        stop.set()
        wt.join()
        self.assertGreater(wstats["batches"], 0)
        final = PySentinel([("127.0.0.1", s.port) for s in self.sentinels],
                           socket_timeout=5).master_for("mymaster", socket_timeout=10)
        lost = [k for k, v in wacked.items() if final.get(k) != v]
        self.assertEqual(lost, [], "WAIT-acknowledged writes lost (%d of %d)"
                         % (len(lost), len(wacked)))
        print("writer: %d acknowledged batches, %d errors while failing over"
              % (wstats["batches"], wstats["errors"]))


if __name__ == "__main__":
    main()
