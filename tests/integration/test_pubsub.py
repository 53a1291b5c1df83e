"""Pub/sub and keyspace notifications, judged against a real Redis 7.0
started in the same run (Debian's redis-server):

  * scripts of several connections (subscribers in RESP2 and RESP3, a
    publisher) give byte-identical output on both servers, step by step:
    SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE and their UNSUBSCRIBEs (with and
    without arguments), PUBLISH / SPUBLISH, the PUBSUB subcommands and
    their errors, what a RESP2 subscriber may not run (and PING's reply
    then), RESET, QUIT, SSUBSCRIBE inside MULTI;
  * pattern matching (escapes, classes, [^...], the empty channel) picks
    the same receivers;
  * keyspace events (notify-keyspace-events, its CONFIG GET form and
    errors): the same events in the same order for string and key
    commands, lazy and active expiry, MOVE and COPY across databases;
  * a subscriber that never reads is closed at its pubsub output limit
    (hard, and soft after its seconds) while the server keeps answering
    others, and its memory stays bounded; subscribers are exempt from
    `timeout`;
  * redis-cli SUBSCRIBE / PSUBSCRIBE print the same lines.

engram-only: messages for the client running a command come after its
reply (after EXEC's whole reply), as Redis 7.2+ sends them (7.0 sent them
before, or inside EXEC's array); vector-set events (vadd, vrem, vsetattr,
engram's own); INFO's client_output_buffer_limit_disconnections and
pubsub_clients (later Redis versions' fields, not in 7.0).
"""

import subprocess
import time

from engram_test import (IS_REDIS, REDIS_CLI, SLOW, BesideRedisTestCase, Closed, ServerTestCase,
                         engram_only, main, parse, parse_info, wait_until)


class Session:
    """Named connections to one server, driven step by step.  After a step,
    each connection's output is read up to the answer of a PING sent then
    (a RESP2 subscriber answers ["pong", token]): what was published to it
    during the step has arrived by then."""

    def __init__(self, server):
        self.server = server
        self.conns = {}
        self.n = 0

    def open(self, name, resp=2, **kw):
        c = self.server.conn(**kw)
        if resp == 3:
            c.cmd("HELLO", "3")
        self.conns[name] = c
        return c

    def close(self):
        for c in self.conns.values():
            c.close()

    def sync(self, name):
        c = self.conns[name]
        self.n += 1
        tok = b"sync-%d" % self.n
        c.send_cmd("PING", tok)
        out = []
        while True:
            raw = c.read_raw()
            v = parse(raw)[0]
            if v == tok or v == [b"pong", tok]:
                return out
            out.append(raw)

    def step(self, name, *cmds, closes=False):
        """Send cmds on connection name; every connection's output."""
        c = self.conns[name]
        for cmd in cmds:
            c.send_cmd(*cmd)
        out = {}
        if closes:         # QUIT: read to the end
            while True:
                try:
                    out.setdefault(name, []).append(c.read_raw())
                except Closed:
                    break
            del self.conns[name]
        else:
            out[name] = self.sync(name)
        for other in self.conns:
            if other != name:
                out[other] = self.sync(other)
        return out


def events(raws):
    """(channel, payload) of the pmessages among raw replies."""
    out = []
    for raw in raws:
        v = parse(raw)[0]
        if isinstance(v, list) and v and v[0] == b"pmessage":
            out.append((v[2], v[3]))
    return out


class Both(BesideRedisTestCase):
    """engram (the class's server) next to a Redis 7.0 of our own."""

    def setUp(self):
        super().setUp()
        r = self.redis.conn()
        r.cmd("FLUSHALL")
        r.cmd("CONFIG", "SET", "notify-keyspace-events", "")
        r.close()

    def servers(self):
        return (("engram", self.server), ("redis", self.redis))

    def run_script(self, conns, script):
        """conns: {name: resp}; script: [(conn, [cmd, ...]) or (conn, [cmds], opts)]
        where opts may say "closes" (the connection ends: QUIT), "ignore"
        (the step's output differs by nature: HELLO) and "sleep" (wait 100 ms
        after the commands).  Both servers start
        empty.  Returns {server name: [step outputs]}."""
        res = {}
        for label, srv in self.servers():
            srv.conn().cmd("FLUSHALL")
            s = Session(srv)
            for name, resp in conns.items():
                s.open(name, resp)
            outs = []
            for st in script:
                opts = st[2] if len(st) > 2 else ""
                if "sleep" in opts:         # let the keys it set expire first
                    for cmd in st[1]:
                        s.conns[st[0]].cmd(*cmd)
                    time.sleep(0.1 * SLOW)
                    st = (st[0], [])
                out = s.step(st[0], *st[1], closes="closes" in opts)
                outs.append(None if "ignore" in opts else out)
            s.close()
            res[label] = outs
        return res

    def assert_script(self, conns, script):
        res = self.run_script(conns, script)
        for i, (a, b) in enumerate(zip(res["engram"], res["redis"])):
            self.assertEqual(a, b, "step %d %r differs from Redis's" % (i, script[i]))
        return res


