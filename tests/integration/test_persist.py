"""Persistence: the write-ahead log, snapshots and recovery (--dir DIR).

  * restart equality: a digest of the whole dataset (every key's value and
    TTL, every index's parameters, vectors and search results) is the same
    after a restart from the log only, a snapshot only, a snapshot plus a
    log, a clean SIGTERM and SHUTDOWN SAVE;
  * expiries are absolute times: a TTL keeps running while the server is
    down, a key whose deadline passed is gone;
  * damaged files: a torn tail is cut (and logged), a damaged record
    followed by good ones refuses start-up (or is cut with
    --wal-truncate-corrupt yes), a damaged snapshot always refuses;
  * clients that connect during a long replay get -LOADING;
  * the failure path (DEBUG WAL-FAULT): the writer gets an error and is
    disconnected, later writes get -MISCONF, reads work, a recovery snapshot
    lets writes in again;
  * settings: appendonly follows dir, appendfsync at run time, one server
    per directory;
  * appendfsync everysec and no.

The kill -9 loop lives in test_persist_crash.py.  Each test starts its own
servers on its own data directory.  engram-only: the Redis target runs
without persistence."""

import os
import random
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest

from engram_test import (SANITIZE, SLOW, Closed, RespError, Server, ServerError, encode,
                         engram_bin, engram_only, free_port, main, parse_info, wait_until)

KEEP = bool(os.environ.get("ENGRAM_TEST_KEEP"))

E_NO_PERSIST = "ERR persistence not enabled; start with --dir"

WAL_HEADER = 24
WAL_REC_HEADER = 20
WAL_NAME = re.compile(r"^wal-([0-9a-f]{16})\.log$")


# ---- small helpers -----------------------------------------------------------

def crc32c(data):
    """CRC-32C (Castagnoli), bit by bit: for the few bytes tests forge."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def info_fields(reply):
    """VINFO's RESP2 flat field/value array as a dict."""
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    return {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}


def pipeline(conn, cmds, chunk=256):
    """Send the commands in pipelined chunks; every reply, in order."""
    out = []
    for i in range(0, len(cmds), chunk):
        part = cmds[i:i + chunk]
        conn.send(b"".join(encode(*c) for c in part))
        for _ in part:
            out.append(conn.read())
    return out


def blob(vals):
    return struct.pack("<%df" % len(vals), *vals)


def rand_vec(rng, dim):
    return [rng.uniform(-1.0, 1.0) for _ in range(dim)]


def rand_bytes(rng, lo, hi):
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(lo, hi)))


def wal_files(d):
    """The log files in d, sorted by base seq: [(base, path), ...]."""
    out = []
    for name in os.listdir(d):
        m = WAL_NAME.match(name)
        if m:
            out.append((int(m.group(1), 16), os.path.join(d, name)))
    return sorted(out)


