"""Server administration: INFO, COMMAND, CLIENT, SELECT, AUTH, QUIT, TIME,
CONFIG, DEBUG SLEEP, SHUTDOWN."""

import fnmatch
import os
import re
import time

from engram_test import (IS_REDIS, RespError, Server, ServerTestCase, encode,
                         engram_only, main, wait_until)

NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


def parse_info(text):
    """INFO text -> {section_lowercase: {field: value}} (values as strings)."""
    if isinstance(text, bytes):
        text = text.decode()
    sections, cur = {}, None
    for line in text.split("\r\n"):
        if not line:
            continue
        if line.startswith("# "):
            cur = sections.setdefault(line[2:].strip().lower(), {})
            continue
        assert cur is not None, "field before any section header: %r" % line
        k, sep, v = line.partition(":")
        assert sep, "INFO line without ':': %r" % line
        cur[k] = v
    return sections


class TestInfo(ServerTestCase):
    def info(self, c, *section):
        raw = c.cmd("INFO", *section)
        self.assertIsInstance(raw, bytes, raw)
        self.assertTrue(raw.endswith(b"\r\n"), raw[-20:])
        return parse_info(raw)

    def test_default_sections_and_fields(self):
        c = self.conn()
        info = self.info(c)
        for s in ("server", "clients", "memory", "persistence", "stats", "keyspace"):
            self.assertIn(s, info, "INFO lacks section %s" % s)
        srv = info["server"]
        self.assertRegex(srv.get("redis_version", ""), r"^\d+\.\d+\.\d+$")
        self.assertEqual(srv.get("tcp_port"), str(self.port))
        self.assertRegex(srv.get("uptime_in_seconds", ""), r"^\d+$")
        self.assertRegex(srv.get("process_id", ""), r"^\d+$")
        self.assertEqual(int(srv["process_id"]), self.server.proc.pid)
        self.assertRegex(info["clients"].get("connected_clients", ""), r"^\d+$")
        self.assertRegex(info["memory"].get("used_memory", ""), r"^\d+$")
        self.assertGreater(int(info["memory"]["used_memory"]), 0)
        self.assertEqual(info["persistence"].get("loading"), "0")
        self.assertRegex(info["stats"].get("total_commands_processed", ""), r"^\d+$")
        self.assertRegex(info["stats"].get("total_connections_received", ""), r"^\d+$")

    def test_keyspace(self):
        c = self.conn()
        self.assertEqual(self.info(c, "keyspace"), {"keyspace": {}})
        self.assertEqual(c.cmd("MSET", "a", "1", "b", "2", "c", "3"), "OK")
        self.assertEqual(c.cmd("EXPIRE", "a", "100"), 1)
        self.assertEqual(c.cmd("PEXPIRE", "b", "200000"), 1)
        info = self.info(c, "keyspace")
        self.assertEqual(list(info), ["keyspace"])
        self.assertEqual(list(info["keyspace"]), ["db0"])
        m = re.fullmatch(r"keys=(\d+),expires=(\d+),avg_ttl=(\d+)", info["keyspace"]["db0"])
        self.assertIsNotNone(m, info["keyspace"]["db0"])
        self.assertEqual((m.group(1), m.group(2)), ("3", "2"))
        raw = c.cmd("INFO", "KEYSPACE")
        self.assertTrue(raw.startswith(b"# Keyspace\r\ndb0:keys=3,expires=2,avg_ttl="), raw)

    def test_single_and_multiple_sections(self):
        c = self.conn()
        self.assertEqual(list(self.info(c, "server")), ["server"])
        self.assertEqual(list(self.info(c, "clients")), ["clients"])
        self.assertEqual(sorted(self.info(c, "server", "stats")), ["server", "stats"])
        self.assertEqual(c.cmd("INFO", "nosuchsection"), b"")

    def test_connected_clients(self):
        c = self.conn()
        extra = [self.conn() for _ in range(3)]
        for e in extra:
            self.assertEqual(e.cmd("PING"), "PONG")
        ok = wait_until(lambda: self.info(c, "clients")["clients"]["connected_clients"] == "4", 3)
        self.assertTrue(ok, self.info(c, "clients"))
        for e in extra:
            e.close()
        ok = wait_until(lambda: self.info(c, "clients")["clients"]["connected_clients"] == "1", 3)
        self.assertTrue(ok, self.info(c, "clients"))

    def test_uptime_advances(self):
        c = self.conn()
        u0 = int(self.info(c, "server")["server"]["uptime_in_seconds"])
        time.sleep(1.1)
        u1 = int(self.info(c, "server")["server"]["uptime_in_seconds"])
        self.assertGreaterEqual(u1, u0 + 1)

    def test_config_resetstat(self):
        c = self.conn()
        for _ in range(50):
            c.cmd("PING")
        before = int(self.info(c, "stats")["stats"]["total_commands_processed"])
        self.assertGreaterEqual(before, 50)
        self.assertEqual(c.cmd("CONFIG", "RESETSTAT"), "OK")
        after = int(self.info(c, "stats")["stats"]["total_commands_processed"])
        self.assertLessEqual(after, 2)


