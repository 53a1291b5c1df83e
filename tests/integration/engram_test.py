"""engram_test.py -- harness for engram's integration tests.

Every tests/integration/test_*.py drives a REAL server process over TCP:

  * engram (default): $ENGRAM_BIN (default <repo>/build/engram) is started as
    `engram [config-file] --port <free port> [--flag value ...]` with a fresh
    temporary directory as its working directory.
  * Redis (ENGRAM_TEST_TARGET=redis): Debian's /usr/bin/redis-server is
    started instead, with persistence off and one database, so the very same
    assertions are checked against real Redis 7.0.  A test that is specific to
    engram is decorated with @engram_only and skipped there.

The server is stopped with SIGTERM and must exit with status 0 and without
any sanitizer report on stderr (ENGRAM_SANITIZE=address|thread tells us that
the binary is instrumented; we then also scale timeouts and sizes).

Raw access: Conn sends bytes and reads whole replies with a small RESP2+RESP3
reader that returns both the decoded value and the exact bytes, so tests can
compare replies byte for byte (assert_reply) or by value (cmd).

Only the standard library is used here; redis-py (Debian's python3-redis) is
imported lazily by the tests that need it.  Run with /usr/bin/python3.
"""

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

TARGET = os.environ.get("ENGRAM_TEST_TARGET", "engram").strip().lower() or "engram"
IS_REDIS = TARGET == "redis"
SANITIZE = os.environ.get("ENGRAM_SANITIZE", "").strip()
# Instrumented binaries are several times slower: stretch waits, shrink sizes.
SLOW = 4 if SANITIZE else 1
REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"

ENGRAM_DEFAULT_PORT = 6380

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "runtime error:",
)


def engram_bin():
    return os.environ.get("ENGRAM_BIN") or os.path.join(REPO, "build", "engram")


def engram_only(obj):
    """Skip a test (or a whole class) when the target is real Redis."""
    return unittest.skipIf(IS_REDIS, "engram-specific")(obj)


