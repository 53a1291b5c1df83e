#!/usr/bin/env python3
"""persist_bench.py -- the vector parts of bench/persist.sh (run that).

    persist_bench.py fs      --tmp DIR
    persist_bench.py vadd    --engram BIN --tmp DIR [--data PATH] [--n 20000] ...
    persist_bench.py restart --engram BIN --tmp DIR [--sizes 10000,100000] ...
    persist_bench.py bgsave  --engram BIN --tmp DIR [--n 200000] ...

Prints one JSON line per result.  Standard library only (no numpy, no
redis-py): a small RESP2 client over plain sockets, and a pipelined VADD
loader that writes float32 blobs over a few non-blocking connections,
keeping `window` commands in flight on each (a new batch is written as soon
as there is room), so the server never waits for the client.

Every engram this script starts runs with --bind 127.0.0.1, its log in the
bench's temp dir, pinned to --server-cpu (this process pins itself to
--client-cpu), and is stopped (SIGTERM, or SIGKILL where the bench says so)
before the script returns, whatever happens.

fs       the filesystem of --tmp (df -T) and the latency of one small
         append + fsync there (what appendfsync always pays per commit).
vadd     pipelined VADD throughput into a fresh server per run, for each
         mode in --modes: off (no --dir: memory only) and the appendfsync
         policies.  VNEW idx DIM METRIC l2 with default M / EF_CONSTRUCTION.
         Vectors: the rows of --data (.fvecs file, or a directory holding
         *_base.fvecs); when --n exceeds the rows, rows are reused with
         uniform noise in [-0.5, 0.5) per component (seeded) so every
         vector is distinct; without --data, random float32.  Rounds rotate
         the order of the modes; medians.
restart  per size N: load N random DIM-d vectors (M, EF_CONSTRUCTION from
         the options; appendfsync no, automatic snapshots off), SIGKILL,
         then time restarts from the log alone ("log"), then SAVE, SIGKILL
         and time restarts from the snapshot ("snapshot").  Times are from
         just before exec: listen_s (first accepted TCP connection),
         first_ping_s (first +PONG: PING gets -LOADING while loading) and
         ready_s (first INFO persistence with loading:0); polled every
         --poll-ms.  Each restart checks VCARD == N.  Page cache is warm
         (the files were just written).
bgsave   load --n vectors, then a PING latency probe on one connection
         (one PING, wait for +PONG, sleep --interval-us, repeat) for --secs
         idle, then during a BGSAVE (INFO persistence polled on a second
         connection every --info-ms until rdb_bgsave_in_progress:0).
         p50/p99/max per phase, the BGSAVE's duration and its reply time
         (the fork happens while BGSAVE runs on the loop).

A SAVE / BGSAVE that the server refuses or that fails is reported as a JSON
line with "error" (the reply, or the server log's "Snapshot failed" line)
instead of stopping the script.
"""
import argparse
import json
import os
import random
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def emit(**kv):
    print(json.dumps(kv), flush=True)


# ---- RESP ---------------------------------------------------------------

def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespError(Exception):
    pass