class TestPubSubAgainstRedis(Both):

    def test_subscribe_publish_unsubscribe(self):
        for resp in (2, 3):
            with self.subTest(resp=resp):
                self.assert_script({"sub": resp, "pub": 2}, [
                    ("sub", [("SUBSCRIBE", "a", "b")]),
                    ("sub", [("SUBSCRIBE", "a")]),            # again: count unchanged
                    ("pub", [("PUBLISH", "a", "hello")]),
                    ("pub", [("PUBLISH", "b", "")]),
                    ("pub", [("PUBLISH", "c", "nobody")]),
                    ("pub", [("PUBLISH", "b", b"bin\x00\r\nary")]),
                    ("sub", [("UNSUBSCRIBE", "a", "zz")]),
                    ("pub", [("PUBLISH", "a", "gone")]),
                    ("sub", [("UNSUBSCRIBE",)]),              # the one left
                    ("sub", [("UNSUBSCRIBE",)]),              # none: nil, 0
                    ("sub", [("PUNSUBSCRIBE",), ("SUNSUBSCRIBE",)]),
                    ("pub", [("PUBLISH", "b", "gone")]),
                    ("sub", [("GET", "k")]),                  # not subscribed any more
                ])

    def test_patterns(self):
        for resp in (2, 3):
            with self.subTest(resp=resp):
                self.assert_script({"sub": resp, "pub": 2}, [
                    ("sub", [("PSUBSCRIBE", "h?llo", "news.*")]),
                    ("sub", [("SUBSCRIBE", "news.x")]),
                    ("pub", [("PUBLISH", "hello", "m1")]),
                    ("pub", [("PUBLISH", "news.x", "m2")]),   # message, then pmessage: 2
                    ("pub", [("PUBLISH", "news", "m3")]),
                    ("pub", [("PUBSUB", "NUMPAT")]),
                    ("sub", [("PUNSUBSCRIBE", "h?llo", "nope")]),
                    ("sub", [("PSUBSCRIBE", "a*", "b*")]),
                    ("sub", [("PUNSUBSCRIBE",)]),             # Redis 7.0: in subscription order
                    ("sub", [("PUNSUBSCRIBE",)]),
                    ("sub", [("UNSUBSCRIBE",)]),
                ])

    def test_unsubscribe_all_of_many(self):
        """Redis confirms in its hash order: the same names, counts going down."""
        res = self.run_script({"sub": 2}, [
            ("sub", [("SUBSCRIBE", "c1", "c2", "c3", "c4")]),
            ("sub", [("UNSUBSCRIBE",)]),
        ])
        for label, outs in res.items():
            got = [parse(r)[0] for r in outs[1]["sub"]]
            self.assertEqual(sorted(v[1] for v in got), [b"c1", b"c2", b"c3", b"c4"], label)
            self.assertEqual([v[2] for v in got], [3, 2, 1, 0], label)
            self.assertEqual({v[0] for v in got}, {b"unsubscribe"}, label)

    def test_shard_channels(self):
        for resp in (2, 3):
            with self.subTest(resp=resp):
                self.assert_script({"sub": resp, "pub": 2}, [
                    ("sub", [("SSUBSCRIBE", "s1", "s2")]),
                    ("sub", [("SUBSCRIBE", "s1")]),           # its own count
                    ("pub", [("SPUBLISH", "s1", "hi")]),
                    ("pub", [("PUBLISH", "s2", "not shard")]),
                    ("pub", [("PUBSUB", "SHARDCHANNELS", "s1*")]),
                    ("pub", [("PUBSUB", "SHARDNUMSUB", "s1", "s9")]),
                    ("pub", [("PUBSUB", "NUMSUB", "s1")]),
                    ("sub", [("SUNSUBSCRIBE", "s1")]),
                    ("sub", [("SUNSUBSCRIBE",)]),
                    ("sub", [("SUNSUBSCRIBE",)]),
                    ("sub", [("UNSUBSCRIBE",)]),
                    ("pub", [("MULTI",), ("SSUBSCRIBE", "x"), ("SUBSCRIBE", "y"), ("EXEC",)]),
                    ("pub", [("PING",), ("UNSUBSCRIBE",)]),
                ])

    def test_pubsub_subcommands(self):
        self.assert_script({"s1": 2, "s2": 3, "c": 2}, [
            ("s1", [("SUBSCRIBE", "news", "sport")]),
            ("s2", [("SUBSCRIBE", "news"), ("PSUBSCRIBE", "n*", "x")]),
            ("c", [("PUBSUB", "NUMSUB", "news", "sport", "none")]),
            ("c", [("PUBSUB", "NUMSUB")]),
            ("c", [("PUBSUB", "NUMPAT")]),
            ("c", [("PUBSUB", "CHANNELS", "s*")]),
            ("c", [("PUBSUB", "CHANNELS", "x*")]),
            ("c", [("PUBSUB", "SHARDCHANNELS")]),
            ("c", [("PUBSUB", "SHARDNUMSUB")]),
            ("c", [("PUBSUB", "HELP")]),
            ("c", [("PUBSUB", "help")]),
            ("c", [("PUBSUB", "CHANNELS", "a", "b")]),
            ("c", [("PUBSUB", "channels", "a", "b")]),
            ("c", [("PUBSUB", "SHARDCHANNELS", "a", "b")]),
            ("c", [("PUBSUB", "FOO")]),
            ("c", [("PUBSUB",)]),
            ("c", [("PUBSUB", "NUMPAT", "x")]),
            ("c", [("PUBSUB", "HELP", "x")]),
            ("c", [("PUBLISH", "a")]),
            ("c", [("SUBSCRIBE",)]),
            ("c", [("PSUBSCRIBE",)]),
            ("c", [("SSUBSCRIBE",)]),
            ("c", [("SPUBLISH", "a", "b", "c")]),
        ])
        for label, srv in self.servers():
            c = srv.conn()
            chans = sorted(c.cmd("PUBSUB", "CHANNELS"))
            self.assertEqual(chans, [], label)
            s1, s2 = srv.conn(), srv.conn()
            s1.send_cmd("SUBSCRIBE", "a", "b", "")
            s2.send_cmd("SUBSCRIBE", "b", "c")
            s2.send_cmd("PSUBSCRIBE", "p*")
            for _ in range(3):
                s1.read()
            for _ in range(3):
                s2.read()
            self.assertEqual(sorted(c.cmd("PUBSUB", "CHANNELS")), [b"", b"a", b"b", b"c"], label)
            self.assertEqual(sorted(c.cmd("PUBSUB", "CHANNELS", "*")), [b"a", b"b", b"c"], label)
            self.assertEqual(sorted(c.cmd("PUBSUB", "CHANNELS", "[ab]")), [b"a", b"b"], label)
            info = parse_info(c.cmd("INFO", "stats"))
            self.assertEqual((info["pubsub_channels"], info["pubsub_patterns"],
                              info["pubsubshard_channels"]), ("4", "1", "0"), label)
            lines = c.cmd("CLIENT", "LIST").decode().splitlines()
            subs = sorted(tuple(f for f in ln.split() if f.split("=")[0] in
                                ("flags", "sub", "psub", "ssub")) for ln in lines)
            self.assertEqual(subs, [("flags=N", "sub=0", "psub=0", "ssub=0"),
                                    ("flags=P", "sub=2", "psub=1", "ssub=0"),
                                    ("flags=P", "sub=3", "psub=0", "ssub=0")], label)
            typed = c.cmd("CLIENT", "LIST", "TYPE", "pubsub").decode().splitlines()
            self.assertEqual(len(typed), 2, label)
            self.assertEqual(len(c.cmd("CLIENT", "LIST", "TYPE", "normal").decode().splitlines()),
                             1, label)
            self.assertEqual(c.cmd("CLIENT", "KILL", "TYPE", "pubsub"), 2, label)
            self.assertTrue(s1.is_closed() and s2.is_closed(), label)
            self.assertTrue(wait_until(lambda: c.cmd("PUBSUB", "NUMPAT") == 0, 5), label)
            self.assertEqual(c.cmd("PUBSUB", "CHANNELS"), [], label)
            for x in (c, s1, s2):
                x.close()

    def test_subscribed_mode_resp2(self):
        self.assert_script({"sub": 2, "pub": 2}, [
            ("sub", [("SUBSCRIBE", "x")]),
            ("sub", [("PING",), ("PING", "hi")]),
            ("sub", [("GET", "a"), ("CONFIG", "GET", "x"), ("HELLO", "3"), ("MULTI",),
                     ("PUBLISH", "x", "y"), ("PUBSUB", "NUMSUB", "x"), ("NOSUCH",),
                     ("GET",), ("ECHO", "e")]),
            ("sub", [("PSUBSCRIBE", "q*"), ("SSUBSCRIBE", "s")]),
            ("pub", [("PUBLISH", "x", "m")]),
            ("sub", [("UNSUBSCRIBE", "x"), ("PUNSUBSCRIBE",)]),
            ("sub", [("GET", "a")]),                          # still a shard subscriber
            ("sub", [("SUNSUBSCRIBE",)]),
            ("sub", [("GET", "a"), ("PING",)]),               # normal again
            ("sub", [("SUBSCRIBE", "x"), ("RESET",)]),         # RESET leaves the mode
            ("pub", [("PUBLISH", "x", "m"), ("PUBSUB", "NUMSUB", "x")]),
            ("sub", [("GET", "a")]),
            ("sub", [("SUBSCRIBE", "x"), ("QUIT",)], "closes"),
            ("pub", [("PUBSUB", "NUMSUB", "x")]),
        ])

    def test_subscribed_mode_resp3(self):
        self.assert_script({"sub": 3, "pub": 2}, [
            ("sub", [("SUBSCRIBE", "x")]),
            ("sub", [("PING",), ("SET", "a", "1"), ("GET", "a"), ("PUBSUB", "NUMSUB", "x")]),
            ("sub", [("HELLO", "3")], "ignore"),              # allowed (engram names itself)
            ("pub", [("PUBLISH", "x", "m")]),
            ("sub", [("HELLO", "2")], "ignore"),              # a RESP2 subscriber now
            ("sub", [("GET", "a"), ("PING",)]),
            ("pub", [("PUBLISH", "x", "m2")]),
            ("sub", [("HELLO", "3")]),                        # refused in RESP2 mode
            ("sub", [("RESET",)]),
            ("sub", [("GET", "a")]),
        ])
        self.assert_script({"sub": 3}, [
            ("sub", [("SUBSCRIBE", "x"), ("RESET",)]),        # back to RESP2, unsubscribed
            ("sub", [("GET", "a"), ("HELLO", "4")]),
        ])

    def test_glob_like_redis(self):
        patterns = ["*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h\\*llo",
                    "news.*", "[", "[]]", "a[bc", "*\\", "\\", "", "[^]", "[a-]", "*a*b*",
                    "?", "\\?", "[\\]]", "**"]
        channels = ["hello", "hallo", "hxllo", "hllo", "h*llo", "news.", "news.x", "[", "]",
                    "ab", "a\\", "\\", "", "a", "?", "ba", "xaxb", "_", "-"]
        conns = {"p%d" % i: 2 for i in range(len(patterns))}
        conns["pub"] = 2
        script = [("p%d" % i, [("PSUBSCRIBE", p)]) for i, p in enumerate(patterns)]
        script += [("pub", [("PUBLISH", ch, "m")]) for ch in channels]
        res = self.assert_script(conns, script)
        # and something did match
        self.assertIn(b"pmessage", b"".join(b"".join(v) for v in res["engram"][-1].values()))

    def test_channel_names_and_payloads_are_binary(self):
        big = "x" * 100000
        self.assert_script({"sub": 2, "pub": 2}, [
            ("sub", [("SUBSCRIBE", b"a\x00b", b"\xff\r\n")]),
            ("pub", [("PUBLISH", b"a\x00b", big)]),
            ("pub", [("PUBLISH", b"\xff\r\n", b"\x00")]),
            ("pub", [("PUBSUB", "NUMSUB", b"a\x00b", b"a")]),
        ])

    def test_notify_config(self):
        for label, srv in self.servers():
            c = srv.conn()
            got = []
            for v in ("KEA", "gKEn$x", "g", "AmnKEd", "lszhte", "K$", "Ex", ""):
                got.append(c.raw_cmd("CONFIG", "SET", "notify-keyspace-events", v))
                got.append(c.raw_cmd("CONFIG", "GET", "notify-keyspace-events"))
            got.append(c.raw_cmd("CONFIG", "SET", "notify-keyspace-events", "KEZ"))
            got.append(c.raw_cmd("CONFIG", "SET", "client-output-buffer-limit",
                                 "pubsub 1mb 512kb 10"))
            got.append(c.raw_cmd("CONFIG", "GET", "client-output-buffer-limit"))
            got.append(c.raw_cmd("CONFIG", "SET", "client-output-buffer-limit",
                                 "pubsub 32mb 8mb 60"))
            c.close()
            if label == "engram":
                mine = got
            else:
                self.assertEqual(mine, got)


