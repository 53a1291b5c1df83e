"""engram-pipe, the pipe-friendly client, driven as a user drives it: the real
binary with real pipes on stdin/stdout/stderr, against the real server.

What is checked: ingest (every line stored once, CRLF and empty lines, any
bytes, long lines cut), --create (with CAPACITY, and an existing index kept),
--query output (TSV escaping, --json parsed with json.loads, --maxdist),
--watch (exactly the new lines within the radius, promptly, in id order,
also when older matches crowd the search), exit codes and messages
(unreachable server 2, missing index 3, usage 1), AUTH, --progress on stderr
only, and reconnection across a server restart on the same --dir
(at-least-once: every line present, duplicates allowed).

Needs the streaming grammar (VNEW ... EMBED, VADD index * TEXT,
VSEARCH index TEXT ... MAXDIST WITHPAYLOAD).

engram-pipe comes from $ENGRAM_PIPE_BIN, by default next to $ENGRAM_BIN.
engram-only: real Redis has no vector commands."""

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time

from engram_test import (SLOW, Server, ServerTestCase, encode, engram_bin, engram_only,
                         free_port, main, wait_until)

QUERY = "disk failure detected on storage node"


def pipe_bin():
    return os.environ.get("ENGRAM_PIPE_BIN") or os.path.join(
        os.path.dirname(engram_bin()), "engram-pipe")


def info(conn, index):
    r = conn.cmd("VINFO", index, "FULL")
    assert isinstance(r, list), r
    return {r[i].decode() if isinstance(r[i], bytes) else r[i]: r[i + 1]
            for i in range(0, len(r), 2)}


def vcard(conn, index):
    return conn.cmd("VCARD", index)


class PipeCase(ServerTestCase):
    def pipe_args(self, *args, port=None):
        return [pipe_bin(), "--port", str(port or self.port)] + [str(a) for a in args]

    def run_pipe(self, *args, input=b"", port=None, timeout=60):
        """Run to completion; (exit status, stdout bytes, stderr text)."""
        p = subprocess.run(self.pipe_args(*args, port=port), input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout * SLOW)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

    def start_pipe(self, *args, port=None):
        p = subprocess.Popen(self.pipe_args(*args, port=port), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self._reap, p)
        return p

    @staticmethod
    def _reap(p):
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass

    def search(self, conn, index, text, k, *extra):
        """VSEARCH ... WITHPAYLOAD as [(key, distance, payload)]."""
        r = conn.cmd("VSEARCH", index, "TEXT", text, k, *extra, "WITHPAYLOAD")
        self.assertIsInstance(r, list, r)
        return [(r[i], float(r[i + 1]), r[i + 2]) for i in range(0, len(r), 3)]

    def assert_ok(self, rc, out, err, stdout_empty=True):
        self.assertEqual((rc, err), (0, ""), "engram-pipe failed")
        if stdout_empty:
            self.assertEqual(out, b"")


def tsv_unescape(field):
    out, i = bytearray(), 0
    while i < len(field):
        if field[i:i + 1] == b"\\":
            out += {b"\\": b"\\", b"t": b"\t", b"n": b"\n", b"r": b"\r"}[field[i + 1:i + 2]]
            i += 2
        else:
            out += field[i:i + 1]
            i += 1
    return bytes(out)


def word(i):
    """A distinct lower-case word for every i (base 26, at least 3 letters)."""
    out = b""
    i += 26 * 26
    while i:
        out = bytes([97 + i % 26]) + out
        i //= 26
    return out


def readline_within(stream, timeout):
    """One line from a child's stdout, or fail instead of hanging."""
    r, _, _ = select.select([stream], [], [], timeout * SLOW)
    assert r, "no output within %.0f s" % (timeout * SLOW)
    return stream.readline()


def parse_tsv(out):
    rows = []
    for line in out.split(b"\n")[:-1]:
        f = line.split(b"\t")
        assert len(f) == 3, line
        rows.append((float(f[0]), tsv_unescape(f[1]), tsv_unescape(f[2])))
    assert out == b"" or out.endswith(b"\n")
    return rows


