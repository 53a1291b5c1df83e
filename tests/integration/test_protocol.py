"""RESP on the wire: exact bytes for requests and replies, inline parsing,
protocol errors (Redis's text, then the connection is closed), pipelining,
partial writes, very large values, RESP3 via HELLO."""

import socket
import time

from engram_test import (IS_REDIS, SANITIZE, RespError, ServerTestCase, encode,
                         engram_only, main, split_replies)

PROTO_ERR = "ERR Protocol error: "


class TestBasics(ServerTestCase):
    def test_ping_inline_and_multibulk(self):
        self.assert_reply(b"PING\r\n", b"+PONG\r\n")
        self.assert_reply(b"PING\n", b"+PONG\r\n")
        self.assert_reply(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n")
        self.assert_reply(b"PING hello\r\n", b"$5\r\nhello\r\n")
        self.assert_reply(encode("PING", "hello"), b"$5\r\nhello\r\n")
        self.assert_reply(encode("PING", ""), b"$0\r\n\r\n")
        self.assert_reply(encode("PING", "a", "b"),
                          b"-ERR wrong number of arguments for 'ping' command\r\n")

    def test_echo_inline_and_multibulk(self):
        self.assert_reply(b"ECHO hi\r\n", b"$2\r\nhi\r\n")
        self.assert_reply(encode("ECHO", "hello world"), b"$11\r\nhello world\r\n")
        self.assert_reply(encode("ECHO", ""), b"$0\r\n\r\n")
        self.assert_reply(b"ECHO\r\n", b"-ERR wrong number of arguments for 'echo' command\r\n")

    def test_connection_survives_command_errors(self):
        c = self.assert_reply(b"GET\r\n", b"-ERR wrong number of arguments for 'get' command\r\n")
        self.assert_reply(b"PING\r\n", b"+PONG\r\n", conn=c)

    def test_case_insensitive_command_names(self):
        c = self.conn()
        self.assert_reply(b"pInG\r\n", b"+PONG\r\n", conn=c)
        self.assert_reply(encode("sEt", "k", "v"), b"+OK\r\n", conn=c)
        self.assert_reply(encode("get", "k"), b"$1\r\nv\r\n", conn=c)
        self.assert_reply(encode("GET", "k"), b"$1\r\nv\r\n", conn=c)
        # keys, unlike command names, are case-sensitive
        self.assert_reply(encode("GET", "K"), b"$-1\r\n", conn=c)

    def test_unknown_command_text(self):
        self.assert_reply(b"foo a b\r\n",
                          b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n")
        self.assert_reply(encode("FOO", "a", "b"),
                          b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n")
        self.assert_reply(encode("nosuchcmd"),
                          b"-ERR unknown command 'nosuchcmd', with args beginning with: \r\n")

    def test_unknown_command_text_is_bounded_and_single_line(self):
        # Redis quotes at most 128 characters of arguments and of the name,
        # and turns CR/LF into spaces so the error stays one protocol line.
        self.assert_reply(encode("foo", "a" * 200),
                          b"-ERR unknown command 'foo', with args beginning with: '"
                          + b"a" * 128 + b"' \r\n")
        self.assert_reply(encode("foo", *[c * 20 for c in "abcdefghij"]),
                          b"-ERR unknown command 'foo', with args beginning with: "
                          + b"".join(b"'" + c * 20 + b"' " for c in (b"a", b"b", b"c", b"d", b"e"))
                          + b"'" + b"f" * 13 + b"' \r\n")
        self.assert_reply(encode("b" * 200),
                          b"-ERR unknown command '" + b"b" * 128 + b"', with args beginning with: \r\n")
        c = self.conn()
        self.assert_reply(encode("foo", "a\r\nb"),
                          b"-ERR unknown command 'foo', with args beginning with: 'a  b' \r\n", conn=c)
        self.assert_reply(encode("f\r\noo", "x"),
                          b"-ERR unknown command 'f  oo', with args beginning with: 'x' \r\n", conn=c)
        self.assert_reply(b"PING\r\n", b"+PONG\r\n", conn=c)

    def test_wrong_arity(self):
        self.assert_reply(encode("GET"), b"-ERR wrong number of arguments for 'get' command\r\n")
        self.assert_reply(encode("get", "a", "b"),
                          b"-ERR wrong number of arguments for 'get' command\r\n")
        self.assert_reply(encode("SET", "k"), b"-ERR wrong number of arguments for 'set' command\r\n")
        self.assert_reply(encode("MGET"), b"-ERR wrong number of arguments for 'mget' command\r\n")

    def test_binary_safe_keys_and_values(self):
        c = self.conn()
        key = b"a\x00b\r\nc d"
        val = b"\x00\r\n\xff\xfe\r\n$3\r\n*1\r\n" + bytes(range(256))
        self.assert_reply(encode("SET", key, val), b"+OK\r\n", conn=c)
        self.assert_reply(encode("GET", key), b"$%d\r\n%s\r\n" % (len(val), val), conn=c)
        self.assert_reply(encode("STRLEN", key), b":%d\r\n" % len(val), conn=c)
        self.assert_reply(encode("KEYS", "*"), b"*1\r\n$%d\r\n%s\r\n" % (len(key), key), conn=c)
        self.assert_reply(encode("EXISTS", b"a\x00b"), b":0\r\n", conn=c)
        self.assert_reply(encode("ECHO", val), b"$%d\r\n%s\r\n" % (len(val), val), conn=c)


class TestInline(ServerTestCase):
    def check_inline_value(self, line, value):
        c = self.conn()
        self.assert_reply(line, b"+OK\r\n", conn=c)
        self.assert_reply(encode("GET", "k"), b"$%d\r\n%s\r\n" % (len(value), value), conn=c)

    def test_double_quotes(self):
        self.check_inline_value(b'set k "a b"\r\n', b"a b")

    def test_single_quotes(self):
        self.check_inline_value(b"set k 'a b'\r\n", b"a b")

    def test_escapes_in_double_quotes(self):
        self.check_inline_value(b'set k "\\x41\\x62\\n\\t\\"q\\\\"\r\n', b'Ab\n\t"q\\')

    def test_escaped_quote_in_single_quotes(self):
        self.check_inline_value(b"set k 'it\\'s'\r\n", b"it's")

    def test_empty_quoted_argument(self):
        self.check_inline_value(b'set k ""\r\n', b"")

    def test_extra_whitespace(self):
        self.check_inline_value(b"  set   k \t  v1  \r\n", b"v1")

    def test_lf_only_line_end(self):
        self.check_inline_value(b"set k v2\n", b"v2")

    def test_several_inline_requests_in_one_write(self):
        self.assert_reply(b"PING\r\nECHO a\nset k 'x y'\r\nGET k\r\n",
                          b"+PONG\r\n$1\r\na\r\n+OK\r\n$3\r\nx y\r\n")

    def test_unbalanced_quotes(self):
        self.assert_error_and_close(b'set k "abc\r\n', PROTO_ERR + "unbalanced quotes in request")

    def test_unbalanced_single_quote(self):
        self.assert_error_and_close(b"set k 'abc\r\n", PROTO_ERR + "unbalanced quotes in request")

    def test_closing_quote_must_be_followed_by_space(self):
        self.assert_error_and_close(b'set k "ab"cd\r\n', PROTO_ERR + "unbalanced quotes in request")


class TestProtocolErrors(ServerTestCase):
    def test_invalid_multibulk_length_text(self):
        self.assert_error_and_close(b"*abc\r\n", PROTO_ERR + "invalid multibulk length")

    def test_invalid_multibulk_length_too_large(self):
        self.assert_error_and_close(b"*20000000000\r\n", PROTO_ERR + "invalid multibulk length")

    def test_invalid_bulk_length_negative(self):
        self.assert_error_and_close(b"*1\r\n$-2\r\n", PROTO_ERR + "invalid bulk length")

    def test_invalid_bulk_length_text(self):
        self.assert_error_and_close(b"*1\r\n$abc\r\n", PROTO_ERR + "invalid bulk length")

    def test_invalid_bulk_length_default_limit(self):
        # proto-max-bulk-len defaults to 512 MB
        self.assert_error_and_close(b"*1\r\n$536870913\r\n", PROTO_ERR + "invalid bulk length")

    def test_expected_dollar(self):
        self.assert_error_and_close(b"*1\r\nfoo\r\n", PROTO_ERR + "expected '$', got 'f'")

    def test_expected_dollar_second_arg(self):
        self.assert_error_and_close(b"*2\r\n$4\r\nECHO\r\n:12\r\n", PROTO_ERR + "expected '$', got ':'")

    def test_too_big_inline_request(self):
        c = self.conn()
        c.send(b"a" * (65 * 1024))
        self.assert_error_and_close(b"", PROTO_ERR + "too big inline request", conn=c)

    def test_too_big_mbulk_count_string(self):
        c = self.conn()
        c.send(b"*" + b"1" * (65 * 1024))
        self.assert_error_and_close(b"", PROTO_ERR + "too big mbulk count string", conn=c)

    def test_too_big_bulk_count_string(self):
        c = self.conn()
        c.send(b"*1\r\n$" + b"1" * (65 * 1024))
        self.assert_error_and_close(b"", PROTO_ERR + "too big bulk count string", conn=c)

    def test_replies_before_the_error_are_delivered(self):
        c = self.conn()
        self.assert_reply(b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\nPING\r\n",
                          b"+PONG\r\n+PONG\r\n-" + (PROTO_ERR + "invalid multibulk length").encode()
                          + b"\r\n", conn=c)
        self.assert_closed(c)
        self.assertEqual(bytes(c.buf), b"")

    def test_server_still_serves_others(self):
        self.assert_error_and_close(b"*abc\r\n", PROTO_ERR + "invalid multibulk length")
        self.assert_reply(b"PING\r\n", b"+PONG\r\n")

    def test_empty_requests_are_ignored(self):
        c = self.conn()
        self.assert_reply(b"\r\n\n*-10\r\n*0\r\n*-1\r\nECHO a\r\n", b"$1\r\na\r\n", conn=c)
        # nothing else was queued for the skipped requests
        self.assert_reply(b"ECHO b\r\n", b"$1\r\nb\r\n", conn=c)
        c.drain()
        self.assertEqual(bytes(c.buf), b"")


class TestProtoMaxBulkLen(ServerTestCase):
    server_flags = ("--proto-max-bulk-len", "1mb")

    def test_bulk_over_limit(self):
        self.assert_error_and_close(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n",
                                    PROTO_ERR + "invalid bulk length")

    def test_bulk_at_limit(self):
        v = b"z" * (1024 * 1024)
        c = self.conn()
        self.assert_reply(encode("SET", "k", v), b"+OK\r\n", conn=c)
        self.assert_reply(encode("STRLEN", "k"), b":1048576\r\n", conn=c)


class TestUnauthenticatedLimits(ServerTestCase):
    server_flags = ("--requirepass", "secret")
    password = "secret"

    def test_unauthenticated_multibulk_length(self):
        self.assert_error_and_close(b"*11\r\n", PROTO_ERR + "unauthenticated multibulk length")

    def test_unauthenticated_bulk_length(self):
        self.assert_error_and_close(b"*1\r\n$16385\r\n", PROTO_ERR + "unauthenticated bulk length")

    def test_limits_lifted_after_auth(self):
        c = self.conn()
        self.assert_reply(encode("AUTH", "secret"), b"+OK\r\n", conn=c)
        v = b"q" * 20000
        self.assert_reply(encode("ECHO", v), b"$20000\r\n" + v + b"\r\n", conn=c)
        self.assert_reply(encode("MSET", *["a"] * 12), b"+OK\r\n", conn=c)


class TestFraming(ServerTestCase):
    def test_one_byte_at_a_time(self):
        req = encode("SET", "key", b"va\r\nl") + b"GET key\r\n" + encode("ECHO", "x y")
        expected = b"+OK\r\n$5\r\nva\r\nl\r\n$3\r\nx y\r\n"
        c = self.conn(nodelay=True)
        for i in range(len(req)):
            c.send(req[i:i + 1])
            time.sleep(0.002)
        got = b"".join(c.read_raw() for _ in split_replies(expected))
        self.assertEqual(got, expected)
        # identical to one write
        self.assert_reply(req, expected)

    def test_split_at_every_offset(self):
        req = encode("ECHO", b"ab\r\ncd") + b'ECHO "q r"\r\n'
        expected = b"$6\r\nab\r\ncd\r\n$3\r\nq r\r\n"
        c = self.conn(nodelay=True)
        for cut in range(1, len(req)):
            c.send(req[:cut])
            time.sleep(0.003)
            c.send(req[cut:])
            got = c.read_raw() + c.read_raw()
            self.assertEqual(got, expected, "split at %d" % cut)

    def test_pipeline_10000(self):
        c = self.conn()
        n = 10000
        req = b"".join(encode("INCR", "ctr") if i % 2 == 0 else encode("ECHO", str(i))
                       for i in range(n))
        c.send(req)
        want = b"".join(b":%d\r\n" % (i // 2 + 1) if i % 2 == 0
                        else b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(n))
        got = c.read_bytes(len(want), timeout=60)
        self.assertEqual(got, want)
        self.assert_reply(b"PING\r\n", b"+PONG\r\n", conn=c)

    def test_inline_pipeline(self):
        c = self.conn()
        n = 2000
        c.send(b"".join(b"ECHO %d\r\n" % i for i in range(n)))
        want = b"".join(b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(n))
        self.assertEqual(c.read_bytes(len(want), timeout=60), want)

    def test_large_value_round_trip(self):
        size = (16 if SANITIZE else 100) * 1024 * 1024
        block = bytes(range(256)) * 4096          # 1 MB
        val = block * (size // len(block))
        c = self.conn(timeout=120)
        c.send(encode("SET", "big", val))
        self.assertEqual(c.read_raw(timeout=120), b"+OK\r\n")
        c.send_cmd("STRLEN", "big")
        self.assertEqual(c.read(), size)
        c.send_cmd("GET", "big")
        head = b"$%d\r\n" % size
        got = c.read_bytes(len(head) + size + 2, timeout=120)
        self.assertEqual(got[:len(head)], head)
        self.assertTrue(got[len(head):-2] == val, "100 MB value differs after round trip")
        self.assertEqual(got[-2:], b"\r\n")
        self.assertEqual(c.cmd("DEL", "big"), 1)


class TestResp3(ServerTestCase):
    server_flags = ("--requirepass", "pw")
    password = "pw"

    def authed(self):
        c = self.conn()
        self.assert_reply(encode("AUTH", "pw"), b"+OK\r\n", conn=c)
        return c

    def check_hello_map(self, reply, proto):
        if proto == 3:
            self.assertIsInstance(reply, dict)
            fields = {k if isinstance(k, str) else k.decode(): v for k, v in reply.items()}
        else:
            self.assertIsInstance(reply, list)
            self.assertEqual(len(reply) % 2, 0)
            fields = {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}
        self.assertEqual(list(fields), ["server", "version", "proto", "id", "mode", "role", "modules"])
        self.assertEqual(fields["server"], b"redis" if IS_REDIS else b"engram")
        self.assertIsInstance(fields["version"], bytes)
        self.assertRegex(fields["version"].decode(), r"^\d+\.\d+\.\d+")
        self.assertEqual(fields["proto"], proto)
        self.assertIsInstance(fields["id"], int)
        self.assertEqual(fields["mode"], b"standalone")
        self.assertEqual(fields["role"], b"master")
        self.assertIsInstance(fields["modules"], list)
        return fields

    def test_hello3_map_and_nulls(self):
        c = self.authed()
        c.send_cmd("HELLO", "3")
        raw = c.read_raw()
        self.assertTrue(raw.startswith(b"%7\r\n$6\r\nserver\r\n"), raw)
        from engram_test import parse
        fields = self.check_hello_map(parse(raw)[0], 3)
        self.assertEqual(c.cmd("CLIENT", "ID"), fields["id"])
        self.assert_reply(encode("GET", "missing"), b"_\r\n", conn=c)
        self.assert_reply(encode("SET", "a", "1"), b"+OK\r\n", conn=c)
        self.assert_reply(encode("MGET", "a", "missing"), b"*2\r\n$1\r\n1\r\n_\r\n", conn=c)
        self.assert_reply(encode("INCR", "a"), b":2\r\n", conn=c)
        self.assert_reply(b"PING\r\n", b"+PONG\r\n", conn=c)
        self.assert_reply(encode("CONFIG", "GET", "maxclients"),
                          b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", conn=c)
        # back to RESP2
        c.send_cmd("HELLO", "2")
        self.check_hello_map(c.read(), 2)
        self.assert_reply(encode("GET", "missing"), b"$-1\r\n", conn=c)
        self.assert_reply(encode("CONFIG", "GET", "maxclients"),
                          b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", conn=c)

    def test_hello_without_version_keeps_protocol(self):
        c = self.authed()
        c.send_cmd("HELLO")
        self.check_hello_map(c.read(), 2)
        c.send_cmd("HELLO", "3")
        c.read()
        c.send_cmd("HELLO")
        self.check_hello_map(c.read(), 3)

    def test_hello_auth_and_setname(self):
        c = self.conn()
        c.send_cmd("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "myconn")
        self.check_hello_map(c.read(), 3)
        self.assert_reply(encode("CLIENT", "GETNAME"), b"$6\r\nmyconn\r\n", conn=c)
        self.assert_reply(encode("GET", "nothing"), b"_\r\n", conn=c)

    def test_hello_auth_wrong_password(self):
        c = self.conn()
        self.assert_reply(encode("HELLO", "3", "AUTH", "default", "nope"),
                          b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                          conn=c)
        self.assert_reply(encode("GET", "x"), b"-NOAUTH Authentication required.\r\n", conn=c)

    def test_hello_unauthenticated(self):
        self.assert_reply(encode("HELLO", "3"),
                          b"-NOAUTH HELLO must be called with the client already authenticated, "
                          b"otherwise the HELLO AUTH <user> <pass> option can be used to "
                          b"authenticate the client and select the RESP protocol version at the "
                          b"same time\r\n")

    def test_hello_bad_setname(self):
        c = self.authed()
        self.assert_reply(encode("HELLO", "3", "SETNAME", "a b"),
                          b"-ERR Client names cannot contain spaces, newlines or special "
                          b"characters.\r\n", conn=c)

    def test_hello_unsupported_version(self):
        c = self.authed()
        self.assert_reply(encode("HELLO", "4"), b"-NOPROTO unsupported protocol version\r\n", conn=c)
        self.assert_reply(encode("HELLO", "1"), b"-NOPROTO unsupported protocol version\r\n", conn=c)
        self.assert_reply(encode("HELLO", "abc"),
                          b"-ERR Protocol version is not an integer or out of range\r\n", conn=c)
        # still RESP2
        self.assert_reply(encode("GET", "missing"), b"$-1\r\n", conn=c)


class TestTurns(ServerTestCase):
    """A loop pass runs commands for about a millisecond; then a client with
    input left waits for its turn in the next pass (conn.c), so one
    client's long pipeline of slow commands does not hold the others."""

    @engram_only
    def test_a_long_pipeline_does_not_hold_other_clients(self):
        # (Redis runs all ten in one go: the PING waits half a second.)
        a, b = self.conn(), self.conn()
        n = 10
        a.send(b"".join(encode("DEBUG", "SLEEP", "0.05") for _ in range(n)))
        time.sleep(0.02)
        self.assertEqual(b.cmd("PING"), "PONG")
        a.drain()
        answered = len(split_replies(bytes(a.buf)))
        self.assertLess(answered, n, "the PING waited for the whole pipeline")
        for _ in range(n):
            self.assertEqual(a.read(), "OK")
        a.drain()
        self.assertEqual(bytes(a.buf), b"")

    def test_pipeline_split_across_passes_keeps_order(self):
        # Each DEBUG SLEEP outlasts a pass, so nearly every command below
        # runs in a pass of its own, resumed with no new input to wake the
        # loop: the replies must all come, in order.
        a = self.conn()
        a.cmd("DEL", "turns")
        n = 15
        a.send(b"".join(encode("DEBUG", "SLEEP", "0.002") + encode("INCR", "turns")
                        for _ in range(n)))
        for i in range(1, n + 1):
            self.assertEqual(a.read(), "OK")
            self.assertEqual(a.read(), i)
        self.assertEqual(a.cmd("GET", "turns"), b"%d" % n)

    def test_client_gone_while_waiting_for_its_turn(self):
        b = self.conn()
        for how in ("close", "kill"):
            a = self.conn()
            name = "turns-" + how
            a.cmd("CLIENT", "SETNAME", name)
            a.send(b"".join(encode("DEBUG", "SLEEP", "0.005") for _ in range(20)))
            time.sleep(0.01)
            if how == "close":
                a.close()
            else:
                ids = [line for line in b.cmd("CLIENT", "LIST").decode().splitlines()
                       if "name=" + name + " " in line]
                self.assertEqual(len(ids), 1)
                cid = ids[0].split()[0].split("=")[1]
                self.assertEqual(b.cmd("CLIENT", "KILL", "ID", cid), 1)
            self.assertEqual(b.cmd("PING"), "PONG")
        time.sleep(0.2)
        self.assertEqual(b.cmd("PING"), "PONG")


if __name__ == "__main__":
    main()
