"""What search clients send, replayed: the command sequences of
tests/integration/data/search-transcripts/*.txt -- redisvl, langchain-redis
(python), LlamaIndex, mem0 and @langchain/redis (JS), as their sources
produce them (research notes: /work/notes/transcripts/) -- sent over a raw
socket, each reply checked against the `# expect` lines after it.

Transcript format (one command a line):

  > CMD arg arg ...     split like a POSIX shell (shlex): "..." and '...'
                        quote, '...' keeps backslashes as they are
  # expect: EXPR        a Python expression that must be true, with
                        r = the reply decoded (bulk strings as str when
                        they are UTF-8, else bytes; errors as RespError,
                        a str) and the helpers below
  # expect-error: TEXT  the reply is an error containing TEXT
  # anything else       a comment

Placeholders: an argument <vec:DIM:NAME> is DIM float32s (little-endian)
made from NAME (the same name, the same vector: a document and a query
naming one vector meet at distance 0); <vec:DIM> takes the next name of
a counter.  Helpers for EXPR: pairs(list) -> dict, ids(r) the keys of an
FT.SEARCH reply with fields, doc(r, key) that key's fields as a dict,
f(x) float, module(r, name) MODULE LIST's entry as a dict.

engram-only: the harness's Redis 7.0 has no search module."""

import os
import random
import shlex
import struct
import zlib

from engram_test import HERE, RespError, ServerTestCase, engram_only, main

DATA = os.path.join(HERE, "data", "search-transcripts")


def vec(dim, name):
    rnd = random.Random(zlib.crc32(name.encode()))
    return struct.pack("<%df" % dim, *[rnd.uniform(-1, 1) for _ in range(dim)])


def decode(v):
    if isinstance(v, RespError):
        return v
    if isinstance(v, bytes):
        try:
            return v.decode()
        except UnicodeDecodeError:
            return v
    if isinstance(v, list):
        return [decode(x) for x in v]
    if isinstance(v, dict):
        return {decode(k) if not isinstance(k, tuple) else k: decode(x) for k, x in v.items()}
    return v


def pairs(lst):
    return dict(zip(lst[::2], lst[1::2]))


def ids(r):
    return r[1::2]


def doc(r, key):
    i = r.index(key, 1)
    return pairs(r[i + 1])


def f(x):
    return float(x)


def module(r, name):
    for m in r:
        d = pairs(m) if isinstance(m, list) else m
        if d.get("name") == name:
            return d
    return None


def parse(path):
    """[(lineno, args, [(kind, text)])]"""
    steps = []
    counter = [0]
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if line.startswith("> "):
                args = []
                for a in shlex.split(line[2:], posix=True):
                    if a.startswith("<vec:") and a.endswith(">"):
                        parts = a[5:-1].split(":", 1)
                        if len(parts) == 1:
                            counter[0] += 1
                            parts.append("#%d" % counter[0])
                        args.append(vec(int(parts[0]), parts[1]))
                    else:
                        args.append(a)
                steps.append((n, args, []))
            elif line.startswith("# expect:"):
                steps[-1][2].append(("expect", line[len("# expect:"):].strip()))
            elif line.startswith("# expect-error:"):
                steps[-1][2].append(("error", line[len("# expect-error:"):].strip()))
    return steps


@engram_only
class TestSearchTranscripts(ServerTestCase):
    server_flags = ("--dir", ".")

    def replay(self, name):
        path = os.path.join(DATA, name)
        steps = parse(path)
        self.assertTrue(steps, "no commands in %s" % name)
        c = self.conn()
        checked = 0
        for n, args, checks in steps:
            r = decode(c.cmd(*args))
            where = "%s:%d %s" % (name, n, " ".join(
                a if isinstance(a, str) else "<%d bytes>" % len(a) for a in args)[:300])
            shown = repr(r)
            shown = shown if len(shown) < 3000 else shown[:3000] + "..."
            if not any(k == "error" for k, _ in checks):
                self.assertNotIsInstance(r, RespError, "%s: error reply %s" % (where, shown))
            for kind, text in checks:
                if kind == "error":
                    self.assertIsInstance(r, RespError, "%s: expected an error, got %s" % (where, shown))
                    self.assertIn(text, str(r), where)
                    continue
                env = {"r": r, "pairs": pairs, "ids": ids, "doc": doc, "f": f, "module": module,
                       "RespError": RespError}
                try:
                    ok = eval(text, env)     # the transcript's own assertion
                except Exception as e:      # noqa: BLE001 -- report with the reply
                    self.fail("%s: `%s` raised %r; reply %s" % (where, text, e, shown))
                self.assertTrue(ok, "%s: `%s` is false; reply %s" % (where, text, shown))
                checked += 1
        self.assertGreater(checked, 0)
        return checked

    def test_redisvl(self):
        self.replay("redisvl.txt")

    def test_langchain_redis(self):
        self.replay("langchain-redis.txt")

    def test_llamaindex(self):
        self.replay("llamaindex.txt")

    def test_mem0(self):
        self.replay("mem0.txt")

    def test_langchainjs_redis(self):
        self.replay("langchainjs-redis.txt")

    def test_every_transcript_is_run(self):
        tested = {"redisvl.txt", "langchain-redis.txt", "llamaindex.txt", "mem0.txt",
                  "langchainjs-redis.txt"}
        self.assertEqual(set(x for x in os.listdir(DATA) if x.endswith(".txt")), tested)


if __name__ == "__main__":
    main()