@engram_only
class TestIngest(PipeCase):
    def test_ingest_then_query(self):
        lines = ["request %s served by worker %d in %d ms" % (word(i).decode(), i % 7, i * 13 % 997)
                 for i in range(3000)]
        rc, out, err = self.run_pipe("--index", "logs", "--create", "--type", "flat",
                                     input="".join(l + "\n" for l in lines).encode())
        self.assert_ok(rc, out, err)
        c = self.conn()
        self.assertEqual(vcard(c, "logs"), len(lines))
        self.assertEqual(info(c, "logs")["dim"], 256)
        # the stored line is its own nearest neighbour, payload = the line
        for probe in (0, 1234, 2999):
            rc, out, err = self.run_pipe("--index", "logs", "--query", lines[probe], "-k", 3)
            self.assert_ok(rc, out, err, stdout_empty=False)
            rows = parse_tsv(out)
            self.assertEqual(len(rows), 3)
            self.assertLess(rows[0][0], 1e-4)
            self.assertEqual(rows[0][2], lines[probe].encode())
            self.assertEqual([r[0] for r in rows], sorted(r[0] for r in rows))

    def test_framing_and_bytes(self):
        raw = (b"plain line\n"
               b"windows line\r\n"
               b"\n\r\n"                                   # empty lines are skipped
               b"tab\there back\\slash quote\" cr\rmid\n"
               b"latin1 caf\xe9 utf8 caf\xc3\xa9 nul\x00end\n"
               b"last line without newline")
        rc, out, err = self.run_pipe("--index", "b", "--create", "--type", "flat", input=raw)
        self.assert_ok(rc, out, err)
        c = self.conn()
        want = [b"plain line", b"windows line", b"tab\there back\\slash quote\" cr\rmid",
                b"latin1 caf\xe9 utf8 caf\xc3\xa9 nul\x00end", b"last line without newline"]
        self.assertEqual(vcard(c, "b"), len(want))
        stored = sorted(p for _, _, p in self.search(c, "b", "line", 100))
        self.assertEqual(stored, sorted(want))

        # TSV: one result per line, \ tab LF CR escaped, everything else raw
        rc, out, err = self.run_pipe("--index", "b", "--query", "tab here back slash", "-k", 100)
        self.assert_ok(rc, out, err, stdout_empty=False)
        self.assertEqual(out.count(b"\n"), len(want))
        self.assertIn(b"\ttab\\there back\\\\slash quote\" cr\\rmid\n", out)
        self.assertEqual(sorted(r[2] for r in parse_tsv(out)), sorted(want))

        # JSON: json.loads works on every line; non-UTF-8 bytes are \u00XX
        rc, out, err = self.run_pipe("--index", "b", "--query", "latin1", "-k", 100, "--json")
        self.assert_ok(rc, out, err, stdout_empty=False)
        objs = [json.loads(l) for l in out.decode("utf-8").splitlines()]
        self.assertEqual(len(objs), len(want))
        for o in objs:
            self.assertEqual(sorted(o), ["distance", "key", "payload"])
            self.assertIsInstance(o["distance"], (int, float))
            self.assertIsInstance(o["key"], str)
        payloads = {o["payload"] for o in objs}
        self.assertIn("latin1 caf\u00e9 utf8 caf\u00e9 nul\u0000end", payloads)
        self.assertIn("tab\there back\\slash quote\" cr\rmid", payloads)
        self.assertIn(b'caf\\u00e9 utf8 caf\xc3\xa9 nul\\u0000end', out)

    def test_lines_without_words_are_skipped(self):
        # separators in a log have nothing to embed: skipped, not fatal
        raw = b"first entry\n-----------\n  \t \n=====\nsecond entry\n"
        rc, out, err = self.run_pipe("--index", "sep", "--create", input=raw)
        self.assert_ok(rc, out, err)
        self.assertEqual(vcard(self.conn(), "sep"), 2)
        rc, out, err = self.run_pipe("--index", "sep", "--progress", input=raw)
        self.assertEqual((rc, out), (0, b""))
        self.assertRegex(err, r"engram-pipe: done: 2 lines in [0-9.]+ s, \d+ lines/s, "
                         r"3 without words skipped\n$")

    def test_long_lines_are_cut(self):
        raw = b"a" * 100000 + b"\nshort one\n" + b"b" * 5000 + b"\r\n"
        rc, out, err = self.run_pipe("--index", "cut", "--create", "--type", "flat",
                                     "--max-line", 1000, input=raw)
        self.assert_ok(rc, out, err)
        c = self.conn()
        self.assertEqual(vcard(c, "cut"), 3)
        stored = sorted(p for _, _, p in self.search(c, "cut", "short one", 10))
        self.assertEqual(stored, sorted([b"a" * 1000, b"short one", b"b" * 1000]))

    def test_create_with_capacity(self):
        lines = "".join("job %d finished with status %d\n" % (i, i % 3) for i in range(200))
        rc, out, err = self.run_pipe("--index", "ring", "--create", "--capacity", 50,
                                     "--dim", 64, input=lines.encode())
        self.assert_ok(rc, out, err)
        c = self.conn()
        i = info(c, "ring")
        self.assertEqual(i["count"], 50)
        self.assertEqual(i["dim"], 64)

    def test_create_keeps_existing_index(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "old", 32, "EMBED", "hash"), "OK")
        rc, out, err = self.run_pipe("--index", "old", "--create", "--dim", 256,
                                     input=b"one\ntwo\n")
        self.assert_ok(rc, out, err)
        self.assertEqual(info(c, "old")["dim"], 32)
        self.assertEqual(vcard(c, "old"), 2)

    def test_slow_producer_sees_each_line_promptly(self):
        p = self.start_pipe("--index", "slow", "--create")
        c = self.conn()
        for n in (1, 2, 3):
            p.stdin.write(b"tick number %d\n" % n)
            p.stdin.flush()
            # stdin stays open: the line must be sent without waiting for more
            self.assertTrue(wait_until(lambda: vcard(c, "slow") == n, 5),
                            "line %d not stored while stdin is open" % n)
        p.stdin.close()
        self.assertEqual(p.wait(20 * SLOW), 0, p.stderr.read())
        self.assertEqual(p.stdout.read(), b"")

    def test_progress_goes_to_stderr_only(self):
        p = self.start_pipe("--index", "prog", "--create", "--progress")
        for i in range(25):
            p.stdin.write(b"".join(b"progress line %d.%d\n" % (i, j) for j in range(40)))
            p.stdin.flush()
            time.sleep(0.1)
        p.stdin.close()
        self.assertEqual(p.wait(30 * SLOW), 0)
        self.assertEqual(p.stdout.read(), b"")
        err = p.stderr.read().decode()
        ticks = re.findall(r"^engram-pipe: (\d+) lines/s, (\d+) total$", err, re.M)
        self.assertGreaterEqual(len(ticks), 1, err)
        totals = [int(t[1]) for t in ticks]
        self.assertEqual(totals, sorted(totals))
        self.assertRegex(err, r"engram-pipe: done: 1000 lines in [0-9.]+ s")
        self.assertEqual(vcard(self.conn(), "prog"), 1000)