class Conn:
    """Blocking RESP2 connection; call() returns the reply (errors as RespError)."""

    def __init__(self, port, timeout=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.settimeout(None)
        self.buf = b""

    def close(self):
        self.s.close()

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise ConnectionError("server closed the connection")
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("bad RESP line %r" % line)

    def call(self, *args):
        self.s.sendall(enc(*args))
        r = self.read()
        if isinstance(r, RespError):
            raise r
        return r

    def call_raw(self, *args):
        """Like call, but returns an error reply instead of raising it."""
        self.s.sendall(enc(*args))
        return self.read()


def info(conn, section="persistence"):
    text = conn.call("INFO", section).decode()
    d = {}
    for line in text.split("\r\n"):
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d[k] = v
    return d


# ---- servers -----------------------------------------------------------

class Ports:
    def __init__(self, base):
        self.next = base

    def get(self):
        """A free TCP port: from --port-base upward if given, else any."""
        while True:
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", self.next if self.next else 0))
                port = s.getsockname()[1]
                if self.next:
                    self.next += 1
                return port
            except OSError:
                if not self.next:
                    raise
                self.next += 1
                if self.next > 65535:
                    raise
            finally:
                s.close()


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class StartupError(Exception):
    pass


class Engram:
    """One engram process.  start() returns the perf_counter just before exec."""

    live = []

    def __init__(self, binary, port, logfile, cpu, pdir=None, extra=()):
        self.binary, self.port, self.logfile, self.cpu = binary, port, logfile, cpu
        self.pdir, self.extra = pdir, list(extra)
        self.p = None

    def start(self):
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--logfile", self.logfile]
        if self.pdir:
            args += ["--dir", self.pdir]
        args += self.extra
        err = open(self.logfile + ".stderr", "ab")
        self.log_off = [os.path.getsize(f) if os.path.exists(f) else 0
                        for f in (self.logfile, self.logfile + ".stderr")]
        # The child inherits this process's CPU set: switch it to the
        # server's CPU around the spawn (no preexec_fn, which would force
        # Python's slow fork path into the timing).
        mine = os.sched_getaffinity(0)
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})
        try:
            t0 = time.perf_counter()
            self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        finally:
            if self.cpu is not None:
                os.sched_setaffinity(0, mine)
        err.close()
        Engram.live.append(self)
        return t0

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def wait_up(self, t0, poll_ms=1.0, timeout=3600):
        """Poll until PING answers +PONG and INFO says loading:0.
        Returns (listen_s, first_ping_s, ready_s) measured from t0."""
        poll = poll_ms / 1000
        t_listen = t_ping = t_ready = None
        c = None
        deadline = t0 + timeout
        while t_ping is None or t_ready is None:
            if not self.alive():
                if c is not None:
                    c.close()
                raise StartupError(self.died(t0))
            if time.perf_counter() > deadline:
                raise StartupError("engram not ready after %ss" % timeout)
            try:
                if c is None:
                    try:
                        c = Conn(self.port, timeout=1)
                        c.s.settimeout(timeout)
                        t_listen = time.perf_counter() - t0
                    except ConnectionRefusedError:
                        time.sleep(poll)
                        continue
                if t_ping is None:
                    r = c.call_raw("PING")
                    if r == "PONG":
                        t_ping = time.perf_counter() - t0
                if t_ready is None:
                    if info(c).get("loading") == "0":
                        t_ready = time.perf_counter() - t0
            except (OSError, ConnectionError) as ex:
                # the server closed or reset the connection: died, or will be seen next round
                if c is not None:
                    c.close()
                c = None
                try:
                    self.p.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    raise StartupError("connection failed during start-up (%s); server still running" % ex)
                continue
            if t_ping is None or t_ready is None:
                time.sleep(poll)
        c.close()
        return t_listen, t_ping, t_ready

    def died(self, t0):
        rc = self.p.returncode
        how = ("signal %d (%s)" % (-rc, signal.Signals(-rc).name)) if rc < 0 else "exit status %d" % rc
        msg = "engram died during start-up: %s, %.3f s after exec" % (how, time.perf_counter() - t0)
        t = " | ".join(x for f, off in zip((self.logfile, self.logfile + ".stderr"), self.log_off)
                       for x in tail(f, 3, off).strip().split("\n") if x)
        return msg + ("; its log: " + t if t else "; nothing in its log")

    def kill(self, sig=signal.SIGTERM):
        if self.p is None:
            return
        if self.p.poll() is None:
            self.p.send_signal(sig)
        self.p.wait()
        if self in Engram.live:
            Engram.live.remove(self)

    @classmethod
    def kill_all(cls):
        for e in list(cls.live):
            try:
                e.kill(signal.SIGKILL)
            except Exception:
                pass


def tail(path, n=5, off=0):
    try:
        with open(path, errors="replace") as f:
            f.seek(off)
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def snapshot_failure(logfile):
    """The last 'Snapshot failed' message in the server log, if any."""
    msg = None
    try:
        with open(logfile, errors="replace") as f:
            for line in f:
                i = line.find("Snapshot failed")
                if i >= 0:
                    msg = line[i:].strip()
    except OSError:
        pass
    return msg


