"""The vector commands from real clients: a redis-py (Debian python3-redis)
session with struct-packed float32 blobs and pipelines, and redis-cli with
the VALUES text form (argument mode, stdin mode, -x for a blob, RESP3).

engram-only: real Redis 7.0 has no vector commands."""

import math
import random
import struct
import subprocess
import threading

from engram_test import REDIS_CLI, SLOW, ServerTestCase, engram_only, main


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def pack(vals):
    return struct.pack("<%df" % len(vals), *vals)


def unpack(b):
    return list(struct.unpack("<%df" % (len(b) // 4), b))


def l2(a, b):
    return math.sqrt(sum((x - y) * (x - y) for x, y in zip(a, b)))


# ---- redis-py -----------------------------------------------------------------------

@engram_only
class TestRedisPy(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.r = self.client()

    def test_session(self):
        import redis
        r = self.r
        x = r.execute_command
        self.assertEqual(x("VNEW", "docs", 4, "METRIC", "l2", "TYPE", "flat"), b"OK")
        self.assertEqual(x("VNEW", "emb", 4), b"OK")
        rnd = random.Random(8)
        vecs = {"doc:%d" % i: [f32(rnd.uniform(-1, 1)) for _ in range(4)] for i in range(50)}
        for k, v in vecs.items():
            self.assertEqual(x("VADD", "docs", k, pack(v)), 1)
            self.assertEqual(x("VADD", "emb", k, pack(v)), 1)
        self.assertEqual(x("VADD", "docs", "doc:0", pack(vecs["doc:0"])), 0)
        self.assertEqual(x("VCARD", "docs"), 50)
        self.assertEqual(x("VEXISTS", "docs", "doc:7"), 1)
        self.assertEqual(x("VEXISTS", "docs", "doc:99"), 0)
        # VGET gives back the exact bytes
        for k, v in vecs.items():
            self.assertEqual(x("VGET", "docs", k), pack(v))
        self.assertIsNone(x("VGET", "docs", "doc:99"))
        # VSEARCH: flat key, distance list; distances parse as floats
        q = [0.1, -0.2, 0.3, 0.0]
        res = x("VSEARCH", "docs", pack(q), 5)
        self.assertEqual(len(res), 10)
        keys = [k.decode() for k in res[0::2]]
        dists = [float(d) for d in res[1::2]]
        want = sorted(vecs, key=lambda k: l2(q, vecs[k]))[:5]
        self.assertEqual(keys, want)
        for k, d in zip(keys, dists):
            self.assertAlmostEqual(d, l2(q, vecs[k]), delta=1e-5)
        # the VALUES form through redis-py too
        res2 = x("VSEARCH", "docs", "VALUES", 4, *q, 5)
        self.assertEqual(res2[0::2], res[0::2])
        res3 = x("VSEARCH", "emb", pack(q), 3, "EF", 50)
        self.assertEqual(len(res3), 6)
        # VINFO as a flat list
        info = x("VINFO", "docs", "FULL")
        d = {info[i].decode(): info[i + 1] for i in range(0, len(info), 2)}
        self.assertEqual((d["dim"], d["metric"], d["type"], d["count"]), (4, b"l2", b"flat", 50))
        self.assertEqual(x("VLIST"), [b"docs", b"emb"])
        self.assertEqual(x("VDEL", "docs", "doc:1"), 1)
        self.assertEqual(x("VDEL", "docs", "doc:1"), 0)
        # errors arrive as ResponseError, with the server's text
        with self.assertRaises(redis.ResponseError) as cm:
            x("VADD", "docs", "k", pack([1, 2, 3]))
        self.assertEqual(str(cm.exception), "wrong vector dimension: index expects 4, got 3")
        with self.assertRaises(redis.ResponseError) as cm:
            x("VSEARCH", "nope", pack(q), 1)
        self.assertEqual(str(cm.exception), "no such index 'nope'")
        with self.assertRaises(redis.ResponseError) as cm:
            x("VADD", "docs", "k", pack([1, float("nan"), 3, 4]))
        self.assertEqual(str(cm.exception), "invalid vector encoding: value 1 is NaN or infinite")
        with self.assertRaises(redis.ResponseError) as cm:
            x("VSAVE")
        self.assertEqual(str(cm.exception), "persistence not enabled; start with --dir")
        self.assertEqual(x("VDROP", "emb"), b"OK")
        self.assertEqual(x("VLIST"), [b"docs"])
        # the connection is still in sync after the errors
        self.assertTrue(r.ping())
        self.assertEqual(x("VCARD", "docs"), 49)

    def test_binary_keys(self):
        x = self.r.execute_command
        self.assertEqual(x("VNEW", b"bin\x00idx", 2, "METRIC", "dot", "TYPE", "flat"), b"OK")
        keys = [b"\x00", b"\xff\x00\xfe", b"k\r\n", b"plain"]
        for i, k in enumerate(keys):
            self.assertEqual(x("VADD", b"bin\x00idx", k, pack([i, 1])), 1)
        res = x("VSEARCH", b"bin\x00idx", pack([1, 0]), 4)
        # dot: distance -(i*1 + 1*0) = -i, so the largest i first
        self.assertEqual(res[0::2], keys[::-1])
        self.assertEqual(res[1::2], [b"-3", b"-2", b"-1", b"0"])
        self.assertEqual(x("VGET", b"bin\x00idx", b"\xff\x00\xfe"), pack([1, 1]))

    def test_pipeline_without_transaction(self):
        import redis
        r = self.r
        r.execute_command("VNEW", "p", 2, "METRIC", "l2", "TYPE", "flat")
        pipe = r.pipeline(transaction=False)
        for i in range(200):
            pipe.execute_command("VADD", "p", "k%d" % i, pack([i, 0]))
            if i % 10 == 9:
                pipe.execute_command("VSEARCH", "p", pack([i, 0]), 2)
                pipe.set("last", i)
        pipe.execute_command("VCARD", "p")
        pipe.execute_command("VGET", "nope", "k")
        pipe.get("last")
        out = pipe.execute(raise_on_error=False)
        j = 0
        for i in range(200):
            self.assertEqual(out[j], 1)
            j += 1
            if i % 10 == 9:
                self.assertEqual(out[j], [b"k%d" % i, b"0", b"k%d" % (i - 1), b"1"])
                self.assertTrue(out[j + 1])
                j += 2
        self.assertEqual(out[j], 200)
        self.assertIsInstance(out[j + 1], redis.ResponseError)
        self.assertEqual(str(out[j + 1]), "no such index 'nope'")
        self.assertEqual(out[j + 2], b"199")

    def test_transaction_pipeline(self):
        r = self.r
        r.execute_command("VNEW", "t", 2, "METRIC", "l2", "TYPE", "flat")
        with r.pipeline() as pipe:          # MULTI ... EXEC
            pipe.execute_command("VADD", "t", "a", pack([0, 0]))
            pipe.execute_command("VADD", "t", "b", pack([3, 4]))
            pipe.execute_command("VSEARCH", "t", pack([0, 0]), 10)
            pipe.execute_command("VCARD", "t")
            pipe.incr("n")
            out = pipe.execute()
        self.assertEqual(out, [1, 1, [b"a", b"0", b"b", b"5"], 2, 1])

    def test_threads_share_a_pool(self):
        r = self.r
        r.execute_command("VNEW", "s", 8, "METRIC", "cosine")
        rnd = random.Random(9)
        vecs = [[f32(rnd.uniform(-1, 1)) for _ in range(8)] for _ in range(300)]
        pipe = r.pipeline(transaction=False)
        for i, v in enumerate(vecs):
            pipe.execute_command("VADD", "s", "k%d" % i, pack(v))
        self.assertEqual(pipe.execute(), [1] * len(vecs))
        errors = []

        def work(t):
            try:
                for i in range(t, 300, 6):
                    res = r.execute_command("VSEARCH", "s", pack(vecs[i]), 1)
                    if res[0] != b"k%d" % i or abs(float(res[1])) > 1e-6:
                        errors.append((i, res))
            except Exception as e:      # noqa: B902 -- reported below
                errors.append(e)
        ts = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60 * SLOW)
        self.assertEqual(errors, [])


# ---- redis-cli ----------------------------------------------------------------------

@engram_only
class TestRedisCli(ServerTestCase):
    def test_args_mode(self):
        self.assertEqual(self.cli("VNEW", "idx", "3", "METRIC", "l2", "TYPE", "flat"), "OK\n")
        self.assertEqual(self.cli("VADD", "idx", "a", "VALUES", "3", "1", "2", "3"), "1\n")
        self.assertEqual(self.cli("VADD", "idx", "b", "VALUES", "3", "1", "6", "6"), "1\n")
        self.assertEqual(self.cli("VADD", "idx", "b", "values", "3", "1", "6", "3"), "0\n")
        # raw output (stdout is not a tty): one line per element
        self.assertEqual(self.cli("VSEARCH", "idx", "VALUES", "3", "1", "2", "3", "5"),
                         "a\n0\nb\n4\n")
        self.assertEqual(self.cli("--no-raw", "VSEARCH", "idx", "VALUES", "3", "1", "2", "3",
                                  "1"), '1) "a"\n2) "0"\n')
        self.assertEqual(self.cli("--no-raw", "VSEARCH", "idx", "VALUES", "3", "1", "2", "3",
                                  "0"), "(empty array)\n")
        self.assertEqual(self.cli("VCARD", "idx"), "2\n")
        self.assertEqual(self.cli("--no-raw", "VCARD", "idx"), "(integer) 2\n")
        self.assertEqual(self.cli("VEXISTS", "idx", "a"), "1\n")
        self.assertEqual(self.cli("--no-raw", "VGET", "idx", "a"),
                         '"\\x00\\x00\\x80?\\x00\\x00\\x00@\\x00\\x00@@"\n')
        self.assertEqual(self.cli("--no-raw", "VGET", "idx", "zz"), "(nil)\n")
        self.assertEqual(self.cli("VLIST"), "idx\n")
        self.assertEqual(self.cli("VDEL", "idx", "a"), "1\n")
        self.assertEqual(self.cli("VDEL", "idx", "a"), "0\n")
        # errors
        self.assertEqual(self.cli("--no-raw", "VADD", "nope", "a", "VALUES", "1", "1",
                                  check=False), "(error) ERR no such index 'nope'\n")
        self.assertEqual(self.cli("--no-raw", "VADD", "idx", "a", "VALUES", "3", "1", "nan", "3",
                                  check=False),
                         "(error) ERR invalid vector encoding: 'nan' is not a finite number\n")
        self.assertEqual(self.cli("--no-raw", "VADD", "idx", "a", "VALUES", "2", "1", "2",
                                  check=False),
                         "(error) ERR wrong vector dimension: index expects 3, got 2\n")
        self.assertEqual(self.cli("--no-raw", "VSEARCH", "idx", "VALUES", "3", "1", "2", "3",
                                  "-1", check=False),
                         "(error) ERR k must be an integer between 0 and 10000, got '-1'\n")
        self.assertEqual(self.cli("--no-raw", "VSAVE", check=False),
                         "(error) ERR persistence not enabled; start with --dir\n")
        self.assertEqual(self.cli("VDROP", "idx"), "OK\n")
        self.assertEqual(self.cli("--no-raw", "VLIST"), "(empty array)\n")

    def test_vinfo_output(self):
        self.assertEqual(self.cli("VNEW", "h", "8", "METRIC", "ip", "M", "8"), "OK\n")
        out = self.cli("--no-raw", "VINFO", "h", "FULL").splitlines()
        lines = [l.split(") ", 1)[1] for l in out]
        fields = dict(zip(lines[0::2], lines[1::2]))
        self.assertEqual(fields['"dim"'], '(integer) 8')
        self.assertEqual(fields['"metric"'], '"dot"')
        self.assertEqual(fields['"type"'], '"hnsw"')
        self.assertEqual(fields['"M"'], '(integer) 8')
        # RESP3: a map
        out = self.cli("-3", "--no-raw", "VINFO", "h", "FULL")
        self.assertIn('# "dim" => (integer) 8\n', out)
        self.assertIn('# "metric" => "dot"\n', out)

    def test_resp3_vsearch(self):
        self.assertEqual(self.cli("VNEW", "i", "2", "METRIC", "l2", "TYPE", "flat"), "OK\n")
        self.assertEqual(self.cli("VADD", "i", "a", "VALUES", "2", "0", "0"), "1\n")
        self.assertEqual(self.cli("VADD", "i", "b", "VALUES", "2", "3", "4"), "1\n")
        self.assertEqual(self.cli("VADD", "i", "c", "VALUES", "2", "0.5", "0"), "1\n")
        self.assertEqual(self.cli("-3", "--no-raw", "VSEARCH", "i", "VALUES", "2", "0", "0", "3"),
                         '1) 1) "a"\n   2) (double) 0\n2) 1) "c"\n   2) (double) 0.5\n'
                         '3) 1) "b"\n   2) (double) 5\n')
        self.assertEqual(self.cli("-3", "VSEARCH", "i", "VALUES", "2", "0", "0", "2"),
                         "a\n0\nc\n0.5\n")

    def test_stdin_mode(self):
        script = ("VNEW s 2 METRIC l2 TYPE flat\n"
                  "VADD s a VALUES 2 0 0\n"
                  "VADD s b VALUES 2 3 4\n"
                  "VADD s b VALUES 2 6 8\n"
                  "VSEARCH s VALUES 2 0 0 2\n"
                  "VCARD s\n"
                  "VADD s c VALUES 2 inf 1\n"
                  "VADD s c VALUES 3 1 2\n"
                  "VSEARCH s VALUES 2 6 8 1 EF 5\n"
                  "VLIST\n")
        out = self.cli(stdin=script.encode(), check=False)
        self.assertEqual(out,
                         "OK\n1\n1\n0\n"
                         "a\n0\nb\n10\n"
                         "2\n"
                         "ERR invalid vector encoding: 'inf' is not a finite number\n\n"
                         "ERR invalid vector encoding: VALUES 3 needs 3 numbers, got 2\n\n"
                         "b\n0\n"
                         "s\n")
        out = self.cli("--no-raw", stdin=b"VSEARCH s VALUES 2 0 0 5\nVEXISTS s c\n")
        self.assertEqual(out, '1) "a"\n2) "0"\n3) "b"\n4) "10"\n(integer) 0\n')

    def test_blob_from_stdin(self):
        # -x sends stdin as the last argument: a raw little-endian float32 blob
        self.assertEqual(self.cli("VNEW", "x", "3", "METRIC", "l2", "TYPE", "flat"), "OK\n")
        v = [0.5, -1.0, 2.0]
        self.assertEqual(self.cli("-x", "VADD", "x", "k", stdin=pack(v)), "1\n")
        self.assertEqual(self.cli("--no-raw", "VGET", "x", "k"),
                         '"\\x00\\x00\\x00?\\x00\\x00\\x80\\xbf\\x00\\x00\\x00@"\n')
        self.assertEqual(self.cli("VSEARCH", "x", "VALUES", "3", "0.5", "-1", "2", "1"), "k\n0\n")
        self.assertEqual(self.cli("--no-raw", "-x", "VADD", "x", "bad", stdin=b"12345",
                                  check=False),
                         "(error) ERR invalid vector encoding: 5 bytes is not 1 to 65536 float32 "
                         "values\n")


if __name__ == "__main__":
    main()