class TestCommand(ServerTestCase):
    def test_count_and_full_list(self):
        c = self.conn()
        n = c.cmd("COMMAND", "COUNT")
        self.assertIsInstance(n, int)
        self.assertGreater(n, 30)
        full = c.cmd("COMMAND")
        self.assertIsInstance(full, list)
        self.assertEqual(len(full), n)
        names = {e[0] for e in full}
        for name in (b"get", b"set", b"ping", b"multi", b"exec", b"info", b"config", b"client"):
            self.assertIn(name, names)

    def test_info_get(self):
        c = self.conn()
        reply = c.cmd("COMMAND", "INFO", "get", "nosuchcmd", "SET")
        self.assertEqual(len(reply), 3)
        get, missing, set_ = reply
        self.assertIsNone(missing)
        self.assertGreaterEqual(len(get), 6)
        self.assertEqual(get[0], b"get")
        self.assertEqual(get[1], 2)
        self.assertIsInstance(get[2], list)
        self.assertIn("readonly", get[2])
        self.assertEqual(get[3:6], [1, 1, 1])
        self.assertEqual(set_[0], b"set")
        self.assertEqual(set_[1], -3)
        self.assertIn("write", set_[2])
        self.assertEqual(set_[3:6], [1, 1, 1])
        mset = c.cmd("COMMAND", "INFO", "mset")[0]
        self.assertEqual(mset[1], -3)
        self.assertEqual(mset[3:6], [1, -1, 2])

    def test_list(self):
        c = self.conn()
        names = c.cmd("COMMAND", "LIST")
        self.assertIsInstance(names, list)
        for name in (b"get", b"set", b"ping", b"hello", b"scan"):
            self.assertIn(name, names)

    def test_docs_get(self):
        c = self.conn()
        reply = c.cmd("COMMAND", "DOCS", "get")
        self.assertIsInstance(reply, list)
        self.assertEqual(len(reply), 2)
        self.assertEqual(reply[0], b"get")
        doc = reply[1]
        self.assertIsInstance(doc, list)
        self.assertEqual(len(doc) % 2, 0)
        fields = {doc[i]: doc[i + 1] for i in range(0, len(doc), 2)}
        self.assertIn(b"summary", fields)
        self.assertIsInstance(fields[b"summary"], bytes)
        self.assertTrue(fields[b"summary"])

    def test_unknown_subcommand(self):
        c = self.conn()
        v = c.cmd("COMMAND", "FOO")
        self.assertIsInstance(v, RespError)
        self.assertTrue(str(v).startswith("ERR unknown subcommand 'FOO'"), v)


