"""What stands between a network and the data, besides ACLs (test_acl.py):

  * TestProtectedMode: with `bind 0.0.0.0` and no password on the default
    user, a client connecting from a non-loopback address gets Redis's
    DENIED text and a closed connection, while loopback clients are served;
    `protected-mode no` or a password lets it in.
  * TestRenameCommand: `rename-command NAME NEW` and `rename-command NAME ""`.
  * TestTlsInFront: engram links libc only, so TLS ends in front of it: the
    docs/security.md recipe -- stunnel (Debian's stunnel4) with a
    self-signed certificate made by openssl -- carrying redis-cli --tls
    and redis-py (ssl=True) traffic to engram over loopback.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import redis

from engram_test import (SLOW, Server, ServerTestCase, engram_only, free_port, main, wait_until)


def outside_address():
    """A local non-loopback IPv4 address (None when the host has none)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))          # no packet is sent
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


def raw_hello(host, port, ping=True):
    """Connect, send PING (unless ping is false: a refused connection gets
    its error unasked), return what comes back and whether the server
    closed the connection."""
    s = socket.create_connection((host, port), timeout=5 * SLOW)
    try:
        if ping:
            s.sendall(b"PING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
        s.settimeout(0.5 * SLOW)
        try:
            return data, s.recv(1) == b""
        except ConnectionResetError:
            return data, True
        except socket.timeout:
            return data, False
    finally:
        s.close()


@engram_only
class TestProtectedMode(unittest.TestCase):
    def setUp(self):
        self.ip = outside_address()
        if not self.ip:
            self.skipTest("this host has no non-loopback address")
        self.srv = Server(["--bind", "0.0.0.0"]).start()
        self.addCleanup(self.srv.stop)

    def test_denied_then_allowed(self):
        data, closed = raw_hello(self.ip, self.srv.port, ping=False)
        self.assertTrue(data.startswith(b"-DENIED Redis is running in protected mode because "
                                        b"protected mode is enabled and no password is set for "
                                        b"the default user."), data[:120])
        self.assertTrue(data.endswith(b"accepting connections from the outside.\r\n"))
        self.assertTrue(closed)
        local = self.srv.conn()
        self.assertEqual(local.cmd("PING"), "PONG")             # loopback is served
        self.assertEqual(local.cmd("CONFIG", "SET", "protected-mode", "no"), "OK")
        self.assertEqual(raw_hello(self.ip, self.srv.port), (b"+PONG\r\n", False))
        self.assertEqual(local.cmd("CONFIG", "SET", "protected-mode", "yes"), "OK")
        self.assertTrue(raw_hello(self.ip, self.srv.port, ping=False)[0].startswith(b"-DENIED"))
        # a password on the default user lifts it
        self.assertEqual(local.cmd("CONFIG", "SET", "requirepass", "pw"), "OK")
        data, _ = raw_hello(self.ip, self.srv.port)
        self.assertEqual(data, b"-NOAUTH Authentication required.\r\n")


@engram_only
class TestRenameCommand(ServerTestCase):
    server_flags = ("--rename-command", "CONFIG", '""', "--rename-command", "flushall", "wipe")

    def test_acl_rules_name_the_original_commands(self):
        c = self.conn()
        self.assertEqual(c.cmd("ACL", "SETUSER", "h", "on", ">pw", "+@all", "-flushall",
                               "allkeys"), "OK")
        u = self.conn()
        self.assertEqual(u.cmd("AUTH", "h", "pw"), "OK")
        self.assert_error(u.cmd("WIPE"),
                          "NOPERM User h has no permissions to run the 'flushall' command")
        self.assertEqual(c.cmd("ACL", "DRYRUN", "h", "flushall"),
                         b"This user has no permissions to run the 'flushall' command")
        c.cmd("ACL", "DELUSER", "h")

    def test_renamed_and_disabled(self):
        c = self.conn()
        e = c.cmd("CONFIG", "GET", "port")
        self.assertEqual(str(e), "ERR unknown command 'CONFIG', with args beginning with: "
                                 "'GET' 'port' ")
        self.assertEqual(str(c.cmd("FLUSHALL")), "ERR unknown command 'FLUSHALL', with args "
                                                  "beginning with: ")
        c.cmd("SET", "k", "v")
        self.assertEqual(c.cmd("WIPE"), "OK")
        self.assertEqual(c.cmd("DBSIZE"), 0)

    def setUp(self):
        self._conns = []       # the harness's FLUSHALL is renamed: start empty instead
        if not self.server.alive():
            type(self).server = Server(self.server_flags, self.server_config).start()


@engram_only
class TestTlsInFront(unittest.TestCase):
    def setUp(self):
        for tool in ("stunnel4", "openssl", "redis-cli"):
            if not shutil.which(tool):
                self.skipTest("needs %s (tests/run.sh installs it)" % tool)
        self.tmp = tempfile.mkdtemp(prefix="engram-tls-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.srv = Server().start()
        self.addCleanup(self.srv.stop)
        cert = os.path.join(self.tmp, "engram.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", cert, "-out", cert],
                       check=True, capture_output=True)
        self.cert = cert
        self.tls_port = free_port()
        conf = os.path.join(self.tmp, "stunnel.conf")
        with open(conf, "w") as f:
            f.write("foreground = yes\npid =\n[engram]\naccept = 127.0.0.1:%d\n"
                    "connect = 127.0.0.1:%d\ncert = %s\n" % (self.tls_port, self.srv.port, cert))
        self.stunnel = subprocess.Popen(["stunnel4", conf], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self.addCleanup(self._stop_stunnel)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
                return True
            except OSError:
                return False
        self.assertTrue(wait_until(listening, 10), "stunnel did not start")

    def _stop_stunnel(self):
        self.stunnel.send_signal(signal.SIGTERM)
        try:
            self.stunnel.wait(10)
        except subprocess.TimeoutExpired:
            self.stunnel.kill()
            self.stunnel.wait()

    def test_redis_cli_over_tls(self):
        base = ["redis-cli", "-p", str(self.tls_port), "--tls", "--cacert", self.cert]
        r = subprocess.run(base + ["SET", "tls:k", "hello"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.stdout.strip(), "OK", r.stderr)
        r = subprocess.run(base + ["GET", "tls:k"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), "hello", r.stderr)
        # plain text on the TLS port is not answered as RESP
        s = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        s.sendall(b"PING\r\n")
        s.settimeout(5)
        try:
            got = s.recv(100)
        except OSError:
            got = b""
        s.close()
        self.assertNotEqual(got, b"+PONG\r\n")

    def test_redis_py_over_tls(self):
        r = redis.Redis(host="127.0.0.1", port=self.tls_port, ssl=True, ssl_ca_certs=self.cert,
                        ssl_cert_reqs="required", ssl_check_hostname=False)
        self.addCleanup(r.close)
        self.assertTrue(r.ping())
        r.hset("tls:h", mapping={"a": "1", "b": "2"})
        self.assertEqual(r.hgetall("tls:h"), {b"a": b"1", b"b": b"2"})
        self.assertEqual(self.srv.conn().cmd("HGET", "tls:h", "a"), b"1")


if __name__ == "__main__":
    main()
