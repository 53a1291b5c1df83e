"""Signals: SIGTERM and SIGINT shut down cleanly (exit 0, clients see the
close), SIGPIPE from a vanished reader does not kill the server.

These are about engram's process behaviour; real Redis behaves the same
way, so they run against both targets."""

import signal
import socket
import struct
import time

from engram_test import SANITIZE, Server, ServerTestCase, encode, main


class TestShutdownSignals(ServerTestCase):
    flush_between_tests = False

    def check_clean_shutdown(self, sig):
        srv = Server().start()
        conns = []
        try:
            idle = srv.conn()
            self.assertEqual(idle.cmd("PING"), "PONG")
            in_multi = srv.conn()
            self.assertEqual(in_multi.cmd("MULTI"), "OK")
            self.assertEqual(in_multi.cmd("SET", "a", "1"), "QUEUED")
            partial = srv.conn()
            partial.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")   # half a request
            watcher = srv.conn()
            self.assertEqual(watcher.cmd("WATCH", "a"), "OK")
            conns = [idle, in_multi, partial, watcher]
            time.sleep(0.1)
            srv.send_signal(sig)
            for i, c in enumerate(conns):
                self.assertTrue(c.is_closed(10), "client %d not closed after %s" % (i, sig.name))
            rc = srv.wait_exit()
            srv._close_logs()
            self.assertEqual(rc, 0, "exit status after %s\nstderr:\n%s" % (sig.name, srv.stderr()))
            srv.check_sanitizer()
            # the port is free again: a new server can bind it at once
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", srv.port))
        finally:
            for c in conns:
                c.close()
            srv.kill()
            srv.cleanup()

    def test_sigterm_with_clients(self):
        self.check_clean_shutdown(signal.SIGTERM)

    def test_sigint_with_clients(self):
        self.check_clean_shutdown(signal.SIGINT)

    def test_sigterm_idle(self):
        srv = Server().start()
        srv.stop(signal.SIGTERM)   # asserts exit 0 and no sanitizer report

    def test_sigterm_while_writing_big_reply(self):
        srv = Server().start()
        try:
            c = srv.conn()
            size = (4 if SANITIZE else 32) * 1024 * 1024
            self.assertEqual(c.cmd("SET", "big", b"x" * size), "OK")
            reader = srv.conn(rcvbuf=32 * 1024)
            reader.send(encode("GET", "big") * 4)   # never read: the server is stuck writing
            time.sleep(0.3)
            srv.stop(signal.SIGTERM)
            c.close()
            reader.close()
        finally:
            srv.kill()
            srv.cleanup()


class TestSigpipe(ServerTestCase):
    def test_reader_vanishes_during_big_reply(self):
        c = self.conn()
        size = (2 if SANITIZE else 8) * 1024 * 1024
        self.assertEqual(c.cmd("SET", "big", b"y" * size), "OK")
        for _ in range(5):
            v = self.server.conn(rcvbuf=16 * 1024)
            v.send(encode("GET", "big") * 8)
            time.sleep(0.05)
            # RST instead of FIN: the server's next write gets EPIPE/ECONNRESET
            v.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            v.close()
        for _ in range(5):
            v = self.server.conn(rcvbuf=16 * 1024)
            v.send(encode("GET", "big") * 8)
            v.sock.recv(1000)
            v.close()   # plain close with unread data
        time.sleep(0.3)
        self.assertTrue(self.server.alive(), "server died (SIGPIPE?)")
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertEqual(self.conn().cmd("STRLEN", "big"), size)

    def test_client_closes_with_pipelined_requests_pending(self):
        for _ in range(20):
            v = self.server.conn()
            v.send(b"PING\r\n" * 5000)
            v.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            v.close()
        self.assertEqual(self.conn().cmd("PING"), "PONG")


if __name__ == "__main__":
    main()
