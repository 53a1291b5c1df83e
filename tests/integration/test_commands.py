"""The command table and dispatch, judged against a real Redis 7.0 started in
the same run (Debian's redis-server):

  * COMMAND INFO: for every command and subcommand both servers have, the
    arity, flags, key positions, ACL categories and tips are Redis's;
  * the same requests give byte-identical replies on both: COMMAND GETKEYS /
    GETKEYSANDFLAGS and their errors, unknown commands and subcommands,
    arity errors, and what MULTI refuses (SAVE, SHUTDOWN: "Command not
    allowed inside a transaction", then EXECABORT) or answers (nested
    MULTI, WATCH inside MULTI);
  * COMMAND LIST lists subcommands, INFO commandstats and CLIENT LIST name
    them "container|sub".

engram-only: MULTI/SHUTDOWN/EXEC leaves the server up; VSAVE is refused
inside MULTI as SAVE is; a request that is not deferred (a refusal
included) waits behind the client's searches in flight and answers in
request order.
"""

import struct

from engram_test import (BesideRedisTestCase, RespError, ServerTestCase, encode, engram_only, main,
                         parse_info)


def as_set(v):
    return set(x.decode() if isinstance(x, bytes) else x for x in v)


def info_fields(entry):
    """The comparable part of one COMMAND INFO entry."""
    name, arity, flags, first, last, step, cats, tips = entry[:8]
    return {"arity": arity, "flags": as_set(flags), "keys": (first, last, step),
            "acl": as_set(cats), "tips": as_set(tips)}


