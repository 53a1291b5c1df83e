"""Access control (Redis 6+'s ACLs): users, rules, the permission check,
AUTH and HELLO AUTH with users, the ACL log and the ACL file.

  * TestAgainstRedis: ACL SETUSER / GETUSER / LIST / USERS / WHOAMI /
    DELUSER / DRYRUN and their errors give byte-identical replies from
    engram and from a Redis 7.0 started in the same run, in RESP2 and RESP3
    (for rules whose description Redis 7.0 and 7.2+ write alike).
  * TestChecks (engram-only where Redis 7.0's texts differ: engram answers
    with Redis 7.2+'s NOPERM texts): commands, subcommands and categories,
    key patterns with %R~ / %W~, channels for PUBLISH / SUBSCRIBE /
    PSUBSCRIBE, MULTI, AUTH user pass, HELLO AUTH, requirepass as the
    default user's password, DELUSER closing its user's connections,
    CLIENT LIST user= and CLIENT KILL USER, ACL LOG grouping and RESET.
  * TestAclFile: aclfile loaded at start-up, ACL SAVE and ACL LOAD, a bad
    file refused with its line.
"""

import os
import shutil
import tempfile

from engram_test import (RespError, Server, ServerError, ServerTestCase, engram_only, main,
                         parse_info)

REDIS = []


def setUpModule():
    REDIS.append(Server(redis=True).start())


def tearDownModule():
    while REDIS:
        REDIS.pop().stop()


class TestAgainstRedis(ServerTestCase):
    @property
    def redis(self):
        return REDIS[0]

    def setUp(self):
        super().setUp()
        for srv in (self.server, self.redis):
            c = srv.conn()
            for u in c.cmd("ACL", "USERS"):
                if u != b"default":
                    c.cmd("ACL", "DELUSER", u)
            c.close()

    def same(self, *requests, resp=(2, 3)):
        for proto in resp:
            self.setUp()
            out = []
            for srv in (self.server, self.redis):
                c = srv.conn()
                if proto == 3:
                    c.cmd("HELLO", "3")
                out.append([c.raw_cmd(*req) for req in requests])
                c.close()
            for req, a, b in zip(requests, out[0], out[1]):
                self.assertEqual(a, b, "RESP%d: reply to %r differs from Redis's" % (proto, req))

    def test_users_and_descriptions(self):
        self.same(("ACL", "SETUSER", "alice", "on", ">pass", "~cached:*", "+get", "&chan*"),
                  ("ACL", "GETUSER", "alice"),
                  ("ACL", "SETUSER", "bob"),
                  ("ACL", "GETUSER", "bob"),
                  ("ACL", "SETUSER", "carol", "on", "nopass", "allkeys", "allchannels",
                   "+@all"),
                  ("ACL", "SETUSER", "dan", "on", "#" + "ab" * 32, "%R~r:*", "%W~w:*",
                   "+get", "+set", "-set"),
                  ("ACL", "SETUSER", "eve", ">a", ">b", "<a", "~x", "resetkeys", "~y"),
                  ("ACL", "GETUSER", "dan"),
                  ("ACL", "GETUSER", "eve"),
                  ("ACL", "GETUSER", "nobody"),
                  ("ACL", "LIST"),
                  ("ACL", "USERS"),
                  ("ACL", "WHOAMI"),
                  ("ACL", "DELUSER", "bob", "nobody"),
                  ("ACL", "USERS"),
                  ("ACL", "SETUSER", "alice", "reset"),
                  ("ACL", "GETUSER", "alice"))

    def test_errors(self):
        self.same(("ACL", "SETUSER", "x", "+@bogus"),
                  ("ACL", "SETUSER", "x", "+nosuchcommand"),
                  ("ACL", "SETUSER", "x", "bogus"),
                  ("ACL", "SETUSER", "x", "#abc"),
                  ("ACL", "SETUSER", "x", "<nopw"),
                  ("ACL", "SETUSER", "x", "allkeys", "~foo"),
                  ("ACL", "SETUSER", "x", "allchannels", "&foo"),
                  ("ACL", "SETUSER", "x y"),
                  ("ACL", "USERS"),                      # nothing was created
                  ("ACL", "DELUSER", "default"),
                  ("ACL", "GENPASS", "0"),
                  ("ACL", "GENPASS", "5000"),
                  ("ACL", "LOG", "-1"),
                  ("ACL", "LOG", "abc"),
                  ("ACL", "SETUSER", "s", "skip-sanitize-payload", "nopass", "on"),
                  ("ACL", "LIST"),
                  ("ACL", "GETUSER", "s"),
                  ("ACL", "SAVE"),
                  ("ACL", "LOAD"),
                  ("ACL", "CAT", "nosuch"),
                  ("ACL", "NOSUCH"),
                  ("ACL", "DRYRUN", "nobody", "get", "x"),
                  ("ACL", "DRYRUN", "default", "nosuchcmd"))

    def test_dryrun(self):
        self.same(("ACL", "SETUSER", "alice", "on", ">pass", "~cached:*", "+get", "+config|get"),
                  ("ACL", "DRYRUN", "alice", "set", "k", "v"),
                  ("ACL", "DRYRUN", "alice", "get", "cached:1"),
                  ("ACL", "DRYRUN", "alice", "get", "other"),
                  ("ACL", "DRYRUN", "alice", "config", "get", "port"),
                  ("ACL", "DRYRUN", "alice", "config", "set", "port", "1"),
                  ("ACL", "DRYRUN", "alice", "get"))

    def test_genpass_lengths(self):
        c = self.conn()
        self.assertEqual(len(c.cmd("ACL", "GENPASS")), 64)
        self.assertEqual(len(c.cmd("ACL", "GENPASS", "64")), 16)
        self.assertEqual(len(c.cmd("ACL", "GENPASS", "5")), 2)
        self.assertNotEqual(c.cmd("ACL", "GENPASS"), c.cmd("ACL", "GENPASS"))


