"""Replication over Redis's protocol (docs/replication.md): engram primaries
and engram replicas, every process started on a free port and stopped by
its pid.

  * full sync of strings, hashes (field TTLs), vector sets (attributes,
    graphs) and key TTLs, in several databases, then the stream: every
    kind of write, MULTI/EXEC, RENAME/MOVE/COPY/SWAPDB/FLUSHDB;
  * writes running while a full sync happens;
  * a dropped link continues with a partial sync (CLIENT KILL TYPE master on
    the replica, TYPE replica on the primary), a backlog overrun falls back
    to a full sync;
  * WAIT, -READONLY, ROLE, INFO replication, run_id;
  * promotion (REPLICAOF NO ONE) keeps the old id as replid2, and a
    sibling continues from it with a partial sync;
  * `redis-cli --replica` prints the stream (SET as a SET);
  * a replica answers VSIM exactly as the primary after inserts and
    deletes (the same graph: VLINKS equal);
  * kill -9 of a replica in the middle of its full sync;
  * a replica with a dir keeps the full sync as its snapshot.

A replica's dataset is compared with its primary's by `dump`: every key of
every database with its type, value, absolute expiry, hash fields with their
deadlines, and a vector set's elements with vectors, attributes and links.

engram only: the payload is an engram snapshot (Redis cannot read it)."""

import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from engram_test import REDIS_CLI, SLOW, Conn, Server, encode, engram_only, main, parse_info, \
    wait_until

DIM = 8


def vec(rng, dim=DIM):
    return ["%.4f" % rng.uniform(-1, 1) for _ in range(dim)]


def info(srv_or_conn, section="replication"):
    c = srv_or_conn if isinstance(srv_or_conn, Conn) else srv_or_conn.conn()
    try:
        return parse_info(c.cmd("INFO", section))
    finally:
        if c is not srv_or_conn:
            c.close()


def dump(srv, dbs=4):
    """Everything a server holds, as comparable Python values."""
    out = {}
    c = srv.conn()
    try:
        for db in range(dbs):
            c.cmd("SELECT", db)
            keys = []
            cursor = b"0"
            while True:
                cursor, batch = c.cmd("SCAN", cursor, "COUNT", 1000)
                keys += batch
                if cursor == b"0":
                    break
            for k in sorted(keys):
                t = c.cmd("TYPE", k)
                exp = c.cmd("PEXPIRETIME", k)
                if t == "string":
                    v = c.cmd("GET", k)
                elif t == "hash":
                    h = c.cmd("HGETALL", k)
                    fields = sorted(h[0::2])
                    v = sorted(zip(h[0::2], h[1::2]))
                    if fields:
                        v.append(tuple(c.cmd("HPEXPIRETIME", k, "FIELDS", len(fields), *fields)))
                elif t == "vectorset":
                    els = sorted(c.cmd("VRANDMEMBER", k, 1000000) or [])
                    v = [c.cmd("VCARD", k), c.cmd("VDIM", k)]
                    for e in els:
                        v.append((e, c.cmd("VEMB", k, e), c.cmd("VGETATTR", k, e),
                                  c.cmd("VLINKS", k, e)))
                else:
                    v = t
                out[(db, k)] = (t, exp, v)
    finally:
        c.close()
    return out


def wait_synced(test, primary, *replicas, timeout=20):
    """Every replica online, and its offset the primary's."""
    def ok():
        pi = info(primary)
        for r in replicas:
            ri = info(r)
            if ri.get("master_link_status") != "up":
                return False
            if ri.get("slave_repl_offset") != pi.get("master_repl_offset"):
                return False
        return True
    test.assertTrue(wait_until(ok, timeout), "replicas did not catch up:\nprimary %r\n%s" % (
        info(primary), "\n".join("replica %r" % info(r) for r in replicas)))