class TestKeyspaceEventsAgainstRedis(Both):
    """The events both servers publish for the same commands, in order."""

    def setUp(self):
        super().setUp()
        self.subs = {}
        for label, srv in self.servers():
            c = srv.conn()
            c.cmd("CONFIG", "SET", "notify-keyspace-events", "KEAnm")
            c.close()

    def tearDown(self):
        for label, srv in self.servers():
            c = srv.conn()
            c.cmd("CONFIG", "SET", "notify-keyspace-events", "")
            c.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "1")
            c.close()
        super().tearDown()

    def compare(self, steps):
        """steps: lists of commands run on one connection (or (commands,
        opts): run_script's); the events each step publishes must be the
        same on both servers."""
        script = [("sub", [("PSUBSCRIBE", "__key*__:*")])]
        script += [("cmd",) + (st if isinstance(st, tuple) else (st,)) for st in steps]
        res = self.assert_script({"sub": 2, "cmd": 2}, script)
        return [events(out["sub"]) for out in res["engram"][1:]]

    def test_string_commands(self):
        evs = self.compare([
            [("SET", "k", "v")], [("SET", "k", "v2")], [("SET", "k", "v", "EX", "100")],
            [("SET", "k", "v", "NX")], [("SET", "k3", "v", "GET")], [("SET", "k", "w", "KEEPTTL")],
            [("SET", "k", "v", "XX", "GET")], [("SETNX", "k4", "v")], [("SETEX", "k5", "10", "v")],
            [("PSETEX", "k6", "10000", "v")], [("GETSET", "k5", "x")], [("GETSET", "nk", "x")],
            [("GETDEL", "k5")], [("GETDEL", "nk2")], [("GETEX", "k", "EX", "100")],
            [("GETEX", "k", "PERSIST")], [("GETEX", "k", "PXAT", "1")], [("GETEX", "nk3")],
            [("MSET", "a", "1", "b", "2")], [("MSETNX", "c", "1", "d", "2")],
            [("MSETNX", "c", "1", "z", "2")], [("APPEND", "e", "x")], [("APPEND", "e", "y")],
            [("SETRANGE", "f", "0", "")], [("SETRANGE", "f", "2", "x")],
            [("SETRANGE", "f", "0", "y")], [("INCR", "g")], [("INCRBY", "g", "5")],
            [("DECR", "g")], [("DECRBY", "g", "2")], [("INCRBYFLOAT", "h", "1.5")],
            [("INCRBYFLOAT", "h", "1.5")], [("INCR", "e")], [("GET", "nokey")],
            [("MGET", "nokey", "a")], [("STRLEN", "nokey")], [("GETRANGE", "nokey", "0", "1")],
        ])
        self.assertEqual(evs[0], [(b"__keyspace@0__:k", b"new"), (b"__keyevent@0__:new", b"k"),
                                  (b"__keyspace@0__:k", b"set"), (b"__keyevent@0__:set", b"k")])

    def test_key_commands(self):
        evs = self.compare([
            [("SET", "k", "v")], [("EXPIRE", "k", "100")], [("PEXPIRE", "k", "200000", "GT")],
            [("EXPIRE", "k", "100", "NX")], [("PERSIST", "k")], [("PERSIST", "k")],
            [("EXPIREAT", "k", "1")], [("EXPIRE", "nokey", "10")], [("SET", "a", "1")],
            [("SET", "b", "2")], [("DEL", "a", "b", "zz")], [("SET", "c", "3")], [("UNLINK", "c")],
            [("SET", "r1", "v")], [("SET", "r2", "v")], [("RENAME", "r1", "r2")],
            [("RENAME", "r2", "r3")], [("RENAME", "r3", "r3")], [("SET", "d", "1")],
            [("RENAMENX", "r3", "d")], [("RENAMENX", "r3", "r4")], [("COPY", "r4", "r5")],
            [("COPY", "r4", "r5", "REPLACE")], [("COPY", "nokey", "r6")],
            [("COPY", "r4", "r5", "DB", "1")], [("MOVE", "r4", "1")], [("SELECT", "1")],
            [("SET", "x", "1"), ("DEL", "x")], [("MOVE", "r5", "0")], [("MOVE", "r4", "0")],
            [("SELECT", "0")],
            [("EXISTS", "nokey")], [("TYPE", "nokey")], [("TTL", "nokey")],
            [("FLUSHDB",)], [("SET", "s", "1"), ("SWAPDB", "0", "1"), ("FLUSHALL",)],
        ])
        self.assertIn((b"__keyevent@1__:copy_to", b"r5"), evs[24])
        self.assertEqual(evs[25], [(b"__keyspace@1__:r4", b"new"), (b"__keyevent@1__:new", b"r4"),
                                   (b"__keyspace@0__:r4", b"move_from"),
                                   (b"__keyevent@0__:move_from", b"r4"),
                                   (b"__keyspace@1__:r4", b"move_to"),
                                   (b"__keyevent@1__:move_to", b"r4")])

    def test_hash_commands(self):
        evs = self.compare([
            [("HSET", "h", "a", "1", "b", "2")], [("HSET", "h", "a", "3")],
            [("HSETNX", "h", "a", "9")], [("HSETNX", "h", "c", "9")],
            [("HMSET", "h", "d", "1")], [("HINCRBY", "h", "n", "5")],
            [("HINCRBYFLOAT", "h", "f", "1.5")], [("HDEL", "h", "zz")], [("HDEL", "h", "a", "b")],
            [("HGET", "h", "c")], [("HGET", "nokey", "c")], [("HSET", "g", "x", "1")],
            [("HDEL", "g", "x")],
        ])
        self.assertEqual(evs[0], [(b"__keyspace@0__:h", b"new"), (b"__keyevent@0__:new", b"h"),
                                  (b"__keyspace@0__:h", b"hset"), (b"__keyevent@0__:hset", b"h")])
        self.assertEqual(evs[12], [(b"__keyspace@0__:g", b"hdel"), (b"__keyevent@0__:hdel", b"g"),
                                   (b"__keyspace@0__:g", b"del"), (b"__keyevent@0__:del", b"g")])

    def test_lazy_expiry(self):
        evs = self.compare([([("DEBUG", "SET-ACTIVE-EXPIRE", "0"), ("SET", "x", "1", "PX", "30"),
                              ("SET", "y", "1", "PX", "30"), ("SET", "z", "1", "PX", "30")],
                             "sleep"),
                            [("GET", "x")], [("SET", "y", "2")], [("GET", "y")],
                            [("EXPIRE", "z", "100")], [("APPEND", "z", "a")]])
        self.assertEqual(evs[1], [(b"__keyspace@0__:x", b"expired"),
                                  (b"__keyevent@0__:expired", b"x"),
                                  (b"__keyspace@0__:x", b"keymiss"),
                                  (b"__keyevent@0__:keymiss", b"x")])

    def test_active_expiry(self):
        for label, srv in self.servers():
            s = Session(srv)
            s.open("sub")
            s.step("sub", ("SUBSCRIBE", "__keyevent@0__:expired"))
            srv.conn().cmd("SET", "gone", "1", "PX", "50")
            got = []
            deadline = time.monotonic() + 5 * SLOW
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
                got = s.sync("sub")
            self.assertEqual([parse(r)[0] for r in got],
                             [[b"message", b"__keyevent@0__:expired", b"gone"]], label)
            s.close()

    def test_classes_select_events(self):
        for flags in ("K$", "Eg", "Kx", "g", "E", "Elsz"):
            for label, srv in self.servers():
                c = srv.conn()
                c.cmd("CONFIG", "SET", "notify-keyspace-events", flags)
                c.close()
            with self.subTest(flags=flags):
                self.compare([[("SET", "k", "v")], [("EXPIRE", "k", "100")], [("DEL", "k")],
                              [("SET", "k", "v", "PX", "1")]])