def dir_bytes(d):
    tot = {}
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            kind = "wal" if name.startswith("wal-") else "snap" if name.startswith("engram.snap") else "other"
            tot[kind] = tot.get(kind, 0) + os.path.getsize(p)
    return tot


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


# ---- vectors -----------------------------------------------------------

def read_fvecs(path):
    """(dim, list of row blobs) of an .fvecs file (or DIR/*_base.fvecs)."""
    if os.path.isdir(path):
        cands = sorted(f for f in os.listdir(path) if f.endswith("_base.fvecs"))
        if not cands:
            raise SystemExit("persist_bench: no *_base.fvecs in %s" % path)
        path = os.path.join(path, cands[0])
    data = open(path, "rb").read()
    dim = int.from_bytes(data[:4], "little")
    row = 4 + 4 * dim
    if dim <= 0 or len(data) % row:
        raise SystemExit("persist_bench: %s is not an fvecs file" % path)
    return path, dim, [data[o + 4:o + row] for o in range(0, len(data), row)]


def fvecs_source(path, n, seed=1):
    """n blobs from the file's rows; rows reused with noise past the end."""
    from array import array
    path, dim, rows = read_fvecs(path)
    rnd = random.Random(seed)
    out = rows[:n]
    i = len(out)
    while i < n:
        a = array("f", rows[i % len(rows)])
        if sys.byteorder != "little":
            a.byteswap()
        a = array("f", (x + rnd.random() - 0.5 for x in a))
        if sys.byteorder != "little":
            a.byteswap()
        out.append(a.tobytes())
        i += 1
    src = os.path.basename(path) + ("" if n <= len(rows) else "+noise(%d rows reused)" % (n - len(rows)))
    return dim, src, lambda start, count: out[start:start + count]


# Random float32 without numpy: random bytes, then the top byte of every
# value is forced to sign | 0x3f, i.e. exponent 126 or 127: values uniform
# in mantissa, |x| in [0.5, 2), never NaN / inf / subnormal.
_TOP = bytes((b & 0x80) | 0x3F for b in range(256))


def random_source(dim, seed=2):
    def gen(start, count):
        rnd = random.Random(seed * 1000003 + start)
        b = bytearray(rnd.randbytes(count * dim * 4))
        b[3::4] = b[3::4].translate(_TOP)
        blob = bytes(b)
        step = dim * 4
        return [blob[i * step:(i + 1) * step] for i in range(count)]
    return gen