class ReplBase(unittest.TestCase):
    """Servers started per test, all stopped (by pid) at the end."""

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            try:
                if s.alive():
                    s.stop()
            finally:
                s.cleanup()

    def start(self, *flags):
        s = Server(list(flags)).start()
        self.servers.append(s)
        return s

    def replicate(self, replica, primary):
        c = replica.conn()
        self.assertEqual(c.cmd("REPLICAOF", "127.0.0.1", primary.port), "OK")
        c.close()

    def fill(self, c, rng, n=50):
        """A bit of everything, in databases 0 and 2."""
        now = int(time.time() * 1000)
        for i in range(n):
            c.cmd("SET", "s%d" % i, "v%d" % i)
        c.cmd("SET", "ttl", "x", "PX", 600000)
        c.cmd("HSET", "h", "a", "1", "b", "2", "c", "3")
        c.cmd("HPEXPIREAT", "h", now + 500000, "FIELDS", 1, "b")
        for i in range(n):
            c.cmd("VADD", "vs", "VALUES", DIM, *vec(rng), "e%d" % i)
        c.cmd("VSETATTR", "vs", "e1", '{"year": 1999}')
        c.cmd("VADD", "vq", "VALUES", DIM, *vec(rng), "q1", "Q8")
        c.cmd("EXPIRE", "vq", 1000)
        c.cmd("SELECT", 2)
        c.cmd("SET", "in2", "yes")
        c.cmd("HSET", "h2", "f", "v")
        c.cmd("VADD", "vs2", "VALUES", DIM, *vec(rng), "x")
        c.cmd("SELECT", 0)