class TestClient(ServerTestCase):
    def test_id_setname_getname(self):
        c = self.conn()
        cid = c.cmd("CLIENT", "ID")
        self.assertIsInstance(cid, int)
        c2 = self.conn()
        self.assertGreater(c2.cmd("CLIENT", "ID"), cid)
        self.assert_reply(encode("CLIENT", "GETNAME"), b"$-1\r\n", conn=c)
        self.assert_reply(encode("CLIENT", "SETNAME", "worker-1"), b"+OK\r\n", conn=c)
        self.assert_reply(encode("CLIENT", "GETNAME"), b"$8\r\nworker-1\r\n", conn=c)
        self.assert_reply(encode("CLIENT", "SETNAME", "bad name"),
                          b"-ERR Client names cannot contain spaces, newlines or special "
                          b"characters.\r\n", conn=c)
        self.assert_reply(encode("CLIENT", "SETNAME", ""), b"+OK\r\n", conn=c)
        self.assert_reply(encode("CLIENT", "GETNAME"), b"$-1\r\n", conn=c)

    def client_list(self, c):
        raw = c.cmd("CLIENT", "LIST")
        self.assertIsInstance(raw, bytes)
        self.assertTrue(raw.endswith(b"\n"))
        out = []
        for line in raw.decode().splitlines():
            fields = dict(kv.split("=", 1) for kv in line.split(" "))
            out.append(fields)
        return out

    def test_list(self):
        c, other = self.conn(), self.conn()
        other.cmd("CLIENT", "SETNAME", "other")
        cid, oid = c.cmd("CLIENT", "ID"), other.cmd("CLIENT", "ID")
        clients = self.client_list(c)
        by_id = {int(f["id"]): f for f in clients}
        self.assertIn(cid, by_id)
        self.assertIn(oid, by_id)
        self.assertEqual(by_id[oid]["name"], "other")
        self.assertEqual(by_id[cid]["name"], "")
        me = by_id[cid]
        for field in ("addr", "laddr", "fd", "age", "idle", "flags", "db", "cmd", "resp"):
            self.assertIn(field, me)
        self.assertEqual(me["addr"], "127.0.0.1:%d" % c.sock.getsockname()[1])
        self.assertEqual(me["laddr"], "127.0.0.1:%d" % self.port)
        self.assertEqual(me["cmd"], "client|list")
        self.assertEqual(me["db"], "0")
        self.assertEqual(me["resp"], "2")

    def test_kill_by_id(self):
        c, victim = self.conn(), self.conn()
        vid = victim.cmd("CLIENT", "ID")
        self.assertEqual(c.cmd("CLIENT", "KILL", "ID", str(vid)), 1)
        self.assert_closed(victim)
        self.assertEqual(c.cmd("CLIENT", "KILL", "ID", str(vid)), 0)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_kill_by_addr(self):
        c, victim = self.conn(), self.conn()
        self.assertEqual(victim.cmd("PING"), "PONG")
        addr = "127.0.0.1:%d" % victim.sock.getsockname()[1]
        self.assertEqual(c.cmd("CLIENT", "KILL", "ADDR", addr), 1)
        self.assert_closed(victim)
        self.assertEqual(c.cmd("CLIENT", "KILL", "ADDR", addr), 0)

    def test_kill_old_form(self):
        c, victim = self.conn(), self.conn()
        self.assertEqual(victim.cmd("PING"), "PONG")
        addr = "127.0.0.1:%d" % victim.sock.getsockname()[1]
        self.assertEqual(c.cmd("CLIENT", "KILL", addr), "OK")
        self.assert_closed(victim)
        self.assert_error(c.cmd("CLIENT", "KILL", addr), "ERR No such client")

    def test_kill_self(self):
        c = self.conn()
        cid = c.cmd("CLIENT", "ID")
        # the filter form skips the caller unless SKIPME no
        self.assert_reply(encode("CLIENT", "KILL", "ID", str(cid)), b":0\r\n", conn=c)
        self.assert_reply(encode("CLIENT", "KILL", "ID", str(cid), "SKIPME", "no"), b":1\r\n", conn=c)
        self.assert_closed(c)

    @engram_only
    def test_setinfo(self):
        # CLIENT SETINFO is Redis 7.2 (redis-py >= 5 sends it on connect);
        # the Redis 7.0 we validate against lacks it.
        c = self.conn()
        self.assert_reply(encode("CLIENT", "SETINFO", "lib-name", "redis-py"), b"+OK\r\n", conn=c)
        self.assert_reply(encode("CLIENT", "SETINFO", "LIB-VER", "5.0.1"), b"+OK\r\n", conn=c)
        me = [f for f in self.client_list(c) if int(f["id"]) == c.cmd("CLIENT", "ID")][0]
        self.assertEqual(me.get("lib-name"), "redis-py")
        self.assertEqual(me.get("lib-ver"), "5.0.1")
        v = c.cmd("CLIENT", "SETINFO", "nosuch", "x")
        self.assertIsInstance(v, RespError)