def load(port, index, n, gen, conns=4, batch=64, window=2, key_prefix="v", progress=None):
    """VADD keys key_prefix+i (i < n) with gen(start, count) blobs, pipelined
    over `conns` connections with up to window*batch commands in flight on
    each.  Returns (seconds, errors, first_error)."""
    cmd_head = b"*4\r\n$4\r\nVADD\r\n$%d\r\n%s\r\n" % (len(index), index.encode())
    kp = key_prefix.encode()

    def encode(start, count):
        blobs = gen(start, count)
        parts = []
        for j, blob in enumerate(blobs):
            key = kp + b"%d" % (start + j)
            parts.append(b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n" % (cmd_head, len(key), key, len(blob), blob))
        return b"".join(parts)

    sel = selectors.DefaultSelector()
    cs = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        st = {"s": s, "out": bytearray(), "inflight": 0, "mask": 0, "partial": b""}
        cs.append(st)
    next_start = 0
    done = 0
    errors = 0
    first_error = None
    last_prog = 0
    t0 = time.perf_counter()
    while done < n:
        for st in cs:
            while next_start < n and st["inflight"] + batch <= window * batch:
                cnt = min(batch, n - next_start)
                st["out"] += encode(next_start, cnt)
                st["inflight"] += cnt
                next_start += cnt
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if st["out"] else 0)
            if st["inflight"] == 0 and not st["out"]:
                mask = 0
            if mask != st["mask"]:
                if st["mask"] == 0:
                    sel.register(st["s"], mask, st)
                elif mask == 0:
                    sel.unregister(st["s"])
                else:
                    sel.modify(st["s"], mask, st)
                st["mask"] = mask
        for key, ev in sel.select():
            st = key.data
            if ev & selectors.EVENT_WRITE and st["out"]:
                try:
                    k = st["s"].send(st["out"])
                    del st["out"][:k]
                except BlockingIOError:
                    pass
            if ev & selectors.EVENT_READ:
                try:
                    d = st["s"].recv(1 << 16)
                except BlockingIOError:
                    continue
                if not d:
                    raise RuntimeError("server closed a loader connection")
                k = d.count(b"\n")  # every reply is one line: :1, :0 or -error
                st["inflight"] -= k
                done += k
                chunk = st["partial"] + d
                cut = chunk.rfind(b"\n") + 1
                whole, st["partial"] = chunk[:cut], chunk[cut:]
                if b"-" in whole:
                    for line in whole.split(b"\r\n"):
                        if line.startswith(b"-"):
                            errors += 1
                            if first_error is None:
                                first_error = line[1:].decode(errors="replace")
        if progress and done - last_prog >= progress:
            last_prog = done
            print("  loaded %d/%d (%.0f/s)" % (done, n, done / (time.perf_counter() - t0)),
                  file=sys.stderr, flush=True)
    secs = time.perf_counter() - t0
    for st in cs:
        st["s"].close()
    return secs, errors, first_error


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


# ---- fs ------------------------------------------------------------------

def cmd_fs(a):
    out = subprocess.run(["df", "-T", a.tmp], capture_output=True, text=True).stdout.split("\n")
    fields = out[1].split() if len(out) > 1 else []
    p = os.path.join(a.tmp, "fsync-probe.%d" % os.getpid())
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    lat = []
    try:
        for _ in range(a.fsyncs):
            t = time.perf_counter()
            os.write(fd, b"x" * 256)
            os.fsync(fd)
            lat.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(p)
    binfo = {}
    if a.engram:
        import hashlib
        st = os.stat(a.engram)
        binfo = dict(engram=os.path.abspath(a.engram),
                     engram_sha256=hashlib.sha256(open(a.engram, "rb").read()).hexdigest()[:16],
                     engram_mtime=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(st.st_mtime)))
    emit(bench="persist_fs", dir=os.path.abspath(a.tmp),
         device=fields[0] if fields else None, fstype=fields[1] if len(fields) > 1 else None,
         mount=fields[6] if len(fields) > 6 else None,
         append_fsync_us_p50=round(pct(lat, 50), 1), append_fsync_us_p99=round(pct(lat, 99), 1),
         samples=len(lat), loadavg=[round(x, 2) for x in os.getloadavg()], cpus=os.cpu_count(),
         **binfo)


# ---- vadd ----------------------------------------------------------------

