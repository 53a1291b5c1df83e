"""Bitmaps and LCS: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD,
BITFIELD_RO, LCS.

  * TestAgainstRedis: the same requests give byte-identical replies from
    engram and from a Redis 7.0 started in the same run, in RESP2 and RESP3:
    edge cases (negative and inverted ranges, BYTE|BIT, empty and missing
    keys, offsets at the limits), every error and the order of checks,
    WRONGTYPE, BITOP AND|OR|XOR|NOT over unequal lengths, a randomized
    run of SETBIT/GETBIT/BITCOUNT/BITPOS/BITOP sent to both; LCS with every
    option (RESP2 arrays, RESP3 maps), random strings, the memory guard;
    BITFIELD / BITFIELD_RO: every type width's limits, # offsets, OVERFLOW
    WRAP|SAT|FAIL, the errors and their order, and a randomized run.
  * TestBits (engram-only): a randomized run checked against a bit array
    kept here; Redis 7.2+'s argument checks before the key lookup; Redis
    8.2's BITOP DIFF|DIFF1|ANDOR|ONE; proto-max-bulk-len; the log (the
    bitmaps after kill -9).
"""

import random

from engram_test import (IS_REDIS, RespError, Server, ServerTestCase, engram_only, main)
import test_persist as tp

E_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
E_OFFSET = "ERR bit offset is not an integer or out of range"

REDIS = []     # the module's Redis 7.0, started once


def setUpModule():
    if not IS_REDIS:
        REDIS.append(Server(redis=True).start())


def tearDownModule():
    while REDIS:
        REDIS.pop().stop()


# -- a reference bitmap (Redis's semantics, bit 0 = MSB of byte 0)

def getbit(buf, off):
    return (buf[off >> 3] >> (7 - (off & 7))) & 1 if (off >> 3) < len(buf) else 0


def setbit(buf, off, v):
    while len(buf) <= off >> 3:
        buf.append(0)
    old = getbit(buf, off)
    if v:
        buf[off >> 3] |= 1 << (7 - (off & 7))
    else:
        buf[off >> 3] &= ~(1 << (7 - (off & 7))) & 0xff
    return old


def clamp(n, start, end):
    if start < 0:
        start += n
    if end < 0:
        end += n
    start, end = max(start, 0), max(end, 0)
    end = min(end, n - 1)
    return start, end


def bitcount(buf, rng=None, isbit=False):
    if rng is None:
        return sum(bin(b).count("1") for b in buf)
    start, end = rng
    if start < 0 and end < 0 and start > end:
        return 0
    n = len(buf) * 8 if isbit else len(buf)
    start, end = clamp(n, start, end)
    if start > end:
        return 0
    if not isbit:
        start, end = start * 8, end * 8 + 7
    return sum(getbit(buf, i) for i in range(start, end + 1))


def bitpos(buf, bit, start=None, end=None, isbit=False):
    n = len(buf) * 8 if isbit else len(buf)
    end_given = end is not None
    if start is None:
        start, end = 0, n - 1
    else:
        if end is None:
            end = n - 1
        start, end = clamp(n, start, end)
    if start > end:
        return -1
    if not isbit:
        start, end = start * 8, end * 8 + 7
    for i in range(start, end + 1):
        if getbit(buf, i) == bit:
            return i
    return end + 1 if bit == 0 and not end_given else -1


class BitsCase(ServerTestCase):
    pass