@engram_only
class TestFullSync(ReplBase):
    def test_full_sync_then_stream(self):
        rng = random.Random(1)
        p = self.start()
        r = self.start()
        pc = p.conn()
        self.fill(pc, rng)
        self.replicate(r, p)
        wait_synced(self, p, r)
        self.assertEqual(dump(r), dump(p))
        # the stream: every kind of write
        now = int(time.time() * 1000)
        cmds = [
            ("SET", "s1", "changed"), ("SET", "n", "10"), ("INCR", "n"), ("INCRBYFLOAT", "n", "1.5"),
            ("APPEND", "s2", "++"), ("SETRANGE", "s3", 10, "zz"), ("APPEND", "empty", ""),
            ("DEL", "s4"), ("PEXPIRE", "s5", 700000), ("PERSIST", "ttl"),
            ("GETEX", "s6", "PXAT", now + 800000), ("RENAME", "s7", "s7b"),
            ("MOVE", "s8", 1), ("COPY", "s9", "s9copy", "DB", 3),
            ("HSET", "h", "d", "4"), ("HINCRBY", "h", "a", 5), ("HDEL", "h", "c"),
            ("HPEXPIRE", "h", 900000, "FIELDS", 2, "a", "d"), ("HPERSIST", "h", "FIELDS", 1, "d"),
            ("HSETEX", "hx", "PX", 400000, "FIELDS", 1, "f", "v"),
            ("VADD", "vs", "VALUES", DIM, *vec(rng), "new1"), ("VREM", "vs", "e3"),
            ("VSETATTR", "vs", "e2", '{"a": 1}'), ("VSETATTR", "vs", "e1", ""),
            ("VADD", "vs", "VALUES", DIM, *vec(rng), "e5", "SETATTR", '{"b": 2}'),
            ("VADD", "vnew", "REDUCE", 4, "VALUES", DIM, *vec(rng), "r1"),
            ("RENAME", "vs2x", "nothing"),
            ("COPY", "vs", "vscopy"), ("MOVE", "vq", 3),
            ("SWAPDB", 1, 3), ("SELECT", 2), ("FLUSHDB",), ("SET", "after", "flush"),
            ("SELECT", 0),
        ]
        for cmd in cmds:
            pc.cmd(*cmd)
        pc.send(encode("MULTI") + encode("SET", "m1", "1") + encode("HSET", "mh", "f", "v") +
                encode("VADD", "vs", "VALUES", DIM, *vec(rng), "m3") + encode("EXEC"))
        for _ in range(5):
            pc.read()
        self.assertEqual(pc.cmd("WAIT", 1, 5000), 1)
        wait_synced(self, p, r)
        self.assertEqual(dump(r), dump(p))
        # the engram dialect's sets too
        pc.cmd("VNEW", "eng", str(DIM))
        for i in range(20):
            pc.cmd("VADD", "eng", "k%d" % i, ",".join(str(x) for x in vec(rng)))
        pc.cmd("VDEL", "eng", "k3")
        pc.cmd("FLUSHALL")
        pc.cmd("SET", "last", "1")
        wait_synced(self, p, r)
        self.assertEqual(dump(r), dump(p))

    def test_search_indices(self):
        """FT.CREATE in the payload and in the stream: the replica's
        FT.SEARCH answers as the primary's."""
        p = self.start()
        r = self.start()
        pc = p.conn()
        for i in range(50):
            pc.cmd("HSET", "doc:%d" % i, "t", "hello world %d" % i, "n", i)
        self.assertEqual(pc.cmd("FT.CREATE", "before", "ON", "HASH", "PREFIX", 1, "doc:",
                                "SCHEMA", "t", "TEXT", "n", "NUMERIC"), "OK")
        self.replicate(r, p)
        wait_synced(self, p, r)
        self.assertEqual(pc.cmd("FT.CREATE", "after", "ON", "HASH", "PREFIX", 1, "doc:",
                                "SCHEMA", "n", "NUMERIC"), "OK")
        for i in range(50, 80):
            pc.cmd("HSET", "doc:%d" % i, "t", "hello again %d" % i, "n", i)
        pc.cmd("DEL", "doc:3")
        self.assertEqual(pc.cmd("WAIT", 1, 5000), 1)
        rc = r.conn()

        def found(c, q):
            # documents tied on score come in the order each server indexed
            # them (its own scan of its keyspace): compare them as a set
            res = c.cmd("FT.SEARCH", *q)
            return res[0], sorted(zip(res[1::2], (tuple(x) for x in res[2::2])))
        for q in (("before", "hello", "LIMIT", 0, 100), ("before", "@n:[10 60]", "LIMIT", 0, 100),
                  ("after", "@n:[40 70]", "LIMIT", 0, 100)):
            want = found(pc, q)
            self.assertTrue(wait_until(lambda: found(rc, q) == want, 10),
                            "FT.SEARCH %r: %r != %r" % (q, found(rc, q), want))
        pc.cmd("FT.DROPINDEX", "before")
        self.assertEqual(pc.cmd("WAIT", 1, 5000), 1)
        self.assertEqual(sorted(rc.cmd("FT._LIST")), [b"after"])

    def test_primary_with_dir(self):
        """The tap is the log's: with persistence on, the same stream."""
        rng = random.Random(2)
        p = self.start("--dir", "pdata")
        r = self.start()
        pc = p.conn()
        self.fill(pc, rng, 20)
        self.replicate(r, p)
        wait_synced(self, p, r)
        for i in range(100):
            pc.cmd("VADD", "vs", "VALUES", DIM, *vec(rng), "late%d" % i)
            pc.cmd("SET", "late%d" % i, i)
        self.assertEqual(pc.cmd("WAIT", 1, 5000), 1)
        self.assertEqual(dump(r), dump(p))

    def test_replica_with_dir_keeps_the_sync(self):
        rng = random.Random(3)
        p = self.start()
        rdir = tempfile.mkdtemp(prefix="engram-it-replica-")
        self.addCleanup(shutil.rmtree, rdir, True)
        r = self.start("--dir", rdir)
        rc = r.conn()
        rc.cmd("SET", "mine", "gone after the sync")
        pc = p.conn()
        self.fill(pc, rng, 20)
        self.replicate(r, p)
        wait_synced(self, p, r)
        pc.cmd("SET", "streamed", "1")
        pc.cmd("VADD", "vs", "VALUES", DIM, *vec(rng), "streamed")
        self.assertEqual(pc.cmd("WAIT", 1, 5000), 1)
        want = dump(p)
        self.assertEqual(dump(r), want)
        self.assertTrue(os.path.exists(os.path.join(rdir, "engram.snap")))
        # restarted from its dir (no replicaof): the same data
        r.stop()
        r2 = Server(["--dir", rdir]).start()
        self.servers.append(r2)
        self.assertEqual(dump(r2), want)

    def test_writes_during_full_sync(self):
        rng = random.Random(4)
        p = self.start()
        pc = p.conn()
        pipe = b"".join(encode("SET", "k%d" % i, "x" * 100) for i in range(30000))
        pc.send(pipe)
        for _ in range(30000):
            pc.read()
        for i in range(1000):
            pc.send(encode("VADD", "big", "VALUES", DIM, *vec(rng), "e%d" % i))
        for i in range(1000):
            pc.read()
        stop = threading.Event()
        errors = []

        def writer():
            c = p.conn()
            i = 0
            wrng = random.Random(5)
            try:
                while not stop.is_set():
                    c.cmd("SET", "w%d" % (i % 500), i)
                    c.cmd("INCR", "counter")
                    c.cmd("HSET", "wh", "f%d" % (i % 50), i)
                    c.cmd("VADD", "big", "VALUES", DIM, *vec(wrng), "w%d" % i)
                    i += 1
            except Exception as e:  # noqa
                errors.append(e)
            finally:
                c.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(0.2)
            r = self.start()
            self.replicate(r, p)
            wait_until(lambda: info(r).get("master_link_status") == "up", 20)
            time.sleep(0.5)
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(pc.cmd("WAIT", 1, 10000), 1)
        wait_synced(self, p, r)
        self.assertEqual(dump(r, dbs=1), dump(p, dbs=1))