def redis_only(obj):
    return unittest.skipUnless(IS_REDIS, "checked against real Redis only")(obj)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def encode(*args):
    """One multibulk request: *N then $len/bytes for every argument."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


# --------------------------------------------------------------------------
# RESP reader (RESP2 + RESP3).  parse(buf, pos) -> (value, end) or raises
# Incomplete.  Value mapping:
#   +simple  -> str          -error -> RespError (a str subclass)
#   :int     -> int          $bulk  -> bytes, $-1 -> None
#   *array   -> list, *-1 -> None       _ -> None
#   ,double  -> float        #t/#f  -> bool     (bignum -> int
#   =verbatim -> bytes (without the 4-byte format prefix)
#   %map     -> dict         ~set   -> list     >push -> Push (list)
#   |attr    -> skipped (the value that follows is returned)


class Incomplete(Exception):
    pass


class RespError(str):
    """An error reply; the text is without the leading '-'."""

    def __repr__(self):
        return "RespError(%s)" % str.__repr__(self)


class Push(list):
    pass


class ProtocolDesync(Exception):
    pass


def _line(buf, pos):
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete()
    return buf[pos:end], end + 2


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


def parse(buf, pos=0):
    if pos >= len(buf):
        raise Incomplete()
    t = buf[pos:pos + 1]
    line, p = _line(buf, pos + 1)
    if t == b"+":
        return line.decode("utf-8", "replace"), p
    if t == b"-":
        return RespError(line.decode("utf-8", "replace")), p
    if t == b":":
        return int(line), p
    if t == b"(":
        return int(line), p
    if t == b",":
        s = line.decode()
        return float(s.replace("inf", "inf")), p
    if t == b"#":
        return line == b"t", p
    if t == b"_":
        return None, p
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            return None, p
        if len(buf) < p + n + 2:
            raise Incomplete()
        if buf[p + n:p + n + 2] != b"\r\n":
            raise ProtocolDesync("bulk not terminated by CRLF at %d" % (p + n))
        data = bytes(buf[p:p + n])
        if t == b"=":
            data = data[4:]
        if t == b"!":
            return RespError(data.decode("utf-8", "replace")), p + n + 2
        return data, p + n + 2
    if t in (b"*", b"~", b">"):
        n = int(line)
        if n < 0:
            return None, p
        out = Push() if t == b">" else []
        for _ in range(n):
            v, p = parse(buf, p)
            out.append(v)
        return out, p
    if t == b"%":
        n = int(line)
        out = {}
        for _ in range(n):
            k, p = parse(buf, p)
            v, p = parse(buf, p)
            out[_hashable(k)] = v
        return out, p
    if t == b"|":
        n = int(line)
        for _ in range(2 * n):
            _, p = parse(buf, p)
        return parse(buf, p)
    raise ProtocolDesync("unknown RESP type byte %r in %r" % (t, bytes(buf[pos:pos + 60])))


def split_replies(data):
    """Split a byte string holding whole replies into their raw parts."""
    parts, pos = [], 0
    while pos < len(data):
        _, end = parse(data, pos)
        parts.append(bytes(data[pos:end]))
        pos = end
    return parts


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class Conn:
    """A raw TCP connection to the server under test."""

    def __init__(self, port, timeout=10.0, nodelay=True, rcvbuf=None, host="127.0.0.1"):
        self.port = port
        self.timeout = timeout * SLOW
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.closed_by_peer = False

    # -- writing
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_cmd(self, *args):
        self.send(encode(*args))

    # -- reading
    def _fill(self, timeout=None):
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed_by_peer = True
            raise Closed("connection closed by server; unread bytes: %r" % bytes(self.buf[:200]))
        self.buf += chunk

    def read_raw(self, timeout=None):
        """Exact bytes of the next whole reply."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                _, end = parse(self.buf, 0)
                raw = bytes(self.buf[:end])
                del self.buf[:end]
                return raw
            except Incomplete:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("no complete reply; have %r" % bytes(self.buf[:200]))
                self._fill(left)

    def read(self, timeout=None):
        """Decoded value of the next reply (errors come back as RespError)."""
        return parse(self.read_raw(timeout))[0]

    def cmd(self, *args):
        self.send_cmd(*args)
        return self.read()

    def raw_cmd(self, *args):
        self.send_cmd(*args)
        return self.read_raw()

    def read_bytes(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("wanted %d bytes, have %d" % (n, len(self.buf)))
            self._fill(left)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def is_closed(self, timeout=5.0):
        """Wait up to timeout for EOF/reset; bytes that arrive before it are
        kept in self.buf.  True if the server closed the connection."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except Closed:
                return True
            except socket.timeout:
                return False

    def drain(self):
        """Read whatever is available without waiting."""
        while True:
            r, _, _ = select.select([self.sock], [], [], 0)
            if not r:
                return
            try:
                self._fill(0.5)
            except Closed:
                return

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# Server process


class ServerError(AssertionError):
    pass


def _redis_args(flags):
    """Translate engram flags to redis-server's (the names are Redis's own, so
    this is mostly the identity; multi-word values become separate words)."""
    out = []
    i = 0
    while i < len(flags):
        f = flags[i]
        if f.startswith("--") and i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            name, val = f, flags[i + 1]
            if name == "--client-output-buffer-limit":
                out.append(name)
                out.extend(val.split())
            else:
                out.extend([name, val])
            i += 2
        else:
            out.append(f)
            i += 1
    return out


def parse_info(text):
    """INFO's text as a dict of field -> value (strings)."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.split("\r\n"):
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


