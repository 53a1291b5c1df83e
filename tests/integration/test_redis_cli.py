"""redis-cli against the server: argument mode, stdin mode, raw and
formatted output, RESP3 (-3), --scan, -x, and --pipe mass import."""

import subprocess

from engram_test import REDIS_CLI, SLOW, ServerTestCase, encode, main

E_INT = "ERR value is not an integer or out of range"


class TestArgsMode(ServerTestCase):
    def test_raw_output(self):
        # stdout is not a tty: redis-cli defaults to raw output
        self.assertEqual(self.cli("SET", "k", "hello world"), "OK\n")
        self.assertEqual(self.cli("GET", "k"), "hello world\n")
        self.assertEqual(self.cli("GET", "nope"), "\n")
        self.assertEqual(self.cli("INCR", "n"), "1\n")
        self.assertEqual(self.cli("MGET", "k", "nope", "n"), "hello world\n\n1\n")
        self.assertEqual(self.cli("INCR", "k", check=False), E_INT + "\n\n")
        self.assertEqual(self.cli("--raw", "GET", "k"), "hello world\n")
        self.assertEqual(self.cli("ping"), "PONG\n")

    def test_no_raw_output(self):
        self.assertEqual(self.cli("--no-raw", "SET", "k", "hello world"), "OK\n")
        self.assertEqual(self.cli("--no-raw", "GET", "k"), '"hello world"\n')
        self.assertEqual(self.cli("--no-raw", "GET", "nope"), "(nil)\n")
        self.assertEqual(self.cli("--no-raw", "INCR", "n"), "(integer) 1\n")
        self.assertEqual(self.cli("--no-raw", "INCR", "k", check=False), "(error) " + E_INT + "\n")
        self.assertEqual(self.cli("--no-raw", "MGET", "k", "nope", "n"),
                         '1) "hello world"\n2) (nil)\n3) "1"\n')
        self.assertEqual(self.cli("--no-raw", "KEYS", "zz*"), "(empty array)\n")
        self.assertEqual(self.cli("--no-raw", "SET", "nl", "a\nb"), "OK\n")
        self.assertEqual(self.cli("--no-raw", "GET", "nl"), '"a\\nb"\n')
        self.assertEqual(self.cli("GET", "nl"), "a\nb\n")
        self.assertEqual(self.cli("--no-raw", "TTL", "nl"), "(integer) -1\n")
        self.assertEqual(self.cli("--no-raw", "EXPIRE", "nl", "100"), "(integer) 1\n")

    def test_unknown_command(self):
        self.assertEqual(self.cli("--no-raw", "FOO", "x", check=False),
                         "(error) ERR unknown command 'FOO', with args beginning with: 'x' \n")

    def test_resp3(self):
        self.assertEqual(self.cli("-3", "--no-raw", "GET", "nope"), "(nil)\n")
        self.assertEqual(self.cli("-3", "--no-raw", "CONFIG", "GET", "maxclients"),
                         '1# "maxclients" => "10000"\n')
        self.assertEqual(self.cli("-3", "CONFIG", "GET", "maxclients"), "maxclients 10000\n")
        self.assertEqual(self.cli("-3", "--no-raw", "SET", "a", "1"), "OK\n")
        self.assertEqual(self.cli("-3", "--no-raw", "MGET", "a", "nope"), '1) "1"\n2) (nil)\n')

    def test_repeat_and_stdin_arg(self):
        self.assertEqual(self.cli("-r", "3", "INCR", "ctr"), "1\n2\n3\n")
        self.assertEqual(self.cli("-x", "SET", "fromstdin", stdin=b"line one\nline two\n"), "OK\n")
        self.assertEqual(self.cli("--no-raw", "GET", "fromstdin"), '"line one\\nline two\\n"\n')

    def test_scan(self):
        r = self.conn()
        r.send(b"".join(encode("SET", "key:%d" % i, "v") for i in range(300)))
        for _ in range(300):
            self.assertEqual(r.read(), "OK")
        self.assertEqual(r.cmd("SET", "other", "v"), "OK")
        out = self.cli("--scan", "--pattern", "key:*")
        self.assertEqual(sorted(out.split()), sorted("key:%d" % i for i in range(300)))
        out = self.cli("--scan")
        self.assertEqual(len(out.split()), 301)

    def test_info(self):
        out = self.cli("INFO", "server")
        self.assertTrue(out.startswith("# Server"), out[:100])
        self.assertIn("tcp_port:%d" % self.port, out)


class TestStdinMode(ServerTestCase):
    SCRIPT = b"SET a 1\nINCR a\nGET a\nGET nope\nFOO\nSET 'q k' \"x y\"\nGET 'q k'\n"

    def test_raw(self):
        out = self.cli(stdin=self.SCRIPT, check=False)
        self.assertEqual(out, "OK\n2\n2\n\nERR unknown command 'FOO', with args beginning with: "
                              "\n\nOK\nx y\n")

    def test_no_raw(self):
        out = self.cli("--no-raw", stdin=self.SCRIPT, check=False)
        self.assertEqual(out, 'OK\n(integer) 2\n"2"\n(nil)\n'
                              "(error) ERR unknown command 'FOO', with args beginning with: \n"
                              'OK\n"x y"\n')

    def test_transaction_in_stdin(self):
        out = self.cli("--no-raw", stdin=b"MULTI\nSET t 1\nINCR t\nEXEC\n")
        self.assertEqual(out, 'OK\nQUEUED\nQUEUED\n1) OK\n2) (integer) 2\n')


class TestPipe(ServerTestCase):
    def test_pipe_import(self):
        n = 3000
        data = b"".join(encode("SET", "key:%d" % i, "value-%d" % i) for i in range(n))
        out = self.cli("--pipe", stdin=data)
        self.assertIn("All data transferred. Waiting for the last reply...", out)
        self.assertIn("Last reply received from server.", out)
        self.assertIn("errors: 0, replies: %d" % n, out)
        c = self.conn()
        self.assertEqual(c.cmd("DBSIZE"), n)
        self.assertEqual(c.cmd("GET", "key:1234"), b"value-1234")

    def test_pipe_counts_errors(self):
        data = (encode("SET", "a", "x") + encode("INCR", "a") + encode("INCR", "b")
                + b"SET inline 'v w'\r\n" + encode("GET"))
        out = self.cli("--pipe", stdin=data, check=False)
        self.assertIn("errors: 2, replies: 5", out)
        self.assertEqual(self.conn().cmd("GET", "inline"), b"v w")


class TestCliAuth(ServerTestCase):
    server_flags = ("--requirepass", "pw")
    password = "pw"

    def test_password(self):
        self.assertEqual(self.cli("-a", "pw", "--no-auth-warning", "PING"), "PONG\n")
        self.assertEqual(self.cli("--no-raw", "PING", check=False),
                         "(error) NOAUTH Authentication required.\n")
        out = self.cli("-a", "bad", "--no-auth-warning", "PING", check=False)
        self.assertIn("NOAUTH Authentication required.", out)


if __name__ == "__main__":
    main()