def wal_records(path):
    """(offset, total size) of every whole record in a log file."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"ENGRAMWL", "%s: bad magic %r" % (path, data[:8])
    out, pos = [], WAL_HEADER
    while pos + WAL_REC_HEADER <= len(data):
        n = struct.unpack_from("<I", data, pos)[0]
        size = WAL_REC_HEADER + n
        if pos + size > len(data):
            break
        out.append((pos, size))
        pos += size
    return out


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


# ---- the dataset -------------------------------------------------------------

# name, dim, metric, type, extra VNEW options
INDEXES = [
    (b"h_l2", 32, "l2", "hnsw", ["M", "8", "EF_CONSTRUCTION", "40", "EF", "40"]),
    (b"h_cos", 24, "cosine", "hnsw", []),                       # the defaults
    (b"h dot\x00bin", 16, "dot", "hnsw", ["M", "6", "EF_CONSTRUCTION", "30"]),
    (b"f_l2", 16, "l2", "flat", []),
    (b"f_cos", 48, "cosine", "flat", []),
    (b"f_dot", 64, "dot", "flat", []),
]
N_VEC = 500 if not SANITIZE else 150          # per index: 3000 vectors in all
N_KEYS = 600 if not SANITIZE else 200
N_QUERIES = 20
BIG = (1 << 20) if not SANITIZE else (256 << 10)


class Model:
    """What the test wrote to the indices, so their keys can be enumerated."""

    def __init__(self):
        self.dims = {}        # index name -> dim
        self.vecs = {}        # index name -> {key: blob}
        self.touched = {}     # index name -> every key ever added or deleted
        self.queries = {}     # index name -> [blob, ...]

    def vnew(self, name, dim, rng):
        self.dims[name] = dim
        self.vecs[name] = {}
        self.touched[name] = set()
        self.queries[name] = [blob(rand_vec(rng, dim)) for _ in range(N_QUERIES)]

    def vdrop(self, name):
        for d in (self.dims, self.vecs, self.touched, self.queries):
            d.pop(name, None)


class Workload:
    """Seeded writes through one connection; every reply checked not to be
    an error (and, where it is certain, its exact value)."""

    def __init__(self, tc, conn, model, seed):
        self.tc = tc
        self.c = conn
        self.m = model
        self.rng = random.Random(seed)

    def run(self, cmds):
        replies = pipeline(self.c, cmds)
        for cmd, r in zip(cmds, replies):
            self.tc.assertNotIsInstance(r, RespError, "%r -> %r" % (cmd[:3], r))
        return replies

    # -- vectors
    def create_indexes(self, specs=INDEXES):
        for name, dim, metric, typ, opts in specs:
            self.tc.assertEqual(self.c.cmd("VNEW", name, str(dim), "METRIC", metric, "TYPE", typ,
                                           *opts), "OK")
            self.m.vnew(name, dim, self.rng)

    def add_vectors(self, name, n, prefix=b"v"):
        dim = self.m.dims[name]
        cmds = []
        start = len(self.m.touched[name])
        for i in range(n):
            key = b"%s:%d" % (prefix, start + i) if i % 7 else b"%s\x00:%d\xff" % (prefix, start + i)
            have = list(self.m.vecs[name].values())
            if have and i % 25 == 0:
                b = have[self.rng.randrange(len(have))]       # an exact duplicate: ties
            else:
                b = blob(rand_vec(self.rng, dim))
            # keep what the server stores: float32 (it is, already)
            cmds.append(("VADD", name, key, b))
            self.m.vecs[name][key] = b
            self.m.touched[name].add(key)
        self.run(cmds)

    def overwrite_vectors(self, name, n):
        keys = sorted(self.m.vecs[name])
        cmds = []
        for key in self.rng.sample(keys, min(n, len(keys))):
            b = blob(rand_vec(self.rng, self.m.dims[name]))
            cmds.append(("VADD", name, key, b))
            self.m.vecs[name][key] = b
        for r in self.run(cmds):
            self.tc.assertEqual(r, 0)

    def delete_vectors(self, name, n):
        keys = sorted(self.m.vecs[name])
        cmds = []
        for key in self.rng.sample(keys, min(n, len(keys))):
            cmds.append(("VDEL", name, key))
            del self.m.vecs[name][key]
        cmds.append(("VDEL", name, b"never-added"))
        replies = self.run(cmds)
        self.tc.assertEqual(replies, [1] * (len(cmds) - 1) + [0])

    def vdrop(self, name):
        self.tc.assertEqual(self.c.cmd("VDROP", name), "OK")
        self.m.vdrop(name)

    # -- strings
    def kv_phase1(self, tag=b""):
        rng = self.rng
        cmds = []
        for i in range(N_KEYS):
            cmds.append(("SET", b"%sk:%d" % (tag, i), rand_bytes(rng, 0, 80)))
        for i in range(N_KEYS // 10):
            cmds.append(("SET", b"%sbin\x00key\r\n%d\xff" % (tag, i), rand_bytes(rng, 1, 20)))
        cmds.append(["MSET"] + [x for i in range(20) for x in (b"%sm:%d" % (tag, i),
                                                             rand_bytes(rng, 0, 30))])
        cmds.append(("SET", tag + b"empty", b""))
        cmds.append(("SET", tag + b"big", rand_bytes(rng, 100, 100) * (BIG // 100)))
        # counters
        for i in range(10):
            cmds.append(("INCR", b"%sctr:%d" % (tag, i)))
            cmds.append(("INCRBY", b"%sctr:%d" % (tag, i), str(rng.randint(-1000, 1000))))
            cmds.append(("DECRBY", b"%sctr:%d" % (tag, i), "7"))
            cmds.append(("INCRBYFLOAT", b"%sflt:%d" % (tag, i), "%.5f" % rng.uniform(-50, 50)))
            cmds.append(("INCRBYFLOAT", b"%sflt:%d" % (tag, i), "0.1"))
        # appends and ranges
        for i in range(10):
            cmds.append(("APPEND", b"%sap:%d" % (tag, i), rand_bytes(rng, 1, 40)))
            cmds.append(("APPEND", b"%sap:%d" % (tag, i), rand_bytes(rng, 1, 40)))
            cmds.append(("SETRANGE", b"%sk:%d" % (tag, i), str(rng.randint(0, 100)),
                         rand_bytes(rng, 1, 30)))
            cmds.append(("SETRANGE", b"%snew-range:%d" % (tag, i), "17", b"\x00zz\x00"))
        # TTLs (all long: nothing expires during the test)
        for i in range(10, 40):
            cmds.append(("EXPIRE", b"%sk:%d" % (tag, i), str(rng.randint(5000, 90000))))
        for i in range(40, 50):
            cmds.append(("PEXPIRE", b"%sk:%d" % (tag, i), str(rng.randint(5000000, 9000000))))
        now = int(time.time())
        for i in range(50, 55):
            cmds.append(("EXPIREAT", b"%sk:%d" % (tag, i), str(now + 86400 + i)))
        cmds.append(("SET", tag + b"ex", b"v", "EX", "100000"))
        cmds.append(("SET", tag + b"px", b"v", "PX", "100000000"))
        cmds.append(("SETEX", tag + b"setex", "50000", b"v"))
        cmds.append(("PSETEX", tag + b"psetex", "60000000", b"v"))
        cmds.append(("PERSIST", b"%sk:%d" % (tag, 10)))
        cmds.append(("GETEX", b"%sk:%d" % (tag, 11), "PERSIST"))
        cmds.append(("GETEX", b"%sk:%d" % (tag, 60), "EX", "70000"))
        cmds.append(("SET", b"%sk:%d" % (tag, 12), b"kept-ttl", "KEEPTTL"))
        cmds.append(("SET", b"%sk:%d" % (tag, 13), b"ttl-gone"))
        # deletes, renames, copies
        for i in range(70, 90):
            cmds.append(("DEL", b"%sk:%d" % (tag, i)))
        cmds.append(("UNLINK", b"%sk:%d" % (tag, 90), b"%sk:%d" % (tag, 91)))
        cmds.append(("GETDEL", b"%sk:%d" % (tag, 92)))
        cmds.append(("RENAME", b"%sk:%d" % (tag, 20), b"%srenamed-with-ttl" % tag))
        cmds.append(("RENAME", b"%sk:%d" % (tag, 93), b"%srenamed" % tag))
        cmds.append(("COPY", b"%sk:%d" % (tag, 21), b"%scopied-with-ttl" % tag))
        cmds.append(("COPY", b"%sk:%d" % (tag, 94), b"%sk:%d" % (tag, 95), "REPLACE"))
        cmds.append(("GETSET", b"%sk:%d" % (tag, 96), b"getset"))
        cmds.append(("SETNX", b"%sk:%d" % (tag, 97), b"not-set"))
        cmds.append(("SETNX", tag + b"setnx-new", b"set"))
        cmds.append(("MSETNX", tag + b"msetnx-a", b"a", tag + b"msetnx-b", b"b"))
        cmds.append(("SET", b"%sk:%d" % (tag, 98), b"with-get", "GET"))
        self.run(cmds)
        self.multi_block(tag)

    def multi_block(self, tag):
        c = self.c
        names = [n for n in self.m.vecs if self.m.vecs[n]]
        self.tc.assertEqual(c.cmd("MULTI"), "OK")
        queued = [("SET", tag + b"tx:a", b"1"), ("INCR", tag + b"tx:ctr"),
                  ("APPEND", tag + b"tx:a", b"23"), ("EXPIRE", tag + b"tx:a", "80000"),
                  ("DEL", b"%sk:%d" % (tag, 99)), ("GET", tag + b"tx:a")]
        if names:
            name = names[0]
            key = sorted(self.m.vecs[name])[0]
            b = blob(rand_vec(self.rng, self.m.dims[name]))
            queued += [("VADD", name, tag + b"tx:vec", b), ("VDEL", name, key)]
            self.m.vecs[name][tag + b"tx:vec"] = b
            self.m.touched[name].add(tag + b"tx:vec")
            del self.m.vecs[name][key]
        for q in queued:
            self.tc.assertEqual(c.cmd(*q), "QUEUED")
        r = c.cmd("EXEC")
        self.tc.assertIsInstance(r, list)
        self.tc.assertEqual(r[5], b"123")
        for x in r:
            self.tc.assertNotIsInstance(x, RespError)

    def kv_phase2(self, tag=b""):
        """Overwrites, deletes and TTL changes on top of phase 1."""
        rng = self.rng
        cmds = []
        for i in range(100, 200):
            cmds.append(("SET", b"%sk:%d" % (tag, i), rand_bytes(rng, 0, 60)))
        for i in range(200, 260):
            cmds.append(("DEL", b"%sk:%d" % (tag, i)))
        for i in range(300, 320):
            cmds.append(("APPEND", b"%sk:%d" % (tag, i), b"+appended\x00"))
            cmds.append(("SETRANGE", b"%sk:%d" % (tag, i), "3", b"RANGE"))
        for i in range(10, 20):
            cmds.append(("PERSIST", b"%sk:%d" % (tag, i)))
        for i in range(320, 340):
            cmds.append(("EXPIRE", b"%sk:%d" % (tag, i), "40000"))
        cmds.append(("INCRBY", tag + b"ctr:0", "1000"))
        cmds.append(("INCRBYFLOAT", tag + b"flt:0", "2.5"))
        cmds.append(("RENAME", tag + b"renamed", tag + b"renamed-again"))
        cmds.append(("DEL", tag + b"big"))
        cmds.append(("SET", tag + b"big2", b"Z" * (BIG // 2)))
        self.run(cmds)


def populate(tc, conn, model, seed, n_vec=N_VEC):
    w = Workload(tc, conn, model, seed)
    w.create_indexes()
    for name, *_ in INDEXES:
        w.add_vectors(name, n_vec)
    for name, *_ in INDEXES:
        w.delete_vectors(name, n_vec // 20)
    for name, *_ in INDEXES:
        w.add_vectors(name, n_vec // 20)     # reuses the freed slots
    w.kv_phase1()
    return w


def mutate(w, n_vec=N_VEC):
    """Phase 2: overwrites, deletes, a dropped and a re-created index."""
    for name in (b"h_l2", b"f_l2", b"h_cos"):
        w.overwrite_vectors(name, n_vec // 10)
        w.delete_vectors(name, n_vec // 10)
        w.add_vectors(name, n_vec // 5, prefix=b"late")
    w.vdrop(b"f_dot")
    w.vdrop(b"h dot\x00bin")
    # the same name again, with another dimension and type
    w.create_indexes([(b"h dot\x00bin", 20, "l2", "flat", []),
                      (b"new_h", 16, "cosine", "hnsw", ["M", "4", "EF_CONSTRUCTION", "20"])])
    w.add_vectors(b"h dot\x00bin", n_vec // 4)
    w.add_vectors(b"new_h", n_vec // 4)
    w.kv_phase2()
    w.multi_block(b"p2:")


def digest(tc, conn, model):
    """Everything a client can see, in comparable form."""
    t = time.monotonic()
    keys = sorted(set(conn.cmd("KEYS", "*")) - set(conn.cmd("VLIST")))    # the strings
    vals = pipeline(conn, [("GET", k) for k in keys])
    ttls = pipeline(conn, [("PTTL", k) for k in keys])
    kv = {k: (v, ttl) for k, v, ttl in zip(keys, vals, ttls)}
    names = conn.cmd("VLIST")
    tc.assertEqual(sorted(names), sorted(model.vecs), "VLIST vs what the test created")
    idx = {}
    for name in names:
        info = info_fields(conn.cmd("VINFO", name, "FULL"))
        params = {f: info[f] for f in ("name", "type", "metric", "dim", "count", "M",
                                       "ef_construction", "ef", "max_level", "vector_bytes")}
        touched = sorted(model.touched[name])
        vgets = dict(zip(touched, pipeline(conn, [("VGET", name, k) for k in touched])))
        searches = pipeline(conn, [("VSEARCH", name, q, "10") for q in model.queries[name]])
        card = conn.cmd("VCARD", name)
        idx[name] = {"params": params, "vget": vgets, "search": searches, "card": card}
    return {"t": t, "kv": kv, "vlist": names, "idx": idx, "dbsize": conn.cmd("DBSIZE")}


def check_model(tc, d, model):
    """The digest agrees with what the test wrote (sanity of the digest)."""
    for name, vecs in model.vecs.items():
        ix = d["idx"][name]
        tc.assertEqual(ix["card"], len(vecs), name)
        tc.assertEqual(ix["params"]["count"], len(vecs), name)
        for k in model.touched[name]:
            got, want = ix["vget"][k], vecs.get(k)
            if got is None or want is None or ix["params"]["metric"] != b"cosine":
                tc.assertEqual(got, want, (name, k))
            else:
                # cosine keeps the caller's scale to float32 precision
                g, w = struct.unpack("<%df" % (len(got) // 4), got), \
                    struct.unpack("<%df" % (len(want) // 4), want)
                tc.assertEqual(len(g), len(w), (name, k))
                norm = sum(x * x for x in w) ** 0.5
                for x, y in zip(g, w):
                    tc.assertAlmostEqual(x, y, delta=norm * 1e-6, msg=(name, k))
        for r in ix["search"]:
            tc.assertNotIsInstance(r, RespError)
            tc.assertEqual(len(r), 2 * min(10, len(vecs)))


def assert_same_digest(tc, before, after, what):
    elapsed_ms = (after["t"] - before["t"]) * 1000
    kb, ka = before["kv"], after["kv"]
    missing = sorted(set(kb) - set(ka))[:5]
    extra = sorted(set(ka) - set(kb))[:5]
    tc.assertFalse(missing or extra, "%s: keys missing after restart %r, unexpected %r"
                   % (what, missing, extra))
    bad_vals = [k for k in kb if kb[k][0] != ka[k][0]]
    tc.assertFalse(bad_vals, "%s: values differ for %d keys, e.g. %r: %r -> %r"
                   % (what, len(bad_vals), bad_vals[:1], kb[bad_vals[0]][0][:60] if bad_vals
                      and kb[bad_vals[0]][0] else None,
                      ka[bad_vals[0]][0][:60] if bad_vals and ka[bad_vals[0]][0] else None))
    for k in kb:
        tb, ta = kb[k][1], ka[k][1]
        if tb < 0 or ta < 0:
            tc.assertEqual(ta, tb, "%s: PTTL of %r" % (what, k))
        else:
            # the deadline is absolute: the TTL ran on while the server was down
            tc.assertLessEqual(ta, tb + 50, "%s: PTTL of %r grew" % (what, k))
            tc.assertGreaterEqual(ta, tb - elapsed_ms - 2000,
                                  "%s: PTTL of %r shrank more than the time passed" % (what, k))
    tc.assertEqual(after["dbsize"], before["dbsize"], what)
    tc.assertEqual(after["vlist"], before["vlist"], what)
    for name in before["idx"]:
        b, a = before["idx"][name], after["idx"][name]
        tc.assertEqual(a["params"], b["params"], "%s: VINFO of %r" % (what, name))
        tc.assertEqual(a["card"], b["card"], "%s: VCARD of %r" % (what, name))
        bad = [k for k in b["vget"] if b["vget"][k] != a["vget"][k]]
        tc.assertFalse(bad, "%s: VGET differs in %r for %d keys, e.g. %r"
                       % (what, name, len(bad), bad[:3]))
        for i, (rb, ra) in enumerate(zip(b["search"], a["search"])):
            tc.assertEqual(ra, rb, "%s: VSEARCH %d on %r (%s) differs"
                           % (what, i, name, b["params"]["type"]))


# ---- the test case base ------------------------------------------------------

class PersistCase(unittest.TestCase):
    """Servers on a data directory that outlives them."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="engram-persist-")
        self.data = os.path.join(self.tmp, "data")
        self._servers = []
        self._conns = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for c in self._conns:
            c.close()
        for s in self._servers:
            if s.proc is not None:
                s.kill()
            Server.cleanup(s)
        if not KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)

    lock_waits = 0

    def start(self, *flags, data=None, timeout=20.0):
        """A server on the data directory, once it has loaded it.

        After a SIGKILL, a snapshot child of the killed server may still
        hold the directory's LOCK (it inherited the flock) until it
        finishes: that refusal is waited out (and counted), not failed."""
        d = self.data if data is None else data
        deadline = time.monotonic() + 20 * SLOW
        while True:
            srv = Server(["--dir", d] + [str(f) for f in flags])
            srv.cleanup = lambda: None       # keep its logs until the test ends
            self._servers.append(srv)
            try:
                srv.start(timeout)
                break
            except ServerError as e:
                if "another engram" not in str(e) or time.monotonic() > deadline:
                    raise
                PersistCase.lock_waits += 1
                time.sleep(0.05)
        # the port accepts connections while the data is still loading
        try:
            c = srv.conn()
            loaded = wait_until(lambda: parse_info(c.cmd("INFO", "persistence"))["loading"] == "0",
                                timeout)
            c.close()
        except (Closed, OSError) as e:
            try:
                rc = srv.proc.wait(5 * SLOW)
            except subprocess.TimeoutExpired:
                rc = "still running"
            srv._close_logs()
            self.fail("the server dropped the connection while loading (%s); exit status %s"
                      "\nstderr:\n%s" % (e, rc, srv.stderr()[-3000:]))
        self.assertTrue(loaded, "still loading after %.0f s" % (timeout * SLOW))
        return srv

    def conn(self, srv, **kw):
        c = srv.conn(**kw)
        self._conns.append(c)
        return c

    def crash(self, srv):
        """SIGKILL; returns the server's log."""
        srv.kill()
        srv.stopped = True
        return srv.stderr()

    def stop(self, srv):
        """SIGTERM: exit status 0, no sanitizer report.  Returns the log."""
        srv.stop(signal.SIGTERM)
        return srv.stderr()

    def wait_exit_clean(self, srv, timeout=20.0):
        rc = srv.wait_exit(timeout)
        srv.stopped = True
        srv._close_logs()
        self.assertEqual(rc, 0, "exit status %s\nstderr:\n%s" % (rc, srv.stderr()[-4000:]))
        srv.check_sanitizer()
        return srv.stderr()

    def start_refused(self, *flags, data=None, timeout=10.0):
        """Start a server that must refuse: exit non-zero before it accepts
        a connection.  Returns its output (stdout + stderr)."""
        d = self.data if data is None else data
        port = free_port()
        out_path = os.path.join(self.tmp, "refused-%d.log" % port)
        args = [engram_bin(), "--port", str(port)]
        if d is not False:
            args += ["--dir", d]
        args += [str(f) for f in flags]
        with open(out_path, "wb") as out:
            p = subprocess.Popen(args, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        # (the listener opens before the data is loaded: a connection may
        # be accepted even by a server that then refuses, so only the exit
        # counts)
        try:
            p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        with open(out_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, -9, "the server did not exit within %.0f s (expected "
                            "a refusal): %s\n%s" % (timeout * SLOW, args, text))
        self.assertNotEqual(p.returncode, 0, "exit status 0 on a refusal\n%s" % text)
        for m in ("ERROR: AddressSanitizer", "runtime error:"):
            self.assertNotIn(m, text)
        return text

    def assert_closed_without_reply(self, c, timeout=20.0):
        try:
            r = c.read(timeout * SLOW)
        except Closed:
            return
        self.fail("a reply instead of the connection closing: %r" % (r,))

    def info(self, c):
        return parse_info(c.cmd("INFO", "persistence"))

    def ok(self, c, *args):
        self.assertEqual(c.cmd(*args), "OK", args)

    def wait_bgsave_done(self, c, timeout=30.0):
        info = wait_until(lambda: (lambda i: i if i["rdb_bgsave_in_progress"] == "0" else None)(
            self.info(c)), timeout)
        self.assertTrue(info, "BGSAVE still running after %.0f s" % (timeout * SLOW))
        return info

    def snapshot_path(self, data=None):
        return os.path.join(self.data if data is None else data, "engram.snap")


# ---- restart equality ----------------------------------------------------------

@engram_only
class TestRestartEquality(PersistCase):
    def restart_and_compare(self, srv, model, before, what, how="kill", flags=()):
        if how == "kill":
            self.crash(srv)
        elif how == "term":
            self.stop(srv)
        srv2 = self.start(*flags)
        c2 = self.conn(srv2)
        after = digest(self, c2, model)
        assert_same_digest(self, before, after, what)
        return srv2, c2

    def test_log_only_sigkill(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=1)
        mutate(Workload(self, c, model, 2))
        before = digest(self, c, model)
        check_model(self, before, model)
        self.assertEqual(len(wal_files(self.data)), 1)
        self.assertFalse(os.path.exists(self.snapshot_path()))
        srv2, c2 = self.restart_and_compare(srv, model, before, "log only")
        log = srv2.stderr()
        self.assertIn("Write-ahead log replayed", log)
        self.assertNotIn("torn", log)
        # and again: appending after a replay keeps the log consistent
        w = Workload(self, c2, model, 3)
        w.add_vectors(b"h_l2", 50, prefix=b"after-restart")
        w.kv_phase1(tag=b"r2:")
        before = digest(self, c2, model)
        srv3, c3 = self.restart_and_compare(srv2, model, before, "log only, 2nd restart")
        self.stop(srv3)

    def test_clean_sigterm_restart(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=11)
        before = digest(self, c, model)
        srv2, c2 = self.restart_and_compare(srv, model, before, "SIGTERM", how="term")
        self.stop(srv2)

    def test_shutdown_nosave_keeps_the_log(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=12, n_vec=100)
        before = digest(self, c, model)
        c.send_cmd("SHUTDOWN", "NOSAVE")
        self.assert_closed_without_reply(c)
        self.wait_exit_clean(srv)
        self.assertFalse(os.path.exists(self.snapshot_path()))
        srv2, c2 = self.restart_and_compare(srv, model, before, "SHUTDOWN NOSAVE", how=None)
        self.stop(srv2)

    # -- pending until snapshots land

    def test_snapshot_only(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=21)
        mutate(Workload(self, c, model, 22))
        before = digest(self, c, model)
        self.ok(c, "SAVE")
        self.assertTrue(os.path.exists(self.snapshot_path()))
        # nothing after the snapshot: the only log is empty (its header)
        logs = wal_files(self.data)
        self.assertEqual(len(logs), 1, logs)
        self.assertEqual(os.path.getsize(logs[0][1]), WAL_HEADER)
        self.assertEqual(int(self.info(c)["wal_seq"]), logs[0][0])
        srv2, c2 = self.restart_and_compare(srv, model, before, "snapshot only")
        self.assertIn("Snapshot loaded", srv2.stderr())
        self.assertEqual(self.info(c2)["loading_loaded_records"], "0")
        self.stop(srv2)

    def test_snapshot_plus_log(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=31)
        self.ok(c, "SAVE")
        w = Workload(self, c, model, 32)
        mutate(w)                              # overwrites, VDEL, VDROP, new HNSW inserts
        before = digest(self, c, model)
        srv2, c2 = self.restart_and_compare(srv, model, before, "snapshot + log")
        # FLUSHALL after the snapshot, then refill: the old data must not come back
        self.ok(c2, "FLUSHALL")
        model = Model()
        populate(self, c2, model, seed=33, n_vec=N_VEC // 4)
        before = digest(self, c2, model)
        srv3, c3 = self.restart_and_compare(srv2, model, before, "snapshot + FLUSHALL + refill")
        # a second snapshot on top, then more log
        self.ok(c3, "VSAVE")
        mutate(Workload(self, c3, model, 34), n_vec=N_VEC // 4)
        before = digest(self, c3, model)
        srv4, c4 = self.restart_and_compare(srv3, model, before, "2nd snapshot + log")
        self.stop(srv4)

    def test_bgsave_with_concurrent_writes(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=41)
        self.assertEqual(self.info(c)["rdb_saves"], "0")
        t0 = int(time.time())
        self.assertEqual(c.cmd("BGSAVE"), "Background saving started")
        mutate(Workload(self, c, model, 42))   # while the child writes
        info = self.wait_bgsave_done(c)
        self.assertEqual(info["rdb_last_bgsave_status"], "ok", info)
        self.assertEqual(info["rdb_saves"], "1")
        self.assertGreaterEqual(c.cmd("LASTSAVE"), t0)
        self.assertTrue(os.path.exists(self.snapshot_path()))
        before = digest(self, c, model)
        srv2, c2 = self.restart_and_compare(srv, model, before, "BGSAVE + writes during it")
        self.assertIn("Snapshot loaded", srv2.stderr())
        self.stop(srv2)

    def test_shutdown_save(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=51, n_vec=200)
        before = digest(self, c, model)
        c.send_cmd("SHUTDOWN", "SAVE")
        self.assert_closed_without_reply(c)
        self.wait_exit_clean(srv)
        self.assertTrue(os.path.exists(self.snapshot_path()))
        logs = wal_files(self.data)
        self.assertEqual(len(logs), 1, logs)
        self.assertEqual(os.path.getsize(logs[0][1]), WAL_HEADER, "records after SHUTDOWN SAVE")
        srv2, c2 = self.restart_and_compare(srv, model, before, "SHUTDOWN SAVE", how=None)
        self.assertIn("Snapshot loaded", srv2.stderr())
        self.stop(srv2)

    def test_auto_snapshot_prunes_old_logs(self):
        srv = self.start("--auto-aof-rewrite-min-size", "256kb",
                         "--auto-aof-rewrite-percentage", "100")
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=61, n_vec=100)
        # ~1 MB of log: past the minimum and 100 % over the (empty) start
        pipeline(c, [("SET", b"fill:%d" % i, b"%d" % i * 800) for i in range(300)])
        # (a failed snapshot ends the wait at once)
        info = wait_until(lambda: (lambda i: i if i["rdb_bgsave_in_progress"] == "0" and (
            int(i["rdb_saves"]) >= 1 or i["rdb_last_bgsave_status"] != "ok") else None)(
                self.info(c)), 30)
        self.assertTrue(info, "no automatic snapshot: %r" % self.info(c))
        self.assertEqual(info["rdb_last_bgsave_status"], "ok", srv.stderr()[-2000:])
        self.assertTrue(os.path.exists(self.snapshot_path()))
        self.assertIn("Starting automatic snapshot", srv.stderr())
        # the logs the snapshot covers are deleted
        self.assertTrue(wait_until(lambda: len(wal_files(self.data)) == 1, 10),
                        wal_files(self.data))
        info = self.info(c)
        self.assertEqual(int(info["aof_current_size"]),
                         sum(os.path.getsize(p) for _, p in wal_files(self.data)))
        self.assertEqual(info["wal_file"], wal_files(self.data)[0][1])
        self.assertGreater(wal_files(self.data)[0][0], 0)
        Workload(self, c, model, 62).kv_phase2()
        before = digest(self, c, model)
        srv2, c2 = self.restart_and_compare(srv, model, before, "auto snapshot + log")
        self.stop(srv2)


# ---- loading -------------------------------------------------------------------

@engram_only
class TestLoading(PersistCase):
    def test_clients_during_a_long_replay(self):
        # ~0.3 s of replay (more under a sanitizer): clients that connect
        # meanwhile get -LOADING, INFO shows the progress
        nkeys, per = 400000, 2000
        srv = self.start()
        c = self.conn(srv)
        for i in range(0, nkeys, per):
            c.send_cmd("MSET", *[x for j in range(i, i + per) for x in (b"key:%d" % j, b"%d" % j)])
        for i in range(0, nkeys, per):
            self.assertEqual(c.read(), "OK")
        self.ok(c, "SET", "last", "1")
        self.stop(srv)
        srv = Server(["--dir", self.data])
        srv.cleanup = lambda: None
        self._servers.append(srv)
        srv.start()              # returns as soon as the port accepts
        c = self.conn(srv)
        try:
            first = c.cmd("PING")
        except Closed:
            rc = srv.proc.wait(10 * SLOW)
            self.fail("the server closed the connection during the replay; exit status %s\n%s"
                      % (rc, srv.stderr()[-2000:]))
        if first == "PONG":
            self.skipTest("the replay finished before a client got in")
        self.assertEqual(first, RespError("LOADING engram is loading the dataset in memory"))
        # the load may finish between two commands: then GET answers
        self.assertIn(c.cmd("GET", "last"),
                      (RespError("LOADING engram is loading the dataset in memory"), b"1"))
        info = self.info(c)
        if info["loading"] == "1":
            self.assertGreater(int(info["loading_total_bytes"]), 0)
            self.assertIn("loading_loaded_perc", info)
        self.assertTrue(wait_until(lambda: self.info(c)["loading"] == "0", 30),
                        "still loading after %d s" % (30 * SLOW))
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertEqual(c.cmd("DBSIZE"), nkeys + 1)
        self.assertEqual(c.cmd("GET", "key:%d" % (nkeys - 1)), b"%d" % (nkeys - 1))
        self.ok(c, "SET", "after", "loading")
        self.stop(srv)


# ---- expiry --------------------------------------------------------------------

@engram_only
class TestExpiryAcrossRestart(PersistCase):
    def test_ttl_keeps_running_while_down(self):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "ttl", "v", "EX", "100")
        self.ok(c, "SET", "pttl", "v")
        self.assertEqual(c.cmd("PEXPIRE", "pttl", "100000"), 1)
        self.ok(c, "SET", "forever", "v")
        t0 = time.monotonic()
        self.crash(srv)
        time.sleep(2.0)
        srv2 = self.start()
        c2 = self.conn(srv2)
        down = time.monotonic() - t0
        for k in ("ttl", "pttl"):
            p = c2.cmd("PTTL", k)
            self.assertLessEqual(p, 100000 - 2000 + 50, k)
            self.assertGreaterEqual(p, 100000 - down * 1000 - 1000, k)
        self.assertEqual(c2.cmd("TTL", "forever"), -1)
        self.stop(srv2)

    def test_deadline_passed_while_down(self):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "short", "v", "PX", "600")
        self.ok(c, "SET", "short2", "v")
        self.assertEqual(c.cmd("PEXPIREAT", "short2", str(int(time.time() * 1000) + 600)), 1)
        self.ok(c, "SET", "long", "v", "EX", "1000")
        self.ok(c, "SET", "plain", "v")
        self.crash(srv)
        time.sleep(1.0)
        srv2 = self.start()
        c2 = self.conn(srv2)
        for k in ("short", "short2"):
            self.assertEqual(c2.cmd("EXISTS", k), 0, k)
            self.assertIsNone(c2.cmd("GET", k), k)
        self.assertEqual(sorted(c2.cmd("KEYS", "*")), [b"long", b"plain"])
        self.assertEqual(c2.cmd("GET", "long"), b"v")
        self.stop(srv2)

    def test_deadline_passed_while_down_snapshot(self):
        # the same through a snapshot: deadlines are stored absolute there too
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "short", "v", "PX", "700")
        self.ok(c, "SET", "long", "v", "EX", "100")
        self.ok(c, "SET", "plain", "v")
        self.ok(c, "SAVE")
        self.crash(srv)
        time.sleep(1.0)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertIn("Snapshot loaded", srv2.stderr())
        self.assertEqual(c2.cmd("EXISTS", "short"), 0)
        self.assertEqual(sorted(c2.cmd("KEYS", "*")), [b"long", b"plain"])
        self.assertLessEqual(c2.cmd("PTTL", "long"), 99000)
        self.assertGreater(c2.cmd("PTTL", "long"), 80000)
        self.assertEqual(c2.cmd("TTL", "plain"), -1)
        self.stop(srv2)

    def test_expire_in_the_past_and_persist(self):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "gone", "v")
        self.assertEqual(c.cmd("EXPIREAT", "gone", "1000"), 1)     # deletes it
        self.ok(c, "SET", "p", "v", "EX", "100")
        self.assertEqual(c.cmd("PERSIST", "p"), 1)
        self.ok(c, "SET", "g", "v", "EX", "100")
        self.assertEqual(c.cmd("GETEX", "g", "PERSIST"), b"v")
        self.crash(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertEqual(c2.cmd("EXISTS", "gone"), 0)
        self.assertEqual(c2.cmd("TTL", "p"), -1)
        self.assertEqual(c2.cmd("TTL", "g"), -1)
        self.stop(srv2)


# ---- damaged files ----------------------------------------------------------------

@engram_only
class TestBeforeSleepOrder(PersistCase):
    """What runs before the loop sleeps runs in order (server.c): the pool
    drain, then the log commit, then the replies.  A search finishing
    resumes its client, whose pipelined writes run in the drain: they must
    be committed, and answered, in the same pass -- with the order broken
    their replies would stay held (the pass never ends, or they wait for an
    unrelated wake-up) or leave before the commit."""

    def test_writes_resumed_by_a_search_are_committed_and_answered(self):
        srv = self.start("--appendfsync", "always")
        c = self.conn(srv)
        self.ok(c, "VNEW", "ix", "8", "TYPE", "flat", "METRIC", "l2")
        for i in range(300):
            c.cmd("VADD", "ix", "k%d" % i, struct.pack("<8f", *([float(i)] * 8)))
        q = struct.pack("<8f", *([0.0] * 8))
        for rnd in range(20):
            # each SET waits behind the searches before it; the drain that
            # answers them runs it
            reqs = [("VSEARCH", "ix", q, "3"), ("SET", "r%d" % rnd, "v%d" % rnd),
                    ("VSEARCH", "ix", q, "1"), ("INCR", "n"), ("GET", "r%d" % rnd)]
            c.send(b"".join(encode(*r) for r in reqs))
            got = [c.read(timeout=10) for _ in reqs]
            self.assertEqual(got[0], [b"k0", b"0", b"k1", b"2.828427", b"k2", b"5.656854"])
            self.assertEqual(got[1], "OK")
            self.assertEqual(got[3], rnd + 1)
            self.assertEqual(got[4], b"v%d" % rnd)
        # acknowledged means committed: a kill -9 now loses none of them
        self.crash(srv)
        c2 = self.conn(self.start())
        for rnd in range(20):
            self.assertEqual(c2.cmd("GET", "r%d" % rnd), b"v%d" % rnd)
        self.assertEqual(c2.cmd("GET", "n"), b"20")


class TestReviewRegressions(PersistCase):
    """Cases a review of the persistence code found."""

    def test_setrange_over_an_expired_key(self):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "k", "hello", "PX", "100")
        time.sleep(0.3)
        self.assertEqual(c.cmd("SETRANGE", "k", "0", "X"), 1)
        self.assertEqual(c.cmd("GET", "k"), b"X")
        self.crash(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertEqual(c2.cmd("GET", "k"), b"X")
        self.assertEqual(c2.cmd("TTL", "k"), -1)
        self.stop(srv2)

    def test_no_snapshot_inside_exec(self):
        srv = self.start()
        c = self.conn(srv)
        # SAVE is refused inside MULTI, as Redis refuses it (no_multi), and
        # the transaction then aborts
        self.ok(c, "MULTI")
        self.assertEqual(c.cmd("VNEW", "nope", "4", "TYPE", "flat"), "QUEUED")
        self.assertEqual(c.cmd("SAVE"), "ERR Command not allowed inside a transaction")
        self.assertEqual(c.cmd("EXEC"),
                         "EXECABORT Transaction discarded because of previous errors.")
        # BGSAVE is queued, and refused when EXEC runs it
        self.ok(c, "MULTI")
        self.assertEqual(c.cmd("VNEW", "idx", "4", "TYPE", "flat"), "QUEUED")
        self.assertEqual(c.cmd("BGSAVE"), "QUEUED")
        r = c.cmd("EXEC")
        self.assertEqual(r[0], "OK")
        self.assertEqual(r[1], "ERR a snapshot cannot be taken inside MULTI/EXEC")
        self.crash(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertEqual(c2.cmd("VLIST"), [b"idx"])
        self.stop(srv2)

    def test_missing_log_between_files_is_refused(self):
        srv = self.start()
        c = self.conn(srv)
        for i in range(5):
            self.ok(c, "SET", "k%d" % i, "v")
        self.stop(srv)
        # An empty log that starts far past what the others hold: the logs
        # in between are missing.
        gap = os.path.join(self.data, "wal-%016x.log" % 100)
        with open(gap, "wb") as f:
            f.write(b"ENGRAMWL" + struct.pack("<IQ", 1, 100))
            f.write(struct.pack("<I", crc32c(b"ENGRAMWL" + struct.pack("<IQ", 1, 100))))
        out = self.start_refused()
        self.assertIn("a log file is missing", out)


def snap_bytes(sections, seq=0, created_ms=0, toc_offset=None):
    """A snapshot file (src/store/snapfile.c's layout) holding sections, a
    list of (kind, bytes), every checksum right; toc_offset overrides where
    the header says the table of contents is."""
    body, toc, off = b"", b"", 4096
    for kind, data in sections:
        pad = (-off) % 8
        body += b"\0" * pad
        off += pad
        toc += struct.pack("<IIQQII", kind, 0, off, len(data), crc32c(data) if data else 0, 0)
        body += data
        off += len(data)
    pad = (-off) % 8
    body += b"\0" * pad
    off += pad
    toc_at = off if toc_offset is None else toc_offset
    size = off + len(toc)
    fields = b"ENGRAMSN" + struct.pack("<IIQqQQII", 1, 0, seq, created_ms, size, toc_at,
                                       len(sections), crc32c(toc))
    header = fields + struct.pack("<I", crc32c(fields))
    return header + b"\0" * (4096 - len(header)) + body + toc


def snap_meta(nidx=0, seq=0, version=b"0.1.0"):
    """The snapshot's header section (dataset.c), kind 0x0001."""
    return (0x0001, struct.pack("<IIQqQI", 1, nidx, 0, 0, seq, len(version)) + version)


SNAP_EMPTY_KEYSPACE = (0x0200, struct.pack("<Q", 0))


def wal_bytes(base, records):
    """A log file (src/store/wal.c's layout) from base with records, a list of
    (type, payload), numbered base + 1, base + 2, ..."""
    head = b"ENGRAMWL" + struct.pack("<IQ", 1, base)
    out = head + struct.pack("<I", crc32c(head))
    for i, (rtype, payload) in enumerate(records):
        seq = base + 1 + i
        rest = struct.pack("<B3xQ", rtype, seq)
        crc = crc32c(struct.pack("<I", len(payload)) + rest + payload)
        out += struct.pack("<II", len(payload), crc) + rest + payload
    return out


def op_str(b):
    return struct.pack("<I", len(b)) + b


class TestLoadersRefuseBadInput(PersistCase):
    """Files that frame correctly (every checksum right) but say something
    no server wrote are refused with a message naming the file and what is
    wrong, never with an abort (issue: a snapshot with no sections aborted
    the server at start-up)."""

    def refused_with(self, files, *expected):
        os.makedirs(self.data, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(self.data, name), "wb") as f:
                f.write(data)
        out = self.start_refused()
        self.assertNotIn("assertion failed", out)
        for text in expected:
            self.assertIn(text, out)
        return out

    def snap_path(self):
        return os.path.join(self.data, "engram.snap")

    def test_snapshot_without_sections(self):
        self.refused_with({"engram.snap": snap_bytes([])}, self.snap_path(),
                          "the file has no sections")

    def test_snapshot_with_only_the_header_section(self):
        self.refused_with({"engram.snap": snap_bytes([snap_meta()])}, self.snap_path(),
                          "no keyspace section after the header section")

    def test_snapshot_whose_table_of_contents_points_past_the_end(self):
        data = snap_bytes([snap_meta(), SNAP_EMPTY_KEYSPACE])
        self.refused_with({"engram.snap": snap_bytes([snap_meta(), SNAP_EMPTY_KEYSPACE],
                                                     toc_offset=len(data) + 4096)},
                          self.snap_path(), "table of contents", "does not fit the file")

    def test_snapshot_whose_section_runs_past_the_end(self):
        data = bytearray(snap_bytes([snap_meta(), SNAP_EMPTY_KEYSPACE]))
        # the keyspace's length in the table of contents: far past the end
        # of the sections, with the table's checksum made right again
        size = struct.unpack_from("<Q", data, 32)[0]
        toc = size - 2 * 32
        struct.pack_into("<Q", data, toc + 32 + 16, 1 << 40)
        struct.pack_into("<I", data, 52, crc32c(bytes(data[toc:])))
        struct.pack_into("<I", data, 56, crc32c(bytes(data[:56])))
        self.refused_with({"engram.snap": bytes(data)}, self.snap_path(),
                          "table of contents entry 1", "bad section")

    def test_snapshot_that_announces_an_index_it_does_not_hold(self):
        self.refused_with({"engram.snap": snap_bytes([snap_meta(nidx=1), SNAP_EMPTY_KEYSPACE])},
                          self.snap_path(), "the header announces 1 vector sets, the file holds 0")

    def test_snapshot_keyspace_before_the_header(self):
        self.refused_with({"engram.snap": snap_bytes([SNAP_EMPTY_KEYSPACE, snap_meta()])},
                          self.snap_path(), "section 0 (kind 0x0200)",
                          "missing or unknown header section")

    def test_log_record_growing_a_string_past_what_a_server_accepts(self):
        # SETRANGE k 3221225472 "x": the layout holds it (the end is under
        # 4 GiB), but no string may be longer than 2 GiB
        payload = op_str(b"k") + struct.pack("<I", 3 << 30) + op_str(b"x")
        self.refused_with({"wal-%016x.log" % 0: wal_bytes(0, [(4, payload)])},
                          "record of type 4 asks for more than a server accepts")

    def test_log_record_creating_an_index_no_command_could_create(self):
        # VNEW ix with 70000 dimensions (the most is 65536)
        payload = (op_str(b"ix") + struct.pack("<BBHIIIIQI", 0, 1, 0, 70000, 16, 200, 100, 1, 0)
                   + op_str(b""))
        self.refused_with({"wal-%016x.log" % 0: wal_bytes(0, [(16, payload)])},
                          "record of type 16 asks for more than a server accepts")

    def test_the_same_records_within_the_limits_load(self):
        """The forged files are right but for what they say: within the
        limits, the same framing loads."""
        setrange = op_str(b"k") + struct.pack("<I", 5) + op_str(b"x")
        vnew = (op_str(b"ix") + struct.pack("<BBHIIIIQI", 0, 1, 0, 8, 16, 200, 100, 1, 0)
                + op_str(b""))
        os.makedirs(self.data, exist_ok=True)
        with open(os.path.join(self.data, "engram.snap"), "wb") as f:
            f.write(snap_bytes([snap_meta(), SNAP_EMPTY_KEYSPACE]))
        with open(os.path.join(self.data, "wal-%016x.log" % 0), "wb") as f:
            f.write(wal_bytes(0, [(4, setrange), (16, vnew)]))
        c = self.conn(self.start())
        self.assertEqual(c.cmd("GET", "k"), b"\0\0\0\0\0x")
        self.assertEqual(c.cmd("VLIST"), [b"ix"])


class TestDamagedLog(PersistCase):
    def make_log(self, n=10):
        """n single-record writes (SET r<i>), then SIGTERM.  Returns the log
        path and its records."""
        srv = self.start()
        c = self.conn(srv)
        for i in range(n):
            self.ok(c, "SET", "r%d" % i, "value-%d-%s" % (i, "x" * 40))
        self.stop(srv)
        logs = wal_files(self.data)
        self.assertEqual(len(logs), 1)
        path = logs[0][1]
        recs = wal_records(path)
        self.assertEqual(len(recs), n)
        self.assertEqual(recs[-1][0] + recs[-1][1], os.path.getsize(path))
        return path, recs

    def assert_keys(self, c, n):
        want = sorted(b"r%d" % i for i in range(n))
        self.assertEqual(sorted(c.cmd("KEYS", "*")), want)
        for i in range(n):
            self.assertEqual(c.cmd("GET", "r%d" % i), b"value-%d-%s" % (i, b"x" * 40))

    def check_writes_after_recovery(self, srv, n):
        """Writes go on after the cut; a SIGKILL restart has them all."""
        c = self.conn(srv)
        self.ok(c, "SET", "after", "cut")
        self.crash(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertEqual(c2.cmd("GET", "after"), b"cut")
        self.assertEqual(c2.cmd("DBSIZE"), n + 1)
        log = srv2.stderr()
        self.assertNotIn("torn", log)
        self.assertNotIn("corrupt", log)
        self.stop(srv2)

    def test_corrupt_early_record_refuses_start(self):
        path, recs = self.make_log()
        total = os.path.getsize(path)
        off, size = recs[2]
        flip_byte(path, off + WAL_REC_HEADER + (size - WAL_REC_HEADER) // 2)
        out = self.start_refused()
        self.assertIn(path, out)
        self.assertIn("corrupt at offset %d" % off, out)
        self.assertEqual(os.path.getsize(path), total, "the file was changed")
        # still refused the second time
        out = self.start_refused()
        self.assertIn("corrupt at offset %d" % off, out)
        # --wal-truncate-corrupt yes: starts with what was before the damage
        srv = self.start("--wal-truncate-corrupt", "yes")
        c = self.conn(srv)
        self.assert_keys(c, 2)
        log = srv.stderr()
        self.assertIn("corrupt at offset %d" % off, log)
        self.assertIn("%d bytes dropped" % (total - off), log)
        self.assertEqual(os.path.getsize(path), off)
        self.check_writes_after_recovery(srv, 2)

    def test_corrupt_record_header_refuses_start(self):
        path, recs = self.make_log()
        off, _ = recs[4]
        flip_byte(path, off + 12)          # the sequence number
        out = self.start_refused()
        self.assertIn("corrupt at offset %d" % off, out)
        flip_byte(path, off + 12)          # repaired: starts with everything
        srv = self.start()
        self.assert_keys(self.conn(srv), 10)
        self.stop(srv)

    def test_corrupt_file_header_refuses_start(self):
        path, recs = self.make_log()
        flip_byte(path, 3)                 # the magic
        out = self.start_refused()
        self.assertIn(path, out)
        self.assertIn("corrupt at offset 0", out)

    def test_torn_last_record_is_cut(self):
        path, recs = self.make_log()
        off, size = recs[-1]
        cut = off + size // 2
        os.truncate(path, cut)
        srv = self.start()
        c = self.conn(srv)
        self.assert_keys(c, 9)
        log = srv.stderr()
        self.assertIn("torn record", log)
        self.assertIn("%d bytes dropped" % (cut - off), log)
        self.assertNotIn("corrupt at", log)
        self.assertEqual(os.path.getsize(path), off)
        self.check_writes_after_recovery(srv, 9)

    def test_torn_record_header_is_cut(self):
        path, recs = self.make_log()
        off, _ = recs[-1]
        os.truncate(path, off + 7)         # not even a whole record header
        srv = self.start()
        c = self.conn(srv)
        self.assert_keys(c, 9)
        self.assertIn("7 bytes dropped", srv.stderr())
        self.check_writes_after_recovery(srv, 9)

    def test_damaged_last_record_is_a_torn_tail(self):
        # no good record after it: indistinguishable from a crash mid-write
        path, recs = self.make_log()
        off, size = recs[-1]
        flip_byte(path, off + size - 3)
        srv = self.start()
        c = self.conn(srv)
        self.assert_keys(c, 9)
        self.assertIn("%d bytes dropped" % size, srv.stderr())
        self.check_writes_after_recovery(srv, 9)

    def test_junk_appended(self):
        path, recs = self.make_log()
        junk = bytes(random.Random(5).getrandbits(8) for _ in range(37))
        with open(path, "ab") as f:
            f.write(junk)
        srv = self.start()
        c = self.conn(srv)
        self.assert_keys(c, 10)
        log = srv.stderr()
        self.assertIn("torn record", log)
        self.assertIn("37 bytes dropped", log)
        self.check_writes_after_recovery(srv, 10)

    def test_zero_filled_tail(self):
        path, recs = self.make_log()
        with open(path, "ab") as f:
            f.write(b"\0" * 4096)
        srv = self.start()
        self.assert_keys(self.conn(srv), 10)
        self.assertIn("4096 bytes dropped", srv.stderr())
        self.check_writes_after_recovery(srv, 10)

    def test_log_shorter_than_its_header(self):
        # an interrupted creation: an empty log
        path, recs = self.make_log()
        os.truncate(path, 10)
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(c.cmd("DBSIZE"), 0)
        self.check_writes_after_recovery(srv, 0)

    def test_multi_record_exec_is_all_or_nothing(self):
        # one EXEC is one record: cutting it loses the whole transaction
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "before", "1")
        self.ok(c, "VNEW", "ix", "4", "METRIC", "l2")
        self.ok(c, "MULTI")
        for q in (("SET", "a", "1"), ("SET", "b", "2"), ("VADD", "ix", "k", "VALUES", "4",
                                                          "1", "2", "3", "4")):
            self.assertEqual(c.cmd(*q), "QUEUED")
        self.assertEqual(c.cmd("EXEC"), ["OK", "OK", 1])
        self.stop(srv)
        path = wal_files(self.data)[0][1]
        recs = wal_records(path)
        self.assertEqual(len(recs), 3, "SET, VNEW, one record for the EXEC")
        off, size = recs[-1]
        os.truncate(path, off + size - 1)
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(sorted(c.cmd("KEYS", "*")), [b"before", b"ix"])    # ix: the VNEW
        self.assertEqual(c.cmd("VCARD", "ix"), 0)
        self.stop(srv)

    # -- pending until snapshots land

    def test_damaged_snapshot_refuses_start(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=71, n_vec=100)
        self.ok(c, "SAVE")
        self.ok(c, "SET", "after-save", "1")
        self.stop(srv)
        snap = self.snapshot_path()
        size = os.path.getsize(snap)
        with open(snap, "rb") as f:
            original = f.read()
        for where in (size // 2, size // 5, size - 2, 1):
            with self.subTest(offset=where):
                flip_byte(snap, where)
                out = self.start_refused()
                self.assertIn("engram.snap", out)
                self.assertIn("offset", out)
                # never cut: wal-truncate-corrupt is about logs only
                out = self.start_refused("--wal-truncate-corrupt", "yes")
                self.assertIn("engram.snap", out)
                flip_byte(snap, where)
        with open(snap, "rb") as f:
            self.assertEqual(f.read(), original)
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(c.cmd("GET", "after-save"), b"1")
        check_model(self, digest(self, c, model), model)
        self.stop(srv)

    def test_truncated_snapshot_refuses_start(self):
        srv = self.start()
        c = self.conn(srv)
        model = Model()
        populate(self, c, model, seed=72, n_vec=100)
        self.ok(c, "SAVE")
        self.stop(srv)
        snap = self.snapshot_path()
        os.truncate(snap, os.path.getsize(snap) // 2)
        out = self.start_refused()
        self.assertIn("engram.snap", out)


# ---- the failure path ------------------------------------------------------------

@engram_only
class TestWalFault(PersistCase):
    def check_fault(self, what, err, errtext):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "before", "1")
        self.ok(c, "VNEW", "ix", "4", "METRIC", "l2")
        self.assertEqual(c.cmd("VADD", "ix", "a", "VALUES", "4", "1", "0", "0", "0"), 1)
        other = self.conn(srv)
        self.assertEqual(other.cmd("PING"), "PONG")
        self.ok(c, "DEBUG", "WAL-FAULT", what, err)
        self.assertIn("DEBUG WAL-FAULT", srv.stderr())
        # the writer: an error instead of OK, then the connection closes
        r = c.cmd("SET", "lost", "1")
        self.assertIsInstance(r, RespError)
        self.assertTrue(r.startswith("ERR write not persisted: "), r)
        self.assertIn(errtext, r)
        self.assertTrue(c.is_closed(5), "the writer's connection stayed open")
        self.assertEqual(bytes(c.buf), b"")
        # everybody else: writes refused, reads work
        for cmd in (("SET", "x", "1"), ("DEL", "before"), ("INCR", "n"), ("EXPIRE", "before", "9"),
                    ("VADD", "ix", "b", "VALUES", "4", "0", "1", "0", "0"), ("VDEL", "ix", "a"),
                    ("VNEW", "ix2", "4"), ("VDROP", "ix"), ("FLUSHALL",)):
            r = other.cmd(*cmd)
            self.assertIsInstance(r, RespError, cmd)
            self.assertTrue(r.startswith("MISCONF Errors writing to the write-ahead log"), r)
        self.assertEqual(other.cmd("GET", "before"), b"1")
        self.assertEqual(other.cmd("VCARD", "ix"), 1)
        self.assertEqual(other.cmd("VSEARCH", "ix", "VALUES", "4", "1", "0", "0", "0", "1"),
                         [b"a", b"0"])
        self.assertEqual(other.cmd("PING"), "PONG")
        # a transaction with a write is refused as a whole
        self.ok(other, "MULTI")
        r = other.cmd("SET", "t", "1")
        if r != "QUEUED":
            self.assertTrue(r.startswith("MISCONF"), r)
        self.assertIsInstance(other.cmd("EXEC"), RespError)
        self.assertIsNone(other.cmd("GET", "t"))
        # a read-only transaction works
        self.ok(other, "MULTI")
        self.assertEqual(other.cmd("GET", "before"), "QUEUED")
        self.assertEqual(other.cmd("EXEC"), [b"1"])
        info = self.info(other)
        self.assertEqual(info["aof_last_write_status"], "err")
        self.assertIn(errtext, info["aof_last_write_error"])
        self.assertIn("Write-ahead log failed", srv.stderr())
        # SAVE and BGSAVE by hand are refused while the log is failed
        self.assertTrue(str(other.cmd("SAVE")).startswith("MISCONF"))
        return srv, other

    def recover(self, srv, other):
        """The cron's recovery snapshot lets writes in again (pending
        snapshots), and a restart has the data."""
        # (a failed recovery snapshot ends the wait at once)
        info = wait_until(lambda: (lambda i: i if i["aof_last_write_status"] == "ok" or
                                   "Background snapshot failed" in srv.stderr() else None)(
            self.info(other)), 15)
        self.assertEqual(info and info["aof_last_write_status"], "ok",
                         "no recovery: %r\n%s" % (self.info(other), srv.stderr()[-3000:]))
        self.assertEqual(info["aof_last_write_error"], "")
        self.assertIn("Write-ahead log recovered", srv.stderr())
        self.ok(other, "SET", "after", "2")
        self.assertEqual(other.cmd("VADD", "ix", "c", "VALUES", "4", "0", "0", "1", "0"), 1)
        expect_lost = other.cmd("GET", "lost")
        self.crash(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertEqual(c2.cmd("GET", "before"), b"1")
        self.assertEqual(c2.cmd("GET", "after"), b"2")
        # memory held the failed write; the recovery snapshot persisted memory
        self.assertEqual(c2.cmd("GET", "lost"), expect_lost)
        self.assertEqual(c2.cmd("VCARD", "ix"), 2)
        self.stop(srv2)

    def test_write_enospc(self):
        srv, other = self.check_fault("write", "ENOSPC", "No space left on device")
        self.recover(srv, other)

    def test_write_eio(self):
        srv, other = self.check_fault("write", "EIO", "Input/output error")
        self.recover(srv, other)

    def test_fsync_enospc(self):
        srv, other = self.check_fault("fsync", "ENOSPC", "No space left on device")
        self.recover(srv, other)

    def test_fault_stops_the_server_cleanly(self):
        # SIGTERM with the log failed: exit 0 (memory is not lost silently:
        # the log simply lacks the failed write)
        srv, other = self.check_fault("write", "ENOSPC", "No space left on device")
        self.stop(srv)

    def test_pipelined_replies_before_the_write_survive(self):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "k", "v")
        self.ok(c, "DEBUG", "WAL-FAULT", "write", "ENOSPC")
        c.send(encode("GET", "k") + encode("PING") + encode("SET", "a", "1") +
               encode("SET", "b", "2") + encode("GET", "k"))
        self.assertEqual(c.read(), b"v")
        self.assertEqual(c.read(), "PONG")
        r = c.read()
        self.assertIsInstance(r, RespError)
        self.assertTrue(r.startswith("ERR write not persisted"), r)
        self.assertTrue(c.is_closed(5))
        self.assertEqual(bytes(c.buf), b"", "replies after the error")
        self.stop(srv)

    def test_fault_off_disarms(self):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "DEBUG", "WAL-FAULT", "write", "EIO")
        self.ok(c, "DEBUG", "WAL-FAULT", "OFF")
        self.ok(c, "SET", "k", "v")
        self.assertEqual(self.info(c)["aof_last_write_status"], "ok")
        self.assertIsInstance(c.cmd("DEBUG", "WAL-FAULT", "write", "EFOO"), RespError)
        self.assertIsInstance(c.cmd("DEBUG", "WAL-FAULT", "read", "EIO"), RespError)
        self.crash(srv)
        srv2 = self.start()
        self.assertEqual(self.conn(srv2).cmd("GET", "k"), b"v")
        self.stop(srv2)


# ---- settings ----------------------------------------------------------------------

@engram_only
class TestSettings(PersistCase):
    def test_without_dir(self):
        srv = Server().start()
        try:
            c = srv.conn()
            self.assertEqual(c.cmd("CONFIG", "GET", "appendonly"), [b"appendonly", b"no"])
            self.assertEqual(c.cmd("CONFIG", "GET", "dir")[1], b"")
            for cmd in (("SAVE",), ("VSAVE",), ("BGSAVE",), ("DEBUG", "WAL-FAULT", "write", "EIO")):
                self.assertEqual(c.cmd(*cmd), RespError(E_NO_PERSIST), cmd)
            self.assertEqual(c.cmd("SHUTDOWN", "SAVE"), RespError(E_NO_PERSIST))
            info = parse_info(c.cmd("INFO", "persistence"))
            self.assertEqual(info["aof_enabled"], "0")
            self.assertEqual(info["loading"], "0")
            self.assertIsInstance(c.cmd("LASTSAVE"), int)
            c.close()
        finally:
            srv.stop()

    def test_appendonly_follows_dir(self):
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(c.cmd("CONFIG", "GET", "appendonly"), [b"appendonly", b"yes"])
        self.assertEqual(c.cmd("CONFIG", "GET", "dir"), [b"dir", self.data.encode()])
        self.assertIsInstance(c.cmd("CONFIG", "SET", "dir", self.tmp), RespError)
        self.assertIsInstance(c.cmd("CONFIG", "SET", "appendonly", "no"), RespError)
        self.stop(srv)

    def test_appendonly_yes_without_dir_refused(self):
        out = self.start_refused("--appendonly", "yes", data=False)
        self.assertIn("appendonly", out)
        self.assertIn("dir", out)

    def test_dir_is_created(self):
        d = os.path.join(self.tmp, "fresh")
        self.assertFalse(os.path.exists(d))
        srv = self.start(data=d)
        c = self.conn(srv)
        self.ok(c, "SET", "k", "v")
        self.assertTrue(os.path.isfile(os.path.join(d, "LOCK")))
        self.assertEqual(len(wal_files(d)), 1)
        self.stop(srv)

    def test_uncreatable_dir_refused(self):
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        out = self.start_refused(data=os.path.join(blocker, "sub"))
        self.assertIn(blocker, out)

    def test_second_server_on_the_same_dir_refused(self):
        srv = self.start()
        c = self.conn(srv)
        self.ok(c, "SET", "k", "v")
        out = self.start_refused()
        self.assertIn("LOCK", out)
        self.assertIn("another engram", out)
        # the first one is unharmed
        self.ok(c, "SET", "k2", "v2")
        self.stop(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertEqual(c2.cmd("MGET", "k", "k2"), [b"v", b"v2"])
        self.stop(srv2)

    def test_config_set_appendfsync(self):
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(c.cmd("CONFIG", "GET", "appendfsync"), [b"appendfsync", b"always"])
        self.assertEqual(self.info(c)["aof_fsync"], "always")
        for policy in ("everysec", "no", "always", "EVERYSEC"):
            self.ok(c, "CONFIG", "SET", "appendfsync", policy)
            self.assertEqual(c.cmd("CONFIG", "GET", "appendfsync")[1], policy.lower().encode())
            self.assertEqual(self.info(c)["aof_fsync"], policy.lower())
            self.ok(c, "SET", "k-" + policy, "v")
        self.assertIsInstance(c.cmd("CONFIG", "SET", "appendfsync", "sometimes"), RespError)
        self.assertEqual(c.cmd("CONFIG", "GET", "appendfsync")[1], b"everysec")
        self.crash(srv)
        srv2 = self.start("--appendfsync", "no")
        c2 = self.conn(srv2)
        self.assertEqual(self.info(c2)["aof_fsync"], "no")
        self.assertEqual(c2.cmd("DBSIZE"), 4)
        self.stop(srv2)

    def test_info_persistence(self):
        srv = self.start()
        c = self.conn(srv)
        info = self.info(c)
        for f in ("loading", "aof_enabled", "aof_fsync", "aof_current_size",
                  "aof_last_write_status", "rdb_last_save_time", "rdb_bgsave_in_progress",
                  "rdb_last_bgsave_status", "wal_seq", "persistence_dir"):
            self.assertIn(f, info)
        self.assertEqual(info["loading"], "0")
        self.assertEqual(info["aof_enabled"], "1")
        self.assertEqual(info["aof_last_write_status"], "ok")
        self.assertEqual(info["rdb_bgsave_in_progress"], "0")
        self.assertEqual(info["persistence_dir"], self.data)
        self.assertEqual(info["wal_seq"], "0")
        self.assertEqual(int(info["aof_current_size"]), WAL_HEADER)
        # one record per write command, one per EXEC; none for reads
        self.ok(c, "SET", "a", "1")
        self.assertEqual(self.info(c)["wal_seq"], "1")
        c.cmd("GET", "a")
        c.cmd("VLIST")
        self.assertEqual(self.info(c)["wal_seq"], "1")
        self.ok(c, "MSET", "b", "2", "c", "3")
        self.assertEqual(self.info(c)["wal_seq"], "2")
        self.ok(c, "MULTI")
        for q in (("SET", "d", "4"), ("INCR", "e"), ("DEL", "a")):
            c.cmd(*q)
        self.assertEqual(c.cmd("EXEC"), ["OK", 1, 1])
        info = self.info(c)
        self.assertEqual(info["wal_seq"], "3")
        self.assertEqual(int(info["aof_current_size"]), os.path.getsize(wal_files(self.data)[0][1]))
        self.assertIn(info["wal_file"], [p for _, p in wal_files(self.data)])
        self.assertEqual(len(wal_records(wal_files(self.data)[0][1])), 3)
        self.assertLessEqual(abs(int(info["rdb_last_save_time"]) - int(time.time())), 5)
        self.assertIsInstance(c.cmd("LASTSAVE"), int)
        self.crash(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        info = self.info(c2)
        self.assertEqual(info["wal_seq"], "3")
        self.assertEqual(info["loading_loaded_records"], "3")
        self.assertEqual(sorted(c2.cmd("KEYS", "*")), [b"b", b"c", b"d", b"e"])
        self.stop(srv2)

    # -- pending until snapshots land

    def test_save_bgsave_lastsave(self):
        srv = self.start()
        c = self.conn(srv)
        for i in range(50):
            self.ok(c, "SET", "k%d" % i, "v")
        t0 = int(time.time())
        self.ok(c, "SAVE")
        self.assertGreaterEqual(c.cmd("LASTSAVE"), t0)
        info = self.info(c)
        self.assertEqual(info["rdb_saves"], "1")
        self.assertEqual(info["rdb_changes_since_last_save"], "0")
        self.assertEqual(len(wal_files(self.data)), 1)
        self.assertEqual(int(info["wal_seq"]), 50)
        self.ok(c, "SET", "x", "y")
        self.assertEqual(c.cmd("BGSAVE"), "Background saving started")
        info = self.wait_bgsave_done(c)
        self.assertEqual(info["rdb_last_bgsave_status"], "ok")
        self.assertEqual(info["rdb_saves"], "2")
        logs = wal_files(self.data)
        self.assertEqual([b for b, _ in logs], [51], "older logs are deleted")
        self.assertFalse([n for n in os.listdir(self.data) if ".tmp" in n])
        self.crash(srv)
        srv2 = self.start()
        c2 = self.conn(srv2)
        self.assertEqual(c2.cmd("DBSIZE"), 51)
        self.stop(srv2)

    def test_bgsave_while_bgsave_running(self):
        srv = self.start()
        c = self.conn(srv)
        pipeline(c, [("SET", b"k%d" % i, b"v" * 1000) for i in range(5000)])
        self.assertEqual(c.cmd("BGSAVE"), "Background saving started")
        r = c.cmd("BGSAVE")
        if r != "Background saving started":     # the first may already be done
            self.assertIsInstance(r, RespError)
            self.assertIn("in progress", r)
        info = self.wait_bgsave_done(c)
        self.assertEqual(info["rdb_last_bgsave_status"], "ok")
        self.stop(srv)


# ---- appendfsync everysec and no -----------------------------------------------------

@engram_only
class TestFsyncPolicies(PersistCase):
    def check_policy(self, policy):
        srv = self.start("--appendfsync", policy)
        c = self.conn(srv)
        self.assertEqual(self.info(c)["aof_fsync"], policy)
        model = Model()
        populate(self, c, model, seed=81, n_vec=150)
        before = digest(self, c, model)
        self.stop(srv)
        srv2 = self.start("--appendfsync", policy)
        c2 = self.conn(srv2)
        assert_same_digest(self, before, digest(self, c2, model), "appendfsync " + policy)
        self.stop(srv2)

    def test_everysec_restart(self):
        self.check_policy("everysec")

    def test_no_restart(self):
        self.check_policy("no")

    def test_everysec_fsyncs_in_the_background(self):
        srv = self.start("--appendfsync", "everysec")
        c = self.conn(srv)
        n0 = int(self.info(c)["aof_fsyncs"])
        self.ok(c, "SET", "a", "1")
        info = wait_until(lambda: (lambda i: i if int(i["aof_fsyncs"]) > n0 else None)(
            self.info(c)), 5)
        self.assertTrue(info, "no background fsync within 5 s")
        t1 = int(info["aof_last_fsync_time"])
        self.assertLessEqual(abs(t1 - time.time()), 5)
        n1 = int(info["aof_fsyncs"])
        time.sleep(1.1)
        self.ok(c, "SET", "b", "2")
        info = wait_until(lambda: (lambda i: i if int(i["aof_fsyncs"]) > n1 else None)(
            self.info(c)), 5)
        self.assertTrue(info, "no second background fsync")
        self.assertGreaterEqual(int(info["aof_last_fsync_time"]), t1)
        # nothing to sync: the count stays
        n2 = int(info["aof_fsyncs"])
        time.sleep(1.5)
        self.assertEqual(int(self.info(c)["aof_fsyncs"]), n2)
        self.stop(srv)

    def test_appendfsync_always_counts_fsyncs(self):
        srv = self.start()
        c = self.conn(srv)
        n0 = int(self.info(c)["aof_fsyncs"])
        for i in range(5):
            self.ok(c, "SET", "k", str(i))
        self.assertGreaterEqual(int(self.info(c)["aof_fsyncs"]), n0 + 5)
        self.stop(srv)


if __name__ == "__main__":
    main()