@engram_only
class TestAgainstRedis(BitsCase):
    """engram (the class's server) next to the module's Redis 7.0."""

    @property
    def redis(self):
        return REDIS[0]

    def both(self, requests, resp=2):
        out = []
        for srv in (self.server, self.redis):
            c = srv.conn()
            if resp == 3:
                c.cmd("HELLO", "3")
            out.append([c.raw_cmd(*req) for req in requests])
            c.close()
        return out

    def same(self, *requests, resp=(2, 3)):
        for proto in resp:
            for srv in (self.server, self.redis):
                c = srv.conn()
                c.cmd("FLUSHALL")
                c.close()
            mine, theirs = self.both(requests, proto)
            for req, a, b in zip(requests, mine, theirs):
                self.assertEqual(a, b, "RESP%d: reply to %r differs from Redis's" % (proto, req))

    def test_setbit_getbit(self):
        self.same(
            ("SETBIT", "k", "7", "1"), ("GET", "k"), ("SETBIT", "k", "7", "1"), ("SETBIT", "k", "7", "0"),
            ("SETBIT", "k", "100", "1"), ("GET", "k"), ("STRLEN", "k"),
            ("GETBIT", "k", "100"), ("GETBIT", "k", "99"), ("GETBIT", "k", "100000"),
            ("GETBIT", "nokey", "0"), ("SET", "s", "foobar"), ("SETBIT", "s", "1", "0"), ("GET", "s"),
            ("SET", "n", "123"), ("SETBIT", "n", "0", "1"), ("GET", "n"), ("GETBIT", "n", "2"),
            ("SETBIT", "t", "0", "1"), ("EXPIRE", "t", "100"), ("SETBIT", "t", "9", "1"), ("TTL", "t"),
            ("SETBIT", "z", "4294967295", "0"), ("STRLEN", "z"),
            # errors and their order
            ("SETBIT", "k", "-1", "1"), ("SETBIT", "k", "x", "1"), ("SETBIT", "k", "4294967296", "1"),
            ("SETBIT", "k", "1", "2"), ("SETBIT", "k", "1", "-1"), ("SETBIT", "k", "1", "x"),
            ("SETBIT", "k", "-1", "x"), ("SETBIT", "k", "1.5", "1"), ("SETBIT", "k", "1", ""),
            ("GETBIT", "k", "-1"), ("GETBIT", "k", "4294967296"), ("GETBIT", "k", "abc"),
            ("GETBIT", "nokey", "-1"),
            ("SETBIT", "k", "1"), ("GETBIT", "k"), ("GETBIT", "k", "1", "2"),
            ("HSET", "h", "f", "v"), ("SETBIT", "h", "1", "1"), ("GETBIT", "h", "1"),
            ("SETBIT", "h", "-1", "1"), ("GETBIT", "h", "x"),
        )

    def test_bitcount(self):
        reqs = [("SET", "s", "foobar"), ("SET", "e", ""), ("SETBIT", "b", "0", "1"),
                ("BITCOUNT", "s"), ("BITCOUNT", "e"), ("BITCOUNT", "nokey"), ("BITCOUNT", "b")]
        for rng in [("0", "0"), ("1", "1"), ("0", "-1"), ("-2", "-1"), ("-1", "-2"), ("2", "1"),
                    ("-100", "100"), ("5", "30"), ("100", "200"), ("-3", "2"), ("3", "-3"),
                    ("-1", "-1"), ("5", "4")]:
            for unit in ((), ("BYTE",), ("BIT",), ("bit",)):
                reqs.append(("BITCOUNT", "s") + rng + unit)
                reqs.append(("BITCOUNT", "e") + rng + unit)
        reqs += [("BITCOUNT", "s", "1"), ("BITCOUNT", "s", "1", "2", "BITS"),
                 ("BITCOUNT", "s", "1", "2", "BIT", "x"), ("BITCOUNT", "s", "a", "2"),
                 ("BITCOUNT", "s", "1", "b"), ("BITCOUNT", "s", "a", "2", "x"),
                 ("BITCOUNT", "s", "1", "2", "x"),
                 ("BITCOUNT",), ("HSET", "h", "f", "v"), ("BITCOUNT", "h"),
                 ("BITCOUNT", "h", "0", "1", "BIT"), ("BITCOUNT", "h", "x", "1"), ("BITCOUNT", "h", "1"),
                 ("BITCOUNT", "h", "1", "2", "BIT", "x")]
        self.same(*reqs)

    def test_bitpos(self):
        reqs = [("SET", "s", "\xff\xf0\x00"), ("SET", "z", "\x00\x00\x00"), ("SET", "o", "\xff\xff\xff"),
                ("SET", "e", ""), ("SET", "m", "\x00\xff\xf0")]
        for key in ("s", "z", "o", "e", "m"):
            for bit in ("0", "1"):
                reqs.append(("BITPOS", key, bit))
                for start in ("0", "1", "2", "3", "-1", "-2", "-100", "100"):
                    reqs.append(("BITPOS", key, bit, start))
                    for end in ("0", "1", "-1", "-2", "100", "-100"):
                        reqs.append(("BITPOS", key, bit, start, end))
                        reqs.append(("BITPOS", key, bit, start, end, "BYTE"))
                for start, end in [("0", "7"), ("3", "5"), ("7", "8"), ("9", "17"), ("12", "15"),
                                   ("-1", "-1"), ("-5", "-1"), ("-9", "-3"), ("20", "23"), ("0", "-1"),
                                   ("15", "8"), ("4", "4"), ("16", "100")]:
                    reqs.append(("BITPOS", key, bit, start, end, "BIT"))
        reqs += [("BITPOS", "s", "2"), ("BITPOS", "s", "-1"), ("BITPOS", "s", "x"),
                 ("BITPOS", "s", "1", "x"), ("BITPOS", "s", "1", "0", "y"),
                 ("BITPOS", "s", "1", "0", "1", "BITS"), ("BITPOS", "s", "1", "x", "1", "BITS"),
                 ("BITPOS", "s", "1", "0", "y", "BITS"), ("BITPOS", "s", "1", "0", "1", "BIT", "x"),
                 ("BITPOS", "s"), ("BITPOS", "nokey", "0"), ("BITPOS", "nokey", "1"),
                 ("BITPOS", "nokey", "1", "0", "-1", "BIT"), ("BITPOS", "nokey", "2"),
                 ("HSET", "h", "f", "v"), ("BITPOS", "h", "1"), ("BITPOS", "h", "2"),
                 ("BITPOS", "h", "1", "0", "1", "BIT", "x"), ("BITPOS", "h", "1", "x")]
        self.same(*reqs)

    def test_bitop(self):
        setup = [("SET", "a", "\x01\x02\xff\x80"), ("SET", "b", "\xf0\x0f"), ("SET", "c", "abc"),
                 ("SET", "e", ""), ("HSET", "h", "f", "v"), ("SET", "d", "old"), ("EXPIRE", "d", "100")]
        reqs = list(setup)
        for op in ("AND", "OR", "XOR", "and", "Or"):
            for srcs in (("a",), ("a", "b"), ("a", "b", "c"), ("b", "nokey"), ("nokey",), ("e",),
                         ("a", "a"), ("nokey", "e")):
                reqs += [("BITOP", op, "d") + srcs, ("GET", "d"), ("TTL", "d"), ("EXISTS", "d")]
        for src in ("a", "b", "nokey", "e", "c"):
            reqs += [("BITOP", "NOT", "d", src), ("GET", "d")]
        reqs += [("BITOP", "NOT", "a", "a"), ("GET", "a"), ("BITOP", "AND", "h", "b"), ("TYPE", "h"),
                 ("GET", "h"), ("HSET", "h", "f", "v"), ("BITOP", "AND", "x", "b", "h"), ("EXISTS", "x"),
                 ("BITOP", "NOT", "x", "a", "b"), ("BITOP", "NAND", "x", "a"), ("BITOP", "NOT", "x"),
                 ("BITOP", "AND", "x"), ("BITOP", "NAND", "x", "h"), ("BITOP", "NOT", "x", "h")]
        self.same(*reqs)

    def test_lcs(self):
        reqs = [("SET", "a", "ohmytext"), ("SET", "b", "mynewtext"), ("SET", "e", ""),
                ("SET", "r1", "rhodesiasaaaaaxyz"), ("SET", "r2", "xyzhodesiaaaaabcd"),
                ("HSET", "h", "f", "v")]
        for k1, k2 in (("a", "b"), ("b", "a"), ("a", "a"), ("a", "e"), ("e", "e"), ("a", "nokey"),
                       ("nokey", "nokey2"), ("r1", "r2"), ("r2", "r1")):
            for opts in ((), ("LEN",), ("IDX",), ("IDX", "WITHMATCHLEN"), ("IDX", "MINMATCHLEN", "4"),
                         ("IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"), ("len",), ("idx", "minmatchlen", "-5"),
                         ("WITHMATCHLEN",), ("MINMATCHLEN", "3"), ("LEN", "MINMATCHLEN", "3")):
                reqs.append(("LCS", k1, k2) + opts)
        reqs += [("LCS", "a", "b", "LEN", "IDX"), ("LCS", "a", "b", "FOO"), ("LCS", "a", "b", "MINMATCHLEN"),
                 ("LCS", "a", "b", "MINMATCHLEN", "x"), ("LCS", "a", "b", "IDX", "LEN", "FOO"),
                 ("LCS", "a", "h"), ("LCS", "h", "nokey"), ("LCS", "h", "a", "FOO"), ("LCS", "a")]
        self.same(*reqs)
        rnd = random.Random(3)
        reqs = []
        for _ in range(40):
            x = "".join(rnd.choice("ab\xffc") for _ in range(rnd.randrange(0, 60)))
            y = "".join(rnd.choice("ab\xffc") for _ in range(rnd.randrange(0, 60)))
            reqs += [("SET", "x", x), ("SET", "y", y), ("LCS", "x", "y"), ("LCS", "x", "y", "LEN"),
                     ("LCS", "x", "y", "IDX", "WITHMATCHLEN", "MINMATCHLEN", str(rnd.randrange(4)))]
        self.same(*reqs)

    def test_lcs_memory_guard(self):
        reqs = [("CONFIG", "SET", "proto-max-bulk-len", "1048576"),
                ("SET", "a", "x" * 511), ("SET", "b", "y" * 511), ("LCS", "a", "b", "LEN"),
                ("SET", "b", "y" * 512), ("LCS", "a", "b", "LEN"), ("LCS", "a", "b", "IDX"),
                ("CONFIG", "SET", "proto-max-bulk-len", "536870912")]
        self.same(*reqs, resp=(2,))

    def test_bitfield(self):
        reqs = [("BITFIELD", "k", "SET", "u8", "0", "255"), ("GET", "k"),
                ("BITFIELD", "k", "GET", "u8", "0", "GET", "i8", "0", "GET", "u4", "4", "GET", "i4", "#1"),
                ("BITFIELD", "k", "INCRBY", "u8", "0", "1"), ("BITFIELD", "k", "INCRBY", "i8", "0", "-200"),
                ("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "300", "INCRBY", "i8", "8", "-300"),
                ("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1", "SET", "i5", "3", "100",
                 "OVERFLOW", "WRAP", "SET", "i5", "3", "100", "GET", "i5", "3"),
                ("BITFIELD", "k", "SET", "i64", "0", "-9223372036854775808", "GET", "i64", "0",
                 "INCRBY", "i64", "0", "-1", "GET", "u63", "1", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-5",
                 "INCRBY", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "9223372036854775807"),
                ("BITFIELD", "k", "OVERFLOW", "fail", "INCRBY", "i64", "0", "9223372036854775807",
                 "INCRBY", "u63", "0", "-9223372036854775807", "SET", "u2", "100", "7"),
                ("BITFIELD", "k", "SET", "u1", "#100", "1"), ("STRLEN", "k"), ("GET", "k"),
                ("BITFIELD", "k", "GET", "u16", "1000", "GET", "i3", "#3"), ("BITFIELD", "nokey", "GET", "u8", "0"),
                ("EXISTS", "nokey"), ("BITFIELD", "nokey"), ("BITFIELD", "nokey", "OVERFLOW", "SAT"),
                ("BITFIELD", "nk2", "OVERFLOW", "FAIL", "SET", "u2", "100", "7"), ("GET", "nk2"),
                ("BITFIELD_RO", "k", "GET", "u8", "0", "GET", "i16", "#2"), ("BITFIELD_RO", "k"),
                ("BITFIELD_RO", "k", "SET", "u8", "0", "1"), ("BITFIELD_RO", "k", "INCRBY", "u8", "0", "1"),
                ("BITFIELD_RO", "nokey", "GET", "i64", "0"), ("BITFIELD_RO", "k", "OVERFLOW", "SAT", "GET", "u8", "0"),
                ("SET", "s", "foobar"), ("BITFIELD", "s", "INCRBY", "u2", "102", "1", "GET", "u24", "#1"),
                ("GET", "s"), ("SET", "n", "12345"), ("BITFIELD", "n", "GET", "u8", "0"),
                # errors and their order
                ("BITFIELD", "k", "GET", "u64", "0"), ("BITFIELD", "k", "GET", "i65", "0"),
                ("BITFIELD", "k", "GET", "i0", "0"), ("BITFIELD", "k", "GET", "U8", "0"),
                ("BITFIELD", "k", "GET", "x8", "0"), ("BITFIELD", "k", "GET", "u", "0"),
                ("BITFIELD", "k", "GET", "u8", "-1"), ("BITFIELD", "k", "GET", "u8", "#-1"),
                ("BITFIELD", "k", "GET", "u8", "x"), ("BITFIELD", "k", "GET", "u8", "4294967296"),
                ("BITFIELD", "k", "GET", "u8", "#536870912"), ("BITFIELD", "k", "GET", "u8", "#"),
                ("BITFIELD", "k", "GET", "u8", "##1"),
                ("BITFIELD", "k", "SET", "u8", "0", "x"), ("BITFIELD", "k", "SET", "u8", "0"),
                ("BITFIELD", "k", "GET", "u8"), ("BITFIELD", "k", "FOO", "u8", "0"),
                ("BITFIELD", "k", "OVERFLOW", "FOO", "GET", "u8", "0"), ("BITFIELD", "k", "OVERFLOW"),
                ("BITFIELD", "k", "GET", "u8", "0", "SET", "x8", "0", "1"),
                ("BITFIELD_RO", "k", "SET", "u8", "0", "1", "GET", "x", "0"),
                ("BITFIELD_RO", "k", "OVERFLOW", "x"), ("BITFIELD",), ("BITFIELD_RO",),
                ("HSET", "h", "f", "v"), ("BITFIELD", "h", "GET", "u8", "0"), ("BITFIELD", "h", "SET", "u8", "0", "1"),
                ("BITFIELD_RO", "h", "GET", "u8", "0"), ("BITFIELD_RO", "h", "SET", "u8", "0", "1"),
                ("BITFIELD", "h", "GET", "u99", "0")]
        self.same(*reqs)
        rnd = random.Random(11)
        reqs = []
        for _ in range(400):
            sign = rnd.choice("iu")
            bits = rnd.randrange(1, 65 if sign == "i" else 64)
            off = ("#%d" % rnd.randrange(20)) if rnd.random() < 0.3 else str(rnd.randrange(200))
            val = str(rnd.choice((rnd.randrange(-2 ** 63, 2 ** 63), rnd.randrange(-300, 300),
                                  2 ** (bits - 1), -2 ** (bits - 1), 2 ** bits - 1)))
            sub = rnd.choice((("GET", "%s%d" % (sign, bits), off),
                              ("SET", "%s%d" % (sign, bits), off, val),
                              ("INCRBY", "%s%d" % (sign, bits), off, val)))
            reqs.append(("BITFIELD", "r", "OVERFLOW", rnd.choice(("WRAP", "SAT", "FAIL"))) + sub)
        reqs.append(("GET", "r"))
        self.same(*reqs, resp=(2,))

    def test_randomized_both(self):
        rnd = random.Random(7)
        reqs = []
        for _ in range(600):
            k = rnd.choice(("k1", "k2"))
            r = rnd.random()
            if r < 0.45:
                reqs.append(("SETBIT", k, str(rnd.randrange(400)), str(rnd.randrange(2))))
            elif r < 0.6:
                reqs.append(("GETBIT", k, str(rnd.randrange(420))))
            elif r < 0.75:
                a, b = rnd.randrange(-60, 60), rnd.randrange(-60, 60)
                reqs.append(("BITCOUNT", k, str(a), str(b)) + rnd.choice(((), ("BYTE",), ("BIT",))))
            elif r < 0.95:
                a, b = rnd.randrange(-60, 60), rnd.randrange(-60, 60)
                reqs.append(("BITPOS", k, str(rnd.randrange(2)), str(a), str(b)) +
                            rnd.choice(((), ("BYTE",), ("BIT",))))
            else:
                reqs.append(("BITOP", rnd.choice(("AND", "OR", "XOR")), "k3", "k1", "k2"))
                reqs.append(("GET", "k3"))
        self.same(*reqs, resp=(2,))


class TestBits(BitsCase):
    def err(self, c, req, text):
        r = c.cmd(*req)
        self.assertIsInstance(r, RespError, req)
        self.assertEqual(r, text, req)

    def test_randomized_reference(self):
        rnd = random.Random(1234)
        c = self.conn()
        c.cmd("FLUSHALL")
        bufs = {"a": bytearray(), "b": bytearray()}
        for k in bufs:      # the keys exist from here on (a missing one is tested elsewhere)
            self.assertEqual(c.cmd("SETBIT", k, 0, 0), setbit(bufs[k], 0, 0))
        for i in range(3000):
            k = rnd.choice("ab")
            buf = bufs[k]
            r = rnd.random()
            span = rnd.choice((64, 300, 2000))
            if r < 0.4:
                off, v = rnd.randrange(span), rnd.randrange(2)
                self.assertEqual(c.cmd("SETBIT", k, off, v), setbit(buf, off, v))
            elif r < 0.55:
                off = rnd.randrange(span + 20)
                self.assertEqual(c.cmd("GETBIT", k, off), getbit(buf, off))
            elif r < 0.7:
                if rnd.random() < 0.2:
                    self.assertEqual(c.cmd("BITCOUNT", k), bitcount(buf))
                    continue
                isbit = rnd.random() < 0.5
                lim = span if isbit else span // 8 + 2
                a, b = rnd.randrange(-lim, lim), rnd.randrange(-lim, lim)
                unit = ("BIT",) if isbit else rnd.choice(((), ("BYTE",)))
                self.assertEqual(c.cmd("BITCOUNT", k, a, b, *unit), bitcount(buf, (a, b), isbit),
                                 (k, a, b, unit, bytes(buf)))
            elif r < 0.97:
                bit = rnd.randrange(2)
                isbit = rnd.random() < 0.5
                lim = span if isbit else span // 8 + 2
                shape = rnd.randrange(3)
                if shape == 0:
                    args, want = (), bitpos(buf, bit)
                elif shape == 1:
                    a = rnd.randrange(-lim, lim)
                    args, want = (a,), bitpos(buf, bit, a)
                else:
                    a, b = rnd.randrange(-lim, lim), rnd.randrange(-lim, lim)
                    unit = ("BIT",) if isbit else ("BYTE",)
                    args, want = (a, b) + unit, bitpos(buf, bit, a, b, isbit)
                self.assertEqual(c.cmd("BITPOS", k, bit, *args), want, (k, bit, args, bytes(buf)))
            else:
                # a dense run, to reach the word-at-a-time paths
                offs = range(rnd.randrange(span), span + 200, rnd.choice((1, 3)))
                v = rnd.randrange(2)
                for off in offs:
                    c.send_cmd("SETBIT", k, off, v)
                for off in offs:
                    self.assertEqual(c.read(), setbit(buf, off, v))
        self.assertEqual(bytes(c.cmd("GET", "a") or b""), bytes(bufs["a"]))

    @engram_only
    def test_args_checked_before_lookup(self):
        # Redis 7.2+: a missing key no longer hides a bad argument.
        c = self.conn()
        self.err(c, ("BITCOUNT", "nokey", "x", "1"), "ERR value is not an integer or out of range")
        self.err(c, ("BITCOUNT", "nokey", "0", "1", "BITS"), "ERR syntax error")
        # Redis 7.0 answered 0 here without looking at BYTE|BIT.
        c.cmd("SET", "s", "foobar")
        self.err(c, ("BITCOUNT", "s", "-1", "-2", "x"), "ERR syntax error")
        self.err(c, ("BITCOUNT", "nokey", "1"), "ERR syntax error")
        self.err(c, ("BITPOS", "nokey", "1", "0", "1", "BIT", "x"), "ERR syntax error")
        self.err(c, ("BITPOS", "nokey", "1", "x"), "ERR value is not an integer or out of range")
        self.err(c, ("BITPOS", "nokey", "0", "0", "1", "FOO"), "ERR syntax error")
        self.assertEqual(c.cmd("BITCOUNT", "nokey", "0", "-1", "BIT"), 0)
        self.assertEqual(c.cmd("BITPOS", "nokey", "0", "5", "9", "BIT"), 0)

    @engram_only
    def test_bitop_redis82(self):
        c = self.conn()
        c.cmd("FLUSHALL")
        c.cmd("SET", "x", b"\xf0\xf0")
        c.cmd("SET", "y1", b"\xcc")
        c.cmd("SET", "y2", b"\x0a\xff\x01")
        self.assertEqual(c.cmd("BITOP", "DIFF", "d", "x", "y1", "y2"), 3)
        self.assertEqual(c.cmd("GET", "d"), bytes([0xf0 & ~(0xcc | 0x0a) & 0xff, 0xf0 & ~0xff & 0xff, 0]))
        self.assertEqual(c.cmd("BITOP", "diff1", "d", "x", "y1", "y2"), 3)
        self.assertEqual(c.cmd("GET", "d"), bytes([~0xf0 & (0xcc | 0x0a) & 0xff, ~0xf0 & 0xff & 0xff, 1]))
        self.assertEqual(c.cmd("BITOP", "ANDOR", "d", "x", "y1", "y2"), 3)
        self.assertEqual(c.cmd("GET", "d"), bytes([0xf0 & (0xcc | 0x0a), 0xf0, 0]))
        self.assertEqual(c.cmd("BITOP", "ONE", "d", "x", "y1", "y2"), 3)
        one = []
        for i in range(3):
            bs = [v[i] if i < len(v) else 0 for v in (b"\xf0\xf0", b"\xcc", b"\x0a\xff\x01")]
            one.append(sum(1 << j for j in range(8) if sum((b >> j) & 1 for b in bs) == 1))
        self.assertEqual(c.cmd("GET", "d"), bytes(one))
        self.assertEqual(c.cmd("BITOP", "ONE", "d", "x"), 2)
        self.assertEqual(c.cmd("GET", "d"), b"\xf0\xf0")
        for op in ("DIFF", "DIFF1", "ANDOR"):
            self.err(c, ("BITOP", op.lower(), "d", "x"),
                     "ERR BITOP %s must be called with at least two source keys." % op)

    @engram_only
    def test_proto_max_bulk_len(self):
        c = self.conn()
        c.cmd("FLUSHALL")
        c.cmd("CONFIG", "SET", "proto-max-bulk-len", "1048576")
        try:
            self.assertEqual(c.cmd("SETBIT", "k", 1048576 * 8 - 1, 1), 0)
            self.assertEqual(c.cmd("STRLEN", "k"), 1048576)
            self.err(c, ("SETBIT", "k", 1048576 * 8, 1), E_OFFSET)
            self.err(c, ("GETBIT", "k", 1048576 * 8), E_OFFSET)
            self.assertEqual(c.cmd("BITCOUNT", "k"), 1)
            self.assertEqual(c.cmd("BITPOS", "k", 1), 1048576 * 8 - 1)
        finally:
            c.cmd("CONFIG", "SET", "proto-max-bulk-len", "536870912")


@engram_only
class TestBitsPersistence(tp.PersistCase):
    def test_bits_after_kill(self):
        srv = self.start()
        c = self.conn(srv)
        rnd = random.Random(5)
        ref = {}
        for i in range(500):
            k = "b%d" % rnd.randrange(4)
            off, v = rnd.randrange(5000), rnd.randrange(2)
            setbit(ref.setdefault(k, bytearray()), off, v)
            c.cmd("SETBIT", k, off, v)
        c.cmd("SET", "x", b"\x0f\xff")
        c.cmd("BITOP", "XOR", "b0", "b1", "x")
        want = {k: c.cmd("GET", k) for k in ("b0", "b1", "b2", "b3")}
        self.assertEqual(want["b1"], bytes(ref["b1"]))
        c.cmd("BITOP", "AND", "gone", "nokey")
        c.cmd("BITFIELD", "b2", "SET", "i16", "#3", "-1234", "INCRBY", "u5", "300", "7")
        c.cmd("BITFIELD", "bf", "SET", "u8", "16", "200")
        want["b2"] = c.cmd("GET", "b2")
        want["bf"] = c.cmd("GET", "bf")
        self.crash(srv)
        c = self.conn(self.start())
        for k, v in want.items():
            self.assertEqual(c.cmd("GET", k), v, k)
        self.assertEqual(c.cmd("EXISTS", "gone"), 0)


if __name__ == "__main__":
    main()
