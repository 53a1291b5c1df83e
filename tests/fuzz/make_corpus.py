#!/usr/bin/env python3
"""make_corpus.py -- the seed corpora of tests/fuzz/corpus/<target>/, from
real inputs: a real engram server (ENGRAM_BIN, default build/engram) is
driven over a socket in a temporary directory, and what it reads and writes
becomes the seeds:

  resp       the request bytes of each session (multibulk, inline, pipelined),
             behind fuzz_resp's two option bytes
  pipe_resp  the server's reply bytes to them, behind one seed byte
  wal        the server's log file, copied after each session
  oplog      every distinct record of those logs (type byte + payload)
  snapshot   the snapshot SAVE writes after each stage (strings and hashes in
             two databases; HNSW, Q8, BIN, FLAT, ring and REDUCE sets with
             attributes and payloads; a search index), and tests/integration's
             format-1 snapshot
  vattr      the attribute JSON the sessions set
  vfilter    the FILTER expressions they ran, each with a JSON text after a NUL
  ftquery    the FT.SEARCH queries they ran and the queries of
             tests/unit/search/test_ftquery.c, behind two option bytes
  config     the shipped engram.conf and the config file the server started with

Files are named by a hash of their bytes, so running it again adds nothing
twice.  Crash reproducers (crash-*, leak-*, ...) kept in the same folders are
left alone.  Usage: python3 tests/fuzz/make_corpus.py   (from anywhere)
"""
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ENGRAM_BIN", os.path.join(ROOT, "build", "engram"))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def fp32(*v):
    return struct.pack("<%df" % len(v), *v)