@engram_only
class TestQuery(PipeCase):
    def setUp(self):
        super().setUp()
        self.lines = [QUERY, QUERY + " again", "error: " + QUERY,
                      "user alice logged in from the office",
                      "cache warmed up in twelve seconds",
                      "scheduled backup completed without errors"]
        rc, out, err = self.run_pipe("--index", "q", "--create", "--type", "flat",
                                     input="".join(l + "\n" for l in self.lines).encode())
        self.assert_ok(rc, out, err)

    def test_tsv_k_and_order(self):
        rc, out, err = self.run_pipe("--index", "q", "--query", QUERY, "-k", 2)
        self.assert_ok(rc, out, err, stdout_empty=False)
        rows = parse_tsv(out)
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[0][2], QUERY.encode())
        self.assertLess(rows[0][0], 1e-4)
        self.assertLessEqual(rows[0][0], rows[1][0])
        # the key is the id VADD * assigned
        c = self.conn()
        r = c.cmd("VSEARCH", "q", "TEXT", QUERY, 1)
        self.assertEqual(rows[0][1], r[0])

    def test_maxdist_filters(self):
        c = self.conn()
        every = self.search(c, "q", QUERY, 10)
        self.assertEqual(len(every), len(self.lines))
        cut = (every[2][1] + every[3][1]) / 2
        rc, out, err = self.run_pipe("--index", "q", "--query", QUERY, "-k", 10,
                                     "--maxdist", "%.6f" % cut)
        self.assert_ok(rc, out, err, stdout_empty=False)
        rows = parse_tsv(out)
        self.assertEqual([r[2] for r in rows], [p for _, d, p in every if d <= cut])
        self.assertTrue(all(r[0] <= cut for r in rows))

    def test_json(self):
        rc, out, err = self.run_pipe("--index", "q", "--query", QUERY, "-k", 10, "--json")
        self.assert_ok(rc, out, err, stdout_empty=False)
        objs = [json.loads(l) for l in out.decode().splitlines()]
        self.assertEqual(len(objs), len(self.lines))
        self.assertEqual(sorted(o["payload"] for o in objs), sorted(self.lines))
        self.assertEqual([o["distance"] for o in objs], sorted(o["distance"] for o in objs))

    def test_empty_result_prints_nothing(self):
        rc, out, err = self.run_pipe("--index", "q", "--query", QUERY, "-k", 0)
        self.assert_ok(rc, out, err)