class TestSelectQuitTimeDebug(ServerTestCase):
    def test_select(self):
        c = self.conn()
        self.assert_reply(b"SELECT 0\r\n", b"+OK\r\n", conn=c)
        self.assert_reply(b"SELECT 16\r\n", b"-ERR DB index is out of range\r\n", conn=c)
        self.assert_reply(b"SELECT -1\r\n", b"-ERR DB index is out of range\r\n", conn=c)
        self.assert_reply(b"SELECT abc\r\n", b"-ERR value is not an integer or out of range\r\n",
                          conn=c)
        self.assert_reply(b"SET a 1\r\nGET a\r\n", b"+OK\r\n$1\r\n1\r\n", conn=c)

    def test_quit(self):
        c = self.conn()
        self.assert_reply(b"QUIT\r\n", b"+OK\r\n", conn=c)
        self.assert_closed(c)
        self.assertEqual(bytes(c.buf), b"")

    def test_quit_discards_pipelined_rest(self):
        c = self.conn()
        self.assert_reply(b"PING\r\nQUIT\r\nSET after quit\r\n", b"+PONG\r\n+OK\r\n", conn=c)
        self.assert_closed(c)
        self.assertEqual(bytes(c.buf), b"")
        self.assertEqual(self.conn().cmd("EXISTS", "after"), 0)

    def test_time(self):
        c = self.conn()
        t = c.cmd("TIME")
        now = time.time()
        self.assertEqual(len(t), 2)
        self.assertTrue(all(isinstance(x, bytes) for x in t))
        secs, usecs = int(t[0]), int(t[1])
        self.assertLess(abs(secs + usecs / 1e6 - now), 5)
        self.assertTrue(0 <= usecs < 1000000)

    def test_debug_sleep(self):
        c = self.conn()
        self.assert_reply(b"DEBUG SLEEP 0\r\n", b"+OK\r\n", conn=c)
        t0 = time.monotonic()
        self.assert_reply(b"DEBUG SLEEP 0.3\r\n", b"+OK\r\n", conn=c)
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)


class TestAuthNoPassword(ServerTestCase):
    def test_auth_without_password_configured(self):
        self.assert_reply(b"AUTH foo\r\n",
                          b"-ERR AUTH <password> called without any password configured for the "
                          b"default user. Are you sure your configuration is correct?\r\n")

    def test_requirepass_set_at_runtime(self):
        c = self.conn()
        try:
            self.assertEqual(c.cmd("CONFIG", "SET", "requirepass", "rt"), "OK")
            self.assertEqual(c.cmd("PING"), "PONG", "existing clients stay authenticated")
            n = self.conn()
            self.assert_reply(b"PING\r\n", NOAUTH, conn=n)
            self.assert_reply(b"AUTH rt\r\nPING\r\n", b"+OK\r\n+PONG\r\n", conn=n)
        finally:
            self.assertEqual(c.cmd("CONFIG", "SET", "requirepass", ""), "OK")
        self.assert_reply(b"PING\r\n", b"+PONG\r\n")