@engram_only
class TestChecks(ServerTestCase):
    def setUp(self):
        super().setUp()
        c = self.conn()
        for u in c.cmd("ACL", "USERS"):
            if u != b"default":
                c.cmd("ACL", "DELUSER", u)
        c.cmd("ACL", "LOG", "RESET")
        self.admin = c

    def login(self, user, pw="pw"):
        c = self.conn()
        self.assertEqual(c.cmd("AUTH", user, pw), "OK")
        return c

    def test_commands_and_categories(self):
        a = self.admin
        a.cmd("ACL", "SETUSER", "u", "on", ">pw", "allkeys", "+@read", "-hget", "+config|get")
        c = self.login("u")
        self.assertIsNone(c.cmd("GET", "k"))
        self.assert_error(c.cmd("SET", "k", "v"),
                          "NOPERM User u has no permissions to run the 'set' command")
        self.assert_error(c.cmd("HGET", "h", "f"),
                          "NOPERM User u has no permissions to run the 'hget' command")
        self.assertEqual(c.cmd("CONFIG", "GET", "port")[0], b"port")
        self.assert_error(c.cmd("CONFIG", "SET", "port", "1"),
                          "NOPERM User u has no permissions to run the 'config|set' command")
        self.assertEqual(c.cmd("ACL", "WHOAMI"), "NOPERM User u has no permissions to run the "
                         "'acl|whoami' command")
        # AUTH and HELLO are always allowed
        self.assertEqual(c.cmd("AUTH", "u", "pw"), "OK")
        # -@scripting and the other categories of Redis's types are known
        self.assertEqual(a.cmd("ACL", "SETUSER", "u", "-@scripting", "-@blocking", "-@list"), "OK")
        self.assertIn(b"scripting", a.cmd("ACL", "CAT"))
        self.assertIn(b"hset", a.cmd("ACL", "CAT", "hash"))
        self.assertIn(b"config|get", a.cmd("ACL", "CAT", "admin") + a.cmd("ACL", "CAT", "slow"))
        # the denial is logged
        log = a.cmd("ACL", "LOG")
        self.assertGreaterEqual(len(log), 3)
        e = {log[0][i]: log[0][i + 1] for i in range(0, len(log[0]), 2)}
        self.assertEqual(e[b"reason"], b"command")
        self.assertEqual(e[b"object"], b"acl|whoami")
        self.assertEqual(e[b"username"], b"u")
        self.assertEqual(e[b"context"], b"toplevel")
        self.assertIn(b"user=u", e[b"client-info"])

    def test_keys(self):
        a = self.admin
        a.cmd("SET", "r:1", "x")
        a.cmd("ACL", "SETUSER", "u", "on", ">pw", "+@all", "%R~r:*", "%W~w:*", "~rw:*")
        c = self.login("u")
        self.assertEqual(c.cmd("GET", "r:1"), b"x")
        self.assert_error(c.cmd("SET", "r:1", "y"), "NOPERM No permissions to access a key")
        self.assertEqual(c.cmd("SET", "w:1", "y"), "OK")
        self.assert_error(c.cmd("GET", "w:1"), "NOPERM No permissions to access a key")
        self.assertEqual(c.cmd("SET", "rw:1", "y"), "OK")
        self.assertEqual(c.cmd("GET", "rw:1"), b"y")
        self.assert_error(c.cmd("MGET", "rw:1", "other"), "NOPERM No permissions to access a key")
        self.assertEqual(c.cmd("PING"), "PONG")                  # no keys
        log = a.cmd("ACL", "LOG", "1")
        e = {log[0][i]: log[0][i + 1] for i in range(0, len(log[0]), 2)}
        self.assertEqual((e[b"reason"], e[b"object"]), (b"key", b"other"))
        # a denied command inside MULTI aborts the transaction
        self.assertEqual(c.cmd("MULTI"), "OK")
        self.assert_error(c.cmd("GET", "w:1"), "NOPERM No permissions to access a key")
        self.assertEqual(c.cmd("SET", "rw:2", "z"), "QUEUED")
        self.assert_error(c.cmd("EXEC"),
                          "EXECABORT Transaction discarded because of previous errors.")

    def test_key_pattern_kinds(self):
        # literal, prefix (final *) and general patterns are matched by
        # different code (acl.c key_ok); all must agree with glob semantics
        # (the same keys pass and fail in Redis 7.0: ACL DRYRUN u SET key v)
        a = self.admin
        a.cmd("ACL", "SETUSER", "u", "on", ">pw", "+@all", "~lit", "~pre:*", "~g?o[bx]*",
              "~esc\\*")
        c = self.login("u")
        for key in ("lit", "pre:", "pre:x", "pre:x:y", "gaob", "gzoxzz", "esc*"):
            self.assertEqual(c.cmd("SET", key, "v"), "OK", key)
        for key in ("li", "litt", "LIT", "pre", "prex", "Pre:x", "gob", "gaoc", "esc", "escx"):
            self.assert_error(c.cmd("SET", key, "v"), "NOPERM No permissions to access a key")

    def test_channels(self):
        a = self.admin
        a.cmd("ACL", "SETUSER", "u", "on", ">pw", "+@all", "allkeys", "&news.*")
        c = self.login("u")
        self.assertEqual(c.cmd("PUBLISH", "news.a", "m"), 0)
        self.assert_error(c.cmd("PUBLISH", "other", "m"), "NOPERM No permissions to access a channel")
        self.assert_error(c.cmd("PSUBSCRIBE", "news.a*"),
                          "NOPERM No permissions to access a channel")
        r = c.cmd("PSUBSCRIBE", "news.*")
        self.assertEqual(r[0], b"psubscribe")
        s = self.login("u")
        self.assert_error(s.cmd("SUBSCRIBE", "news.x", "secret"),
                          "NOPERM No permissions to access a channel")

    def test_auth_hello_and_requirepass(self):
        a = self.admin
        a.cmd("ACL", "SETUSER", "u", "on", ">pw", "+@all", "allkeys")
        c = self.conn()
        self.assert_error(c.cmd("AUTH", "u", "bad"),
                          "WRONGPASS invalid username-password pair or user is disabled.")
        self.assert_error(c.cmd("AUTH", "nobody", "pw"),
                          "WRONGPASS invalid username-password pair or user is disabled.")
        h = c.cmd("HELLO", "3", "AUTH", "u", "pw")
        self.assertEqual(h[b"proto"], 3)
        self.assertEqual(c.cmd("ACL", "WHOAMI"), b"u")
        a.cmd("ACL", "SETUSER", "u", "off")
        self.assert_error(self.conn().cmd("AUTH", "u", "pw"),
                          "WRONGPASS invalid username-password pair or user is disabled.")
        self.assert_error(a.cmd("AUTH", "pw"), "ERR AUTH <password> called without any password "
                          "configured for the default user. Are you sure your configuration is "
                          "correct?")
        # requirepass is the default user's password
        a.cmd("CONFIG", "SET", "requirepass", "secret")
        try:
            self.assertIn(b"#" + b"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
                          [x for x in a.cmd("ACL", "LIST") if x.startswith(b"user default ")][0])
            n = self.conn()
            self.assert_error(n.cmd("GET", "x"), "NOAUTH Authentication required.")
            self.assertEqual(n.cmd("AUTH", "secret"), "OK")
            self.assertEqual(n.cmd("ACL", "WHOAMI"), b"default")
            self.assertEqual(self.conn().cmd("AUTH", "default", "secret"), "OK")
        finally:
            a.cmd("CONFIG", "SET", "requirepass", "")
        self.assertIn(b"nopass", [x for x in a.cmd("ACL", "LIST")
                                  if x.startswith(b"user default ")][0])
        log = a.cmd("ACL", "LOG")
        reasons = [dict(zip(e[0::2], e[1::2]))[b"reason"] for e in log]
        self.assertIn(b"auth", reasons)

    def test_deluser_closes_and_client_commands(self):
        a = self.admin
        a.cmd("ACL", "SETUSER", "u", "on", ">pw", "+@all", "allkeys")
        c = self.login("u")
        self.assertIn(b"user=u", a.cmd("CLIENT", "LIST"))
        self.assert_error(a.cmd("CLIENT", "KILL", "USER", "nobody"), "ERR No such user 'nobody'")
        c2 = self.login("u")
        self.assertEqual(a.cmd("CLIENT", "KILL", "USER", "u"), 2)
        self.assert_closed(c2)
        c3 = self.login("u")
        self.assertEqual(a.cmd("ACL", "DELUSER", "u"), 1)
        self.assert_closed(c3)
        self.assertTrue(c.is_closed(2.0))

    def test_exec_checks_again(self):
        a = self.admin
        a.cmd("ACL", "SETUSER", "d", "on", ">pw", "+@all", "allkeys")
        a.cmd("SET", "secret", "x")
        c = self.login("d")
        self.assertEqual(c.cmd("MULTI"), "OK")
        self.assertEqual(c.cmd("GET", "secret"), "QUEUED")
        self.assertEqual(c.cmd("PING"), "QUEUED")
        a.cmd("ACL", "SETUSER", "d", "-get")
        r = c.cmd("EXEC")
        self.assert_error(r[0], "NOPERM ACLs rules changed between the moment the transaction "
                          "was accumulated and its execution")
        self.assertEqual(r[1], "PONG")

    def test_patterns_without_spaces(self):
        a = self.admin
        for rule in ("~a b", "&c d", "%R~x y"):
            self.assert_error(a.cmd("ACL", "SETUSER", "p", rule),
                              "ERR Error in ACL SETUSER modifier '%s': Syntax error" % rule)
        self.assertIsNone(a.cmd("ACL", "GETUSER", "p"))

    def test_log_grouping_and_reset(self):
        a = self.admin
        a.cmd("ACL", "SETUSER", "u", "on", ">pw", "-@all")
        c = self.login("u")
        for _ in range(3):
            c.cmd("GET", "k")
        log = a.cmd("ACL", "LOG")
        self.assertEqual(len(log), 1)
        e = dict(zip(log[0][0::2], log[0][1::2]))
        self.assertEqual(e[b"count"], 3)
        self.assertEqual(a.cmd("ACL", "LOG", "RESET"), "OK")
        self.assertEqual(a.cmd("ACL", "LOG"), [])
        a.cmd("CONFIG", "SET", "acllog-max-len", "2")
        try:
            for cmd in ("GET", "SET", "DEL", "INCR"):
                c.cmd(cmd, "k", *(["v"] if cmd == "SET" else []))
            self.assertEqual(len(a.cmd("ACL", "LOG")), 2)
        finally:
            a.cmd("CONFIG", "SET", "acllog-max-len", "128")