class Reader:
    """Just enough RESP2 to know where each reply ends."""

    def __init__(self, sock):
        self.s, self.buf, self.raw = sock, b"", b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.raw += line + b"\r\n"
        return line

    def _n(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        self.raw += data
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-", b":"):
            return line
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._n(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("unexpected reply %r" % line)


class Server:
    def __init__(self, d):
        self.dir = d
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        conf = os.path.join(d, "engram.conf")
        with open(conf, "w") as f:
            f.write("# the corpus server\nbind 127.0.0.1\nport %d\ndir %s\ndatabases 4\n"
                    "appendfsync always\nhash-max-listpack-entries 4\n"
                    "notify-keyspace-events \"KEA\"\n" % (self.port, d))
        self.conf = conf
        self.proc = subprocess.Popen([BIN, conf], cwd=d, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "wb"))
        for _ in range(200):
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                self.sock.settimeout(20)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("engram did not start: see " + d)
        self.rd = Reader(self.sock)

    def session(self, reqs, inline=False):
        """Send a batch at once (pipelined); return (request bytes, reply bytes)."""
        data = b"".join(r if isinstance(r, bytes) else enc(*r) for r in reqs)
        self.rd.raw = b""
        self.sock.sendall(data)
        for r in reqs:
            if r != b"\r\n":      # an empty inline line gets no reply
                self.rd.reply()
        return data, self.rd.raw

    def stop(self):
        self.sock.close()
        self.proc.terminate()
        self.proc.wait(10)


def wal_files(d):
    return sorted(f for f in os.listdir(d) if f.startswith("wal-") and f.endswith(".log"))


def wal_records(data):
    off, out = 24, []
    while off + 20 <= len(data):
        n = struct.unpack_from("<I", data, off)[0]
        if off + 20 + n > len(data):
            break
        out.append(bytes([data[off + 8]]) + data[off + 20:off + 20 + n])
        off += 20 + n
    return out


ATTRS = [
    '{"year": 1999, "genre": "drama", "rating": 7.5}',
    '{"year": 2012, "genre": "action", "tags": ["a", "b", 3], "sold_out": true}',
    '{"name": "\\u00e9t\\u00e9", "n": null, "nested": {"x": [1, 2]}, "e": -1.5e-3}',
    '{"year": 2001, "director": "Nolan", "city": "New York"}',
]
FILTERS = [
    '.year > 2000 and .genre == "drama"',
    '.director in ["Spielberg", "Nolan"] || "ork" in .city',
    '(.year - 2000) ** 2 < 100 and not .sold_out',
    '.rating >= 7 && .year % 2 == 1',
    '!(.genre != "action") or .n == null',
    '"b" in .tags',
]
FTQUERIES = [
    "hello world", "@title:hello -@body:fox", "@tag:{blue | red}", "@n:[5 (100]",
    "hel* | %wrld%", '"hello world"', "*", "(@tag:{blue})=>[KNN 2 @v $blob AS d]",
    "@title|body:(run | ran) ~fox", "hello => {$weight: 2; $slop: 1}",
]


def drive(srv, tmp):
    resp, replies, snaps, wals = [], [], [], []

    def sess(reqs):
        q, a = srv.session(reqs)
        resp.append(q)
        replies.append(a)

    def save():
        srv.session([("SAVE",)])
        with open(os.path.join(srv.dir, "engram.snap"), "rb") as f:
            snaps.append(f.read())

    def log():
        for w in wal_files(srv.dir):
            with open(os.path.join(srv.dir, w), "rb") as f:
                wals.append(f.read())

    # strings and hashes, two databases
    sess([("SET", "a", "1"), ("SET", "b", "hello", "PX", "99999999"), ("APPEND", "b", " world"),
          ("SETRANGE", "c", "3", "xyz"), ("MSET", "d", "4", "e", "5"), ("EXPIRE", "d", "1000"),
          ("RENAME", "e", "f"), ("COPY", "a", "g"), ("DEL", "g"), ("INCRBY", "n", "41"),
          ("GET", "b"), ("MGET", "a", "zz", "b"), ("TTL", "d")])
    sess([b"PING\r\n", b"SET inline \"with space\"\r\n", b"GET inline\r\n", b"\r\n",
          ("SELECT", "1"), ("SET", "x", "in db 1"), ("MOVE", "x", "2"), ("SELECT", "2"),
          ("SWAPDB", "1", "2"), ("SELECT", "0")])
    sess([("HSET", "h", "f1", "v1", "f2", "v2"), ("HSET", "h", "f3", "v3", "f4", "v4", "f5", "v5"),
          ("HEXPIRE", "h", "100000", "FIELDS", "1", "f1"), ("HDEL", "h", "f2"),
          ("HSET", "small", "a", "1"), ("HPEXPIRE", "small", "5000000", "FIELDS", "1", "a"),
          ("HGETALL", "h"), ("HGET", "h", "nope"), ("HINCRBY", "small", "c", "3")])
    sess([("MULTI",), ("SET", "t1", "x"), ("HSET", "th", "f", "v"), ("EXEC",),
          ("SELECT", "3"), ("HSET", "h3", "k", "v"), ("SET", "s3", "v"), ("SELECT", "0"),
          ("WRONGCMD",), ("GET",), ("HSET", "a", "f", "v")])
    log()
    save()

    # vector sets, one kind per snapshot
    srv.session([("FLUSHALL",)])
    sess([("VADD", "vs", "VALUES", "4", str(i), "1", str(-i), "0.5", "e%d" % i,
           "SETATTR", ATTRS[i % len(ATTRS)]) for i in range(8)] +
         [("VREM", "vs", "e3"), ("VSETATTR", "vs", "e1", ATTRS[3]),
          ("VSIM", "vs", "VALUES", "4", "1", "1", "1", "1", "WITHSCORES", "COUNT", "3"),
          ("VEMB", "vs", "e2"), ("VGETATTR", "vs", "e1"), ("VCARD", "vs"), ("VDIM", "vs")] +
         [("VSIM", "vs", "ELE", "e1", "FILTER", f) for f in FILTERS] +
         [("VSIM", "vs", "ELE", "e1", "FILTER", ".year >")])
    log()
    save()
    srv.session([("FLUSHALL",)])
    sess([("VADD", "q8", "FP32", fp32(i, 2, -1, i / 3), "q%d" % i, "Q8") for i in range(6)] +
         [("VADD", "rr", "FP32", fp32(1, i, 0, 2), "r%d" % i, "Q8", "RERANK") for i in range(5)])
    save()
    srv.session([("FLUSHALL",)])
    sess([("VADD", "bin", "VALUES", "4", "1", str(i - 2), "-1", "1", "b%d" % i, "BIN")
          for i in range(6)])
    save()
    srv.session([("FLUSHALL",)])
    sess([("VNEW", "flat", "3", "TYPE", "flat", "METRIC", "l2"),
          ("VADD", "flat", "k1", "VALUES", "3", "1", "2", "3", "PAYLOAD", "p1"),
          ("VADD", "flat", "k2", "VALUES", "3", "0", "0", "1"),
          ("VADD", "flat", "*", "VALUES", "3", "4", "5", "6"),
          ("VDEL", "flat", "k2"),
          ("VSEARCH", "flat", "VALUES", "3", "1", "1", "1", "K", "2")])
    save()
    srv.session([("FLUSHALL",)])
    sess([("VNEW", "ring", "2", "CAPACITY", "3", "METRIC", "dot")] +
         [("VADD", "ring", "r%d" % i, "VALUES", "2", str(i), "1", "PAYLOAD", ATTRS[i % 4])
          for i in range(5)] +
         [("VADD", "red", "REDUCE", "2", "VALUES", "6", "1", str(i), "0", "1", "2", "3", "m%d" % i)
          for i in range(4)])
    log()
    save()
    srv.session([("FLUSHALL",)])
    sess([("FT.CREATE", "idx", "ON", "HASH", "PREFIX", "1", "doc:", "SCHEMA", "title", "TEXT",
           "WEIGHT", "2", "body", "TEXT", "tag", "TAG", "n", "NUMERIC", "SORTABLE",
           "v", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM", "2", "DISTANCE_METRIC", "L2"),
          ("HSET", "doc:1", "title", "hello world", "body", "the quick brown fox", "tag", "blue",
           "n", "10", "v", fp32(1, 0)),
          ("HSET", "doc:2", "title", "running runners", "body", "hello", "tag", "red,blue",
           "n", "100", "v", fp32(0, 1)),
          ("FT.ALTER", "idx", "SCHEMA", "ADD", "extra", "TEXT")] +
         [("FT.SEARCH", "idx", q, "PARAMS", "2", "blob", fp32(1, 1), "DIALECT", "2")
          for q in FTQUERIES] +
         [("FT.SEARCH", "idx", "@title:(", "DIALECT", "2"), ("FT.INFO", "idx")])
    log()
    save()
    srv.session([("FLUSHALL",)])
    log()
    return resp, replies, snaps, wals


def c_unescape(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def main():
    if not os.path.exists(BIN):
        raise SystemExit("no server at %s: build it, or set ENGRAM_BIN" % BIN)
    tmp = tempfile.mkdtemp(prefix="engram-corpus-")
    srv = Server(tmp)
    try:
        resp, replies, snaps, wals = drive(srv, tmp)
        with open(srv.conf, "rb") as f:
            put("config", f.read())
    finally:
        srv.stop()
    for i, q in enumerate(resp):
        put("resp", bytes([0, i]) + q)
    put("resp", bytes([1, 7]) + resp[0])              # an unauthenticated client
    put("resp", bytes([2 | (12 << 2), 3]) + resp[1])  # small limits
    for i, a in enumerate(replies):
        put("pipe_resp", bytes([i]) + a)
    for w in wals:
        put("wal", w)
    seen = set()
    for w in wals:
        for r in wal_records(w):
            if r not in seen:
                seen.add(r)
                put("oplog", r)
    for s in snaps:
        put("snapshot", s)
    with open(os.path.join(ROOT, "tests", "integration", "data", "v1-dataset", "engram.snap"),
              "rb") as f:
        put("snapshot", f.read())
    for a in ATTRS:
        put("vattr", a.encode())
    for i, flt in enumerate(FILTERS):
        put("vfilter", flt.encode() + b"\0" + ATTRS[i % len(ATTRS)].encode())
    for q in FTQUERIES:
        put("ftquery", b"\0\0" + q.replace("@tag", "@tags").replace("@n:", "@price:")
            .replace("@v ", "@vec ").encode())
    with open(os.path.join(ROOT, "tests", "unit", "search", "test_ftquery.c")) as f:
        src = f.read()
    qs = re.findall(r'EQ\("((?:[^"\\]|\\.)*)",', src)
    for i, q in enumerate(qs[::3]):
        put("ftquery", bytes([(i * 37) & 0xff, i % 6]) + c_unescape(q))
    with open(os.path.join(ROOT, "engram.conf"), "rb") as f:
        put("config", f.read())
    shutil.rmtree(tmp)
    total = 0
    for t in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, t))
        size = sum(os.path.getsize(os.path.join(OUT, t, x)) for x in files)
        total += size
        print("%-10s %3d files %8d bytes" % (t, len(files), size))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