class TestAgainstRedis(BesideRedisTestCase):
    """engram (the class's server) next to a Redis 7.0 of our own."""

    def both(self, *requests):
        """Send the same requests to both servers on fresh connections; return
        (engram's raw replies, Redis's raw replies), one per request."""
        out = []
        for srv in (self.server, self.redis):
            c = srv.conn()
            replies = []
            for req in requests:
                replies.append(c.raw_cmd(*req))
            c.close()
            out.append(replies)
        return out

    def assert_same(self, *requests):
        mine, theirs = self.both(*requests)
        for req, a, b in zip(requests, mine, theirs):
            self.assertEqual(a, b, "reply to %r differs from Redis's" % (req,))

    def test_command_info_matches_redis(self):
        c, r = self.conn(), self.redis.conn()
        names = [n.decode() for n in c.cmd("COMMAND", "LIST")]
        theirs = {}
        for entry in r.cmd("COMMAND", "INFO", *names):
            if entry is not None:
                theirs[entry[0].decode()] = entry
        self.assertGreater(len(theirs), 60, "too few commands in common to mean anything")
        compared = 0
        for entry in c.cmd("COMMAND", "INFO", *theirs):
            name = entry[0].decode()
            self.assertEqual(info_fields(entry), info_fields(theirs[name]), name)
            compared += 1
            # subcommands both have (CLIENT SETINFO and NO-TOUCH came in 7.2)
            their_subs = {s[0].decode(): s for s in theirs[name][9]}
            for sub in entry[9]:
                sname = sub[0].decode()
                if sname in their_subs:
                    self.assertEqual(info_fields(sub), info_fields(their_subs[sname]), sname)
                    compared += 1
        self.assertGreater(compared, 80)

    def test_key_specs_find_the_same_keys(self):
        """Our one range spec per command finds what Redis's specs find."""
        c, r = self.conn(), self.redis.conn()
        for cmd in (("GET", "a"), ("MSET", "a", "1", "b", "2", "c", "3"), ("RENAME", "a", "b"),
                    ("DEL", "a", "b", "c"), ("WATCH", "x", "y"), ("COPY", "a", "b", "REPLACE"),
                    ("GETEX", "a", "PERSIST")):
            self.assertEqual(c.cmd("COMMAND", "GETKEYS", *cmd), r.cmd("COMMAND", "GETKEYS", *cmd),
                             cmd)
            spec = c.cmd("COMMAND", "INFO", cmd[0])[0][8]
            self.assertEqual(len(spec), 1)

    def test_getkeys_and_errors(self):
        self.assert_same(
            ("COMMAND", "GETKEYS"),
            ("COMMAND", "GETKEYS", "GET"),
            ("COMMAND", "GETKEYS", "FOO", "a"),
            ("COMMAND", "GETKEYS", "GET", "a", "b"),
            ("COMMAND", "GETKEYS", "PING", "x"),
            ("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"),
            ("COMMAND", "GETKEYS", "MSET", "a", "1", "b"),
            ("COMMAND", "GETKEYS", "MGET", "a", "b", "c"),
            ("COMMAND", "GETKEYS", "CONFIG", "GET", "x"),
            ("COMMAND", "GETKEYS", "CONFIG", "NOSUCH", "x"),
            ("COMMAND", "GETKEYSANDFLAGS", "GET", "a"),
            ("COMMAND", "GETKEYSANDFLAGS", "MGET", "a", "b"),
            ("COMMAND", "GETKEYSANDFLAGS", "FOO", "a"),
            ("COMMAND", "INFO", "nosuch", "get", "config|get", "config|nosuch"),
        )

    def test_unknown_commands_subcommands_and_arity(self):
        self.assert_same(
            ("NOSUCH",), ("NOSUCH", "a", "b"), ("nosuch", "x" * 200),
            ("CLIENT",), ("CLIENT", "FOO"), ("client", "foo", "bar"),
            ("CONFIG", "GET"), ("CONFIG", "SET", "a"), ("CONFIG", "FOO"),
            ("COMMAND", "FOO"), ("COMMAND", "COUNT", "x"),
            ("CLIENT", "KILL"), ("CLIENT", "ID", "x"),
            ("GET",), ("SET", "a"), ("PING", "a", "b"), ("ECHO",),
        )

    def test_multi_refuses_what_redis_refuses(self):
        self.assert_same(
            ("MULTI",), ("SET", "k", "1"), ("SAVE",), ("SHUTDOWN",), ("GET", "k"), ("EXEC",),
            ("GET", "k"),
            ("MULTI",), ("MULTI",), ("WATCH", "k"), ("SET", "k", "2"), ("EXEC",), ("GET", "k"),
            ("MULTI",), ("NOSUCH",), ("GET",), ("EXEC",),
            ("MULTI",), ("CONFIG", "NOSUCH"), ("DISCARD",),
        )
        self.assertTrue(self.server.alive())

    def test_list_names_subcommands(self):
        c, r = self.conn(), self.redis.conn()
        for pat in ("conf*", "config|*", "COMMAND|GET*"):
            mine = as_set(c.cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", pat))
            theirs = as_set(r.cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", pat))
            self.assertTrue(mine, pat)
            self.assertEqual(mine, theirs, pat)
        self.assertIn("config|get", as_set(c.cmd("COMMAND", "LIST")))
        trans = as_set(c.cmd("COMMAND", "LIST", "FILTERBY", "ACLCAT", "transaction"))
        self.assertEqual(trans, as_set(r.cmd("COMMAND", "LIST", "FILTERBY", "ACLCAT", "transaction")))

    def test_stats_and_client_list_name_subcommands(self):
        for srv in (self.server, self.redis):
            c = srv.conn()
            c.cmd("CONFIG", "RESETSTAT")
            c.cmd("CONFIG", "GET", "maxclients")
            line = c.cmd("CLIENT", "LIST").decode()
            self.assertIn("cmd=client|list", line)
            stats = parse_info(c.cmd("INFO", "commandstats"))
            self.assertIn("cmdstat_config|get", stats)
            self.assertTrue(stats["cmdstat_config|get"].startswith("calls=1,"))
            c.cmd("CONFIG", "NOSUCH")
            c.cmd("CONFIG", "GET")
            stats = parse_info(c.cmd("INFO", "commandstats"))
            self.assertIn("rejected_calls=1", stats["cmdstat_config|get"])

    def test_docs_name_subcommands(self):
        c = self.conn()
        docs = c.cmd("COMMAND", "DOCS", "config")
        self.assertEqual(docs[0], b"config")
        fields = dict(zip(docs[1][::2], docs[1][1::2]))
        subs = dict(zip(fields[b"subcommands"][::2], fields[b"subcommands"][1::2]))
        self.assertIn(b"config|get", subs)
        self.assertEqual(dict(zip(subs[b"config|get"][::2], subs[b"config|get"][1::2]))[b"group"],
                         b"server")


class TestDispatch(ServerTestCase):
    @engram_only
    def test_multi_shutdown_exec_keeps_the_server_up(self):
        c = self.conn()
        self.assertEqual(c.cmd("MULTI"), "OK")
        self.assertEqual(c.cmd("SHUTDOWN"), "ERR Command not allowed inside a transaction")
        self.assertEqual(c.cmd("EXEC"), "EXECABORT Transaction discarded because of previous errors.")
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertTrue(self.server.alive())

    @engram_only
    def test_vsave_refused_inside_multi(self):
        c = self.conn()
        self.assertEqual(c.cmd("MULTI"), "OK")
        self.assertEqual(c.cmd("VSAVE"), "ERR Command not allowed inside a transaction")
        self.assertEqual(c.cmd("DISCARD"), "OK")

    @engram_only
    def test_refusals_wait_behind_searches_in_flight(self):
        """A pipeline of searches, then requests that are not deferred
        (refused or not) and more searches: every reply in request order."""
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "ix", "4", "TYPE", "flat", "METRIC", "l2"), "OK")
        for i in range(200):
            c.cmd("VADD", "ix", "k%d" % i, struct.pack("<4f", i, 0, 0, 0))
        q = struct.pack("<4f", 0, 0, 0, 0)
        reqs = [("VSEARCH", "ix", q, "1")] * 20 + [("NOSUCH",), ("GET",), ("PING",)] + \
               [("VSEARCH", "ix", q, "1")] * 5 + [("VSEARCH", "nope", q, "1"), ("ECHO", "end")]
        c.send(b"".join(encode(*r) for r in reqs))
        replies = [c.read() for _ in reqs]
        for i in range(20):
            self.assertEqual(replies[i], [b"k0", b"0"])
        self.assertTrue(replies[20].startswith("ERR unknown command 'NOSUCH'"))
        self.assertEqual(replies[21], "ERR wrong number of arguments for 'get' command")
        self.assertEqual(replies[22], "PONG")
        for i in range(23, 28):
            self.assertEqual(replies[i], [b"k0", b"0"])
        self.assertIsInstance(replies[28], RespError)
        self.assertEqual(replies[29], b"end")


if __name__ == "__main__":
    main()