@engram_only
class TestWatch(PipeCase):
    NEAR = [QUERY, "ALERT " + QUERY, QUERY + " now"]
    FAR = ["user alice logged in from the office", "cache warmed up in twelve seconds",
           "scheduled backup completed without errors", "GET /index.html 200 512 bytes"]

    def run_watch(self, chunks, maxdist="0.4", index="w", extra=()):
        """Feed chunks with pauses (separate batches); all stdout, parsed."""
        p = self.start_pipe("--index", index, "--create", "--type", "flat",
                            "--watch", QUERY, "--maxdist", maxdist, *extra)
        for ch in chunks:
            p.stdin.write(ch.encode() if isinstance(ch, str) else ch)
            p.stdin.flush()
            time.sleep(0.05)
        p.stdin.close()
        rc = p.wait(60 * SLOW)
        out, err = p.stdout.read(), p.stderr.read().decode()
        self.assertEqual((rc, err), (0, ""))
        return out

    def test_prints_exactly_the_close_lines(self):
        lines = []
        for i in range(40):
            lines.append(self.NEAR[i % 3] if i % 4 == 0 else self.FAR[i % 4])
        chunks = ["".join(l + "\n" for l in lines[i:i + 7]) for i in range(0, len(lines), 7)]
        out = self.run_watch(chunks)
        rows = parse_tsv(out)
        printed = [r[2].decode() for r in rows]
        self.assertEqual(printed, [l for l in lines if l in self.NEAR])
        self.assertTrue(all(r[0] <= 0.4 for r in rows))
        # in id order, and the very same set an exact search finds afterwards
        c = self.conn()
        truth = self.search(c, "w", QUERY, 1000, "MAXDIST", "0.4")
        self.assertEqual(sorted(r[1] for r in rows), sorted(t[0] for t in truth))
        self.assertEqual(vcard(c, "w"), len(lines))

    def test_prints_as_lines_arrive(self):
        p = self.start_pipe("--index", "live", "--create", "--watch", QUERY, "--maxdist", "0.4")
        p.stdin.write(b"nothing interesting here\n" + QUERY.encode() + b"\n")
        p.stdin.flush()
        # stdin is still open: the hit must come out now
        line = readline_within(p.stdout, 10)
        self.assertEqual(parse_tsv(line)[0][2], QUERY.encode())
        p.stdin.write(b"ALERT " + QUERY.encode() + b"\n")
        p.stdin.flush()
        self.assertEqual(parse_tsv(readline_within(p.stdout, 10))[0][2],
                         b"ALERT " + QUERY.encode())
        p.stdin.close()
        self.assertEqual(p.wait(20 * SLOW), 0)
        self.assertEqual(p.stdout.read(), b"")

    def test_older_matches_do_not_hide_new_ones(self):
        # 300 equal matches already stored, then 600 more in many batches:
        # each batch's search must find its new copies behind all the older
        # equal ones (the client widens k when a result comes back full).
        rc, out, err = self.run_pipe("--index", "crowd", "--create", "--type", "flat",
                                     input=((QUERY + "\n") * 300).encode())
        self.assert_ok(rc, out, err)
        chunks = [(QUERY + "\n") * 50 + self.FAR[i % 4] + "\n" for i in range(12)]
        out = self.run_watch(chunks, index="crowd")
        rows = parse_tsv(out)
        self.assertEqual(len(rows), 600)
        self.assertEqual(len({r[1] for r in rows}), 600)
        self.assertTrue(all(r[2] == QUERY.encode() for r in rows))

    def test_json(self):
        out = self.run_watch([QUERY + "\nfar away words\n"], extra=("--json",), index="wj")
        objs = [json.loads(l) for l in out.decode().splitlines()]
        self.assertEqual([o["payload"] for o in objs], [QUERY])