class TestOutputLimits(Both):
    """A subscriber that does not read: closed at its pubsub limit."""

    def storm(self, srv, limit, size=100000, rounds=400, after=None):
        """Fill a non-reading subscriber until PUBLISH stops reaching it;
        returns (publishes it took, PINGs answered meanwhile)."""
        c = srv.conn()
        c.cmd("CONFIG", "SET", "client-output-buffer-limit", limit)
        sub = srv.conn(rcvbuf=4096)
        sub.send_cmd("SUBSCRIBE", "storm")
        sub.read()
        other = srv.conn()
        payload = "p" * size
        pongs = 0
        n = 0
        for n in range(1, rounds + 1):
            for _ in range(10):
                c.send_cmd("PUBLISH", "storm", payload)
            got = [c.read() for _ in range(10)]
            self.assertEqual(other.cmd("PING"), "PONG")
            pongs += 1
            if after and n == after[0]:
                time.sleep(after[1])
            if got[-1] == 0:
                break
        self.assertTrue(sub.is_closed(), "the subscriber was not closed")
        c.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
        for x in (c, sub, other):
            x.close()
        return n, pongs

    def test_hard_limit(self):
        for label, srv in self.servers():
            n, pongs = self.storm(srv, "pubsub 1mb 0 0")
            self.assertLess(n, 400, label)
        info = parse_info(self.server.conn().cmd("INFO"))
        if not IS_REDIS:
            self.assertEqual(info["client_output_buffer_limit_disconnections"], "1")
            self.assertEqual(info["pubsub_clients"], "0")

    def test_soft_limit(self):
        for label, srv in self.servers():
            # over 256kb from the first rounds on, then past its second
            n, pongs = self.storm(srv, "pubsub 0 256kb 1", after=(60, 1.5 * SLOW))
            self.assertLess(n, 400, label)
            self.assertGreaterEqual(n, 60, label)

    @engram_only
    def test_memory_stays_bounded(self):
        """A storm far bigger than the limit: engram's memory grows by about
        the limit, not by the storm."""
        c = self.conn()
        base = int(parse_info(c.cmd("INFO", "memory"))["used_memory"])
        n, _ = self.storm(self.server, "pubsub 4mb 0 0", size=200000, rounds=2000)
        peak = int(parse_info(c.cmd("INFO", "memory"))["used_memory_peak"])
        self.assertLess(n, 2000)
        self.assertLess(peak - base, 24 * 1024 * 1024,
                        "memory grew by %d bytes for a 4 MB limit" % (peak - base))
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_subscribers_have_no_idle_timeout(self):
        for label, srv in self.servers():
            c = srv.conn()
            c.cmd("CONFIG", "SET", "timeout", "1")
            sub, idle = srv.conn(), srv.conn()
            sub.send_cmd("SUBSCRIBE", "t")
            sub.read()
            idle.cmd("PING")
            self.assertTrue(idle.is_closed(4), label)
            c.close()
            c = srv.conn()
            c.cmd("CONFIG", "SET", "timeout", "0")
            self.assertEqual(c.cmd("PUBLISH", "t", "still here"), 1, label)
            self.assertEqual(sub.read(), [b"message", b"t", b"still here"], label)
            for x in (c, sub, idle):
                x.close()