class TestAuth(ServerTestCase):
    server_flags = ("--requirepass", "s3cret")
    password = "s3cret"

    def test_noauth(self):
        c = self.conn()
        for req in (b"GET a\r\n", b"PING\r\n", encode("SET", "a", "1"), b"CONFIG GET port\r\n",
                    b"MULTI\r\n", b"INFO\r\n"):
            self.assert_reply(req, NOAUTH, conn=c)
        # as in Redis, an unknown command is reported as such even before AUTH
        self.assert_reply(b"foo\r\n", b"-ERR unknown command 'foo', with args beginning with: \r\n",
                          conn=c)
        self.assert_reply(b"AUTH s3cret\r\nGET a\r\n", b"+OK\r\n$-1\r\n", conn=c)

    def test_wrong_password(self):
        c = self.conn()
        self.assert_reply(b"AUTH wrong\r\n", WRONGPASS, conn=c)
        self.assert_reply(b"AUTH default wrong\r\n", WRONGPASS, conn=c)
        self.assert_reply(b"GET a\r\n", NOAUTH, conn=c)
        self.assert_reply(b"AUTH default s3cret\r\nPING\r\n", b"+OK\r\n+PONG\r\n", conn=c)

    def test_auth_syntax(self):
        c = self.conn()
        self.assert_reply(b"AUTH a b c\r\n", b"-ERR syntax error\r\n", conn=c)
        self.assert_reply(b"AUTH\r\n", b"-ERR wrong number of arguments for 'auth' command\r\n",
                          conn=c)

    def test_quit_without_auth(self):
        c = self.conn()
        self.assert_reply(b"QUIT\r\n", b"+OK\r\n", conn=c)
        self.assert_closed(c)

    def test_redis_py_with_password(self):
        import redis
        with self.assertRaises(redis.AuthenticationError):
            self.client().ping()
        r = self.client(password="s3cret")
        self.assertTrue(r.ping())