class Server:
    """One server process in its own temporary directory.

    flags: extra command-line flags, engram spelling (`--timeout`, `1`).
    config: if given (a string), written to <tmp>/engram.conf and passed as
            the first argument (both engram and redis-server accept that).
    port: None = a free port; False = do not pass --port at all (engram's
          default, 6380, is then expected).
    redis: None = the target under test (ENGRAM_TEST_TARGET); True = Debian's
           redis-server whatever the target, for tests that compare the two
           servers' replies in one run.
    """

    def __init__(self, flags=(), config=None, port=None, redis=None):
        self.is_redis = IS_REDIS if redis is None else redis
        self.flags = list(flags)
        self.config = config
        self.want_port = port
        self.proc = None
        self.dir = None
        self.port = None
        self.config_path = None
        self.stopped = False

    # -- lifecycle
    def start(self, timeout=10.0):
        self.dir = tempfile.mkdtemp(prefix="engram-it-")
        if self.want_port is None:
            self.port = free_port()
        elif self.want_port is False:
            self.port = ENGRAM_DEFAULT_PORT     # no --port: the default applies
        else:
            self.port = self.want_port
        args = []
        if self.is_redis:
            args.append(REDIS_SERVER)
        else:
            b = engram_bin()
            if not os.path.exists(b):
                raise ServerError("engram binary not found at %s (set ENGRAM_BIN)" % b)
            args.append(b)
        if self.config is not None:
            self.config_path = os.path.join(self.dir, "engram.conf")
            with open(self.config_path, "w") as f:
                f.write(self.config)
            args.append(self.config_path)
        if self.want_port is not False:
            args += ["--port", str(self.port)]
        if self.is_redis:
            args += ["--save", "", "--appendonly", "no",
                     "--dir", self.dir, "--bind", "127.0.0.1",
                     "--enable-debug-command", "local"]
            args += _redis_args(self.flags)
        else:
            args += self.flags
        self.args = args
        self.out = open(os.path.join(self.dir, "stdout.log"), "wb")
        self.err = open(os.path.join(self.dir, "stderr.log"), "wb")
        env = dict(os.environ)
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, env=env)
        self.stopped = False
        try:
            self.wait_ready(timeout)
        except ServerError:
            self.kill()
            self.cleanup()      # the error message already carries stderr
            raise
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            if self.proc.poll() is not None:
                raise ServerError("server exited with %s before accepting connections\n"
                                  "command: %s\nstderr:\n%s\nstdout:\n%s"
                                  % (self.proc.returncode, self.args, self.stderr(),
                                     self.stdout()))
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                s.close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError("server did not accept connections on port %d within "
                                  "%.0f s\ncommand: %s\nstderr:\n%s"
                                  % (self.port, timeout * SLOW, self.args, self.stderr()))
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=15.0):
        """Exit status, or raise if the server is still running."""
        try:
            return self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise ServerError("server did not exit within %.0f s\nstderr:\n%s"
                              % (timeout * SLOW, self.stderr()))

    def stop(self, sig=signal.SIGTERM, check=True):
        """Stop with sig and (check=True) assert a clean exit: status 0 and no
        sanitizer output."""
        if self.proc is None or self.stopped:
            return
        self.stopped = True
        rc = self.proc.poll()
        was_running = rc is None
        if was_running:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(20 * SLOW)
            except subprocess.TimeoutExpired:
                self.kill()
                self._close_logs()
                raise ServerError("server ignored %s for %d s\nstderr:\n%s"
                                  % (signal.Signals(sig).name, 20 * SLOW, self.stderr()))
        self._close_logs()
        if check:
            if not was_running:
                raise ServerError("server was not running any more (exit status %s)\n"
                                  "stderr:\n%s" % (rc, self.stderr()))
            if rc != 0:
                raise ServerError("server exited with status %s after %s (expected 0)\n"
                                  "stderr:\n%s" % (rc, signal.Signals(sig).name, self.stderr()))
            self.check_sanitizer()
        self.cleanup()

    def check_sanitizer(self):
        text = self.stderr()
        for m in SANITIZER_MARKERS:
            if m in text:
                raise ServerError("sanitizer report in server stderr (%r):\n%s" % (m, text[-8000:]))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_logs()

    def _close_logs(self):
        for f in (self.out, self.err):
            try:
                f.close()
            except Exception:
                pass

    def cleanup(self):
        if self.dir and not os.environ.get("ENGRAM_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def _read_log(self, name):
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr(self):
        return self._read_log("stderr.log")

    def stdout(self):
        return self._read_log("stdout.log")

    # -- clients
    def conn(self, **kw):
        return Conn(self.port, **kw)

    def client(self, **kw):
        import redis
        kw.setdefault("socket_timeout", 20 * SLOW)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)