class TestRedisCli(Both):

    def cli_lines(self, srv, args, publish, nlines):
        p = subprocess.Popen([REDIS_CLI, "-h", "127.0.0.1", "-p", str(srv.port)] + args,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            c = srv.conn()
            self.assertTrue(wait_until(lambda: c.cmd("PUBSUB", "NUMSUB", args[1])[1] == 1 or
                                       c.cmd("PUBSUB", "NUMPAT") == 1, 5))
            for ch, msg in publish:
                c.cmd("PUBLISH", ch, msg)
            lines = []
            p.stdout.flush()
            for _ in range(nlines):
                lines.append(p.stdout.readline().decode().rstrip("\n"))
            c.close()
            return lines
        finally:
            p.kill()
            p.wait()

    def test_redis_cli_subscribe(self):
        out = {}
        for label, srv in self.servers():
            out[label] = (self.cli_lines(srv, ["subscribe", "news"], [("news", "hello world")], 6),
                          self.cli_lines(srv, ["psubscribe", "n*"], [("nx", "hi")], 7))
        self.assertEqual(out["engram"], out["redis"])
        self.assertEqual(out["engram"][0], ["subscribe", "news", "1", "message", "news",
                                            "hello world"])


@engram_only
class TestEngramPushes(ServerTestCase):
    """What engram does differently from Redis 7.0, as Redis 7.2+ does."""

    def test_own_messages_follow_the_reply(self):
        c = self.conn()
        c.cmd("HELLO", "3")
        c.send_cmd("SUBSCRIBE", "q")
        c.read()
        self.assertEqual(c.raw_cmd("PUBLISH", "q", "v"), b":1\r\n")
        self.assertEqual(c.read_raw(), b">3\r\n$7\r\nmessage\r\n$1\r\nq\r\n$1\r\nv\r\n")
        # Inside MULTI: SUBSCRIBE's confirmation is EXEC's element, the
        # message comes after EXEC's whole reply.
        c.send_cmd("MULTI")
        c.send_cmd("SUBSCRIBE", "w")
        c.send_cmd("PUBLISH", "w", "v")
        c.send_cmd("PING")
        c.send_cmd("EXEC")
        self.assertEqual([c.read() for _ in range(4)], ["OK", "QUEUED", "QUEUED", "QUEUED"])
        self.assertEqual(c.read_raw(), b"*3\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nw\r\n:2\r\n"
                                       b":1\r\n+PONG\r\n")
        self.assertEqual(c.read_raw(), b">3\r\n$7\r\nmessage\r\n$1\r\nw\r\n$1\r\nv\r\n")

    def test_own_keyspace_events_after_exec(self):
        c = self.conn()
        c.cmd("CONFIG", "SET", "notify-keyspace-events", "E$")
        try:
            c.send_cmd("MULTI")
            c.send_cmd("SUBSCRIBE", "__keyevent@0__:set")
            c.send_cmd("SET", "k", "v")
            c.send_cmd("EXEC")
            self.assertEqual([c.read() for _ in range(3)], ["OK", "QUEUED", "QUEUED"])
            self.assertEqual(c.read(), [[b"subscribe", b"__keyevent@0__:set", 1], "OK"])
            self.assertEqual(c.read(), [b"message", b"__keyevent@0__:set", b"k"])
            c.send_cmd("PING")
            self.assertEqual(c.read(), [b"pong", b""])
        finally:
            self.conn().cmd("CONFIG", "SET", "notify-keyspace-events", "")

    def test_vector_set_events(self):
        c = self.conn()
        c.cmd("CONFIG", "SET", "notify-keyspace-events", "KEA" + "n")
        try:
            sub = self.conn()
            sub.send_cmd("PSUBSCRIBE", "__keyevent@0__:*")
            sub.read()
            c.cmd("VADD", "vs", "VALUES", "2", "1", "0", "a")
            c.cmd("VADD", "vs", "VALUES", "2", "0", "1", "b")
            c.cmd("VSETATTR", "vs", "a", '{"x": 1}')
            c.cmd("VREM", "vs", "a")
            c.cmd("VREM", "vs", "b")           # the last: the key goes too
            c.cmd("VNEW", "idx", "2")
            c.cmd("VADD", "idx", "k1", b"\x00\x00\x80\x3f\x00\x00\x00\x00")
            c.cmd("VDEL", "idx", "k1")
            c.cmd("VDROP", "idx")
            self.assertEqual(c.cmd("PUBLISH", "__keyevent@0__:end", "x"), 1)
            got = []
            while True:
                v = sub.read()
                if v[2] == b"__keyevent@0__:end":
                    break
                got.append((v[2].split(b":", 1)[1].decode(), v[3].decode()))
            self.assertEqual(got, [("new", "vs"), ("vadd", "vs"), ("vadd", "vs"),
                                   ("vsetattr", "vs"), ("vrem", "vs"), ("vrem", "vs"),
                                   ("del", "vs"), ("new", "idx"), ("vadd", "idx"),
                                   ("vrem", "idx"), ("del", "idx")])
        finally:
            c.cmd("CONFIG", "SET", "notify-keyspace-events", "")

    def test_hash_field_expiry_events(self):
        """Redis 7.4-8's field-expiry events (Redis 7.0, the side-by-side
        reference, has none of these commands): hexpire, hpersist, HSETEX's
        hset then hexpire, HGETDEL's hdel, and a field found expired: hexpired,
        then del when the hash went with it."""
        c = self.conn()
        c.cmd("CONFIG", "SET", "notify-keyspace-events", "KEA" + "n")
        try:
            sub = self.conn()
            sub.send_cmd("PSUBSCRIBE", "__keyevent@0__:*")
            sub.read()
            c.cmd("HSET", "h", "a", "1", "b", "2")
            c.cmd("HEXPIRE", "h", "100", "FIELDS", "1", "a")
            c.cmd("HPERSIST", "h", "FIELDS", "1", "a")
            c.cmd("HSETEX", "h", "EX", "100", "FIELDS", "1", "c", "3")
            c.cmd("HGETDEL", "h", "FIELDS", "1", "c")
            c.cmd("HSET", "t", "f", "1")
            c.cmd("HPEXPIRE", "t", "20", "FIELDS", "1", "f")
            time.sleep(0.2)
            c.cmd("HGET", "t", "f")            # lazily (or actively) expired by now
            self.assertEqual(c.cmd("PUBLISH", "__keyevent@0__:end", "x"), 1)
            got = []
            while True:
                v = sub.read()
                if v[2] == b"__keyevent@0__:end":
                    break
                got.append((v[2].split(b":", 1)[1].decode(), v[3].decode()))
            got = [g for g in got if g[0] != "keymiss"]
            self.assertEqual(got, [("new", "h"), ("hset", "h"), ("hexpire", "h"),
                                   ("hpersist", "h"), ("hset", "h"), ("hexpire", "h"),
                                   ("hdel", "h"), ("new", "t"), ("hset", "t"),
                                   ("hexpire", "t"), ("hexpired", "t"), ("del", "t")])
        finally:
            c.cmd("CONFIG", "SET", "notify-keyspace-events", "")

    def test_many_channels_and_subscribers(self):
        """Subscriptions come and go in bulk; PUBLISH reaches exactly the
        subscribers, and nothing is left behind."""
        subs = [self.conn() for _ in range(20)]
        names = ["ch%d" % i for i in range(2000)]
        for i, s in enumerate(subs):
            s.send_cmd("SUBSCRIBE", *names[i % 2::2])  # every channel, ten times over
            for _ in range(1000):
                s.read()
        c = self.conn()
        self.assertEqual(c.cmd("PUBSUB", "NUMSUB", "ch0", "ch1")[1::2], [10, 10])
        self.assertEqual(c.cmd("PUBLISH", "ch7", "x"), 10)
        for s in subs[1::2]:
            self.assertEqual(s.read(), [b"message", b"ch7", b"x"])
        for s in subs[::2]:
            s.send_cmd("UNSUBSCRIBE")
            for _ in range(1000):
                s.read()
        self.assertEqual(c.cmd("PUBLISH", "ch0", "x"), 0)
        self.assertEqual(len(c.cmd("PUBSUB", "CHANNELS")), 1000)
        for s in subs:
            s.close()
        self.assertTrue(wait_until(lambda: c.cmd("PUBSUB", "CHANNELS") == [], 5))
        info = parse_info(c.cmd("INFO"))
        self.assertEqual((info["pubsub_channels"], info["pubsub_clients"]), ("0", "0"))


if __name__ == "__main__":
    main()