class TestConfig(ServerTestCase):
    def pairs(self, reply):
        self.assertIsInstance(reply, list)
        self.assertEqual(len(reply) % 2, 0)
        return {reply[i].decode(): reply[i + 1].decode() for i in range(0, len(reply), 2)}

    def test_get(self):
        c = self.conn()
        self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "port")), {"port": str(self.port)})
        self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "maxclients")), {"maxclients": "10000"})
        self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "timeout")), {"timeout": "0"})
        self.assert_reply(encode("CONFIG", "GET", "nosuchsetting"), b"*0\r\n", conn=c)
        both = self.pairs(c.cmd("CONFIG", "GET", "port", "timeout"))
        self.assertEqual(both, {"port": str(self.port), "timeout": "0"})
        upper = self.pairs(c.cmd("CONFIG", "GET", "MAXCLIENTS"))
        self.assertEqual([(k.lower(), v) for k, v in upper.items()], [("maxclients", "10000")])

    def test_get_glob(self):
        c = self.conn()
        got = self.pairs(c.cmd("CONFIG", "GET", "max*"))
        self.assertIn("maxclients", got)
        for name in got:
            self.assertTrue(fnmatch.fnmatchcase(name, "max*"), name)
        everything = self.pairs(c.cmd("CONFIG", "GET", "*"))
        for name in ("port", "bind", "timeout", "maxclients", "requirepass", "proto-max-bulk-len",
                     "client-query-buffer-limit", "client-output-buffer-limit", "hz",
                     "tcp-keepalive", "databases"):
            self.assertIn(name, everything)
        self.assertEqual(everything["proto-max-bulk-len"], "536870912")
        self.assertEqual(everything["databases"], "16")
        self.assertTrue(everything["client-output-buffer-limit"].startswith("normal 0 0 0"),
                        everything["client-output-buffer-limit"])

    def test_set_live_settings(self):
        c = self.conn()
        try:
            self.assertEqual(c.cmd("CONFIG", "SET", "timeout", "5"), "OK")
            self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "timeout")), {"timeout": "5"})
            self.assertEqual(c.cmd("CONFIG", "SET", "maxclients", "50"), "OK")
            self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "maxclients")), {"maxclients": "50"})
            self.assertEqual(c.cmd("CONFIG", "SET", "timeout", "7", "maxclients", "60"), "OK")
            self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "timeout", "maxclients")),
                             {"timeout": "7", "maxclients": "60"})
            self.assertEqual(c.cmd("CONFIG", "SET", "proto-max-bulk-len", "2mb"), "OK")
            self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "proto-max-bulk-len")),
                             {"proto-max-bulk-len": "2097152"})
        finally:
            c.cmd("CONFIG", "SET", "timeout", "0", "maxclients", "10000",
                  "proto-max-bulk-len", "512mb")

    def test_set_errors(self):
        c = self.conn()
        self.assert_error(c.cmd("CONFIG", "SET", "databases", "4"),
                          "ERR CONFIG SET failed (possibly related to argument 'databases') - "
                          "can't set immutable config")
        self.assert_error(c.cmd("CONFIG", "SET", "nosuch", "3"),
                          "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
        self.assert_error(c.cmd("CONFIG", "SET", "maxclients", "abc"),
                          "ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
                          "argument couldn't be parsed into an integer")
        self.assert_error(c.cmd("CONFIG", "SET", "timeout"),
                          "ERR wrong number of arguments for 'config|set' command")
        # a failed multi-setting CONFIG SET changes nothing
        v = c.cmd("CONFIG", "SET", "timeout", "9", "maxclients", "abc")
        self.assertIsInstance(v, RespError)
        self.assertEqual(self.pairs(c.cmd("CONFIG", "GET", "timeout")), {"timeout": "0"})

    def test_rewrite_without_file(self):
        c = self.conn()
        self.assert_error(c.cmd("CONFIG", "REWRITE"), "ERR The server is running without a config file")


class TestConfigRewrite(ServerTestCase):
    server_config = "# engram test config\ntimeout 0\nmaxclients 100\n"

    def test_rewrite(self):
        c = self.conn()
        self.assertEqual(c.cmd("CONFIG", "GET", "maxclients"), [b"maxclients", b"100"])
        self.assertEqual(c.cmd("CONFIG", "SET", "timeout", "123"), "OK")
        self.assertEqual(c.cmd("CONFIG", "REWRITE"), "OK")
        with open(self.server.config_path) as f:
            text = f.read()
        lines = text.splitlines()
        self.assertIn("timeout 123", lines)
        self.assertIn("maxclients 100", lines)
        self.assertNotIn("timeout 0", lines)
        self.assertIn("# engram test config", lines)
        self.assertEqual(c.cmd("CONFIG", "SET", "timeout", "0"), "OK")
        self.assertEqual(c.cmd("CONFIG", "REWRITE"), "OK")
        with open(self.server.config_path) as f:
            lines = f.read().splitlines()
        self.assertNotIn("timeout 123", lines)


@engram_only
class TestDefaults(ServerTestCase):
    flush_between_tests = False

    def test_default_port_6380(self):
        import socket
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 6380))
            except OSError:
                self.skipTest("port 6380 is busy on this machine")
        srv = Server(port=False).start()
        try:
            c = srv.conn()
            self.assertEqual(c.cmd("PING"), "PONG")
            self.assertEqual(c.cmd("CONFIG", "GET", "port"), [b"port", b"6380"])
            c.close()
            srv.stop()
        finally:
            srv.kill()
            srv.cleanup()


class TestShutdown(ServerTestCase):
    flush_between_tests = False

    def test_shutdown(self):
        srv = Server().start()
        try:
            c = srv.conn()
            self.assertEqual(c.cmd("SET", "a", "1"), "OK")
            other = srv.conn()
            self.assertEqual(other.cmd("PING"), "PONG")
            c.send(b"SHUTDOWN\r\n")
            self.assertTrue(c.is_closed(10), "SHUTDOWN did not close the connection")
            self.assertEqual(bytes(c.buf), b"", "SHUTDOWN replied before exiting")
            self.assertTrue(other.is_closed(10), "other clients not closed on SHUTDOWN")
            c.close()
            other.close()
            self.assertEqual(srv.wait_exit(), 0)
            srv.check_sanitizer()
        finally:
            srv.kill()
            srv.cleanup()


if __name__ == "__main__":
    main()