@engram_only
class TestAclFile(ServerTestCase):
    flush_between_tests = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="engram-acl-")
        cls.path = os.path.join(cls.tmp, "users.acl")
        with open(cls.path, "w") as f:
            f.write("# users\nuser alice on >pw ~a:* +get\n\nuser default on nopass ~* &* +@all\n")
        cls.server_flags = ("--aclfile", cls.path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_load_save_reload(self):
        c = self.conn()
        self.assertEqual(c.cmd("ACL", "USERS"), [b"alice", b"default"])
        self.assertEqual(self.conn().cmd("AUTH", "alice", "pw"), "OK")
        c.cmd("ACL", "SETUSER", "bob", "on", ">x", "+@read", "~*")
        self.assertEqual(c.cmd("ACL", "SAVE"), "OK")
        text = open(self.path).read()
        self.assertIn("user bob on #", text)
        self.assertIn("user alice on #", text)
        c.cmd("ACL", "DELUSER", "bob")
        self.assertEqual(c.cmd("ACL", "LOAD"), "OK")
        self.assertEqual(c.cmd("ACL", "USERS"), [b"alice", b"bob", b"default"])
        with open(self.path, "a") as f:
            f.write("user broken on +nosuch\n")
        e = c.cmd("ACL", "LOAD")
        self.assertIsInstance(e, RespError)
        self.assertIn(":4:", str(e))
        self.assertEqual(c.cmd("ACL", "USERS"), [b"alice", b"bob", b"default"])   # unchanged

    def test_load_in_multi_dropping_own_user(self):
        c = self.conn()
        c.cmd("ACL", "SETUSER", "carol", "on", ">pw", "+@all", "allkeys", "allchannels")
        with open(self.path) as f:
            saved = f.read()
        try:
            with open(self.path, "w") as f:
                f.write("user default on nopass ~* &* +@all\n")
            u = self.conn()
            self.assertEqual(u.cmd("AUTH", "carol", "pw"), "OK")
            self.assertEqual(u.cmd("MULTI"), "OK")
            u.cmd("ACL", "LOAD")
            u.cmd("ACL", "WHOAMI")
            u.cmd("CLIENT", "LIST")
            r = u.cmd("EXEC")
            self.assertEqual(r[0], "OK")
            self.assertTrue(u.is_closed(5.0))
            self.assertEqual(self.conn().cmd("ACL", "USERS"), [b"default"])
        finally:
            with open(self.path, "w") as f:
                f.write(saved)
            self.conn().cmd("ACL", "LOAD")

    def test_long_lines(self):
        c = self.conn()
        pats = ["~k%04d:*" % i for i in range(1200)]
        self.assertEqual(c.cmd("ACL", "SETUSER", "wide", "on", ">pw", "+get", *pats), "OK")
        self.assertEqual(c.cmd("ACL", "SAVE"), "OK")
        self.assertGreater(max(len(l) for l in open(self.path)), 8192)
        self.assertEqual(c.cmd("ACL", "LOAD"), "OK")
        g = c.cmd("ACL", "GETUSER", "wide")
        self.assertIn(b"~k1199:*", dict(zip(g[0::2], g[1::2]))[b"keys"])
        c.cmd("ACL", "DELUSER", "wide")
        c.cmd("ACL", "SAVE")

    def test_bad_file_refused_at_start(self):
        bad = os.path.join(self.tmp, "bad.acl")
        with open(bad, "w") as f:
            f.write("user x on +@nosuchcategory\n")
        with self.assertRaises(ServerError) as cm:
            Server(["--aclfile", bad]).start()
        self.assertIn("bad.acl:1", str(cm.exception))


if __name__ == "__main__":
    main()