@engram_only
class TestLinks(ReplBase):
    def test_partial_sync_after_dropped_link(self):
        p = self.start()
        r = self.start()
        pc = p.conn()
        pc.cmd("SET", "a", "1")
        self.replicate(r, p)
        wait_synced(self, p, r)
        self.assertEqual(info(p, "stats")["sync_full"], "1")
        # the replica drops its master
        rc = r.conn()
        self.assertEqual(rc.cmd("CLIENT", "KILL", "TYPE", "master"), 1)
        pc.cmd("SET", "b", "2")
        pc.cmd("SELECT", 1)
        pc.cmd("SET", "in1", "x")
        wait_synced(self, p, r)
        self.assertEqual(info(p, "stats")["sync_partial_ok"], "1")
        self.assertEqual(rc.cmd("GET", "b"), b"2")
        # the primary drops its replica
        self.assertEqual(pc.cmd("CLIENT", "KILL", "TYPE", "replica"), 1)
        pc.cmd("SET", "c", "3")     # still in database 1: the replica kept its SELECT
        wait_synced(self, p, r)
        st = info(p, "stats")
        self.assertEqual((st["sync_full"], st["sync_partial_ok"]), ("1", "2"))
        rc.cmd("SELECT", 1)
        self.assertEqual(rc.cmd("GET", "c"), b"3")
        self.assertEqual(dump(r), dump(p))

    def test_restarts_from_dir_continue(self):
        """A clean restart from the dir keeps the history: a replica
        restarted continues with PSYNC, and so do replicas of a restarted
        primary."""
        pdir = tempfile.mkdtemp(prefix="engram-it-primary-")
        rdir = tempfile.mkdtemp(prefix="engram-it-replica-")
        self.addCleanup(shutil.rmtree, pdir, True)
        self.addCleanup(shutil.rmtree, rdir, True)
        p = self.start("--dir", pdir)
        pc = p.conn()
        pc.cmd("SELECT", 3)
        pc.cmd("SET", "a", "1")
        conf = "replicaof 127.0.0.1 %d\n" % p.port
        r = Server(["--dir", rdir], config=conf).start()
        self.servers.append(r)
        wait_synced(self, p, r)
        # the replica restarts
        r.stop()
        pc.cmd("SET", "b", "2")     # still database 3: the replica kept its SELECT
        r = Server(["--dir", rdir], config=conf, port=r.port).start()
        self.servers.append(r)
        wait_synced(self, p, r)
        st = info(p, "stats")
        self.assertEqual((st["sync_full"], st["sync_partial_ok"]), ("1", "1"))
        self.assertEqual(dump(r), dump(p))
        # the primary restarts
        replid = info(p)["master_replid"]
        p.stop()
        p = Server(["--dir", pdir], port=p.port).start()
        self.servers.append(p)
        self.assertEqual(info(p)["master_replid"], replid)
        pc = p.conn()
        pc.cmd("SET", "c", "3")
        wait_synced(self, p, r)
        st = info(p, "stats")
        self.assertEqual((st["sync_full"], st["sync_partial_ok"]), ("0", "1"))
        self.assertEqual(dump(r), dump(p))
        # after a kill -9 there is no state: a full sync
        r.kill()
        r = Server(["--dir", rdir], config=conf, port=r.port).start()
        self.servers.append(r)
        wait_synced(self, p, r)
        self.assertEqual(info(p, "stats")["sync_full"], "1")
        self.assertEqual(dump(r), dump(p))

    def test_backlog_overrun_means_full_sync(self):
        p = self.start("--repl-backlog-size", "16kb")
        r = self.start()
        pc = p.conn()
        self.replicate(r, p)
        wait_synced(self, p, r)
        r.send_signal(signal.SIGSTOP)
        try:
            self.assertEqual(pc.cmd("CLIENT", "KILL", "TYPE", "replica"), 1)
            for i in range(200):
                pc.cmd("SET", "k%d" % i, "x" * 200)
        finally:
            r.send_signal(signal.SIGCONT)
        wait_synced(self, p, r)
        st = info(p, "stats")
        self.assertEqual(st["sync_full"], "2")
        self.assertEqual(st["sync_partial_err"], "1")
        self.assertEqual(dump(r), dump(p))

    def test_kill9_replica_during_sync(self):
        rng = random.Random(6)
        p = self.start("--repl-timeout", "5")
        pc = p.conn()
        pipe = b"".join(encode("SET", "k%d" % i, "x" * 1000) for i in range(100000))
        pc.send(pipe)
        for _ in range(100000):
            pc.read()
        r = self.start()
        rc = r.conn()
        rc.send(encode("REPLICAOF", "127.0.0.1", p.port))
        self.assertEqual(rc.read(), "OK")
        self.assertTrue(wait_until(lambda: info(p)["connected_slaves"] == "1", 10))
        r.kill()
        self.assertTrue(wait_until(lambda: info(p)["connected_slaves"] == "0", 15))
        # nothing left behind, and the primary serves a new replica
        self.assertTrue(wait_until(
            lambda: not [f for f in os.listdir("/tmp") if f.startswith("engram-repl.%d." %
                                                                       p.proc.pid)], 15))
        pc.cmd("VADD", "vs", "VALUES", DIM, *vec(rng), "after")
        r2 = self.start()
        self.replicate(r2, p)
        wait_synced(self, p, r2, timeout=60)
        self.assertEqual(len(dump(r2, dbs=1)), len(dump(p, dbs=1)))

    def test_promotion_keeps_history(self):
        p = self.start()
        a = self.start()
        b = self.start()
        pc = p.conn()
        pc.cmd("SET", "x", "1")
        self.replicate(a, p)
        self.replicate(b, p)
        wait_synced(self, p, a, b)
        old_id = info(p)["master_replid"]
        p.stop()
        ac = a.conn()
        self.assertEqual(ac.cmd("REPLICAOF", "NO", "ONE"), "OK")
        ia = info(a)
        self.assertEqual(ia["role"], "master")
        self.assertEqual(ia["master_replid2"], old_id)
        self.assertNotEqual(ia["master_replid"], old_id)
        self.assertEqual(int(ia["second_repl_offset"]), int(ia["master_repl_offset"]) + 1)
        self.replicate(b, a)
        ac.cmd("SET", "y", "2")
        wait_synced(self, a, b)
        st = info(a, "stats")
        self.assertEqual((st["sync_full"], st["sync_partial_ok"]), ("0", "1"))
        self.assertEqual(info(b)["master_replid"], info(a)["master_replid"])
        self.assertEqual(dump(b), dump(a))
        self.assertEqual(ac.cmd("REPLICAOF", "NO", "ONE"), "OK")   # already one


