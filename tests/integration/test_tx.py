"""MULTI / EXEC / DISCARD / WATCH / UNWATCH."""

import time

from engram_test import ServerTestCase, encode, main

EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"


class TestMultiExec(ServerTestCase):
    def test_queue_and_exec_exact_bytes(self):
        self.assert_reply(b"MULTI\r\nSET a 1\r\nINCR a\r\nGET a\r\nGET nope\r\nEXEC\r\n",
                          b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
                          b"*4\r\n+OK\r\n:2\r\n$1\r\n2\r\n$-1\r\n")

    def test_empty_transaction(self):
        self.assert_reply(b"MULTI\r\nEXEC\r\n", b"+OK\r\n*0\r\n")

    def test_commands_are_not_run_before_exec(self):
        c, other = self.conn(), self.conn()
        self.assert_reply(encode("MULTI"), b"+OK\r\n", conn=c)
        self.assert_reply(encode("SET", "a", "1"), b"+QUEUED\r\n", conn=c)
        self.assertIsNone(other.cmd("GET", "a"))
        self.assert_reply(encode("EXEC"), b"*1\r\n+OK\r\n", conn=c)
        self.assertEqual(other.cmd("GET", "a"), b"1")

    def test_syntax_error_while_queuing_aborts(self):
        c = self.conn()
        self.assert_reply(b"MULTI\r\nSET a 1\r\nfoo bar\r\nSET b 2\r\nEXEC\r\n",
                          b"+OK\r\n+QUEUED\r\n"
                          b"-ERR unknown command 'foo', with args beginning with: 'bar' \r\n"
                          b"+QUEUED\r\n" + EXECABORT, conn=c)
        self.assertEqual(c.cmd("EXISTS", "a", "b"), 0)
        # the transaction is over
        self.assert_reply(b"EXEC\r\n", b"-ERR EXEC without MULTI\r\n", conn=c)

    def test_wrong_arity_while_queuing_aborts(self):
        c = self.conn()
        self.assert_reply(b"MULTI\r\nSET a 1\r\nGET\r\nEXEC\r\n",
                          b"+OK\r\n+QUEUED\r\n"
                          b"-ERR wrong number of arguments for 'get' command\r\n" + EXECABORT,
                          conn=c)
        self.assertEqual(c.cmd("EXISTS", "a"), 0)

    def test_runtime_error_inside_exec(self):
        c = self.conn()
        self.assert_reply(b"MULTI\r\nSET a x\r\nINCR a\r\nSET b 2\r\nEXEC\r\n",
                          b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
                          b"*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n",
                          conn=c)
        self.assertEqual(c.cmd("MGET", "a", "b"), [b"x", b"2"])

    def test_nested_multi(self):
        c = self.conn()
        self.assert_reply(b"MULTI\r\nSET a 1\r\nMULTI\r\nEXEC\r\n",
                          b"+OK\r\n+QUEUED\r\n-ERR MULTI calls can not be nested\r\n*1\r\n+OK\r\n",
                          conn=c)
        self.assertEqual(c.cmd("GET", "a"), b"1")

    def test_exec_discard_without_multi(self):
        c = self.conn()
        self.assert_reply(b"EXEC\r\n", b"-ERR EXEC without MULTI\r\n", conn=c)
        self.assert_reply(b"DISCARD\r\n", b"-ERR DISCARD without MULTI\r\n", conn=c)

    def test_discard(self):
        c = self.conn()
        self.assert_reply(b"MULTI\r\nSET a 1\r\nDISCARD\r\nGET a\r\n",
                          b"+OK\r\n+QUEUED\r\n+OK\r\n$-1\r\n", conn=c)
        self.assert_reply(b"EXEC\r\n", b"-ERR EXEC without MULTI\r\n", conn=c)

    def test_watch_inside_multi(self):
        c = self.conn()
        self.assert_reply(b"MULTI\r\nWATCH a\r\nSET a 1\r\nEXEC\r\n",
                          b"+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n"
                          b"*1\r\n+OK\r\n", conn=c)

    def test_exec_in_resp3(self):
        c = self.conn()
        c.send_cmd("HELLO", "3")
        self.assertIsInstance(c.read(), dict)
        self.assert_reply(b"MULTI\r\nSET a 1\r\nGET nope\r\nEXEC\r\n",
                          b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n_\r\n", conn=c)


class TestWatch(ServerTestCase):
    def tx(self, c, expect_raw):
        self.assert_reply(b"MULTI\r\nSET result done\r\nEXEC\r\n",
                          b"+OK\r\n+QUEUED\r\n" + expect_raw, conn=c)

    def test_watch_then_other_client_modifies(self):
        c, other = self.conn(), self.conn()
        self.assertEqual(c.cmd("SET", "k", "1"), "OK")
        self.assert_reply(b"WATCH k\r\n", b"+OK\r\n", conn=c)
        self.assertEqual(other.cmd("SET", "k", "2"), "OK")
        self.tx(c, b"*-1\r\n")
        self.assertIsNone(c.cmd("GET", "result"))
        # WATCH state is cleared by EXEC: the next transaction goes through
        self.tx(c, b"*1\r\n+OK\r\n")

    def test_watch_nil_in_resp3(self):
        c, other = self.conn(), self.conn()
        c.send_cmd("HELLO", "3")
        c.read()
        self.assert_reply(b"WATCH k\r\n", b"+OK\r\n", conn=c)
        self.assertEqual(other.cmd("INCR", "k"), 1)
        self.tx(c, b"_\r\n")

    def test_watch_missing_key_created(self):
        c, other = self.conn(), self.conn()
        self.assert_reply(b"WATCH k1 k2\r\n", b"+OK\r\n", conn=c)
        self.assertEqual(other.cmd("SET", "k2", "x"), "OK")
        self.tx(c, b"*-1\r\n")

    def test_watch_own_modification(self):
        c = self.conn()
        self.assert_reply(b"WATCH k\r\nSET k 1\r\n", b"+OK\r\n+OK\r\n", conn=c)
        self.tx(c, b"*-1\r\n")

    def test_watch_delete_and_expire_commands(self):
        for mutate in (("DEL", "k"), ("EXPIRE", "k", "100"), ("APPEND", "k", "x"),
                       ("RENAME", "k", "k2"), ("INCR", "k"), ("GETDEL", "k")):
            c, other = self.conn(), self.conn()
            self.assertEqual(c.cmd("SET", "k", "1"), "OK")
            self.assert_reply(b"WATCH k\r\n", b"+OK\r\n", conn=c)
            self.assertIsNotNone(other.cmd(*mutate))
            with self.subTest(mutate=mutate):
                self.tx(c, b"*-1\r\n")
            c.cmd("FLUSHALL")

    def test_unrelated_changes_and_reads_do_not_abort(self):
        c, other = self.conn(), self.conn()
        self.assertEqual(c.cmd("SET", "k", "1"), "OK")
        self.assert_reply(b"WATCH k\r\n", b"+OK\r\n", conn=c)
        self.assertEqual(other.cmd("SET", "unrelated", "1"), "OK")
        self.assertEqual(other.cmd("GET", "k"), b"1")
        self.assertEqual(other.cmd("TTL", "k"), -1)
        self.tx(c, b"*1\r\n+OK\r\n")

    def test_unwatch(self):
        c, other = self.conn(), self.conn()
        self.assert_reply(b"WATCH k\r\n", b"+OK\r\n", conn=c)
        self.assertEqual(other.cmd("SET", "k", "2"), "OK")
        self.assert_reply(b"UNWATCH\r\n", b"+OK\r\n", conn=c)
        self.tx(c, b"*1\r\n+OK\r\n")

    def test_discard_unwatches(self):
        c, other = self.conn(), self.conn()
        self.assert_reply(b"WATCH k\r\nMULTI\r\nDISCARD\r\n", b"+OK\r\n+OK\r\n+OK\r\n", conn=c)
        self.assertEqual(other.cmd("SET", "k", "2"), "OK")
        self.tx(c, b"*1\r\n+OK\r\n")

    def test_watched_key_expiring_counts_as_modified(self):
        c = self.conn()
        self.assertEqual(c.cmd("SET", "k", "v", "PX", "100"), "OK")
        self.assert_reply(b"WATCH k\r\n", b"+OK\r\n", conn=c)
        time.sleep(0.3)
        self.tx(c, b"*-1\r\n")

    def test_flushall_touches_watched_keys(self):
        for flush in ("FLUSHALL", "FLUSHDB"):
            c, other = self.conn(), self.conn()
            self.assertEqual(c.cmd("SET", "k", "1"), "OK")
            self.assert_reply(b"WATCH k\r\n", b"+OK\r\n", conn=c)
            self.assertEqual(other.cmd(flush), "OK")
            with self.subTest(flush=flush):
                self.tx(c, b"*-1\r\n")

    def test_watch_closed_client_does_not_leak(self):
        # a client that WATCHes and disconnects must not break later WATCHes
        for _ in range(20):
            c = self.conn()
            self.assert_reply(b"WATCH a b c\r\nMULTI\r\nSET a 1\r\n", b"+OK\r\n+OK\r\n+QUEUED\r\n",
                              conn=c)
            c.close()
        c, other = self.conn(), self.conn()
        self.assert_reply(b"WATCH a\r\n", b"+OK\r\n", conn=c)
        self.assertEqual(other.cmd("SET", "a", "2"), "OK")
        self.tx(c, b"*-1\r\n")


class TestRedisPyTransactions(ServerTestCase):
    def test_default_pipeline_is_a_transaction(self):
        r = self.client()
        p = r.pipeline()
        p.set("a", "1").incr("a").get("a").get("nope")
        self.assertEqual(p.execute(), [True, 2, b"2", None])

    def test_pipeline_runtime_error(self):
        import redis
        r = self.client()
        r.set("s", "x")
        p = r.pipeline()
        p.set("a", "1").incr("s").get("a")
        res = p.execute(raise_on_error=False)
        self.assertEqual(res[0], True)
        self.assertIsInstance(res[1], redis.ResponseError)
        self.assertEqual(res[2], b"1")

    def test_watch_with_redis_py(self):
        import redis
        r, other = self.client(), self.client()
        r.set("k", "1")
        with r.pipeline() as p:
            p.watch("k")
            v = int(p.get("k"))
            other.set("k", "100")
            p.multi()
            p.set("k", v + 1)
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertEqual(r.get("k"), b"100")
        # optimistic-locking loop succeeds without interference
        def incr(pipe):
            cur = int(pipe.get("k"))
            pipe.multi()
            pipe.set("k", cur + 1)
        r.transaction(incr, "k")
        self.assertEqual(r.get("k"), b"101")


if __name__ == "__main__":
    main()