def cmd_vadd(a):
    if a.data:
        dim, src, gen = fvecs_source(a.data, a.n)
    else:
        dim, src, gen = a.dim, "random", random_source(a.dim)
    modes = a.modes.split(",")
    res = {m: [] for m in modes}
    for r in range(a.rounds):
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for m in order:
            port = PORTS.get()
            log = os.path.join(a.tmp, "vadd-%s.log" % m)
            pdir = None
            extra = []
            if m != "off":
                pdir = fresh_dir(os.path.join(a.tmp, "vadd-%s" % m))
                extra = ["--appendfsync", m, "--auto-aof-rewrite-percentage", "0"]
            e = Engram(a.engram, port, log, a.server_cpu, pdir, extra)
            e.wait_up(e.start())
            c = Conn(port)
            c.call("VNEW", "idx", dim, "METRIC", "l2")
            ticks0 = cpu_ticks(e.pid)
            secs, errs, ferr = load(port, "idx", a.n, gen, a.conns, a.batch)
            ticks1 = cpu_ticks(e.pid)
            card = c.call("VCARD", "idx")
            inf = info(c)
            c.close()
            e.kill()
            row = {"secs": secs, "cpu_s": (ticks1 - ticks0) / CLK_TCK, "card": card,
                   "fsyncs": int(inf.get("aof_fsyncs", 0) or 0),
                   "bytes": dir_bytes(pdir).get("wal", 0) if pdir else 0,
                   "errors": errs, "first_error": ferr}
            res[m].append(row)
            if pdir:
                shutil.rmtree(pdir, ignore_errors=True)
    base = None
    if "off" in res and res["off"]:
        base = statistics.median(a.n / x["secs"] for x in res["off"])
    for m in modes:
        rows = res[m]
        rates = [a.n / x["secs"] for x in rows]
        med = statistics.median(rates)
        mid = sorted(rows, key=lambda x: x["secs"])[len(rows) // 2]
        line = dict(bench="persist_vadd", mode=m, appendfsync=None if m == "off" else m,
                    n=a.n, dim=dim, source=src, conns=a.conns, batch=a.batch, rounds=a.rounds,
                    vadd_per_s=round(med), runs=[round(x) for x in rates],
                    ratio_to_off=round(med / base, 3) if base else None,
                    server_cpu_us_per_vadd=round(mid["cpu_s"] / a.n * 1e6, 1),
                    vcard=mid["card"])
        if m != "off":
            line.update(fsyncs=mid["fsyncs"],
                        vadds_per_fsync=round(a.n / mid["fsyncs"], 1) if mid["fsyncs"] else None,
                        wal_bytes_per_vadd=round(mid["bytes"] / a.n, 1))
        errs = sum(x["errors"] for x in rows)
        if errs:
            line.update(errors=errs, first_error=next(x["first_error"] for x in rows if x["first_error"]))
        emit(**line)


# ---- restart -------------------------------------------------------------

def restart_once(a, e, n):
    t0 = e.start()
    try:
        listen_s, ping_s, ready_s = e.wait_up(t0, a.poll_ms)
    except StartupError as ex:
        e.kill(signal.SIGKILL)
        return dict(error=str(ex))
    c = Conn(e.port)
    card = c.call("VCARD", "idx")
    inf = info(c)
    c.close()
    return dict(listen_s=round(listen_s, 4), first_ping_s=round(ping_s, 4),
                ready_s=round(ready_s, 4), vcard=card, ok=card == n,
                loaded_records=int(inf.get("loading_loaded_records", 0) or 0),
                rss_mb=rss_mb(e.pid))


def restart_load(a, n, gen, purpose):
    """A fresh dir and server holding N vectors; returns (server, dir)."""
    pdir = fresh_dir(os.path.join(a.tmp, "restart-%d" % n))
    log = os.path.join(a.tmp, "restart-%d.log" % n)
    e = Engram(a.engram, PORTS.get(), log, a.server_cpu, pdir,
               ["--appendfsync", a.appendfsync, "--auto-aof-rewrite-percentage", "0"])
    e.wait_up(e.start())
    c = Conn(e.port)
    c.call("VNEW", "idx", a.dim, "METRIC", "l2", "M", a.M, "EF_CONSTRUCTION", a.efc)
    ticks0 = cpu_ticks(e.pid)
    secs, errs, ferr = load(e.port, "idx", n, gen, a.conns, a.batch,
                            progress=max(100000, n // 10) if n >= 500000 else None)
    cpu_s = (cpu_ticks(e.pid) - ticks0) / CLK_TCK
    card = c.call("VCARD", "idx")
    c.close()
    line = dict(bench="restart_load", n=n, dim=a.dim, M=a.M, efc=a.efc, purpose=purpose,
                appendfsync=a.appendfsync, load_s=round(secs, 2),
                vadd_per_s=round(n / secs), server_cpu_s=round(cpu_s, 2),
                vcard=card, wal_bytes=dir_bytes(pdir).get("wal", 0), rss_mb=rss_mb(e.pid))
    if errs:
        line.update(errors=errs, first_error=ferr)
    emit(**line)
    return e, pdir


def cmd_restart(a):
    sizes = [int(x) for x in a.sizes.split(",") if x]
    gen = random_source(a.dim)
    for n in sizes:
        e, pdir = restart_load(a, n, gen, "both" if a.reps_log and a.reps_snap else
                               "log" if a.reps_log else "snapshot")
        wal = dir_bytes(pdir).get("wal", 0)
        # (a) from the log alone; the last good restart stays up for (b)
        up = a.reps_log == 0
        if a.reps_log:
            e.kill(signal.SIGKILL)
        for rep in range(a.reps_log):
            r = restart_once(a, e, n)
            emit(bench="restart", mode="log", n=n, dim=a.dim, rep=rep + 1, wal_bytes=wal, **r)
            up = "error" not in r
            if up and rep < a.reps_log - 1:
                e.kill(signal.SIGKILL)
        # (b) SAVE, then from the snapshot
        if a.reps_snap > 0:
            if not up:   # the log restart failed: load again to have something to SAVE
                e, pdir = restart_load(a, n, gen, "snapshot (the restart from the log failed)")
            c = Conn(e.port)
            t = time.perf_counter()
            rep_ = c.call_raw("SAVE")
            save_s = time.perf_counter() - t
            c.close()
            if rep_ != "OK":
                emit(bench="restart", mode="snapshot", n=n, dim=a.dim,
                     error="SAVE: %s" % rep_, save_s=round(save_s, 4))
            else:
                e.kill(signal.SIGKILL)
                sb = dir_bytes(pdir)
                for rep in range(a.reps_snap):
                    r = restart_once(a, e, n)
                    emit(bench="restart", mode="snapshot", n=n, dim=a.dim, rep=rep + 1,
                         save_s=round(save_s, 3), snap_bytes=sb.get("snap", 0),
                         wal_bytes=sb.get("wal", 0), **r)
                    if rep < a.reps_snap - 1:
                        e.kill(signal.SIGKILL)
        e.kill()
        if not a.keep:
            shutil.rmtree(pdir, ignore_errors=True)


# ---- bgsave --------------------------------------------------------------

def probe(c, secs, interval, until=None):
    """Sequential PINGs on c for secs (or until until() is true); latencies in us."""
    lat = []
    t_end = time.perf_counter() + secs
    ping = enc("PING")
    s = c.s
    while True:
        t = time.perf_counter()
        if until is None and t >= t_end:
            break
        if until is not None and until(t):
            break
        s.sendall(ping)
        r = c.read()
        lat.append((time.perf_counter() - t) * 1e6)
        if r != "PONG":
            raise RuntimeError("PING answered %r" % (r,))
        if interval:
            time.sleep(interval)
    return lat


def lat_stats(lat):
    return dict(samples=len(lat), p50_us=round(pct(lat, 50), 1), p99_us=round(pct(lat, 99), 1),
                max_us=round(max(lat), 1)) if lat else dict(samples=0)


def cmd_bgsave(a):
    pdir = fresh_dir(os.path.join(a.tmp, "bgsave"))
    log = os.path.join(a.tmp, "bgsave.log")
    port = PORTS.get()
    e = Engram(a.engram, port, log, a.server_cpu, pdir,
               ["--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0"])
    e.wait_up(e.start())
    ctl = Conn(port)
    ctl.call("VNEW", "idx", a.dim, "METRIC", "l2", "M", a.M, "EF_CONSTRUCTION", a.efc)
    secs, errs, ferr = load(port, "idx", a.n, random_source(a.dim), a.conns, a.batch,
                            progress=max(100000, a.n // 10) if a.n >= 500000 else None)
    emit(bench="bgsave_load", n=a.n, dim=a.dim, M=a.M, efc=a.efc, load_s=round(secs, 2),
         vadd_per_s=round(a.n / secs), rss_mb=rss_mb(e.pid), errors=errs)
    pc = Conn(port)
    interval = a.interval_us / 1e6
    probe(pc, 0.2, interval)  # warm-up
    idle = probe(pc, a.secs, interval)
    emit(bench="bgsave_ping", phase="idle", n=a.n, interval_us=a.interval_us, **lat_stats(idle))
    t = time.perf_counter()
    r = ctl.call_raw("BGSAVE")
    reply_ms = (time.perf_counter() - t) * 1e3
    if isinstance(r, RespError):
        emit(bench="bgsave_ping", phase="bgsave", n=a.n, error="BGSAVE: %s" % r,
             bgsave_reply_ms=round(reply_ms, 2))
    else:
        state = {"next": 0.0, "done": None, "polls": 0}
        info_iv = a.info_ms / 1000

        def until(now):
            if now >= state["next"]:
                state["next"] = now + info_iv
                state["polls"] += 1
                if info(ctl).get("rdb_bgsave_in_progress") == "0":
                    state["done"] = time.perf_counter()
                    return True
            return now - t > a.max_secs
        during = probe(pc, 0, interval, until)
        inf = info(ctl)
        dur = (state["done"] or time.perf_counter()) - t
        line = dict(bench="bgsave_ping", phase="bgsave", n=a.n, interval_us=a.interval_us,
                    bgsave_s=round(dur, 3), bgsave_reply_ms=round(reply_ms, 2),
                    status=inf.get("rdb_last_bgsave_status"),
                    snap_bytes=dir_bytes(pdir).get("snap", 0), **lat_stats(during))
        if state["done"] is None:
            line["error"] = "still in progress after %ss" % a.max_secs
        elif inf.get("rdb_last_bgsave_status") != "ok":
            line["error"] = snapshot_failure(log) or "rdb_last_bgsave_status:%s" % inf.get("rdb_last_bgsave_status")
        emit(**line)
    pc.close()
    ctl.close()
    e.kill()
    if not a.keep:
        shutil.rmtree(pdir, ignore_errors=True)


# ---- main ----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--engram", required=True)
        p.add_argument("--tmp", required=True, help="temp dir; the servers' dirs go under it")
        p.add_argument("--server-cpu", type=int, default=None)
        p.add_argument("--client-cpu", type=int, default=None)
        p.add_argument("--port-base", type=int, default=0)
        p.add_argument("--conns", type=int, default=4)
        p.add_argument("--batch", type=int, default=64)
        p.add_argument("--dim", type=int, default=128)
        p.add_argument("--keep", action="store_true", help="keep the data dirs")

    p = sub.add_parser("fs")
    p.add_argument("--tmp", required=True)
    p.add_argument("--engram", default=None, help="named in the line, with its sha256 and mtime")
    p.add_argument("--fsyncs", type=int, default=200)
    p.add_argument("--client-cpu", type=int, default=None)

    p = sub.add_parser("vadd")
    common(p)
    p.add_argument("--data", default=None)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default="off,always,everysec,no")

    p = sub.add_parser("restart")
    common(p)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--M", type=int, default=16)
    p.add_argument("--efc", type=int, default=40)
    p.add_argument("--appendfsync", default="no")
    p.add_argument("--reps-log", type=int, default=1)
    p.add_argument("--reps-snap", type=int, default=3)
    p.add_argument("--poll-ms", type=float, default=1.0)

    p = sub.add_parser("bgsave")
    common(p)
    p.add_argument("--n", type=int, default=200000)
    p.add_argument("--M", type=int, default=16)
    p.add_argument("--efc", type=int, default=40)
    p.add_argument("--secs", type=float, default=3.0)
    p.add_argument("--interval-us", type=int, default=250)
    p.add_argument("--info-ms", type=float, default=20.0)
    p.add_argument("--max-secs", type=float, default=600.0)

    a = ap.parse_args()
    if a.client_cpu is not None:
        try:
            os.sched_setaffinity(0, {a.client_cpu})
        except OSError:
            pass
    global PORTS
    PORTS = Ports(getattr(a, "port_base", 0))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    try:
        {"fs": cmd_fs, "vadd": cmd_vadd, "restart": cmd_restart, "bgsave": cmd_bgsave}[a.cmd](a)
    finally:
        Engram.kill_all()


PORTS = None

if __name__ == "__main__":
    main()