@engram_only
class TestCommands(ReplBase):
    def test_wait_readonly_role_info(self):
        p = self.start()
        pc = p.conn()
        self.assertEqual(pc.cmd("WAIT", 0, 0), 0)
        t0 = time.monotonic()
        self.assertEqual(pc.cmd("WAIT", 1, 200), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.18)
        self.assertEqual(str(pc.cmd("WAIT", 1, -1)), "ERR timeout is negative")
        self.assertEqual(pc.cmd("ROLE"), [b"master", 0, []])
        r = self.start()
        self.replicate(r, p)
        wait_synced(self, p, r)
        pc.cmd("SET", "k", "v")
        self.assertEqual(pc.cmd("WAIT", 1, 5000), 1)
        t0 = time.monotonic()
        self.assertEqual(pc.cmd("WAIT", 2, 300), 1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        # a WAIT that blocks keeps the client's next replies in order
        pc.send(encode("WAIT", 2, 100) + encode("GET", "k"))
        self.assertEqual(pc.read(), 1)
        self.assertEqual(pc.read(), b"v")
        rc = r.conn()
        rc.send(encode("SET", "k", "x"))
        self.assertEqual(rc.read_raw(), b"-READONLY You can't write against a read only replica.\r\n")
        rc.send(encode("MULTI") + encode("SET", "k", "x") + encode("EXEC"))
        self.assertEqual(rc.read(), "OK")
        self.assertEqual(str(rc.read()), "READONLY You can't write against a read only replica.")
        self.assertTrue(str(rc.read()).startswith("EXECABORT"))
        self.assertEqual(rc.cmd("GET", "k"), b"v")
        self.assertTrue(str(rc.cmd("WAIT", 0, 0)).startswith(
            "ERR WAIT cannot be used with replica instances."))
        self.assertTrue(str(rc.cmd("PSYNC", "?", "-1")).startswith(
            "ERR engram does not replicate from a replica yet"))
        role = rc.cmd("ROLE")
        self.assertEqual(role[:4], [b"slave", b"127.0.0.1", p.port, b"connected"])
        prole = pc.cmd("ROLE")
        self.assertEqual(prole[0], b"master")
        self.assertEqual(prole[2][0][:2], [b"127.0.0.1", str(r.port).encode()])
        pi, ri = info(p), info(r)
        self.assertEqual(pi["role"], "master")
        self.assertEqual(pi["connected_slaves"], "1")
        self.assertRegex(pi["slave0"], r"^ip=127\.0\.0\.1,port=%d,state=online,offset=\d+,lag=\d+$"
                         % r.port)
        self.assertEqual(ri["role"], "slave")
        for f in ("master_host", "master_port", "master_link_status", "master_last_io_seconds_ago",
                  "master_sync_in_progress", "slave_read_repl_offset", "slave_repl_offset",
                  "slave_priority", "slave_read_only", "replica_announced", "connected_slaves",
                  "master_failover_state", "master_replid", "master_replid2",
                  "master_repl_offset", "second_repl_offset", "repl_backlog_active",
                  "repl_backlog_size", "repl_backlog_first_byte_offset", "repl_backlog_histlen"):
            self.assertIn(f, ri)
        run1, run2 = info(p, "server")["run_id"], info(r, "server")["run_id"]
        self.assertRegex(run1, r"^[0-9a-f]{40}$")
        self.assertNotEqual(run1, run2)
        # CLIENT LIST flags
        self.assertIn("flags=S", pc.cmd("CLIENT", "LIST", "TYPE", "replica").decode())
        self.assertIn("flags=M", rc.cmd("CLIENT", "LIST", "TYPE", "master").decode())
        # writable replica
        self.assertEqual(rc.cmd("CONFIG", "SET", "replica-read-only", "no"), "OK")
        self.assertEqual(rc.cmd("SET", "local", "1"), "OK")
        self.assertEqual(rc.cmd("REPLICAOF", "127.0.0.1", p.port),
                         "OK Already connected to specified master")
        self.assertEqual(str(rc.cmd("REPLICAOF", "127.0.0.1", "x")),
                         "ERR value is not an integer or out of range")

    def test_min_replicas_and_stale_data(self):
        p = self.start()
        pc = p.conn()
        self.assertEqual(pc.cmd("CONFIG", "SET", "min-replicas-to-write", "1"), "OK")
        pc.send(encode("SET", "k", "v"))
        self.assertEqual(pc.read_raw(), b"-NOREPLICAS Not enough good replicas to write.\r\n")
        self.assertEqual(pc.cmd("GET", "k"), None)
        self.assertEqual(info(pc)["min_slaves_good_slaves"], "0")
        r = self.start()
        self.replicate(r, p)
        wait_synced(self, p, r)
        self.assertTrue(wait_until(lambda: pc.cmd("SET", "k", "v") == "OK", 5))
        self.assertEqual(info(pc)["min_slaves_good_slaves"], "1")
        # the replica loses its master: with replica-serve-stale-data no,
        # only stale commands run
        rc = r.conn()
        self.assertEqual(rc.cmd("CONFIG", "SET", "replica-serve-stale-data", "no"), "OK")
        self.assertEqual(rc.cmd("GET", "k"), b"v")
        p.stop()
        self.assertTrue(wait_until(lambda: info(rc)["master_link_status"] == "down", 10))
        rc.send(encode("GET", "k"))
        self.assertEqual(rc.read_raw(), b"-MASTERDOWN Link with MASTER is down and "
                         b"replica-serve-stale-data is set to 'no'.\r\n")
        self.assertIn(b"role:slave", rc.cmd("INFO", "replication"))
        self.assertEqual(rc.cmd("CONFIG", "SET", "replica-serve-stale-data", "yes"), "OK")
        self.assertEqual(rc.cmd("GET", "k"), b"v")

    def test_replicaof_inside_multi(self):
        p = self.start()
        r = self.start()
        rc = r.conn()
        rc.send(encode("MULTI") + encode("REPLICAOF", "127.0.0.1", p.port) +
                encode("CONFIG", "REWRITE") + encode("EXEC"))
        self.assertEqual(rc.read(), "OK")
        self.assertEqual(rc.read(), "QUEUED")
        self.assertEqual(rc.read(), "QUEUED")
        res = rc.read()
        self.assertEqual(res[0], "OK")
        wait_synced(self, p, r)

    def test_masterauth_and_replicaof_setting(self):
        p = self.start("--requirepass", "s3cret")
        pc = p.conn()
        self.assertEqual(pc.cmd("AUTH", "s3cret"), "OK")
        pc.cmd("SET", "k", "v")
        # without the password the handshake fails and keeps retrying
        r = Server(config="replicaof 127.0.0.1 %d\n" % p.port).start()
        self.servers.append(r)
        time.sleep(1.5 * SLOW)
        self.assertEqual(info(r)["master_link_status"], "down")
        self.assertIn("NOAUTH", r.stderr())
        rc = r.conn()
        self.assertEqual(rc.cmd("CONFIG", "SET", "masterauth", "s3cret"), "OK")
        self.assertTrue(wait_until(lambda: rc.cmd("GET", "k") == b"v", 10))
        self.assertEqual(rc.cmd("CONFIG", "GET", "replicaof"),
                         [b"replicaof", ("127.0.0.1 %d" % p.port).encode()])
        # promoted, the setting follows
        self.assertEqual(rc.cmd("REPLICAOF", "NO", "ONE"), "OK")
        self.assertEqual(rc.cmd("CONFIG", "GET", "replicaof"), [b"replicaof", b""])

    def test_redis_cli_replica(self):
        p = self.start()
        pc = p.conn()
        pc.cmd("SET", "before", "1")
        proc = subprocess.Popen([REDIS_CLI, "-p", str(p.port), "--replica"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            self.assertTrue(wait_until(lambda: info(p)["connected_slaves"] == "1", 10))
            time.sleep(0.3)
            pc.cmd("SET", "k", "hello")
            pc.cmd("VADD", "vs", "VALUES", 2, 1, 2, "el")
            pc.cmd("DEL", "before")
            time.sleep(1.0 * SLOW)
        finally:
            proc.terminate()
            out = proc.communicate(timeout=10)[0].decode("utf-8", "replace")
        self.assertIn('"SET","k","hello"', out)
        self.assertIn('"REPLAY","VADD"', out)
        self.assertIn('"DEL","before"', out)


@engram_only
class TestIdenticalIndices(ReplBase):
    def test_vsim_identical(self):
        rng = random.Random(7)
        n = 10000 if SLOW == 1 else 2000     # the issue: 10,000 inserts, 1,000 deletes
        p = self.start()
        pc = p.conn()

        def add(lo, hi):
            pc.send(b"".join(encode("VADD", "idx", "VALUES", 16, *vec(rng, 16), "e%d" % i)
                             for i in range(lo, hi)))
            for _ in range(lo, hi):
                pc.read()

        add(0, n // 2)
        r = self.start()
        self.replicate(r, p)
        wait_synced(self, p, r)
        add(n // 2, n)
        dels = rng.sample(range(n), n // 10)
        pc.send(b"".join(encode("VREM", "idx", "e%d" % i) for i in dels))
        for _ in dels:
            pc.read()
        add(n, n + n // 10)
        self.assertEqual(pc.cmd("WAIT", 1, 10000), 1)
        rc = r.conn()
        for _ in range(50):
            q = vec(rng, 16)
            a = pc.cmd("VSIM", "idx", "VALUES", 16, *q, "WITHSCORES", "COUNT", 20)
            b = rc.cmd("VSIM", "idx", "VALUES", 16, *q, "WITHSCORES", "COUNT", 20)
            self.assertEqual(a, b)
        for i in rng.sample(range(n + n // 10), 100):
            el = "e%d" % i
            self.assertEqual(pc.cmd("VLINKS", "idx", el), rc.cmd("VLINKS", "idx", el))
        self.assertEqual(pc.cmd("VINFO", "idx"), rc.cmd("VINFO", "idx"))


if __name__ == "__main__":
    main()