@engram_only
class TestErrors(PipeCase):
    def test_unreachable_server(self):
        port = free_port()
        for args, inp in ((("--index", "logs"), b"a line\n"),
                          (("--index", "logs", "--query", "x"), b"")):
            rc, out, err = self.run_pipe(*args, input=inp, port=port)
            self.assertEqual(rc, 2)
            self.assertEqual(out, b"")
            self.assertEqual(err, "engram-pipe: cannot connect to 127.0.0.1:%d: "
                             "Connection refused\n" % port)

    def test_missing_index(self):
        rc, out, err = self.run_pipe("--index", "nosuch", input=b"a line\n")
        self.assertEqual((rc, out), (3, b""))
        self.assertEqual(err, "engram-pipe: server: ERR no such index 'nosuch' (use --create)\n")
        rc, out, err = self.run_pipe("--index", "nosuch", "--query", "a line")
        self.assertEqual((rc, out), (3, b""))
        self.assertEqual(err, "engram-pipe: server: ERR no such index 'nosuch' (use --create)\n")

    def test_empty_input_is_fine(self):
        rc, out, err = self.run_pipe("--index", "nosuch", input=b"\n\r\n\n")
        self.assert_ok(rc, out, err)

    def test_usage(self):
        for args in ((), ("--index",), ("--index", "x", "--bogus"),
                     ("--index", "x", "--query", "a", "--watch", "b", "--maxdist", "1"),
                     ("--index", "x", "--watch", "a"), ("--index", "x", "-k", "-1"),
                     ("--index", "x", "--maxdist", "nan"), ("--index", "x", "extra"),
                     ("--index", "x", "--port", "0")):
            rc, out, err = self.run_pipe(*args)
            self.assertEqual(rc, 1, args)
            self.assertEqual(out, b"", args)
            self.assertTrue(err.startswith("engram-pipe: "), (args, err))
            self.assertTrue(err.endswith("Try 'engram-pipe --help'.\n"), (args, err))
        p = subprocess.run([pipe_bin(), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        self.assertIn(b"Usage: engram-pipe", p.stdout)
        self.assertIn(b"Exit status:", p.stdout)
        p = subprocess.run([pipe_bin(), "--version"], stdout=subprocess.PIPE)
        self.assertRegex(p.stdout.decode(), r"^engram-pipe \d+\.\d+\.\d+\n$")


@engram_only
class TestAuth(PipeCase):
    server_flags = ("--requirepass", "s3cret")
    password = "s3cret"

    def test_password(self):
        rc, out, err = self.run_pipe("--index", "a", "--create", input=b"x y z\n")
        self.assertEqual((rc, out), (3, b""))
        self.assertEqual(err, "engram-pipe: server: NOAUTH Authentication required. "
                         "(use --password)\n")
        rc, out, err = self.run_pipe("--index", "a", "--create", "--password", "s3cret",
                                     input=b"x y z\n")
        self.assert_ok(rc, out, err)
        rc, out, err = self.run_pipe("--index", "a", "--password", "wrong", input=b"x\n")
        self.assertEqual(rc, 3)
        self.assertRegex(err, r"^engram-pipe: server: WRONGPASS ")


@engram_only
class TestRestart(PipeCase):
    def test_server_restart_mid_stream(self):
        data = tempfile.mkdtemp(prefix="engram-pipe-")
        self.addCleanup(shutil.rmtree, data, True)
        port = free_port()
        srv = Server(["--dir", data], port=port).start()
        try:
            p = self.start_pipe("--index", "logs", "--create", "--type", "flat",
                                "--retry-secs", 60, port=port)
            # a made-up word per line: numbers alone weigh little in the hash
            # embedder, so lines differing only in numbers can tie
            lines = [b"sensor %s reported %d degrees at site %d" % (word(i), i * 7 % 91, i % 13)
                     for i in range(900)]
            part = [lines[:300], lines[300:600], lines[600:]]

            def feed(chunk):
                for i in range(0, len(chunk), 30):
                    p.stdin.write(b"".join(l + b"\n" for l in chunk[i:i + 30]))
                    p.stdin.flush()
                    time.sleep(0.01)

            feed(part[0])
            c = srv.conn()
            self.assertTrue(wait_until(lambda: vcard(c, "logs") >= 250, 10))
            c.close()
            srv.stop()                       # SIGTERM while lines are in flight
            feed(part[1])                    # the pipe keeps them (back-pressure)
            time.sleep(0.3)
            srv = Server(["--dir", data], port=port).start()
            feed(part[2])
            p.stdin.close()
            rc = p.wait(60 * SLOW)
            err = p.stderr.read().decode()
            self.assertEqual((rc, err), (0, ""))
            self.assertEqual(p.stdout.read(), b"")

            c = srv.conn()
            self.assertGreaterEqual(vcard(c, "logs"), len(lines))
            # every line is there (at-least-once: a copy may be there twice)
            for i in range(0, len(lines), 100):
                chunk = lines[i:i + 100]
                c.send(b"".join(encode("VSEARCH", "logs", "TEXT", l, 10, "WITHPAYLOAD")
                                for l in chunk))
                for l in chunk:
                    r = c.read()
                    self.assertIn(l, r[2::3], l)
            c.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