# --------------------------------------------------------------------------
# Test case base


class ServerTestCase(unittest.TestCase):
    """One server per class (flags/config from class attributes); every test
    starts on an empty keyspace.  If a test kills the server, that test fails
    and the server is restarted for the next one."""

    server_flags = ()
    server_config = None
    flush_between_tests = True
    password = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_flags, cls.server_config).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self._conns = []
        if not self.server.alive():
            type(self).server = Server(self.server_flags, self.server_config).start()
        if self.flush_between_tests:
            c = self.conn()
            if self.password:
                self.assertEqual(c.cmd("AUTH", self.password), "OK")
            self.assertEqual(c.cmd("FLUSHALL"), "OK")
            c.close()

    def tearDown(self):
        for c in self._conns:
            c.close()
        if not self.server.alive():
            srv = self.server
            rc = srv.proc.returncode
            type(self).server = Server(self.server_flags, self.server_config).start()
            srv._close_logs()
            text = srv.stderr()[-8000:]
            srv.cleanup()
            self.fail("server died during the test (exit status %s)\nstderr:\n%s" % (rc, text))

    # -- helpers
    @property
    def port(self):
        return self.server.port

    def conn(self, **kw):
        c = self.server.conn(**kw)
        self._conns.append(c)
        return c

    def client(self, **kw):
        r = self.server.client(**kw)
        self.addCleanup(r.close)
        return r

    def assert_reply(self, raw_in, expected_out, conn=None, msg=None):
        """Send raw bytes; read as many whole replies as expected_out holds
        and compare the bytes exactly."""
        c = conn or self.conn()
        if isinstance(raw_in, str):
            raw_in = raw_in.encode()
        if isinstance(expected_out, str):
            expected_out = expected_out.encode()
        want = split_replies(expected_out)
        c.send(raw_in)
        got = []
        try:
            for _ in want:
                got.append(c.read_raw())
        except (socket.timeout, Closed) as e:
            got.append(("<%s: %s>" % (type(e).__name__, e)).encode())
        self.assertEqual(b"".join(got), expected_out,
                         msg or "request %r" % raw_in[:200])
        return c

    def assert_closed(self, conn, timeout=5.0, msg=None):
        closed = conn.is_closed(timeout)
        self.assertTrue(closed, msg or "server did not close the connection within %.1f s "
                        "(unread: %r)" % (timeout * SLOW, bytes(conn.buf[:200])))

    def assert_error_and_close(self, raw_in, error_text, conn=None):
        """Expect exactly `-<error_text>\\r\\n` and then the connection closed."""
        c = conn or self.conn()
        self.assert_reply(raw_in, b"-" + error_text.encode() + b"\r\n", conn=c)
        self.assert_closed(c)
        self.assertEqual(bytes(c.buf), b"", "bytes after the error reply")
        return c

    def assert_error(self, value, text):
        self.assertIsInstance(value, RespError, "expected error %r, got %r" % (text, value))
        self.assertEqual(str(value), text)

    def cli(self, *args, stdin=None, check=True):
        """Run redis-cli against this test's server; its stdout as text."""
        cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)] + list(args)
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60 * SLOW)
        if check:
            self.assertEqual(p.returncode, 0, "redis-cli %s failed: %r" % (args, p.stderr))
        return p.stdout.decode("utf-8", "replace")


class BesideRedisTestCase(ServerTestCase):
    """ServerTestCase with a Redis 7.0 of its own beside the server under
    test (cls.redis), for tests that compare the two in one run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = Server(redis=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        super().tearDownClass()


def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


def main():
    print("target: %s%s" % (
        "redis (%s)" % REDIS_SERVER if IS_REDIS else "engram (%s)" % engram_bin(),
        ", sanitizer: %s" % SANITIZE if SANITIZE else ""), file=sys.stderr)
    unittest.main(verbosity=2)
