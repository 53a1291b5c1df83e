"""Redis 8.8 vector sets: VADD (Redis's grammar), VSIM, VREM, VCARD, VDIM,
VEMB [RAW], VLINKS, VINFO, VSETATTR, VGETATTR, VRANDMEMBER, VISMEMBER and
VRANGE, answered as Redis 8.8 answers them.

Every expectation comes from /work/notes/vectorsets.md (section numbers are
given as "§n"), which was researched from Redis's source
(modules/vector-sets/vset.c, hnsw.c, expr.c), from Redis's own tests under
modules/vector-sets/tests/, and from redis-py's and node-redis's vector-set
clients.  Where the notes are unsure, a comment names the source to check
against a live Redis 8.

  * grammar, limits and every error text in the order Redis checks them
    (arity errors spelled 'VADD' by the core, argv[0] as typed by the
    module), §1;
  * reply shapes byte for byte in RESP2 and RESP3 (HELLO 3): booleans,
    VSIM maps vs flat arrays, doubles, nulls, VINFO's simple strings, the
    VEMB RAW layout, §2;
  * distances, scores, EPSILON, TRUTH, quantisation (NOQUANT/Q8/BIN) and
    REDUCE, §3-§5; the FILTER language and FILTER-EF, §6;
  * engram's own decisions: one keyspace (TYPE vectorset, WRONGTYPE both
    ways), `VADD index key vector` stays engram's dialect unless argv[2] is
    REDUCE/FP32/VALUES, VINFO FULL, M limited to 4..64, INFO/MODULE LIST
    naming the vectorset module;
  * the argument lists redis-py's vset() sends (§9.1), through
    execute_command (Debian's redis-py 4.3.4 has no vset());
  * recall against a brute-force cosine scan; persistence of every kind of
    set through a snapshot and through the write-ahead log after kill -9.

engram-only: the harness's Redis target is 7.0, which has no vector sets.
Run with Debian's python3 (see README.md).
"""

import json
import math
import random
import shutil
import struct
import tempfile
import unittest
from decimal import Decimal

from engram_test import (RespError, Server, ServerTestCase, encode, engram_only, main,
                         parse_info, wait_until)

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
INVALID_VECTOR = "ERR invalid vector specification"
VINFO_KEYS = ["quant-type", "hnsw-m", "vector-dim", "projection-input-dim", "size",
              "max-level", "attributes-count", "vset-uid", "hnsw-max-node-uid"]


def arity(name):
    return "ERR wrong number of arguments for '%s' command" % name


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def fp32(vec):
    return struct.pack("<%df" % len(vec), *vec)


def values(vec):
    """VALUES n v1 .. vn, numbers spelled as Python's str() (as redis-py)."""
    return ["VALUES", str(len(vec))] + [str(x) for x in vec]


def vadd_args(key, vec, ele, *opts, reduce=None, blob=False):
    args = ["VADD", key]
    if reduce:
        args += ["REDUCE", str(reduce)]
    args += ["FP32", fp32(vec)] if blob else values(vec)
    return args + [ele] + list(opts)


def vadd(c, key, vec, ele, *opts, reduce=None, blob=False):
    return c.cmd(*vadd_args(key, vec, ele, *opts, reduce=reduce, blob=blob))


def vadd_many(c, key, items, *opts, reduce=None):
    """Pipelined VADDs of (element, vector) pairs; the replies (the first
    error, if any, fails the test)."""
    c.send(b"".join(encode(*vadd_args(key, v, e, *opts, reduce=reduce, blob=True))
                    for e, v in items))
    replies = [c.read() for _ in items]
    errors = [r for r in replies if isinstance(r, RespError)]
    assert not errors, "%d of %d VADDs to %r failed, the first with %r" % (
        len(errors), len(items), key, errors[0])
    return replies


def rand_vec(rnd, dim):
    return [rnd.gauss(0, 1) for _ in range(dim)]


def normalized(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else list(v)


def cos(a, b):
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    if na == 0 or nb == 0:
        return 0.0
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def score(a, b):
    """VSIM's similarity: 1 - distance/2 with distance = 1 - cosine (§3)."""
    return 1 - (1 - cos(a, b)) / 2


def brute_top(query, vecs, k, keep=None):
    """Names of the k most similar vectors (exact cosine), most similar
    first; keep(name) filters."""
    names = [n for n in vecs if keep is None or keep(n)]
    names.sort(key=lambda n: -cos(query, vecs[n]))
    return names[:k]


def redis_double(v):
    """The text Redis writes for a double (§2): integers below 2^62 as
    integers, otherwise the shortest round-trip digits laid out as
    fpconv_dtoa does (plain decimals near 1, d.ddde-7 / d.ddde+21 beyond,
    no zero padding in the exponent).  Python's repr() gives the shortest
    digits; Redis's grisu2 gives the shortest too but for rare doubles (its
    authors say under 0.1%), where it may write one digit more."""
    if v != v:
        return "nan"
    if v in (math.inf, -math.inf):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    if v == int(v) and abs(v) < 2 ** 62:
        return "%d" % int(v)
    _, digits, k = Decimal(repr(abs(v))).as_tuple()      # abs(v) = int(digits) * 10**k
    d = "".join(map(str, digits)).lstrip("0")
    k += len(d) - len(d.rstrip("0"))
    d = d.rstrip("0")
    nd = len(d)
    exp = abs(k + nd - 1)
    if k >= 0 and exp < nd + 7:
        s = d + "0" * k
    elif k < 0 and (k > -7 or exp < 4):
        offset = nd - abs(k)
        s = "0." + "0" * (-offset) + d if offset <= 0 else d[:offset] + "." + d[offset:]
    else:
        s = d[0] + ("." + d[1:] if nd > 1 else "") + "e" + ("-" if k + nd - 1 < 0 else "+") + str(exp)
    return ("-" if v < 0 else "") + s


# ---- a raw RESP reader that keeps each item's type byte ---------------------

def rtree(buf, pos=0):
    """(type, payload) of the reply at pos, and the end offset.  Scalars
    keep their text (bytes); aggregates hold a list of (type, payload);
    a map's list alternates keys and values."""
    t = chr(buf[pos])
    end = buf.index(b"\r\n", pos)
    line = buf[pos + 1:end]
    p = end + 2
    if t in "$=!":
        n = int(line)
        if n < 0:
            return (t, None), p
        return (t, bytes(buf[p:p + n])), p + n + 2
    if t in "*~>%":
        n = int(line)
        if n < 0:
            return (t, None), p
        items = []
        for _ in range(2 * n if t == "%" else n):
            x, p = rtree(buf, p)
            items.append(x)
        return (t, items), p
    return (t, bytes(line)), p


def tree(raw):
    t, end = rtree(raw)
    assert end == len(raw), "trailing bytes after the reply: %r" % raw[end:]
    return t


def double_text(item, resp3):
    """The text of a double item: ',x' in RESP3, a bulk in RESP2."""
    t, text = item
    assert t == ("," if resp3 else "$"), "expected a %s double, got %r" % (
        "RESP3" if resp3 else "RESP2 bulk", item)
    return text.decode()


class VsetCase(ServerTestCase):
    """Helpers shared by the classes below: a RESP2 and a RESP3 connection,
    error and raw-reply assertions."""

    def c2(self):
        return self.conn()

    def c3(self):
        c = self.conn()
        hello = c.cmd("HELLO", "3")
        self.assertIsInstance(hello, dict, "HELLO 3 answered %r" % (hello,))
        return c

    def both(self):
        return [(False, self.c2()), (True, self.c3())]

    def err(self, reply, text, msg=None):
        self.assertIsInstance(reply, RespError, msg or "expected error %r, got %r" % (text, reply))
        self.assertEqual(str(reply), text, msg)

    def raw(self, c, args, want, msg=None):
        if isinstance(want, str):
            want = want.encode()
        self.assertEqual(c.raw_cmd(*args), want, msg or "reply to %r" % (args[:8],))

    def canonical(self, text, msg=None):
        """text is the way Redis writes the double it denotes."""
        self.assertEqual(text, redis_double(float(text)),
                         msg or "double %r is not Redis's shortest form" % text)

    def vinfo(self, c, key, resp3=False):
        """VINFO as an ordered dict, after checking the reply's types: 9
        pairs, simple-string keys in Redis's order, quant-type a simple
        string, the rest integers."""
        t = tree(c.raw_cmd("VINFO", key))
        self.assertEqual(t[0], "%" if resp3 else "*", t)
        items = t[1]
        self.assertEqual(len(items), 18, t)
        self.assertEqual([k for k in items[0::2]], [("+", k.encode()) for k in VINFO_KEYS])
        self.assertEqual(items[1][0], "+", items[1])
        out = {"quant-type": items[1][1].decode()}
        for k, v in zip(VINFO_KEYS[1:], items[3::2]):
            self.assertEqual(v[0], ":", "VINFO %s: %r" % (k, v))
            out[k] = int(v[1])
        return out


# ===========================================================================
# VADD


@engram_only
class TestVadd(VsetCase):
    def test_arity(self):
        """Fewer than 5 arguments: the core's check, with the registered
        name 'VADD' whatever the case typed; a whole vector but no element
        after it: the module's WrongArity, with argv[0] as typed (§1.1)."""
        c = self.c2()
        self.err(c.cmd("vadd", "k", "FP32", fp32([1, 2])), arity("VADD"))
        self.err(c.cmd("VADD", "k", "VALUES", "1"), arity("VADD"))
        self.err(c.cmd("VADD", "k", "REDUCE", "2"), arity("VADD"))
        self.err(c.cmd("vAdd", "k", "VALUES", "2", "1", "2"), arity("vAdd"))
        self.err(c.cmd("VADD", "k", "values", "1", "1"), arity("VADD"))
        self.err(c.cmd("vadd", "k", "REDUCE", "1", "FP32", fp32([1, 2])), arity("vadd"))
        self.assertEqual(c.cmd("EXISTS", "k"), 0)

    def test_invalid_vector_specification(self):
        c = self.c2()
        bad = [
            ("FP32", b"abc"), ("FP32", b""), ("FP32", b"\0" * 5),
            ("FP32", b"\0\0\x80\x3f" * 65537),                  # 65,537 dims
            ("VALUES", "0", "1"), ("VALUES", "-1", "1"), ("VALUES", "65537", "1"),
            ("VALUES", "9223372036854775807", "1"), ("VALUES", "9223372036854775808", "1"),
            ("VALUES", "01", "1"), ("VALUES", "+1", "1"), ("VALUES", " 1", "1"),
            ("VALUES", "x", "1"), ("VALUES", "1.0", "1"),
            ("VALUES", "2", "1", "abc"), ("VALUES", "2", "1", "nan"), ("VALUES", "2", "1", " 2"),
            ("VALUES", "2", "1", "2 "), ("VALUES", "2", "1", ""), ("VALUES", "2", "1", "1e400"),
            ("VALUES", "2", "1", "1e-400"), ("VALUES", "2", "1", "0x"),
            ("VALUES", "3", "1", "2"),                       # the element is read as the 3rd number
            ("VALUES", "4", "1", "2"),                       # fewer arguments than values
            ("REDUCE", "0", "VALUES", "2", "1", "2"), ("REDUCE", "-1", "VALUES", "2", "1", "2"),
            ("REDUCE", "x", "VALUES", "2", "1", "2"), ("REDUCE", "01", "VALUES", "2", "1", "2"),
            ("REDUCE", "3", "VALUES", "2", "1", "2"),        # REDUCE above the input dim
            ("REDUCE", "2", "FOO", "1"), ("REDUCE", "1", "REDUCE", "1", "VALUES", "1", "1"),
            ("reduce", "2", "e"),
        ]
        for spec in bad:
            args = ("VADD", "k") + spec + ("e",)
            self.err(c.cmd(*args), INVALID_VECTOR, "VADD k %r e" % (spec[:4],))
        # 65,537 numbers through VALUES too (tests/dimension_max_limit)
        self.err(c.cmd("VADD", "k", "VALUES", "65537", *(["1"] * 65537 + ["e"])), INVALID_VECTOR)
        self.assertEqual(c.cmd("EXISTS", "k"), 0)

    def test_option_errors_left_to_right(self):
        c = self.c2()
        base = ["VADD", "k"] + values([1, 0]) + ["e"]
        cases = [
            (["EF", "0"], "ERR invalid EF"), (["EF", "1000001"], "ERR invalid EF"),
            (["EF", "-1"], "ERR invalid EF"), (["ef", "x"], "ERR invalid EF"),
            (["EF", "01"], "ERR invalid EF"),
            (["M", "3"], "ERR invalid M"), (["M", "0"], "ERR invalid M"),
            (["M", "65"], "ERR invalid M"),     # engram's limit is 64 (Redis: 4096)
            (["M", "4097"], "ERR invalid M"), (["m", "x"], "ERR invalid M"),
            (["FOO"], "ERR invalid option after element"),
            (["EF"], "ERR invalid option after element"),
            (["M"], "ERR invalid option after element"),
            (["SETATTR"], "ERR invalid option after element"),
            (["CAS", "NOQUANT", "EF"], "ERR invalid option after element"),
            (["REDUCE", "2"], "ERR invalid option after element"),
            (["FP32"], "ERR invalid option after element"),
            (["M", "3", "EF", "0"], "ERR invalid M"),
            (["EF", "0", "M", "3"], "ERR invalid EF"),
            (["FOO", "EF", "0"], "ERR invalid option after element"),
            (["EF", "0", "FOO"], "ERR invalid EF"),
            (["NOQUANT", "M", "8", "EF", "x", "BIN"], "ERR invalid EF"),
        ]
        for opts, text in cases:
            self.err(c.cmd(*(base + opts)), text, "options %r" % (opts,))
        self.assertEqual(c.cmd("EXISTS", "k"), 0)

    def test_argument_errors_come_before_the_type_check(self):
        c = self.c2()
        self.assertEqual(c.cmd("SET", "s", "x"), "OK")
        self.err(c.cmd("VADD", "s", "VALUES", "0", "e"), INVALID_VECTOR)
        self.err(c.cmd("VADD", "s", "VALUES", "1", "1", "e", "EF", "0"), "ERR invalid EF")
        self.err(c.cmd("VADD", "s", "VALUES", "1", "1", "e", "FOO"),
                 "ERR invalid option after element")
        self.err(c.cmd("VADD", "s", "VALUES", "1", "1", "e"), WRONGTYPE)
        self.err(c.cmd("VADD", "s", "REDUCE", "1", "VALUES", "2", "1", "1", "e"), WRONGTYPE)
        self.assertEqual(c.cmd("GET", "s"), b"x")

    def test_limits_accepted(self):
        c = self.c2()
        self.assertEqual(vadd(c, "m4", [1, 0], "e", "M", "4"), 1)
        self.assertEqual(vadd(c, "m64", [1, 0], "e", "M", "64"), 1)
        self.assertEqual(vadd(c, "ef", [1, 0], "e", "EF", "1"), 1)
        self.assertEqual(vadd(c, "ef", [0, 1], "f", "EF", "1000000"), 1)
        self.assertEqual(self.vinfo(c, "m4")["hnsw-m"], 4)
        self.assertEqual(self.vinfo(c, "m64")["hnsw-m"], 64)
        # 65,536 dimensions, FP32 and VALUES (tests/dimension_max_limit)
        big = b"\0\0\x80\x3f" + b"\0" * (4 * 65535)
        self.assertEqual(c.cmd("VADD", "big", "FP32", big, "e"), 1)
        self.assertEqual(c.cmd("VADD", "big", "VALUES", "65536", *(["0", "1"] + ["0"] * 65534 + ["f"])), 1)
        self.assertEqual(c.cmd("VDIM", "big"), 65536)
        self.assertEqual(c.cmd("VSIM", "big", "FP32", big, "COUNT", "1"), [b"e"])
        self.assertEqual(c.cmd("VSIM", "big", "VALUES", "65536", *(["0", "1"] + ["0"] * 65534),
                               "COUNT", "1"), [b"f"])

    def test_booleans_resp2_resp3(self):
        c2, c3 = self.c2(), self.c3()
        self.raw(c2, vadd_args("s", [1, 0], "c", "NOQUANT"), ":1\r\n")
        self.raw(c2, vadd_args("s", [1, 0], "c", "NOQUANT"), ":0\r\n")
        self.raw(c3, vadd_args("s", [0, 1], "d", "NOQUANT"), "#t\r\n")
        self.raw(c3, vadd_args("s", [0, 1], "d", "NOQUANT"), "#f\r\n")

    def test_defaults_q8_m16(self):
        c = self.c2()
        self.assertEqual(vadd(c, "k", [1, 2, 3], "e"), 1)
        info = self.vinfo(c, "k")
        self.assertEqual((info["quant-type"], info["hnsw-m"], info["vector-dim"],
                          info["projection-input-dim"], info["size"]), ("int8", 16, 3, 0, 1))
        raw = c.cmd("VEMB", "k", "e", "RAW")
        self.assertEqual((len(raw), raw[0]), (4, "int8"))
        # Q8 may be named to assert the default
        self.assertEqual(vadd(c, "k", [3, 2, 1], "f", "Q8"), 1)

    def test_grammar_any_case_any_order_last_wins(self):
        c = self.c2()
        self.assertEqual(c.cmd("vadd", "a", "values", "2", "1", "0", "e", "noquant", "ef", "10",
                               "m", "8", "setattr", '{"a":1}', "cas"), 1)
        info = self.vinfo(c, "a")
        self.assertEqual((info["quant-type"], info["hnsw-m"]), ("f32", 8))
        self.assertEqual(c.cmd("VGETATTR", "a", "e"), b'{"a":1}')
        self.assertEqual(c.cmd("VADD", "b", "Fp32", fp32([1, 0]), "e", "NOQUANT", "BIN", "Q8", "BIN",
                               "M", "8", "M", "12", "SETATTR", "x", "SETATTR", "y"), 1)
        info = self.vinfo(c, "b")
        self.assertEqual((info["quant-type"], info["hnsw-m"]), ("bin", 12))
        self.assertEqual(c.cmd("VGETATTR", "b", "e"), b"y")
        # the element is whatever follows the vector, even a keyword
        self.assertEqual(vadd(c, "c", [1], "CAS"), 1)
        self.assertEqual(vadd(c, "c", [2], "NOQUANT", "Q8"), 1)
        self.assertEqual(sorted(c.cmd("VRANGE", "c", "-", "+")), [b"CAS", b"NOQUANT"])
        # a VALUES count too small leaves numbers to be read as the element
        self.err(c.cmd("VADD", "d", "VALUES", "2", "1", "2", "3", "e"),
                 "ERR invalid option after element")
        self.assertEqual(c.cmd("EXISTS", "d"), 0)
        self.assertEqual(c.cmd("VADD", "d", "VALUES", "2", "1", "2", "3"), 1)
        self.assertEqual(c.cmd("VRANGE", "d", "-", "+"), [b"3"])

    def test_numbers_as_strtod_reads_them(self):
        c = self.c2()
        self.assertEqual(c.cmd("VADD", "k", "VALUES", "4", "1e1", ".5", "-2", "0x10", "e", "NOQUANT"), 1)
        got = [float(x) for x in c.cmd("VEMB", "k", "e")]
        for g, w in zip(got, [10, 0.5, -2, 16]):
            self.assertAlmostEqual(g, w, delta=1e-5)
        # FP32 and VALUES store the same float32s
        self.assertEqual(vadd(c, "k", [0.25, -1.5, 3, 7], "v", "NOQUANT"), 1)
        self.assertEqual(vadd(c, "k", [0.25, -1.5, 3, 7], "b", "NOQUANT", blob=True), 1)
        self.assertEqual(c.cmd("VEMB", "k", "v", "RAW"), c.cmd("VEMB", "k", "b", "RAW"))

    def test_existing_set_mismatches(self):
        c = self.c2()
        self.assertEqual(vadd(c, "nq", [1, 2, 3], "a", "NOQUANT", "M", "8"), 1)
        # the quantization is checked first, then M, then the dimension
        self.err(vadd(c, "nq", [1, 2, 3, 4], "b"),
                 "ERR asked quantization mismatch with existing vector set")
        self.err(vadd(c, "nq", [1, 2, 3], "b", "BIN", "M", "8"),
                 "ERR asked quantization mismatch with existing vector set")
        self.err(vadd(c, "nq", [1, 2, 3, 4], "b", "NOQUANT"),
                 "ERR asked M value mismatch with existing vector set")
        self.err(vadd(c, "nq", [1, 2, 3], "b", "NOQUANT", "M", "16"),
                 "ERR asked M value mismatch with existing vector set")
        self.err(vadd(c, "nq", [1, 2, 3, 4], "b", "NOQUANT", "M", "8"),
                 "ERR Vector dimension mismatch - got 4 but set has 3")
        self.err(vadd(c, "nq", [1, 2], "b", "NOQUANT", "M", "8", blob=True),
                 "ERR Vector dimension mismatch - got 2 but set has 3")
        self.err(vadd(c, "nq", [1, 2, 3], "b", "NOQUANT", "M", "8", reduce=2),
                 "ERR cannot add projection to existing set without projection")
        self.assertEqual(vadd(c, "nq", [1, 2, 3], "b", "NOQUANT", "M", "8"), 1)
        # the default Q8 set: every later VADD may omit the quantization
        self.assertEqual(vadd(c, "q8", [1, 2], "a"), 1)
        self.err(vadd(c, "q8", [1, 2], "b", "NOQUANT"),
                 "ERR asked quantization mismatch with existing vector set")
        self.assertEqual(vadd(c, "q8", [1, 2], "b", "Q8"), 1)
        self.assertEqual(c.cmd("VCARD", "nq"), 2)
        self.assertEqual(c.cmd("VCARD", "q8"), 2)

    def test_reduce_must_be_repeated(self):
        c = self.c2()
        self.assertEqual(vadd(c, "r", [1, 2, 3, 4], "a", reduce=2), 1)
        self.err(vadd(c, "r", [1, 2, 3, 4], "b"), "ERR Vector dimension mismatch - got 4 but set has 2")
        self.err(vadd(c, "r", [1, 2], "b"), "ERR Vector dimension mismatch - got 2 but set has 2")
        self.err(vadd(c, "r", [1, 2, 3, 4], "b", reduce=3),
                 "ERR Vector dimension mismatch - got 4 but set has 2")
        self.err(vadd(c, "r", [1, 2, 3], "b", reduce=2),
                 "ERR Input dimension mismatch for projection - got 3 but projection expects 4")
        self.assertEqual(vadd(c, "r", [4, 3, 2, 1], "b", reduce=2), 1)
        self.assertEqual(vadd(c, "r", [4, 3, 2, 1], "b", reduce=2), 0)
        self.assertEqual(c.cmd("VCARD", "r"), 2)

    def test_update_keeps_or_replaces_the_attribute(self):
        c = self.c2()
        self.assertEqual(vadd(c, "k", [1, 0], "e", "NOQUANT", "SETATTR", '{"v":1}'), 1)
        self.assertEqual(vadd(c, "k", [0, 3], "e", "NOQUANT"), 0)
        self.assertEqual([float(x) for x in c.cmd("VEMB", "k", "e")], [0.0, 3.0])
        self.assertEqual(c.cmd("VGETATTR", "k", "e"), b'{"v":1}')
        self.assertEqual(vadd(c, "k", [0, 3], "e", "NOQUANT", "SETATTR", '{"v":2}'), 0)
        self.assertEqual(c.cmd("VGETATTR", "k", "e"), b'{"v":2}')
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 1)
        self.assertEqual(vadd(c, "k", [0, 3], "e", "NOQUANT", "SETATTR", ""), 0)
        self.assertIsNone(c.cmd("VGETATTR", "k", "e"))
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 0)
        self.assertEqual(c.cmd("VCARD", "k"), 1)

    def test_cas(self):
        """CAS is accepted; a new element replies 1, an existing one falls
        back to the plain update and replies 0 (§7, tests/threads_config)."""
        c2, c3 = self.c2(), self.c3()
        self.assertEqual(vadd(c2, "k", [1, 0, 0], "a", "CAS"), 1)          # new key
        self.assertEqual(vadd(c2, "k", [0, 1, 0], "b", "CAS", "SETATTR", '{"x":1}'), 1)
        self.assertEqual(vadd(c2, "k", [0, 1, 1], "b", "CAS"), 0)
        self.raw(c3, vadd_args("k", [0, 0, 1], "c", "CAS"), "#t\r\n")
        self.assertEqual(c2.cmd("VCARD", "k"), 3)
        self.assertEqual(c2.cmd("VGETATTR", "k", "b"), b'{"x":1}')
        self.assertEqual(self.vinfo(c2, "k")["attributes-count"], 1)
        rnd = random.Random(3)
        items = [("p%d" % i, rand_vec(rnd, 3)) for i in range(200)]
        c2.send(b"".join(encode(*vadd_args("k", v, e, "CAS", blob=True)) for e, v in items))
        self.assertEqual([c2.read() for _ in items], [1] * 200)
        self.assertEqual(c2.cmd("VCARD", "k"), 203)

    def test_binary_element_names(self):
        c = self.c2()
        names = [b"\x00", b"a\r\nb", b"\xff\xfe", b"", b"plain"]
        for i, n in enumerate(names):
            self.assertEqual(c.cmd("VADD", "k", "VALUES", "2", str(i + 1), "1", n, "NOQUANT"), 1)
        self.assertEqual(c.cmd("VRANGE", "k", "-", "+"), sorted(names))
        self.assertEqual(sorted(c.cmd("VSIM", "k", "ELE", b"\xff\xfe", "COUNT", "10")), sorted(names))
        self.assertEqual(c.cmd("VISMEMBER", "k", b""), 1)
        self.assertEqual(len(c.cmd("VEMB", "k", b"a\r\nb")), 2)
        self.assertEqual(c.cmd("VREM", "k", b"\x00"), 1)
        self.assertEqual(c.cmd("VCARD", "k"), 4)


# ===========================================================================
# VSIM


@engram_only
class TestVsim(VsetCase):
    def small(self, c):
        """NOQUANT set s: a = (1,0) with attribute {"x":1}, b = (0,1) (§2.8)."""
        self.assertEqual(vadd(c, "s", [1, 0], "a", "NOQUANT", "SETATTR", '{"x":1}'), 1)
        self.assertEqual(vadd(c, "s", [0, 1], "b", "NOQUANT"), 1)

    def test_arity_missing_key_wrongtype(self):
        c2, c3 = self.c2(), self.c3()
        self.err(c2.cmd("vsim", "k", "ELE"), arity("VSIM"))
        # a missing key answers an empty array before anything is parsed,
        # in RESP3 too and whatever the options
        for c in (c2, c3):
            self.raw(c, ("VSIM", "nokey", "ELE", "x"), "*0\r\n")
            self.raw(c, ("VSIM", "nokey", "FOO", "bar", "WITHSCORES", "COUNT", "0"), "*0\r\n")
            self.raw(c, ("VSIM", "nokey", "VALUES", "2", "1", "0", "WITHSCORES", "WITHATTRIBS"),
                     "*0\r\n")
        self.assertEqual(c2.cmd("SET", "str", "x"), "OK")
        self.err(c2.cmd("VSIM", "str", "ELE", "x"), WRONGTYPE)
        self.err(c2.cmd("VSIM", "str", "FOO", "bar"), WRONGTYPE)

    def test_query_and_option_errors(self):
        c = self.c2()
        self.small(c)
        self.err(c.cmd("VSIM", "s", "ELE", "nope"), "ERR element not found in set")
        for spec in (("FOO", "1"), ("REDUCE", "1", "VALUES", "2", "1", "0"), ("VALUES", "0", "1"),
                     ("VALUES", "3", "1", "2"), ("VALUES", "2", "1", "x"), ("FP32", b"abc"),
                     ("FP32", b""), ("VALUES", "x", "1")):
            self.err(c.cmd("VSIM", "s", *spec), INVALID_VECTOR, "VSIM s %r" % (spec,))
        self.err(c.cmd("VSIM", "s", "VALUES", "3", "1", "2", "3"),
                 "ERR Vector dimension mismatch - got 3 but set has 2")
        self.err(c.cmd("VSIM", "s", "FP32", fp32([1, 2, 3])),
                 "ERR Vector dimension mismatch - got 3 but set has 2")
        # the dimension is checked before the options
        self.err(c.cmd("VSIM", "s", "VALUES", "3", "1", "2", "3", "COUNT", "0"),
                 "ERR Vector dimension mismatch - got 3 but set has 2")
        q = ["VSIM", "s", "VALUES", "2", "1", "0"]
        cases = [
            (["COUNT", "0"], "ERR invalid COUNT"), (["COUNT", "-1"], "ERR invalid COUNT"),
            (["count", "x"], "ERR invalid COUNT"), (["COUNT", "1.5"], "ERR invalid COUNT"),
            (["EPSILON", "0"], "ERR invalid EPSILON"), (["EPSILON", "-0.1"], "ERR invalid EPSILON"),
            (["EPSILON", "x"], "ERR invalid EPSILON"),
            (["EF", "0"], "ERR invalid EF"), (["EF", "1000001"], "ERR invalid EF"),
            (["EF", "x"], "ERR invalid EF"),
            (["FILTER-EF", "0"], "ERR invalid FILTER-EF"), (["FILTER-EF", "-1"], "ERR invalid FILTER-EF"),
            (["FILTER-EF", "x"], "ERR invalid FILTER-EF"),
            (["FOO"], "ERR syntax error in VSIM command"),
            (["COUNT"], "ERR syntax error in VSIM command"),
            (["WITHSCORES", "FILTER"], "ERR syntax error in VSIM command"),
            (["ELE", "a"], "ERR syntax error in VSIM command"),
            (["VALUES", "2", "1", "0"], "ERR syntax error in VSIM command"),
            # left to right, and FILTER among them (tests/vsim_filter_error_leak)
            (["COUNT", "0", "EF", "0"], "ERR invalid COUNT"),
            (["EF", "0", "COUNT", "0"], "ERR invalid EF"),
            (["COUNT", "0", "FILTER", "(("], "ERR invalid COUNT"),
            (["FILTER", "((", "COUNT", "0"], "ERR syntax error in FILTER expression near: (("),
            (["FILTER", ".a == 1", "COUNT", "0"], "ERR invalid COUNT"),
            (["FILTER", ".a == 1", "EF", "0"], "ERR invalid EF"),
            (["FILTER", ".a == 1", "EPSILON", "0"], "ERR invalid EPSILON"),
            (["FILTER", ".a == 1", "FILTER-EF", "0"], "ERR invalid FILTER-EF"),
            (["FILTER", ".a == 1", "BADOPT"], "ERR syntax error in VSIM command"),
        ]
        for opts, text in cases:
            self.err(c.cmd(*(q + opts)), text, "options %r" % (opts,))
        self.err(c.cmd("VSIM", "s", "ELE", "a", "ELE", "b"), "ERR syntax error in VSIM command")
        # accepted bounds: EF 1000000 (tests/vsim_limit_efsearch), no upper
        # bound on COUNT or EPSILON
        self.assertEqual(c.cmd(*(q + ["EF", "1000000"])), [b"a", b"b"])
        self.assertEqual(c.cmd(*(q + ["COUNT", "1000000", "EPSILON", "5"])), [b"a", b"b"])
        self.assertEqual(c.cmd(*(q + ["filter-ef", "1", "truth", "nothread", "withscores"])),
                         [b"a", b"1", b"b", b"0.5"])

    def test_reply_shapes_exact(self):
        """§2.2 and the wire examples of §2.8."""
        c2, c3 = self.c2(), self.c3()
        self.small(c2)
        plain = "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        for c in (c2, c3):
            self.raw(c, ("VSIM", "s", "ELE", "a"), plain)
            self.raw(c, ("VSIM", "s", "VALUES", "2", "1", "0", "COUNT", "1"), "*1\r\n$1\r\na\r\n")
        self.raw(c2, ("VSIM", "s", "ELE", "a", "WITHSCORES"),
                 "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n0.5\r\n")
        self.raw(c3, ("VSIM", "s", "ELE", "a", "WITHSCORES"),
                 "%2\r\n$1\r\na\r\n,1\r\n$1\r\nb\r\n,0.5\r\n")
        self.raw(c2, ("VSIM", "s", "ELE", "a", "WITHATTRIBS"),
                 '*4\r\n$1\r\na\r\n$7\r\n{"x":1}\r\n$1\r\nb\r\n$-1\r\n')
        self.raw(c3, ("VSIM", "s", "ELE", "a", "WITHATTRIBS"),
                 '%2\r\n$1\r\na\r\n$7\r\n{"x":1}\r\n$1\r\nb\r\n_\r\n')
        both2 = '*6\r\n$1\r\na\r\n$1\r\n1\r\n$7\r\n{"x":1}\r\n$1\r\nb\r\n$3\r\n0.5\r\n$-1\r\n'
        both3 = '%2\r\n$1\r\na\r\n*2\r\n,1\r\n$7\r\n{"x":1}\r\n$1\r\nb\r\n*2\r\n,0.5\r\n_\r\n'
        for opts in (("WITHSCORES", "WITHATTRIBS"), ("WITHATTRIBS", "WITHSCORES"),
                     ("withattribs", "WITHSCORES", "WITHATTRIBS")):
            self.raw(c2, ("VSIM", "s", "ELE", "a") + opts, both2)
            self.raw(c3, ("VSIM", "s", "ELE", "a") + opts, both3)
        # opposite direction scores 0; orthogonal 0.5; most similar first
        self.raw(c2, ("VSIM", "s", "VALUES", "2", "-1", "0", "WITHSCORES"),
                 "*4\r\n$1\r\nb\r\n$3\r\n0.5\r\n$1\r\na\r\n$1\r\n0\r\n")
        self.raw(c3, ("VSIM", "s", "VALUES", "2", "-1", "0", "WITHSCORES", "COUNT", "1"),
                 "%1\r\n$1\r\nb\r\n,0.5\r\n")
        # the query (3,4) normalises to (0.6f, 0.8f): the scores are
        # 1 - (1 - 0.8f)/2 and 1 - (1 - 0.6f)/2, written as the shortest
        # text that reads back as the same double, not as %.17g would
        # (0.90000000596046448, 0.80000001192092896) (§2)
        self.raw(c2, ("VSIM", "s", "VALUES", "2", "3", "4", "WITHSCORES"),
                 "*4\r\n$1\r\nb\r\n$18\r\n0.9000000059604645\r\n"
                 "$1\r\na\r\n$17\r\n0.800000011920929\r\n")
        self.raw(c3, ("VSIM", "s", "VALUES", "2", "4", "3", "WITHSCORES", "COUNT", "1"),
                 "%1\r\n$1\r\na\r\n,0.9000000059604645\r\n")

    def test_count_ef_order(self):
        c = self.c2()
        rnd = random.Random(5)
        vecs = {"e%d" % i: rand_vec(rnd, 8) for i in range(30)}
        self.assertEqual(vadd_many(c, "k", list(vecs.items()), "NOQUANT"), [1] * 30)
        self.assertEqual(len(c.cmd("VSIM", "k", "ELE", "e1")), 10)
        self.assertEqual(len(c.cmd("VSIM", "k", "ELE", "e1", "COUNT", "5")), 5)
        self.assertEqual(len(c.cmd("VSIM", "k", "ELE", "e1", "COUNT", "50")), 30)
        self.assertEqual(len(c.cmd("VSIM", "k", "ELE", "e1", "COUNT", "5", "EF", "1")), 5)
        r = c.cmd("VSIM", "k", "ELE", "e1", "WITHSCORES", "COUNT", "30", "TRUTH")
        names = [x.decode() for x in r[0::2]]
        scores = [float(x) for x in r[1::2]]
        self.assertEqual(names[0], "e1")
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual(names, brute_top(vecs["e1"], vecs, 30))
        for n, s in zip(names, scores):
            self.assertAlmostEqual(s, score(vecs["e1"], vecs[n]), delta=1e-5)
        # FP32, VALUES and ELE queries agree
        q = vecs["e7"]
        by_fp32 = c.cmd("VSIM", "k", "FP32", fp32(q), "COUNT", "7")
        self.assertEqual(c.cmd(*(["VSIM", "k"] + values([f32(x) for x in q]) + ["COUNT", "7"])),
                         by_fp32)
        self.assertEqual(c.cmd("VSIM", "k", "ELE", "e7", "COUNT", "7"), by_fp32)
        # NOTHREAD changes nothing
        self.assertEqual(c.cmd("VSIM", "k", "FP32", fp32(q), "COUNT", "7", "NOTHREAD"), by_fp32)

    def test_epsilon(self):
        """tests/epsilon: (1,1),(0,1),(0,0),(0,-1),(-1,-1) queried with
        (1,1); only scores >= 1 - EPSILON come back; the zero vector scores
        exactly 0.5 and is kept by EPSILON 0.5 (§3)."""
        c = self.c2()
        pts = [("a", [1, 1]), ("b", [0, 1]), ("c", [0, 0]), ("d", [0, -1]), ("e", [-1, -1])]
        for quant in ("Q8", "NOQUANT"):
            key = "eps" + quant
            for name, v in pts:
                self.assertEqual(vadd(c, key, v, name, quant), 1)
            q = ["VSIM", key, "VALUES", "2", "1", "1", "WITHSCORES"]
            r = c.cmd(*q)
            self.assertEqual([x.decode() for x in r[0::2]], ["a", "b", "c", "d", "e"], quant)
            if quant == "Q8":
                # tests/epsilon (default Q8) asserts a scores exactly 1.0: the
                # float Q8 distance of a vector to itself clamps to 0
                self.assertEqual(r[1], b"1")
            else:
                # NOQUANT is not clamped: 1 - dot in float32 may leave a hair (§3)
                self.assertAlmostEqual(float(r[1]), 1, delta=1e-6)
            self.assertEqual(r[5], b"0.5", quant)     # the zero vector
            for eps, want in (("0.5", "abc"), ("0.2", "ab"), ("0.001", "a"), ("1.0", "abcde"),
                              ("1", "abcde"), ("7", "abcde")):
                r = c.cmd(*(q + ["EPSILON", eps]))
                self.assertEqual("".join(x.decode() for x in r[0::2]), want, (quant, eps))
                for s in r[1::2]:
                    self.assertGreaterEqual(float(s), 1 - float(eps) - 1e-9)

    def test_truth_and_hnsw_against_brute_force(self):
        c = self.c2()
        rnd = random.Random(11)
        vecs = {"e%d" % i: rand_vec(rnd, 12) for i in range(600)}
        attrs = {n: json.dumps({"i": i}) for i, n in enumerate(vecs)}
        c.send(b"".join(encode(*vadd_args("k", v, n, "NOQUANT", "SETATTR", attrs[n], blob=True))
                        for n, v in vecs.items()))
        self.assertEqual([c.read() for _ in vecs], [1] * len(vecs))
        hits = 0
        for t in range(10):
            q = rand_vec(rnd, 12)
            want = brute_top(q, vecs, 10)
            r = c.cmd("VSIM", "k", "FP32", fp32(q), "TRUTH", "WITHSCORES")
            self.assertEqual([x.decode() for x in r[0::2]], want)
            for n, s in zip(want, r[1::2]):
                self.assertAlmostEqual(float(s), score(q, vecs[n]), delta=1e-5)
            got = [x.decode() for x in c.cmd("VSIM", "k", "FP32", fp32(q))]
            hits += len(set(got) & set(want))
            # TRUTH with a filter: the exact filtered top 10, no FILTER-EF bound
            keep = lambda n: int(n[1:]) % 7 == 3
            r = c.cmd("VSIM", "k", "FP32", fp32(q), "TRUTH", "FILTER", ".i % 7 == 3",
                      "FILTER-EF", "1")
            self.assertEqual([x.decode() for x in r], brute_top(q, vecs, 10, keep))
        self.assertGreaterEqual(hits, 90, "HNSW recall@10 over 10 queries of 600 vectors")

    def test_filter_ef(self):
        """A filter only one element passes, that element far from the
        query: FILTER-EF 1 stops before reaching it, a large FILTER-EF or
        TRUTH finds it (§6.8, redis-py test_vsim_with_filter)."""
        c = self.c2()
        rnd = random.Random(2)
        # fewer elements than the default beam (100), as in redis-py's test
        # (51): the filtered walk can then reach every node
        items = [("e%d" % i, [rnd.uniform(10, 20) for _ in range(16)]) for i in range(90)]
        c.send(b"".join(encode(*vadd_args("k", v, e, "SETATTR", json.dumps({"i": i}), blob=True))
                        for i, (e, v) in enumerate(items)))
        self.assertEqual([c.read() for _ in items], [1] * 90)
        self.assertEqual(vadd(c, "k", [-rnd.uniform(10, 20) for _ in range(16)], "special",
                              "SETATTR", '{"i": 999, "special": 1}'), 1)
        q = ["VSIM", "k", "ELE", "e1", "FILTER", ".special == 1"]
        self.assertEqual(c.cmd(*(q + ["FILTER-EF", "1"])), [])
        self.assertEqual(c.cmd(*(q + ["FILTER-EF", "100000"])), [b"special"])
        self.assertEqual(c.cmd(*(q + ["TRUTH"])), [b"special"])
        r = c.cmd("VSIM", "k", "ELE", "e1", "FILTER", ".i >= 0 and .i < 90")
        self.assertEqual(len(r), 10)
        self.assertNotIn(b"special", r)
        # FILTER-EF bounds the candidates looked at, so with 1 at most one
        # result comes back even for a filter everything passes
        self.assertLessEqual(len(c.cmd("VSIM", "k", "ELE", "e1", "FILTER", ".i >= 0",
                                       "FILTER-EF", "1")), 1)

    def test_repeated_filter_last_wins(self):
        c = self.c2()
        for i in range(6):
            self.assertEqual(vadd(c, "k", [1, i], "e%d" % i, "SETATTR", '{"a": %d}' % (i % 2)), 1)
        r = c.cmd("VSIM", "k", "VALUES", "2", "1", "0", "FILTER", ".a == 0", "FILTER", ".a == 1")
        self.assertEqual(sorted(r), [b"e1", b"e3", b"e5"])

    def test_withattribs(self):
        """tests/with: every 5th element without an attribute; the
        attributes equal VGETATTR's."""
        c2, c3 = self.c2(), self.c3()
        rnd = random.Random(4)
        for i in range(20):
            opts = [] if i % 5 == 0 else ["SETATTR", json.dumps({"id": i, "t": "x%d" % i})]
            self.assertEqual(vadd(c2, "k", rand_vec(rnd, 6), "e%d" % i, *opts), 1)
        r = c2.cmd("VSIM", "k", "ELE", "e3", "COUNT", "20", "WITHATTRIBS")
        self.assertEqual(len(r), 40)
        for n, a in zip(r[0::2], r[1::2]):
            self.assertEqual(a, c2.cmd("VGETATTR", "k", n))
        r = c2.cmd("VSIM", "k", "ELE", "e3", "COUNT", "5", "WITHSCORES", "WITHATTRIBS")
        self.assertEqual(len(r), 15)
        for n, s, a in zip(r[0::3], r[1::3], r[2::3]):
            self.assertTrue(0 <= float(s) <= 1)
            self.assertEqual(a, c2.cmd("VGETATTR", "k", n))
        m = c3.cmd("VSIM", "k", "ELE", "e3", "COUNT", "5", "WITHSCORES", "WITHATTRIBS")
        self.assertIsInstance(m, dict)
        self.assertEqual(len(m), 5)
        for n, (s, a) in m.items():
            self.assertIsInstance(s, float)
            self.assertEqual(a, c2.cmd("VGETATTR", "k", n))

    def test_reduced_set_queries(self):
        c = self.c2()
        self.assertEqual(vadd(c, "r", [1, 2, 3, 4], "a", "NOQUANT", reduce=2), 1)
        self.assertEqual(vadd(c, "r", [4, 3, 2, 1], "b", "NOQUANT", reduce=2), 1)
        self.assertEqual(c.cmd("VSIM", "r", "VALUES", "4", "1", "2", "3", "4", "COUNT", "1"), [b"a"])
        # a query of the reduced dimension is taken as it is, unprojected (§5)
        self.assertEqual(len(c.cmd("VSIM", "r", "VALUES", "2", "5", "-1")), 2)
        self.assertEqual(c.cmd("VSIM", "r", "VALUES", "2", "5", "-1", "COUNT", "1"), [b"a"])
        self.err(c.cmd("VSIM", "r", "VALUES", "3", "1", "2", "3"),
                 "ERR Input dimension mismatch for projection - got 3 but projection expects 4")
        self.err(c.cmd("VSIM", "r", "FP32", fp32([1, 2, 3, 4, 5])),
                 "ERR Input dimension mismatch for projection - got 5 but projection expects 4")
        r = c.cmd("VSIM", "r", "ELE", "b", "WITHSCORES")
        self.assertEqual(r[0], b"b")
        self.assertAlmostEqual(float(r[1]), 1, delta=1e-6)


# ===========================================================================
# FILTER


@engram_only
class TestFilter(VsetCase):
    """The expression language of §6 and Redis's tests/filter_expr."""

    PEOPLE = [
        ("p1", [1, 0, 0, 0], '{"age": 25, "name": "Alice", "active": true, '
                             '"scores": [85, 90, 95], "city": "New York"}'),
        ("p2", [0, 1, 0, 0], '{"age": 30, "name": "Bob", "active": false, '
                             '"scores": [70, 75, 80], "city": "Boston"}'),
        ("p3", [0, 0, 1, 0], '{"age": 35, "name": "Charlie", "scores": [60, 65, 70], '
                             '"city": "Seattle"}'),
        ("p4", [0, 0, 0, 1], None),                   # no attribute at all
        ("p5", [0.5, 0.5, 0, 0], "invalid json"),     # not JSON
    ]

    def people(self, c):
        for name, v, attr in self.PEOPLE:
            self.assertEqual(vadd(c, "people", v, name), 1)
            if attr is not None:
                self.assertEqual(c.cmd("VSETATTR", "people", name, attr), 1)

    def check(self, c, key, cases, dim):
        q = ["VSIM", key] + values([1] + [0] * (dim - 1)) + ["COUNT", "100"]
        for expr, want in cases:
            for extra in ([], ["TRUTH"]):
                r = c.cmd(*(q + extra + ["FILTER", expr]))
                self.assertNotIsInstance(r, RespError, "FILTER %r: %s" % (expr, r))
                self.assertEqual(sorted(x.decode() for x in r), sorted(want),
                                 "FILTER %r %s" % (expr, extra))

    def test_redis_cases(self):
        c = self.c2()
        self.people(c)
        self.check(c, "people", [
            (".age == 25", ["p1"]), (".age > 25", ["p2", "p3"]), (".age <= 30", ["p1", "p2"]),
            ('.name == "Alice"', ["p1"]), (".name == 'Alice'", ["p1"]),
            ('.name != "Alice"', ["p2", "p3"]), (".active", ["p1"]),
            (".age > 20 and .age < 30", ["p1"]), (".age < 30 or .age > 35", ["p1"]),
            ("!(.age == 25)", ["p2", "p3"]), (".age in [25, 35]", ["p1", "p3"]),
            ('.name in ["Alice", "David"]', ["p1"]), ('"lic" in .name', ["p1"]),
            ('"ork" in .city', ["p1"]), ('"xyz" in .name', []), ('"Ali" in .name', ["p1"]),
            ('"ice" in .name', ["p1"]), ('"Alice" in .name', ["p1"]), ('"A" in .name', ["p1"]),
            ('"" in .name', ["p1", "p2", "p3"]), ('.name in ""', []),
            ('"" in .name && "" in ""', ["p1", "p2", "p3"]),
            (".age + 10 > 40", ["p3"]), (".age * 2 > 60", ["p3"]), (".age / 5 == 5", ["p1"]),
            (".age % 2 == 0", ["p2"]), (".age ** 2 > 900", ["p3"]),
            ('.missing_field == "value"', []), (".any_field", []),
            ('(.age > 20 and .age < 40) and (.city == "Boston" or .city == "New York")', ["p1", "p2"]),
            (".age > (20 + 10)", ["p3"]), (".scores", ["p1", "p2", "p3"]),
            # a filter without selectors: elements without an attribute never
            # match, an attribute that is not JSON does (§6.2)
            ("1", ["p1", "p2", "p3", "p5"]), ("0", []),
            # a missing field makes the whole expression false (§6.2)
            ("!.missing", []), (".missing or 1", []), (".active == 1", ["p1"]),
            (".active == 0", ["p2"]),
        ], 4)

    def test_language(self):
        c = self.c2()
        attrs = [
            ("z0", '{"a": 0}'),
            ("z5", '{"a": 5, "b": "5", "s": "abc"}'),
            ("q", '{"s": "a\\"b", "n": null, "t": ["x", 2, "y"], "o": {"k": 1}, "dup": 1, '
                  '"dup": 2, "a-1": 7, "5": 9, "flag": true, "e": "\\u0041\\/"}'),
            ("notobj", "[1, 2]"),
            ("bad", "{not json"),
            ("none", None),
        ]
        for i, (name, attr) in enumerate(attrs):
            opts = ["SETATTR", attr] if attr is not None else []
            self.assertEqual(vadd(c, "l", [1, i], name, *opts), 1)
        every = ["z0", "z5", "q", "notobj", "bad"]
        self.check(c, "l", [
            ("!.a == 1", ["z0"]),                    # ! binds tighter than ==
            ("not (.a == 0)", ["z5"]),
            ("2 ** 3 ** 2 == 512", every),           # ** is right-associative
            ("1 < 2 < 3", every), ("3 > 2 > 1", []), # (3 > 2) > 1
            (".a == 0 || .a == 5", ["z0", "z5"]), (".a == 5 && .b == \"5\"", ["z5"]),
            (".b == 5", ["z5"]),                     # "5" == 5
            (".s == 0", ["z5", "q"]),                # non-numeric strings are 0
            (".s > -1", ["z5", "q"]),
            (".s == 'a\"b'", ["q"]),                 # JSON escapes are decoded
            (".e == 'A/'", ["q"]),                   # every JSON escape is decoded (engram;
                                                     # 8.8 reads \u0041 as u0041)
            (".n == null", ["q"]), (".a == null", []),
            ('"y" in .t', ["q"]), ("2 in .t", ["q"]), ('"z" in .t', []),
            (".o", []), (".o or 1", []),             # objects are unreadable
            (".dup == 1", ["q"]), (".dup == 2", []), # the first key wins
            (".a-1 == 7", ["q"]), (".5 == 9", ["q"]),
            (".flag", ["q"]), (".flag == 1", ["q"]),
            (".a - 1 == 4", ["z5"]), ("(.a) -1 == 4", ["z5"]), (".a -1 == 4", ["z5"]),
            (".a == -5 + 10", ["z5"]), (".a == 5.", ["z5"]), (".a == 5e0", ["z5"]),
            (".a / 0 > 1000", ["z5"]), (".a % 3 == 2", ["z5"]),
            (".a in []", []), ("[] and 1", every), ('"" in ""', every),
            (".a >= 0", ["z0", "z5"]),
        ], 2)

    def test_syntax_errors(self):
        c = self.c2()
        self.assertEqual(vadd(c, "k", [1, 0], "e", "SETATTR", '{"a":1}'), 1)
        near = "ERR syntax error in FILTER expression near: "
        cases = [
            (".x == @y", "@y"),                     # unknown character: from it
            (".x == foo and 1", " and 1"),          # bad word: after it
            (".a == 1 AND .b == 2", " .b == 2"),    # keywords are lower case
            ("NOT .a", " .a"),
            (".a == 1e-5", "-5"),                   # '-' stops a number
            (".a == [1, .b]", ".b]"),
            (".a == 1 # c", "# c"),
            (".a == 1 , 2", ", 2"),
            (".flag == true", ".flag == true"),     # error at the end: the whole text
            ('.x == "abc', '.x == "abc'),           # unterminated string
            (".a in [1, 2", ".a in [1, 2"),
            ("(.a == 1", "(.a == 1"),               # compile errors: the whole text
            (".a == 1)", ".a == 1)"),
            (".a ==", ".a =="),
            ("1 2", "1 2"),
            (".a .b", ".a .b"),
            (".age >> 3", ".age >> 3"),
            ("-.a", "-.a"),
            ("", ""),
        ]
        for expr, suffix in cases:
            self.err(c.cmd("VSIM", "k", "ELE", "e", "FILTER", expr), near + suffix,
                     "FILTER %r" % expr)

    def test_double_not_compiles(self):
        """Two prefix operators in a row compile, binding tighter than ==:
        what Redis's tests/filter_double_not.py expects of versions after
        8.8 (whose expr.c refused them, §6.4); engram takes the fix."""
        c = self.c2()
        self.assertEqual(vadd(c, "k", [1, 0], "e", "SETATTR", '{"active": true, "n": 2}'), 1)
        self.assertEqual(vadd(c, "k", [0, 1], "f", "SETATTR", '{"active": false, "n": 0}'), 1)
        q = ["VSIM", "k", "ELE", "e", "FILTER"]
        for expr, want in (("!!.active", [b"e"]), ("not not .active", [b"e"]),
                           ("! !.active", [b"e"]), ("!!!.active", [b"f"]),
                           ("!.active or !!.active", [b"e", b"f"]),
                           (".n > 1 and not not .active", [b"e"]), ("!!.n == 1", [b"e"])):
            self.assertEqual(sorted(c.cmd(*(q + [expr]))), want, expr)

    def test_escapes_in_literals_are_decoded(self):
        """FILTER string literals decode \" \' \\ \n, so "a\"b" equals the
        JSON value a"b: what Redis's tests/filter_string_escape.py expects of
        versions after 8.8 (whose literals kept the backslash, §6.3)."""
        c = self.c2()
        self.assertEqual(vadd(c, "k", [1, 0], "e", "SETATTR", '{"dq": "a\\"b", "bs": "a\\\\b", '
                              '"nl": "x\\ny"}'), 1)
        q = ["VSIM", "k", "ELE", "e", "FILTER"]
        self.assertEqual(c.cmd(*(q + ['.dq == "a\\"b"'])), [b"e"])
        self.assertEqual(c.cmd(*(q + ['.dq == \'a"b\''])), [b"e"])
        self.assertEqual(c.cmd(*(q + ['.dq == \'a\\\'b\''])), [])
        self.assertEqual(c.cmd(*(q + ['.bs == "a\\\\b"'])), [b"e"])
        self.assertEqual(c.cmd(*(q + ['"\\\\" in .bs'])), [b"e"])
        self.assertEqual(c.cmd(*(q + ['.nl == "x\\ny"'])), [b"e"])
        self.assertEqual(c.cmd(*(q + ["'a' in .bs"])), [b"e"])


# ===========================================================================
# VEMB


@engram_only
class TestVemb(VsetCase):
    def test_errors_and_nulls(self):
        c2, c3 = self.c2(), self.c3()
        self.err(c2.cmd("vemb", "k"), arity("VEMB"))
        self.assertEqual(vadd(c2, "k", [1, 0], "e"), 1)
        self.assertEqual(c2.cmd("SET", "str", "x"), "OK")
        # every word after the element must be RAW, checked before the key
        for key in ("k", "nokey", "str"):
            self.err(c2.cmd("VEMB", key, "e", "FOO"), "ERR invalid option")
            self.err(c2.cmd("VEMB", key, "e", "RAW", "FOO"), "ERR invalid option")
        self.err(c2.cmd("VEMB", "str", "e"), WRONGTYPE)
        self.err(c2.cmd("VEMB", "str", "e", "RAW"), WRONGTYPE)
        for args in (("VEMB", "nokey", "e"), ("VEMB", "k", "nope"), ("VEMB", "nokey", "e", "RAW"),
                     ("VEMB", "k", "nope", "raw")):
            self.raw(c2, args, "$-1\r\n")
            self.raw(c3, args, "_\r\n")
        self.assertEqual(len(c2.cmd("VEMB", "k", "e", "raw", "RAW")), 4)

    def test_exact_values(self):
        """(2,0) normalises to (1,0) with norm 2: NOQUANT and Q8 both give
        back exactly 2 and 0; BIN gives exactly 1 and -1 (redis-py
        test_vemb_bin_quantization: [1, 4.32, 0.0, 0.05, -2.9] -> [1, 1,
        -1, 1, -1])."""
        c2, c3 = self.c2(), self.c3()
        for quant in ("NOQUANT", "Q8"):
            self.assertEqual(vadd(c2, quant, [2, 0], "e", quant), 1)
            self.raw(c2, ("VEMB", quant, "e"), "*2\r\n$1\r\n2\r\n$1\r\n0\r\n")
            self.raw(c3, ("VEMB", quant, "e"), "*2\r\n,2\r\n,0\r\n")
            self.assertEqual(vadd(c2, quant, [0.5, 0], "h", quant), 1)
            self.raw(c2, ("VEMB", quant, "h"), "*2\r\n$3\r\n0.5\r\n$1\r\n0\r\n")
        self.assertEqual(vadd(c2, "bin", [1, 4.32, 0.0, 0.05, -2.9], "e", "BIN"), 1)
        self.raw(c2, ("VEMB", "bin", "e"),
                 "*5\r\n$1\r\n1\r\n$1\r\n1\r\n$2\r\n-1\r\n$1\r\n1\r\n$2\r\n-1\r\n")
        self.raw(c3, ("VEMB", "bin", "e"), "*5\r\n,1\r\n,1\r\n,-1\r\n,1\r\n,-1\r\n")

    def test_approximations(self):
        c = self.c2()
        rnd = random.Random(6)
        for quant, tol in (("NOQUANT", 1e-5), ("Q8", 0.01)):
            for i in range(5):
                v = [rnd.uniform(-10, 10) for _ in range(24)]
                self.assertEqual(vadd(c, quant, v, "e%d" % i, quant), 1)
                got = c.cmd("VEMB", quant, "e%d" % i)
                self.assertEqual(len(got), 24)
                big = max(abs(x) for x in v)
                for g, w in zip(got, v):
                    self.canonical(g.decode())
                    self.assertAlmostEqual(float(g), w, delta=tol * big, msg=quant)
        # BIN: the signs, zero counting as negative
        v = [rnd.uniform(-1, 1) for _ in range(70)] + [0.0]
        self.assertEqual(vadd(c, "bin", v, "e", "BIN"), 1)
        self.assertEqual([int(x) for x in c.cmd("VEMB", "bin", "e")], [1 if x > 0 else -1 for x in v])
        # a reduced set gives the reduced vector
        self.assertEqual(vadd(c, "red", [rnd.uniform(-1, 1) for _ in range(16)], "e", reduce=5), 1)
        self.assertEqual(len(c.cmd("VEMB", "red", "e")), 5)

    def test_raw_layout(self):
        """§2.4: the quantization name as a simple string, the stored bytes,
        the norm, and for int8 the range."""
        for resp3, c in self.both():
            k = "%d" % resp3
            self.assertEqual(vadd(c, "nq" + k, [3, 4], "e", "NOQUANT"), 1)
            t = tree(c.raw_cmd("VEMB", "nq" + k, "e", "RAW"))
            self.assertEqual((t[0], len(t[1])), ("*", 3))
            self.assertEqual(t[1][0], ("+", b"f32"))
            self.assertEqual(t[1][1][0], "$")
            blob = t[1][1][1]
            self.assertEqual(len(blob), 8)
            for g, w in zip(struct.unpack("<2f", blob), (0.6, 0.8)):
                self.assertAlmostEqual(g, w, delta=1e-7)
            self.assertEqual(double_text(t[1][2], resp3), "5")
            # Q8: 0.6 and 0.8 scaled by 127/0.8 -> 95 and 127; range 0.8f
            self.assertEqual(vadd(c, "q8" + k, [3, 4], "e"), 1)
            t = tree(c.raw_cmd("VEMB", "q8" + k, "e", "RAW"))
            self.assertEqual((t[0], len(t[1])), ("*", 4))
            self.assertEqual(t[1][0], ("+", b"int8"))
            self.assertEqual(t[1][1], ("$", b"\x5f\x7f"))
            self.assertEqual(double_text(t[1][2], resp3), "5")
            self.assertEqual(double_text(t[1][3], resp3), redis_double(f32(0.8)))
            # BIN: bit 0 of the first 64-bit little-endian word
            self.assertEqual(vadd(c, "bin" + k, [3, -4, 0, 0], "e", "BIN"), 1)
            t = tree(c.raw_cmd("VEMB", "bin" + k, "e", "RAW"))
            self.assertEqual((t[0], len(t[1])), ("*", 3))
            self.assertEqual(t[1][0], ("+", b"bin"))
            self.assertEqual(t[1][1], ("$", b"\x01" + b"\0" * 7))
            self.assertEqual(double_text(t[1][2], resp3), "5")

    def test_raw_sizes_bits_and_zero_vectors(self):
        c = self.c2()
        for dim, size in ((1, 8), (64, 8), (65, 16), (128, 16), (129, 24)):
            self.assertEqual(vadd(c, "bin%d" % dim, [1] * dim, "e", "BIN"), 1)
            raw = c.cmd("VEMB", "bin%d" % dim, "e", "RAW")[1]
            self.assertEqual(len(raw), size, dim)
            words = struct.unpack("<%dQ" % (size // 8), raw)
            self.assertEqual(sum(bin(w).count("1") for w in words), dim)   # unused bits are 0
        v = [-1.0] * 70
        for j in (0, 63, 64, 69):
            v[j] = 1.0
        self.assertEqual(vadd(c, "bits", v, "e", "BIN"), 1)
        self.assertEqual(c.cmd("VEMB", "bits", "e", "RAW")[1],
                         b"\x01" + b"\0" * 6 + b"\x80" + b"\x21" + b"\0" * 7)
        self.assertEqual(vadd(c, "q7", [1, 2, 3, 4, 5, 6, 7], "e"), 1)
        self.assertEqual(len(c.cmd("VEMB", "q7", "e", "RAW")[1]), 7)
        self.assertEqual(vadd(c, "f7", [1, 2, 3, 4, 5, 6, 7], "e", "NOQUANT"), 1)
        self.assertEqual(len(c.cmd("VEMB", "f7", "e", "RAW")[1]), 28)
        self.assertEqual(vadd(c, "l2", [1, 1, 1, 1], "e", "NOQUANT"), 1)
        self.assertEqual(c.cmd("VEMB", "l2", "e", "RAW")[2], b"2")
        # an all-zero vector stays zero with norm 1; its Q8 range is 0 (§3)
        self.assertEqual(vadd(c, "zf", [0, 0, 0], "z", "NOQUANT"), 1)
        self.assertEqual(c.cmd("VEMB", "zf", "z", "RAW"), ["f32", b"\0" * 12, b"1"])
        self.assertEqual(vadd(c, "zq", [0, 0, 0], "z"), 1)
        self.assertEqual(c.cmd("VEMB", "zq", "z", "RAW"), ["int8", b"\0" * 3, b"1", b"0"])
        self.assertEqual(c.cmd("VEMB", "zq", "z"), [b"0", b"0", b"0"])

    def test_raw_q8_codes(self):
        """codes = round(x * 127/range) of the normalised vector, range =
        its largest |component|, VEMB = codes * range / 127 * norm (§4)."""
        c = self.c2()
        rnd = random.Random(8)
        for i in range(10):
            v = [rnd.uniform(-3, 3) for _ in range(32)]
            self.assertEqual(vadd(c, "q", v, "e%d" % i), 1)
            name, blob, l2, rng = c.cmd("VEMB", "q", "e%d" % i, "RAW")
            self.assertEqual(name, "int8")
            codes = struct.unpack("<32b", blob)
            n = math.sqrt(sum(x * x for x in v))
            self.assertAlmostEqual(float(l2), n, delta=1e-5 * n)
            unit = [x / n for x in v]
            r = max(abs(x) for x in unit)
            self.assertAlmostEqual(float(rng), r, delta=1e-6)
            self.assertEqual(max(abs(x) for x in codes), 127)
            for code, x in zip(codes, unit):
                self.assertLessEqual(abs(code - x * 127 / r), 0.5 + 1e-3)
            emb = [float(x) for x in c.cmd("VEMB", "q", "e%d" % i)]
            for e, code in zip(emb, codes):
                self.assertAlmostEqual(e, code * float(rng) / 127 * float(l2), delta=1e-5 * n)


# ===========================================================================
# VLINKS


@engram_only
class TestVlinks(VsetCase):
    def test_errors_and_nulls(self):
        c2, c3 = self.c2(), self.c3()
        self.err(c2.cmd("vlinks", "k"), arity("VLINKS"))
        self.assertEqual(vadd(c2, "k", [1, 0], "e"), 1)
        # a 4th word other than WITHSCORES, or a 5th: the module's
        # WrongArity, argv[0] as typed (§1.7)
        self.err(c2.cmd("vlinks", "k", "e", "FOO"), arity("vlinks"))
        self.err(c2.cmd("VLinks", "k", "e", "WITHSCORES", "x"), arity("VLinks"))
        self.assertEqual(c2.cmd("SET", "str", "x"), "OK")
        self.err(c2.cmd("VLINKS", "str", "e"), WRONGTYPE)
        for args in (("VLINKS", "nokey", "e"), ("VLINKS", "k", "nope"),
                     ("VLINKS", "k", "nope", "withscores")):
            self.raw(c2, args, "$-1\r\n")
            self.raw(c3, args, "_\r\n")
        # a lone element: empty levels (redis-py test_vlinks); how many
        # depends on the level the element drew (p = 0.25 per level, §3)
        levels = len(c2.cmd("VLINKS", "k", "e"))
        self.assertGreaterEqual(levels, 1)
        for c, opts, empty in ((c2, (), "*0\r\n"), (c3, (), "*0\r\n"),
                               (c2, ("WITHSCORES",), "*0\r\n"), (c3, ("WITHSCORES",), "%0\r\n")):
            self.raw(c, ("VLINKS", "k", "e") + opts, "*%d\r\n" % levels + empty * levels)
        # (1,0) and (0,1) are orthogonal: 0.5 on layer 0, the last level
        self.assertEqual(vadd(c2, "k", [0, 1], "f"), 1)
        self.assertEqual(c2.cmd("VLINKS", "k", "e")[-1], [b"f"])
        self.assertTrue(c3.raw_cmd("VLINKS", "k", "e", "WITHSCORES").endswith(
            b"%1\r\n$1\r\nf\r\n,0.5\r\n"))

    def test_levels_highest_first(self):
        """Level i of the reply lists neighbours on layer (levels-1-i), so
        each of them lives on that layer too; layer 0 holds at most 2*M
        links, upper layers M; the last element added has at most M on
        every layer (§2.6, §7, redis-py test_add_elem_with_numlinks)."""
        c = self.c2()
        M = 8
        rnd = random.Random(9)
        vecs = {"e%d" % i: rand_vec(rnd, 8) for i in range(300)}
        self.assertEqual(vadd_many(c, "k", list(vecs.items()), "NOQUANT", "M", str(M)),
                         [1] * 300)
        names = list(vecs)
        c.send(b"".join(encode("VLINKS", "k", n) for n in names))
        links = {n: c.read() for n in names}
        top = {n: len(l) - 1 for n, l in links.items()}
        self.assertGreater(max(top.values()), 0, "300 elements and not one above layer 0")
        self.assertEqual(max(top.values()), self.vinfo(c, "k")["max-level"])
        for n, levels in links.items():
            for i, level in enumerate(levels):
                layer = len(levels) - 1 - i
                self.assertLessEqual(len(level), 2 * M if layer == 0 else M, (n, layer))
                self.assertEqual(len(set(level)), len(level), (n, layer))
                self.assertNotIn(n.encode(), level)
                for nb in level:
                    self.assertGreaterEqual(top[nb.decode()], layer,
                                            "%s links %s on layer %d" % (n, nb, layer))
        last = names[-1]
        self.assertTrue(all(len(level) <= M for level in links[last]))
        # WITHSCORES: the same names in the same order, each with 1 - d/2
        c3 = self.c3()
        for n in names[:40]:
            r = c.cmd("VLINKS", "k", n, "WITHSCORES")
            self.assertEqual(len(r), len(links[n]))
            for level, scored in zip(links[n], r):
                self.assertEqual(scored[0::2], level)
                for nb, s in zip(scored[0::2], scored[1::2]):
                    self.canonical(s.decode())
                    self.assertAlmostEqual(float(s), score(vecs[n], vecs[nb.decode()]), delta=1e-5)
            m = c3.cmd("VLINKS", "k", n, "WITHSCORES")
            self.assertEqual([list(x.keys()) for x in m], links[n])
            for x in m:
                self.assertTrue(all(isinstance(s, float) and 0 <= s <= 1 for s in x.values()))


# ===========================================================================
# VINFO


@engram_only
class TestVinfo(VsetCase):
    def test_errors_and_null(self):
        c2, c3 = self.c2(), self.c3()
        self.err(c2.cmd("vinfo"), arity("VINFO"))
        self.raw(c2, ("VINFO", "nokey"), "*-1\r\n")
        self.raw(c3, ("VINFO", "nokey"), "_\r\n")
        self.assertEqual(c2.cmd("SET", "str", "x"), "OK")
        self.err(c2.cmd("VINFO", "str"), WRONGTYPE)

    def test_wire_and_fields(self):
        c2, c3 = self.c2(), self.c3()
        self.assertEqual(vadd(c2, "s", [1, 0], "a", "NOQUANT", "SETATTR", '{"x":1}'), 1)
        self.assertEqual(vadd(c2, "s", [0, 1], "b", "NOQUANT"), 1)
        self.assertTrue(c3.raw_cmd("VINFO", "s").startswith(
            b"%9\r\n+quant-type\r\n+f32\r\n+hnsw-m\r\n:16\r\n+vector-dim\r\n:2\r\n"
            b"+projection-input-dim\r\n:0\r\n+size\r\n:2\r\n+max-level\r\n:"))
        self.assertTrue(c2.raw_cmd("VINFO", "s").startswith(
            b"*18\r\n+quant-type\r\n+f32\r\n+hnsw-m\r\n:16\r\n+vector-dim\r\n:2\r\n"))
        for resp3, c in ((False, c2), (True, c3)):
            info = self.vinfo(c, "s", resp3)
            self.assertEqual({k: info[k] for k in VINFO_KEYS if k != "vset-uid"},
                             {"quant-type": "f32", "hnsw-m": 16, "vector-dim": 2,
                              "projection-input-dim": 0, "size": 2,
                              "max-level": info["max-level"], "attributes-count": 1,
                              "hnsw-max-node-uid": 2})
            self.assertGreaterEqual(info["max-level"], 0)
        self.assertEqual(vadd(c2, "b", [1] * 10, "e", "BIN", "M", "8"), 1)
        self.assertEqual(vadd(c2, "q", [1] * 10, "e", reduce=4), 1)
        info = self.vinfo(c2, "b")
        self.assertEqual((info["quant-type"], info["hnsw-m"], info["vector-dim"]), ("bin", 8, 10))
        info = self.vinfo(c2, "q")
        self.assertEqual((info["quant-type"], info["vector-dim"], info["projection-input-dim"]),
                         ("int8", 4, 10))

    def test_counters(self):
        c = self.c2()
        for i, v in enumerate(([1, 0, 0], [0, 1, 0], [0, 0, 1])):
            self.assertEqual(vadd(c, "k", v, "e%d" % i), 1)
        info = self.vinfo(c, "k")
        self.assertEqual((info["hnsw-max-node-uid"], info["attributes-count"]), (3, 0))
        self.assertEqual(vadd(c, "k", [1, 1, 0], "e0"), 0)           # update = delete + insert
        self.assertEqual(self.vinfo(c, "k")["hnsw-max-node-uid"], 4)
        self.assertEqual(c.cmd("VREM", "k", "e1"), 1)                # ids are never reused
        self.assertEqual(self.vinfo(c, "k")["hnsw-max-node-uid"], 4)
        self.assertEqual(vadd(c, "k", [1, 1, 1], "e3", "SETATTR", "a"), 1)
        info = self.vinfo(c, "k")
        self.assertEqual((info["size"], info["hnsw-max-node-uid"], info["attributes-count"]),
                         (3, 5, 1))
        self.assertEqual(c.cmd("VSETATTR", "k", "e0", "b"), 1)
        self.assertEqual(c.cmd("VSETATTR", "k", "e0", "c"), 1)
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 2)
        self.assertEqual(c.cmd("VSETATTR", "k", "e0", ""), 1)
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 1)
        self.assertEqual(c.cmd("VREM", "k", "e3"), 1)
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 0)
        self.assertEqual(vadd(c, "k", [2, 1, 1], "e2", "SETATTR", "x"), 0)
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 1)
        self.assertEqual(vadd(c, "k", [2, 1, 1], "e2"), 0)            # kept
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 1)
        # 200 elements reach above layer 0 (redis-py test_vinfo: BIN, M 8)
        rnd = random.Random(1)
        vadd_many(c, "big", [("b%d" % i, rand_vec(rnd, 16)) for i in range(200)], "BIN", "M", "8")
        info = self.vinfo(c, "big")
        self.assertEqual((info["size"], info["hnsw-max-node-uid"]), (200, 200))
        self.assertGreater(info["max-level"], 0)

    def test_empty_setattr_on_a_new_element(self):
        """Redis quirk (§7): an empty SETATTR on a *new* element stores a
        zero-length attribute, counted, and VGETATTR returns an empty bulk;
        only on an update does it mean 'remove'."""
        c = self.c2()
        self.assertEqual(vadd(c, "k", [1, 0], "e", "SETATTR", ""), 1)
        self.raw(c, ("VGETATTR", "k", "e"), "$0\r\n\r\n")
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 1)
        self.assertEqual(vadd(c, "k", [1, 0], "e", "SETATTR", ""), 0)
        self.raw(c, ("VGETATTR", "k", "e"), "$-1\r\n")
        self.assertEqual(self.vinfo(c, "k")["attributes-count"], 0)

    def test_vset_uid(self):
        c = self.c2()
        self.assertEqual(vadd(c, "a", [1], "e"), 1)
        self.assertEqual(vadd(c, "b", [1], "e"), 1)
        ua, ub = self.vinfo(c, "a")["vset-uid"], self.vinfo(c, "b")["vset-uid"]
        self.assertGreater(ub, ua)
        self.assertGreaterEqual(ua, 0)
        self.assertEqual(c.cmd("DEL", "a"), 1)
        self.assertEqual(vadd(c, "a", [1], "e"), 1)
        self.assertGreater(self.vinfo(c, "a")["vset-uid"], ub)

    def test_full(self):
        """VINFO key FULL: engram's extended map, which includes the 9
        fields with the same values."""
        c2, c3 = self.c2(), self.c3()
        self.assertEqual(vadd(c2, "k", [1, 2, 3], "e", "NOQUANT", "M", "12", "SETATTR", "a"), 1)
        self.assertEqual(vadd(c2, "k", [3, 2, 1], "f", "NOQUANT", "M", "12"), 1)
        want = self.vinfo(c2, "k")
        full3 = c3.cmd("VINFO", "k", "FULL")
        self.assertIsInstance(full3, dict)
        full2 = c2.cmd("VINFO", "k", "full")
        self.assertIsInstance(full2, list)
        self.assertEqual(len(full2) % 2, 0)
        full2 = dict(zip(full2[0::2], full2[1::2]))
        for full in (full3, full2):
            got = {(k.decode() if isinstance(k, bytes) else k): v for k, v in full.items()}
            for k in VINFO_KEYS:
                self.assertIn(k, got)
                v = got[k]
                self.assertEqual(v.decode() if isinstance(v, bytes) else v, want[k], k)

    def test_sets_made_by_vnew(self):
        """VINFO key answers Redis's 9 fields for every vector set,
        including those engram's VNEW created."""
        c = self.c2()
        self.assertEqual(c.cmd("VNEW", "idx", "4"), "OK")
        self.assertEqual(c.cmd("VADD", "idx", "k1", fp32([1, 2, 3, 4])), 1)   # engram's dialect
        self.assertEqual(c.cmd("VADD", "idx", "k2", fp32([4, 3, 2, 1])), 1)
        info = self.vinfo(c, "idx")
        self.assertEqual((info["vector-dim"], info["size"], info["projection-input-dim"]), (4, 2, 0))
        self.assertEqual(self.vinfo(self.c3(), "idx", True)["size"], 2)


# ===========================================================================
# VSETATTR / VGETATTR


@engram_only
class TestAttributes(VsetCase):
    def test_errors(self):
        c = self.c2()
        self.err(c.cmd("vsetattr", "k", "e"), arity("VSETATTR"))
        self.err(c.cmd("VSETATTR", "k", "e", "a", "b"), arity("VSETATTR"))
        self.err(c.cmd("vgetattr", "k"), arity("VGETATTR"))
        self.err(c.cmd("VGETATTR", "k", "e", "x"), arity("VGETATTR"))
        self.assertEqual(c.cmd("SET", "str", "x"), "OK")
        self.err(c.cmd("VSETATTR", "str", "e", "{}"), WRONGTYPE)
        self.err(c.cmd("VGETATTR", "str", "e"), WRONGTYPE)

    def test_set_get_remove(self):
        c2, c3 = self.c2(), self.c3()
        self.raw(c2, ("VSETATTR", "nokey", "e", "{}"), ":0\r\n")
        self.raw(c3, ("VSETATTR", "nokey", "e", "{}"), "#f\r\n")
        self.assertEqual(vadd(c2, "k", [1, 0], "e"), 1)
        self.raw(c2, ("VSETATTR", "k", "nope", "{}"), ":0\r\n")
        self.raw(c3, ("VSETATTR", "k", "nope", "{}"), "#f\r\n")
        for c in (c2, c3):
            for args in (("VGETATTR", "nokey", "e"), ("VGETATTR", "k", "nope"), ("VGETATTR", "k", "e")):
                self.raw(c, args, "$-1\r\n" if c is c2 else "_\r\n")
        self.raw(c2, ("VSETATTR", "k", "e", '{"a": 1}'), ":1\r\n")
        self.raw(c3, ("VSETATTR", "k", "e", '{"a": 1}'), "#t\r\n")           # unchanged: still 1
        self.raw(c3, ("VGETATTR", "k", "e"), '$8\r\n{"a": 1}\r\n')
        # no JSON validation; any bytes come back exactly
        for value in (b"invalid json", b"\x00\xff\r\n", b"x" * 10000, b"[1,2]"):
            self.assertEqual(c2.cmd("VSETATTR", "k", "e", value), 1)
            self.assertEqual(c2.cmd("VGETATTR", "k", "e"), value)
        # the empty string removes it, and still replies 1
        self.raw(c2, ("VSETATTR", "k", "e", ""), ":1\r\n")
        self.raw(c2, ("VGETATTR", "k", "e"), "$-1\r\n")
        self.raw(c3, ("VSETATTR", "k", "e", ""), "#t\r\n")
        self.assertEqual(self.vinfo(c2, "k")["attributes-count"], 0)
        # what redis-py's vsetattr(key, ele) sends: "{}", stored as it is
        self.assertEqual(c2.cmd("VSETATTR", "k", "e", "{}"), 1)
        self.assertEqual(c2.cmd("VGETATTR", "k", "e"), b"{}")
        self.assertEqual(c2.cmd("VCARD", "k"), 1)


# ===========================================================================
# VRANDMEMBER


@engram_only
class TestVrandmember(VsetCase):
    def test_errors_and_check_order(self):
        c2, c3 = self.c2(), self.c3()
        self.err(c2.cmd("vrandmember"), arity("VRANDMEMBER"))
        self.err(c2.cmd("vrandmember", "k", "1", "2"), arity("vrandmember"))
        self.assertEqual(c2.cmd("SET", "str", "x"), "OK")
        for key in ("nokey", "str"):
            for bad in ("x", "1.5", "", "01", "9223372036854775808"):
                self.err(c2.cmd("VRANDMEMBER", key, bad), "ERR COUNT value is not an integer",
                         "VRANDMEMBER %s %r" % (key, bad))
            # count 0 answers before the key is looked up
            self.raw(c2, ("VRANDMEMBER", key, "0"), "*0\r\n")
            self.raw(c3, ("VRANDMEMBER", key, "0"), "*0\r\n")
        self.err(c2.cmd("VRANDMEMBER", "str"), WRONGTYPE)
        self.err(c2.cmd("VRANDMEMBER", "str", "2"), WRONGTYPE)
        self.err(c2.cmd("VRANDMEMBER", "str", "-2"), WRONGTYPE)
        self.raw(c2, ("VRANDMEMBER", "nokey"), "$-1\r\n")
        self.raw(c3, ("VRANDMEMBER", "nokey"), "_\r\n")
        self.raw(c2, ("VRANDMEMBER", "nokey", "5"), "*0\r\n")
        self.raw(c3, ("VRANDMEMBER", "nokey", "-5"), "*0\r\n")

    def test_llong_min(self):
        """Redis 8.10 rejects count = LLONG_MIN (its negation overflows)
        with an error containing "out of range" (tests/vrandmember,
        redis#15392); the exact text is not in the notes."""
        c = self.c2()
        for key in ("nokey", "k"):
            if key == "k":
                self.assertEqual(vadd(c, "k", [1], "e"), 1)
            r = c.cmd("VRANDMEMBER", key, "-9223372036854775808")
            self.assertIsInstance(r, RespError, r)
            self.assertIn("out of range", str(r))
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_counts(self):
        c2, c3 = self.c2(), self.c3()
        names = {b"e%d" % i for i in range(100)}
        vadd_many(c2, "k", [(n.decode(), [i + 1.0, 1.0]) for i, n in enumerate(sorted(names))])
        self.assertIn(c2.cmd("VRANDMEMBER", "k"), names)
        self.assertIn(c3.cmd("VRANDMEMBER", "k"), names)
        self.assertTrue(c3.raw_cmd("VRANDMEMBER", "k").startswith(b"$"))
        for count, n in ((1, 1), (10, 10), (20, 20), (50, 50), (99, 99), (100, 100), (110, 100)):
            r = c2.cmd("VRANDMEMBER", "k", str(count))
            self.assertEqual(len(r), n, count)
            self.assertEqual(len(set(r)), n, "duplicates for count %d" % count)
            self.assertTrue(set(r) <= names)
        for count in (-1, -20, -300):
            r = c2.cmd("VRANDMEMBER", "k", str(count))
            self.assertEqual(len(r), -count)
            self.assertTrue(set(r) <= names)
        self.assertIsInstance(c3.cmd("VRANDMEMBER", "k", "3"), list)
        # with two elements, both come up (tests/vrand-ping-pong)
        self.assertEqual(vadd(c2, "two", [1], "a"), 1)
        self.assertEqual(vadd(c2, "two", [2], "b"), 1)
        c2.send(encode("VRANDMEMBER", "two") * 100)
        self.assertEqual({c2.read() for _ in range(100)}, {b"a", b"b"})
        self.assertEqual(sorted(c2.cmd("VRANDMEMBER", "two", "5")), [b"a", b"b"])


# ===========================================================================
# VISMEMBER, VREM, VCARD, VDIM


@engram_only
class TestMembership(VsetCase):
    def test_vismember(self):
        c2, c3 = self.c2(), self.c3()
        self.err(c2.cmd("vismember", "k"), arity("VISMEMBER"))
        self.err(c2.cmd("VISMEMBER", "k", "a", "b"), arity("VISMEMBER"))
        self.raw(c2, ("VISMEMBER", "nokey", "e"), ":0\r\n")
        self.raw(c3, ("VISMEMBER", "nokey", "e"), "#f\r\n")
        self.assertEqual(vadd(c2, "k", [1, 2], "e"), 1)
        self.raw(c2, ("VISMEMBER", "k", "e"), ":1\r\n")
        self.raw(c3, ("VISMEMBER", "k", "e"), "#t\r\n")
        self.raw(c2, ("VISMEMBER", "k", "E"), ":0\r\n")
        self.assertEqual(vadd(c2, "k", [2, 1], "f"), 1)
        self.assertEqual(c2.cmd("VREM", "k", "e"), 1)
        self.raw(c2, ("VISMEMBER", "k", "e"), ":0\r\n")
        self.assertEqual(c2.cmd("SET", "str", "x"), "OK")
        self.err(c2.cmd("VISMEMBER", "str", "e"), WRONGTYPE)

    def test_vrem(self):
        c2, c3 = self.c2(), self.c3()
        self.err(c2.cmd("vrem", "k"), arity("VREM"))
        self.err(c2.cmd("VREM", "k", "a", "b"), arity("VREM"))
        self.raw(c2, ("VREM", "nokey", "e"), ":0\r\n")
        self.raw(c3, ("VREM", "nokey", "e"), "#f\r\n")
        for i in range(3):
            self.assertEqual(vadd(c2, "k", [1, i], "e%d" % i), 1)
        self.raw(c2, ("VREM", "k", "nope"), ":0\r\n")
        self.raw(c3, ("VREM", "k", "e0"), "#t\r\n")
        self.raw(c2, ("VREM", "k", "e0"), ":0\r\n")
        self.assertEqual(c2.cmd("VCARD", "k"), 2)
        self.assertEqual(c2.cmd("VSIM", "k", "VALUES", "2", "1", "0", "COUNT", "10"), [b"e1", b"e2"])
        self.assertEqual(c2.cmd("VREM", "k", "e1"), 1)
        self.assertEqual(c2.cmd("VREM", "k", "e2"), 1)
        # the last element gone, the key is gone (tests/evict_empty)
        self.assertEqual(c2.cmd("EXISTS", "k"), 0)
        self.assertEqual(c2.cmd("TYPE", "k"), "none")
        self.raw(c2, ("VINFO", "k"), "*-1\r\n")
        self.assertEqual(c2.cmd("SET", "str", "x"), "OK")
        self.err(c2.cmd("VREM", "str", "e"), WRONGTYPE)
        # deletes keep the graph searchable
        rnd = random.Random(12)
        vecs = {"d%d" % i: rand_vec(rnd, 8) for i in range(300)}
        vadd_many(c2, "big", list(vecs.items()), "NOQUANT")
        for i in range(0, 300, 2):
            self.assertEqual(c2.cmd("VREM", "big", "d%d" % i), 1)
            del vecs["d%d" % i]
        self.assertEqual(c2.cmd("VCARD", "big"), 150)
        q = rand_vec(rnd, 8)
        r = [x.decode() for x in c2.cmd("VSIM", "big", "FP32", fp32(q), "TRUTH")]
        self.assertEqual(r, brute_top(q, vecs, 10))
        r = [x.decode() for x in c2.cmd("VSIM", "big", "FP32", fp32(q), "EF", "300")]
        self.assertGreaterEqual(len(set(r) & set(brute_top(q, vecs, 10))), 8)

    def test_vcard_vdim(self):
        c = self.c2()
        self.err(c.cmd("vcard"), arity("VCARD"))
        self.err(c.cmd("VCARD", "k", "x"), arity("VCARD"))
        self.err(c.cmd("vdim"), arity("VDIM"))
        self.err(c.cmd("VDIM", "k", "x"), arity("VDIM"))
        self.assertEqual(c.cmd("VCARD", "nokey"), 0)
        self.err(c.cmd("VDIM", "nokey"), "ERR key does not exist")
        self.assertEqual(vadd(c, "k", [1, 2, 3], "e"), 1)
        self.assertEqual(vadd(c, "k", [1, 2, 4], "f"), 1)
        self.assertEqual((c.cmd("VCARD", "k"), c.cmd("VDIM", "k")), (2, 3))
        self.assertEqual(c.cmd("SET", "str", "x"), "OK")
        self.err(c.cmd("VCARD", "str"), WRONGTYPE)
        self.err(c.cmd("VDIM", "str"), WRONGTYPE)


# ===========================================================================
# VRANGE


@engram_only
class TestVrange(VsetCase):
    FRUIT = ["apple", "apricot", "banana", "cherry", "date", "elderberry", "fig", "grape",
             "honeydew", "kiwi", "lemon", "mango", "nectarine", "orange", "papaya", "quince",
             "raspberry", "strawberry", "tangerine", "watermelon"]

    def fill(self, c):
        rnd = random.Random(13)
        vadd_many(c, "k", [(f, rand_vec(rnd, 4)) for f in reversed(self.FRUIT)])

    def r(self, c, *args):
        reply = c.cmd("VRANGE", "k", *args)
        self.assertIsInstance(reply, list, "VRANGE k %r: %r" % (args, reply))
        return [x.decode() for x in reply]

    def test_ranges(self):
        c = self.c2()
        self.fill(c)
        F = self.FRUIT
        self.assertEqual(self.r(c, "-", "+"), F)
        self.assertEqual(self.r(c, "-", "+", "100"), F)
        self.assertEqual(self.r(c, "[apple", "[grape", "5"), F[:5])
        self.assertEqual(self.r(c, "(apple", "[cherry", "10"), ["apricot", "banana", "cherry"])
        self.assertEqual(self.r(c, "[banana", "(cherry", "10"), ["banana"])
        self.assertEqual(self.r(c, "-", "[banana"), F[:3])
        self.assertEqual(self.r(c, "[raspberry", "+"), F[16:])
        self.assertEqual(self.r(c, "[cherry", "[cherry"), ["cherry"])
        self.assertEqual(self.r(c, "(cherry", "(cherry"), [])
        self.assertEqual(self.r(c, "[grape", "[apple"), [])               # start > end
        self.assertEqual(self.r(c, "[zebra", "+"), [])
        self.assertEqual(self.r(c, "[app", "[apr"), ["apple"])            # prefixes sort first
        self.assertEqual(self.r(c, "[b", "(c"), ["banana"])
        self.assertEqual(self.r(c, "(a", "[b"), ["apple", "apricot"])
        self.assertEqual(self.r(c, "-", "+", "0"), [])
        self.assertEqual(self.r(c, "-", "+", "-1"), F)                    # negative: no limit
        self.assertEqual(self.r(c, "-", "+", "-7"), F)
        self.assertEqual(self.r(c, "-", "+", "3"), F[:3])
        self.assertEqual(c.cmd("VRANGE", "nokey", "-", "+", "10"), [])
        c3 = self.c3()
        self.raw(c3, ("VRANGE", "k", "[fig", "[grape"), "*2\r\n$3\r\nfig\r\n$5\r\ngrape\r\n")
        # stateless iteration: VRANGE k - + N, then (last + N
        seen, last = [], None
        while True:
            batch = self.r(c, "(" + last if last else "-", "+", "3")
            seen += batch
            if len(batch) < 3:
                break
            last = batch[-1]
        self.assertEqual(seen, F)

    def test_bytewise_order(self):
        c = self.c2()
        names = [b"\xff", b"b", b"ab", b"a", b"\x00", b"A", b"a\x00"]
        for i, n in enumerate(names):
            self.assertEqual(c.cmd("VADD", "k", "VALUES", "1", str(i + 1), n), 1)
        self.assertEqual(c.cmd("VRANGE", "k", "-", "+"), sorted(names))
        self.assertEqual(c.cmd("VRANGE", "k", b"[a", b"(b"), [b"a", b"a\x00", b"ab"])
        self.assertEqual(c.cmd("VRANGE", "k", b"(\x00", b"[\xff", "2"), [b"A", b"a"])

    def test_errors_before_the_key(self):
        c = self.c2()
        self.err(c.cmd("vrange", "k", "-"), arity("VRANGE"))
        self.err(c.cmd("vrange", "k", "-", "+", "1", "2"), arity("vrange"))
        self.assertEqual(c.cmd("SET", "str", "x"), "OK")
        for key in ("nokey", "str"):
            for args, text in (
                    (("-", "+", "x"), "ERR invalid COUNT value"),
                    (("-", "+", "1.5"), "ERR invalid COUNT value"),
                    (("-", "+", ""), "ERR invalid COUNT value"),
                    (("x", "+", "x"), "ERR invalid COUNT value"),       # COUNT first
                    (("", "+"), "ERR invalid start range format"),
                    (("[", "+"), "ERR invalid start range format"),
                    (("(", "+"), "ERR invalid start range format"),
                    (("apple", "+"), "ERR invalid start range format"),
                    (("--", "+"), "ERR invalid start range format"),
                    (("x", "y"), "ERR invalid start range format"),     # start first
                    (("-", ""), "ERR invalid end range format"),
                    (("-", "("), "ERR invalid end range format"),
                    (("-", "z"), "ERR invalid end range format"),
                    (("-", "++"), "ERR invalid end range format"),
                    (("+", "+"), "ERR '-' can only be used as first argument, '+' only as second"),
                    (("-", "-"), "ERR '-' can only be used as first argument, '+' only as second"),
                    (("+", "-"), "ERR '-' can only be used as first argument, '+' only as second"),
                    (("[a", "-"), "ERR '-' can only be used as first argument, '+' only as second")):
                self.err(c.cmd("VRANGE", key, *args), text, "VRANGE %s %r" % (key, args))
        self.err(c.cmd("VRANGE", "str", "-", "+"), WRONGTYPE)
        self.err(c.cmd("VRANGE", "str", "-", "+", "0"), WRONGTYPE)


# ===========================================================================
# REDUCE


@engram_only
class TestReduce(VsetCase):
    def test_reduced_sets(self):
        c = self.c2()
        self.assertEqual(vadd(c, "r", [1, 4.32, 0.11, 0.5, 0.9], "e", reduce=3), 1)
        self.assertEqual(c.cmd("VDIM", "r"), 3)
        info = self.vinfo(c, "r")
        self.assertEqual((info["vector-dim"], info["projection-input-dim"]), (3, 5))
        self.assertEqual(len(c.cmd("VEMB", "r", "e")), 3)
        self.assertEqual(len(c.cmd("VEMB", "r", "e", "RAW")[1]), 3)
        # REDUCE equal to the input dimension is allowed
        self.assertEqual(vadd(c, "same", [1, 2], "e", reduce=2), 1)
        self.assertEqual(self.vinfo(c, "same")["projection-input-dim"], 2)

    def test_projection_is_hadamard(self):
        """M[i][j] = +-1/sqrt(input dim), + when popcount(i & j) is even
        (§5): (1,2,3,4) -> ((1+2+3+4)/2, (1-2+3-4)/2) = (5, -1)."""
        c = self.c2()
        self.assertEqual(vadd(c, "h", [1, 2, 3, 4], "e", "NOQUANT", reduce=2), 1)
        got = [float(x) for x in c.cmd("VEMB", "h", "e")]
        for g, w in zip(got, [5, -1]):
            self.assertAlmostEqual(g, w, delta=1e-5)
        rnd = random.Random(14)
        v = [rnd.uniform(-1, 1) for _ in range(16)]
        self.assertEqual(vadd(c, "h16", v, "e", "NOQUANT", reduce=6), 1)
        want = [sum((1 if bin(i & j).count("1") % 2 == 0 else -1) * v[j] for j in range(16)) / 4
                for i in range(6)]
        for g, w in zip([float(x) for x in c.cmd("VEMB", "h16", "e")], want):
            self.assertAlmostEqual(g, w, delta=1e-5)
        # the same projection every time: two sets agree byte for byte
        self.assertEqual(vadd(c, "h16b", v, "e", "NOQUANT", reduce=6), 1)
        self.assertEqual(c.cmd("VEMB", "h16", "e", "RAW"), c.cmd("VEMB", "h16b", "e", "RAW"))

    def test_reduced_search(self):
        """tests/reduce: 100 -> 80 dims keeps neighbourhoods."""
        c = self.c2()
        rnd = random.Random(15)
        vecs = {"e%d" % i: rand_vec(rnd, 100) for i in range(300)}
        self.assertEqual(vadd_many(c, "r", list(vecs.items()), reduce=80), [1] * 300)
        self.assertEqual(c.cmd("VDIM", "r"), 80)
        overlap = 0
        for t in range(5):
            q = rand_vec(rnd, 100)
            r = c.cmd("VSIM", "r", "FP32", fp32(q), "COUNT", "50", "WITHSCORES")
            got = [x.decode() for x in r[0::2]]
            want = brute_top(q, vecs, 50)
            overlap += len(set(got) & set(want))
            for n, s in zip(r[0::2], r[1::2]):
                if n.decode() in want:
                    self.assertAlmostEqual(float(s), score(q, vecs[n.decode()]), delta=0.2)
        self.assertGreaterEqual(overlap, 0.1 * 250)


# ===========================================================================
# Quantisation and recall


@engram_only
class TestQuality(VsetCase):
    def sim_of(self, c, key, query, target):
        r = c.cmd(*(["VSIM", key] + values(query) + ["WITHSCORES", "COUNT", "100", "TRUTH"]))
        d = dict(zip(r[0::2], r[1::2]))
        return float(d[target.encode()])

    def test_q8_and_bin_similarity(self):
        """tests/q8_vectorization and tests/bin_vectorization."""
        c = self.c2()
        rnd = random.Random(16)
        for quant, dims, near in (("Q8", (16, 64, 128), 0.99), ("BIN", (1, 64, 128, 384, 768), 0.95)):
            for dim in dims:
                key = "%s%d" % (quant, dim)
                v = rand_vec(rnd, dim)
                self.assertEqual(vadd(c, key, v, "target", quant), 1)
                vadd_many(c, key, [("o%d" % i, rand_vec(rnd, dim)) for i in range(20)], quant)
                self.assertGreater(self.sim_of(c, key, v, "target"), 0.99, key)
                self.assertGreater(self.sim_of(c, key, [0.99 * x for x in v], "target"), near, key)
                self.assertLess(self.sim_of(c, key, [-x for x in v], "target"), 0.1, key)

    def test_recall(self):
        """Recall@10 with the default EF against an exact cosine scan:
        NOQUANT >= 0.95, Q8 >= 0.9.  Pure Python brute force (python3-numpy
        is not among the test dependencies); 3,000 32-d vectors, 30
        queries."""
        c = self.c2()
        rnd = random.Random(17)
        n, dim = 3000, 32
        vecs = {"e%d" % i: rand_vec(rnd, dim) for i in range(n)}
        unit = {k: normalized(v) for k, v in vecs.items()}
        for quant in ("NOQUANT", "Q8"):
            self.assertEqual(vadd_many(c, quant, list(vecs.items()), quant), [1] * n)
        queries = [normalized(rand_vec(rnd, dim)) for _ in range(30)]
        truth = []
        for q in queries:
            sims = sorted(((sum(a * b for a, b in zip(q, u)), k) for k, u in unit.items()),
                          reverse=True)
            truth.append({k for _, k in sims[:10]})
        for quant, floor in (("NOQUANT", 0.95), ("Q8", 0.9)):
            c.send(b"".join(encode("VSIM", quant, "FP32", fp32(q)) for q in queries))
            hits = sum(len({x.decode() for x in c.read()} & t) for t in truth)
            self.assertGreaterEqual(hits / (10.0 * len(queries)), floor, quant)


# ===========================================================================
# Doubles


@engram_only
class TestDoubles(VsetCase):
    """Every double in a reply is written as Redis writes it: integers
    without '.0', the shortest digits otherwise (§2)."""

    def test_every_double_is_canonical(self):
        rnd = random.Random(18)
        c = self.c2()
        for quant in ("NOQUANT", "Q8", "BIN"):
            vadd_many(c, quant, [("e%d" % i, rand_vec(rnd, 20)) for i in range(60)], quant)
        for resp3, c in self.both():
            for quant in ("NOQUANT", "Q8", "BIN"):
                q = rand_vec(rnd, 20)
                t = tree(c.raw_cmd("VSIM", quant, "FP32", fp32(q), "WITHSCORES", "COUNT", "20"))
                self.assertEqual(t[0], "%" if resp3 else "*")
                for item in t[1][1::2]:
                    self.canonical(double_text(item, resp3), quant)
                t = tree(c.raw_cmd("VEMB", quant, "e3"))
                for item in t[1]:
                    self.canonical(double_text(item, resp3), quant)
                t = tree(c.raw_cmd("VEMB", quant, "e3", "RAW"))
                for item in t[1][2:]:
                    self.canonical(double_text(item, resp3), quant)
                t = tree(c.raw_cmd("VLINKS", quant, "e3", "WITHSCORES"))
                for level in t[1]:
                    self.assertEqual(level[0], "%" if resp3 else "*")
                    for item in level[1][1::2]:
                        self.canonical(double_text(item, resp3), quant)

    def test_formatter(self):
        """The helper itself, on the examples the notes give (§2)."""
        for v, text in ((1.0, "1"), (-1.0, "-1"), (0.5, "0.5"), (0.0, "0"), (0.1, "0.1"),
                        (1e-7, "1e-7"), (1.5e21, "1.5e+21"), (f32(0.18208661675453186),
                                                              "0.18208661675453186"),
                        (2.0 ** 61, "2305843009213693952"), (123.25, "123.25"),
                        (0.00001, "0.00001")):
            self.assertEqual(redis_double(v), text)


# ===========================================================================
# One keyspace


@engram_only
class TestKeyspace(VsetCase):
    def test_type_del_unlink_exists_rename(self):
        c = self.c2()
        self.assertEqual(vadd(c, "v", [1, 2], "a", "NOQUANT", "SETATTR", '{"x":1}'), 1)
        self.assertEqual(vadd(c, "v", [2, 1], "b", "NOQUANT"), 1)
        self.assertEqual(c.cmd("TYPE", "v"), "vectorset")
        self.assertEqual(c.cmd("EXISTS", "v", "v", "nokey"), 2)
        self.assertEqual(c.cmd("SCAN", "0", "TYPE", "vectorset")[1], [b"v"])
        raw_a = c.cmd("VEMB", "v", "a", "RAW")
        self.assertEqual(c.cmd("RENAME", "v", "w"), "OK")
        self.assertEqual(c.cmd("EXISTS", "v"), 0)
        self.assertEqual(c.cmd("VCARD", "w"), 2)
        self.assertEqual(c.cmd("VEMB", "w", "a", "RAW"), raw_a)
        self.assertEqual(c.cmd("VGETATTR", "w", "a"), b'{"x":1}')
        self.assertEqual(c.cmd("VSIM", "w", "ELE", "a"), [b"a", b"b"])
        self.assertEqual(vadd(c, "w", [1, 1], "c", "NOQUANT"), 1)     # still a set under its new name
        self.assertEqual(c.cmd("DEL", "w"), 1)
        self.assertEqual(c.cmd("VCARD", "w"), 0)
        self.assertEqual(vadd(c, "u", [1, 2], "a"), 1)
        self.assertEqual(c.cmd("UNLINK", "u"), 1)
        self.assertEqual(c.cmd("EXISTS", "u"), 0)
        # a string renamed over a set replaces it; SET overwrites a set
        self.assertEqual(vadd(c, "x", [1, 2], "a"), 1)
        self.assertEqual(c.cmd("SET", "s", "str"), "OK")
        self.assertEqual(c.cmd("RENAME", "s", "x"), "OK")
        self.assertEqual(c.cmd("TYPE", "x"), "string")
        self.assertEqual(vadd(c, "y", [1, 2], "a"), 1)
        self.assertEqual(c.cmd("SET", "y", "now a string"), "OK")
        self.assertEqual(c.cmd("GET", "y"), b"now a string")

    def test_wrongtype_both_ways(self):
        c = self.c2()
        self.assertEqual(vadd(c, "v", [1, 2], "a"), 1)
        for cmd in (("GET", "v"), ("STRLEN", "v"), ("APPEND", "v", "x"), ("INCR", "v"),
                    ("GETRANGE", "v", "0", "1")):
            self.err(c.cmd(*cmd), WRONGTYPE, cmd)
        self.assertEqual(c.cmd("TYPE", "v"), "vectorset")
        self.assertEqual(c.cmd("SET", "s", "x"), "OK")
        for cmd in (vadd_args("s", [1, 2], "a"), ("VSIM", "s", "ELE", "a"),
                    ["VSIM", "s"] + values([1, 2]), ("VREM", "s", "a"), ("VCARD", "s"),
                    ("VDIM", "s"), ("VEMB", "s", "a"), ("VEMB", "s", "a", "RAW"),
                    ("VLINKS", "s", "a"), ("VLINKS", "s", "a", "WITHSCORES"), ("VINFO", "s"),
                    ("VSETATTR", "s", "a", "{}"), ("VGETATTR", "s", "a"), ("VRANDMEMBER", "s"),
                    ("VRANDMEMBER", "s", "3"), ("VISMEMBER", "s", "a"), ("VRANGE", "s", "-", "+")):
            self.err(c.cmd(*cmd), WRONGTYPE, cmd)
        self.assertEqual(c.cmd("GET", "s"), b"x")

    def test_databases_and_transactions(self):
        c = self.c2()
        self.assertEqual(c.cmd("SELECT", "3"), "OK")
        self.assertEqual(vadd(c, "v", [1, 0], "a"), 1)
        self.assertEqual(c.cmd("SELECT", "0"), "OK")
        self.assertEqual(c.cmd("VCARD", "v"), 0)
        # the same database: refused before the key is looked at, as Redis does
        self.err(c.cmd("MOVE", "v", "0"), "ERR source and destination objects are the same")
        self.assertEqual(c.cmd("MULTI"), "OK")
        for cmd in (vadd_args("v", [1, 0], "a", "NOQUANT"), vadd_args("v", [0, 1], "b", "NOQUANT"),
                    ("VSIM", "v", "ELE", "a", "WITHSCORES"), ("VCARD", "v")):
            self.assertEqual(c.cmd(*cmd), "QUEUED")
        self.assertEqual(c.cmd("EXEC"), [1, 1, [b"a", b"1", b"b", b"0.5"], 2])
        self.assertEqual(c.cmd("FLUSHALL"), "OK")
        self.assertEqual(c.cmd("SELECT", "3"), "OK")
        self.assertEqual(c.cmd("EXISTS", "v"), 0)

    def test_engram_dialect_kept(self):
        """VADD takes Redis's grammar only when argv[2] is REDUCE, FP32 or
        VALUES (any case); otherwise it is engram's `VADD index key
        vector` on a set VNEW made."""
        c = self.c2()
        self.assertEqual(c.cmd("VNEW", "idx", "2"), "OK")
        self.assertEqual(c.cmd("VADD", "idx", "k1", fp32([1, 0])), 1)
        self.assertEqual(c.cmd("VADD", "idx", "k2", "VALUES", "2", "0", "1"), 1)
        self.assertEqual(c.cmd("VSEARCH", "idx", fp32([1, 0]), "1")[0], b"k1")
        self.assertEqual(c.cmd("TYPE", "idx"), "vectorset")
        self.assertEqual(c.cmd("VCARD", "idx"), 2)
        # "fp32"/"Values"/"reduce" in third place: Redis's grammar (and with
        # four arguments, Redis's arity error)
        self.err(c.cmd("VADD", "idx", "fp32", fp32([1, 0])), arity("VADD"))
        self.err(c.cmd("VADD", "idx", "Values", fp32([1, 0])), arity("VADD"))
        self.err(c.cmd("VADD", "idx", "reduce", fp32([1, 0])), arity("VADD"))


# ===========================================================================
# INFO, MODULE LIST


@engram_only
class TestServerIdentity(VsetCase):
    def test_info_and_module_list(self):
        c2, c3 = self.c2(), self.c3()
        info = parse_info(c2.cmd("INFO", "server"))
        self.assertEqual(info["redis_version"], "8.8.0")
        lines = c2.cmd("INFO", "modules").decode().split("\r\n")
        self.assertTrue(any(l.startswith("module:name=vectorset,ver=1") for l in lines), lines)
        text = lambda x: x.decode() if isinstance(x, bytes) else x
        mods = c2.cmd("MODULE", "LIST")
        self.assertIsInstance(mods, list)
        entries = [{text(k): text(v) for k, v in zip(m[0::2], m[1::2])} for m in mods]
        self.assertIn(("vectorset", 1), [(e.get("name"), e.get("ver")) for e in entries])
        mods = c3.cmd("MODULE", "LIST")
        self.assertTrue(all(isinstance(m, dict) for m in mods), mods)
        entries = [{text(k): text(v) for k, v in m.items()} for m in mods]
        self.assertIn(("vectorset", 1), [(e.get("name"), e.get("ver")) for e in entries])


# ===========================================================================
# redis-py: the argument lists its vset() methods send


class PyVset:
    """What redis-py's r.vset() sends and how it reads the replies in RESP2
    (§9.1), over Debian's redis-py 4.3.4, which has no vset() of its own."""

    def __init__(self, r):
        self.r = r
        self.x = r.execute_command

    def vadd(self, key, vector, element, reduce_dim=None, cas=False, quantization=None,
             ef=None, attributes=None, numlinks=None):
        pieces = []
        if reduce_dim:
            pieces += ["REDUCE", reduce_dim]
        if isinstance(vector, bytes):
            pieces += ["FP32", vector]
        else:
            pieces += ["VALUES", len(vector)] + list(vector)
        pieces.append(element)
        if cas:
            pieces.append("CAS")
        if quantization:
            pieces.append(quantization)
        if ef:
            pieces += ["EF", ef]
        if attributes:
            pieces += ["SETATTR", json.dumps(attributes) if isinstance(attributes, dict)
                       else attributes]
        if numlinks:
            pieces += ["M", numlinks]
        return self.x("VADD", key, *pieces)

    def vsim(self, key, input, with_scores=False, with_attribs=False, count=None, ef=None,
             filter=None, filter_ef=None, truth=False, no_thread=False, epsilon=None):
        if isinstance(input, bytes):
            pieces = ["FP32", input]
        elif isinstance(input, list):
            pieces = ["VALUES", len(input)] + input
        else:
            pieces = ["ELE", input]
        if with_scores:
            pieces.append("WITHSCORES")
        if with_attribs:
            pieces.append("WITHATTRIBS")
        if count:
            pieces += ["COUNT", count]
        if epsilon:
            pieces += ["EPSILON", epsilon]
        if ef:
            pieces += ["EF", ef]
        if filter:
            pieces += ["FILTER", filter]
        if filter_ef:
            pieces += ["FILTER-EF", filter_ef]
        if truth:
            pieces.append("TRUTH")
        if no_thread:
            pieces.append("NOTHREAD")
        r = self.x("VSIM", key, *pieces)
        if not r or not (with_scores or with_attribs):
            return r
        attr = lambda a: json.loads(a) if a else None
        if with_scores and with_attribs:
            return {r[i]: {"score": float(r[i + 1]), "attributes": attr(r[i + 2])}
                    for i in range(0, len(r), 3)}
        if with_scores:
            return {r[i]: float(r[i + 1]) for i in range(0, len(r), 2)}
        return {r[i]: attr(r[i + 1]) for i in range(0, len(r), 2)}

    def vemb(self, key, element, raw=False):
        if raw:
            r = self.x("VEMB", key, element, "RAW")
            if r is None:
                return None
            out = {"quantization": r[0], "raw": r[1], "l2": float(r[2])}
            if len(r) > 3:
                out["range"] = float(r[3])
            return out
        r = self.x("VEMB", key, element)
        if r is None:
            return None
        out = []
        for x in r:
            try:
                out.append(int(x))
            except ValueError:
                out.append(float(x))
        return out

    def vlinks(self, key, element, with_scores=False):
        r = self.x("VLINKS", key, element, *(["WITHSCORES"] if with_scores else []))
        if r is None or not with_scores:
            return r
        return [{lvl[i]: float(lvl[i + 1]) for i in range(0, len(lvl), 2)} for lvl in r]

    def vinfo(self, key):
        r = self.x("VINFO", key)
        return None if r is None else dict(zip(r[0::2], r[1::2]))

    def vsetattr(self, key, element, attributes=None):
        if attributes is None:
            attributes = "{}"
        elif isinstance(attributes, dict):
            attributes = json.dumps(attributes)
        return self.x("VSETATTR", key, element, attributes)

    def vgetattr(self, key, element):
        r = self.x("VGETATTR", key, element)
        return json.loads(r) or None if r is not None else None

    def vrandmember(self, key, count=None):
        return self.x("VRANDMEMBER", key, *([] if count is None else [count]))

    def vrange(self, key, start, end, count=None):
        return self.x("VRANGE", key, start, end, *([] if count is None else [count]))

    def vdim(self, key):
        return self.x("VDIM", key)

    def vcard(self, key):
        return self.x("VCARD", key)

    def vrem(self, key, element):
        return self.x("VREM", key, element)


def close_to(got, want, tol):
    big = max(abs(w) for w in want) or 1
    return len(got) == len(want) and all(abs(g - w) <= tol * big + 1e-6 for g, w in zip(got, want))


@engram_only
class TestRedisPy(VsetCase):
    """Behaviours redis-py's tests/test_vsets.py relies on, through the
    same arguments (our code, not theirs)."""

    def setUp(self):
        super().setUp()
        self.v = PyVset(self.client(decode_responses=True))
        self.b = PyVset(self.client())

    def test_vadd_vemb(self):
        v = self.v
        a = [1, 4.32, 0.11]
        self.assertEqual(v.vadd("s", a, "elem1"), 1)
        self.assertTrue(close_to(v.vemb("s", "elem1"), a, 0.1))
        self.assertEqual(v.vadd("s2", fp32(a), "elem1"), 1)
        self.assertTrue(close_to(v.vemb("s2", "elem1"), a, 0.1))
        self.assertEqual(v.vadd("s3", [1, 4.32, 0.11, 0.5, 0.9], "elem1", reduce_dim=3), 1)
        self.assertEqual(v.vdim("s3"), 3)
        self.assertEqual(v.vadd("s4", [1, 4.32, 0.11, 0.5, 0.9], "elem1", cas=True), 1)
        self.assertEqual(v.vadd("nq", [1, 4.32, 0.11, 0.5, 0.9], "elem1", quantization="NOQUANT"), 1)
        self.assertTrue(close_to(v.vemb("nq", "elem1"), [1, 4.32, 0.11, 0.5, 0.9], 1e-6))
        self.assertEqual(v.vadd("bin", [1, 4.32, 0.0, 0.05, -2.9], "elem", quantization="BIN"), 1)
        self.assertEqual(v.vemb("bin", "elem"), [1, 1, -1, 1, -1])
        self.assertEqual(v.vadd("bin2", [1, 4.32, 10.0, -21, -2.9], "elem", quantization="BIN"), 1)
        self.assertEqual(v.vemb("bin2", "elem"), [1, 1, 1, -1, -1])
        raw = self.b.vemb("bin", "elem", raw=True)
        self.assertEqual(raw["quantization"], b"bin")
        self.assertIsInstance(raw["raw"], bytes)
        self.assertIsInstance(raw["l2"], float)
        self.assertNotIn("range", raw)
        self.assertEqual(v.vadd("q8", [1, 10.32, 0.0, 2.05, -12.5], "elem", quantization="Q8"), 1)
        self.assertTrue(close_to(v.vemb("q8", "elem"), [1, 10.32, 0.0, 2.05, -12.5], 0.1))
        raw = self.b.vemb("q8", "elem", raw=True)
        self.assertEqual(raw["quantization"], b"int8")
        self.assertIn("range", raw)
        self.assertEqual(self.b.vemb("nq", "elem1", raw=True)["quantization"], b"f32")
        self.assertIsNone(v.vemb("q8", "nope"))
        self.assertIsNone(v.vemb("nokey", "elem"))
        # a pipeline of them
        p = self.b.r.pipeline(transaction=False)
        for i in range(20):
            p.execute_command("VADD", "pipe", "VALUES", 2, i, 1.5, "e%d" % i)
        p.execute_command("VCARD", "pipe")
        self.assertEqual(p.execute(), [1] * 20 + [20])

    def test_attributes(self):
        v = self.v
        a = [1, 4.32, 10.0, -21, -2.9]
        attrs = {"key1": "value1", "key2": "value2"}
        self.assertEqual(v.vadd("s", a, "elem3", attributes=attrs), 1)
        self.assertEqual(v.vgetattr("s", "elem3"), attrs)
        self.assertEqual(v.vadd("s", a, "elem4", attributes={}), 1)
        self.assertIsNone(v.vgetattr("s", "elem4"))
        self.assertEqual(v.vadd("s", a, "elem5", attributes=json.dumps(attrs)), 1)
        self.assertEqual(v.vgetattr("s", "elem5"), attrs)
        self.assertEqual(v.vsetattr("s", "elem5", {"k": [1, 2]}), 1)
        self.assertEqual(v.vgetattr("s", "elem5"), {"k": [1, 2]})
        self.assertEqual(v.vsetattr("s", "elem5"), 1)
        self.assertIsNone(v.vgetattr("s", "elem5"))             # "{}" is stored; falsy client-side
        self.assertEqual(v.r.execute_command("VGETATTR", "s", "elem5"), "{}")
        self.assertEqual(v.vsetattr("s", "nope", attrs), 0)
        self.assertEqual(v.vsetattr("nokey", "elem", attrs), 0)
        self.assertIsNone(v.vgetattr("nokey", "elem"))

    def test_numlinks_vlinks_vinfo(self):
        v = self.v
        rnd = random.Random(19)
        for i in range(100):
            self.assertEqual(v.vadd("s", [rnd.randint(0, 10) for _ in range(10)], "elem%d" % i,
                                    numlinks=8), 1)
        a = [1, 4.32, 0.11, 0.5, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5]
        self.assertEqual(v.vadd("s", a, "elem_numlinks", numlinks=8), 1)
        self.assertTrue(close_to(v.vemb("s", "elem_numlinks"), a, 0.5))
        for level in v.vlinks("s", "elem_numlinks"):
            self.assertLessEqual(len(level), 8)
        scored = v.vlinks("s", "elem_numlinks", with_scores=True)
        self.assertEqual([list(d) for d in scored], v.vlinks("s", "elem_numlinks"))
        self.assertTrue(all(0 <= s <= 1 for d in scored for s in d.values()))
        self.assertIsNone(v.vlinks("s", "nope"))
        info = v.vinfo("s")
        self.assertEqual((info["quant-type"], info["vector-dim"], info["size"], info["hnsw-m"],
                          info["hnsw-max-node-uid"]), ("int8", 10, 101, 8, 101))
        self.assertIsNone(v.vinfo("nokey"))
        for i in range(100):
            v.vadd("b", [rnd.uniform(-1, 1) for _ in range(16)], "e%d" % i, quantization="BIN",
                   numlinks=8)
        info = v.vinfo("b")
        self.assertEqual(info["quant-type"], "bin")
        self.assertGreater(info["max-level"], 0)

    def test_vsim(self):
        import redis
        v = self.v
        rnd = random.Random(20)
        for i in range(30):
            v.vadd("s", [rnd.uniform(0, 10) for _ in range(800)], "elem%d" % i, numlinks=64)
        self.assertEqual(len(v.vsim("s", "elem1")), 10)
        self.assertIsInstance(v.vsim("s", "elem1")[0], str)
        self.assertEqual(len(v.vsim("s", "elem1", count=5)), 5)
        self.assertEqual(len(v.vsim("s", "elem1", count=50)), 30)
        self.assertEqual(len(v.vsim("s", "elem1", count=15)), 15)
        sc = v.vsim("s", "elem1", with_scores=True)
        self.assertEqual(len(sc), 10)
        self.assertAlmostEqual(sc["elem1"], 1, delta=1e-3)
        self.assertTrue(all(0 <= x <= 1 for x in sc.values()))
        for i in range(10):
            v.vadd("t", [rnd.uniform(0, 10) for _ in range(5)], "elem_%d" % i, numlinks=4,
                   attributes={"index": i, "elem_name": "elem_%d" % i})
        self.assertEqual(len(v.vsim("t", "elem_1")), 10)
        q = [1, 4.32, 0.0, 0.05, -2.9]
        self.assertEqual(v.vsim("t", q), v.vsim("t", fp32(q)))
        both = v.vsim("t", "elem_1", with_scores=True, with_attribs=True, count=3)
        self.assertEqual(len(both), 3)
        for name, d in both.items():
            self.assertEqual(d["attributes"]["elem_name"], name)
        attrs = v.vsim("t", "elem_1", with_attribs=True, count=3)
        self.assertEqual({n: a["index"] for n, a in attrs.items()},
                         {n: int(n[5:]) for n in attrs})
        with self.assertRaises(redis.ResponseError):
            v.vsim("t", "elem_not_existing")
        self.assertEqual(v.vsim("nokey", "elem1"), [])
        sc = v.vsim("t", "elem_1", with_scores=True, truth=True, no_thread=True, epsilon=0.9, ef=50)
        self.assertTrue(all(x >= 0.1 for x in sc.values()))

    def test_vsim_filter(self):
        """redis-py test_vsim_with_filter's scenario."""
        v = self.v
        rnd = random.Random(21)
        for i in range(50):
            v.vadd("s", [rnd.uniform(10, 20) for _ in range(800)], "elem_%d" % i, numlinks=4,
                   attributes={"index": i, "elem_name": "elem_%d" % i})
        v.vadd("s", [-rnd.uniform(10, 20) for _ in range(800)], "elem_special", numlinks=4,
               attributes={"index": 50, "elem_name": "elem_special"})
        sim = v.vsim("s", "elem_1", filter=".index > 10")
        self.assertEqual(len(sim), 10)
        self.assertTrue(all(int(e.split("_")[1]) > 10 for e in sim))
        sim = v.vsim("s", "elem_1",
                     filter=".index > 10 and .index < 15 and .elem_name in ['elem_12', 'elem_17']")
        self.assertEqual(sim, ["elem_12"])
        sim = v.vsim("s", "elem_1", ef=100,
                     filter=".index > 25 and .elem_name in ['elem_12', 'elem_17', 'elem_19']")
        self.assertEqual(sim, [])
        f = ".index > 28 and .elem_name in ['elem_12', 'elem_17', 'elem_special']"
        self.assertEqual(v.vsim("s", "elem_1", filter=f, filter_ef=1), [])
        self.assertEqual(v.vsim("s", "elem_1", filter=f, filter_ef=500), ["elem_special"])

    def test_small_commands(self):
        import redis
        v = self.v
        rnd = random.Random(22)
        for i in range(20):
            v.vadd("s", [rnd.uniform(0, 10) for _ in range(7)], "elem%d" % i)
        self.assertEqual(v.vcard("s"), 20)
        self.assertEqual(v.vdim("s"), 7)
        with self.assertRaises(redis.ResponseError):
            v.vdim("nokey")
        self.assertEqual(v.vcard("nokey"), 0)
        self.assertEqual(v.vrem("s", "elem2"), 1)
        self.assertEqual(v.vrem("s", "elem2"), 0)
        self.assertEqual(v.vrem("nokey", "elem1"), 0)
        self.assertEqual(v.vcard("s"), 19)
        self.assertIsNone(v.vrandmember("nokey"))
        self.assertEqual(v.vrandmember("nokey", 3), [])
        self.assertIsInstance(v.vrandmember("s"), str)
        self.assertEqual(len(set(v.vrandmember("s", 5))), 5)
        self.assertEqual(len(set(v.vrandmember("s", 100))), 19)
        self.assertEqual(len(v.vrandmember("s", -30)), 30)
        self.assertEqual(v.vrandmember("s", 0), [])
        self.assertEqual(v.vrange("s", "-", "+"), sorted("elem%d" % i for i in range(20) if i != 2))
        self.assertEqual(v.vrange("s", "[elem1", "(elem11", 5), ["elem1", "elem10"])


# ===========================================================================
# Persistence


@engram_only
class TestPersistence(unittest.TestCase):
    """Sets of every quantization, with M, REDUCE, attributes, updates and
    deletions, survive a restart -- from a snapshot, and from the
    write-ahead log after kill -9 -- with the same VEMB RAW bytes, VINFO
    (but vset-uid, a per-process counter), attributes and VSIM answers.
    The sets are small enough (<= 60 elements) for the search beam to
    cover them whole, so HNSW answers are exact and must match too."""

    KEYS = ("q8", "nq", "bin", "red", "late")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="engram-vsets-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.srvs = []

    def tearDown(self):
        for s in self.srvs:
            if s.alive():
                s.kill()
            s.cleanup()

    def start(self):
        s = Server(["--dir", self.dir, "--appendfsync", "always"]).start()
        self.srvs.append(s)
        c = s.conn()
        self.assertTrue(wait_until(lambda: parse_info(c.cmd("INFO", "persistence"))["loading"]
                                   == "0", 20))
        return s, c

    def ok(self, reply):
        self.assertNotIsInstance(reply, RespError, reply)
        return reply

    def populate(self, c, part):
        rnd = random.Random(100 + part)
        def attr(i):
            return ["SETATTR", json.dumps({"g": i % 3, "i": i})] if i % 4 else []
        lo, hi = (0, 30) if part == 1 else (30, 45)
        for i in range(lo, hi):
            self.ok(vadd(c, "q8", rand_vec(rnd, 8), "e%d" % i, *attr(i)))
            self.ok(vadd(c, "nq", rand_vec(rnd, 6), "e%d" % i, "NOQUANT", "M", "8", *attr(i)))
            self.ok(vadd(c, "bin", rand_vec(rnd, 70), "e%d" % i, "BIN", *attr(i)))
            self.ok(vadd(c, "red", rand_vec(rnd, 12), "e%d" % i, *attr(i), reduce=4))
        if part == 1:
            self.ok(vadd(c, "q8", [1, 2, 3, 4, 5, 6, 7, 8], b"bin\x00name\xff", "SETATTR", "raw \x00 bytes"))
            self.ok(vadd(c, "gone", [1, 2], "x"))
            for key in ("q8", "nq", "bin", "red"):
                self.assertEqual(c.cmd("VREM", key, "e3"), 1)
                self.assertEqual(c.cmd("VSETATTR", key, "e5", ""), 1)
                self.assertEqual(c.cmd("VSETATTR", key, "e6", '{"g": 7}'), 1)
            self.assertEqual(vadd(c, "q8", [0] * 8, "e7"), 0)                  # updates
            self.assertEqual(vadd(c, "nq", [1] * 6, "e7", "NOQUANT", "M", "8", "SETATTR", "{}"), 0)
            self.assertEqual(vadd(c, "bin", [-1] * 70, "e7", "BIN"), 0)
            self.assertEqual(vadd(c, "red", [1] * 12, "e7", reduce=4), 0)
        else:
            self.assertEqual(c.cmd("DEL", "gone"), 1)
            self.assertEqual(c.cmd("VREM", "q8", "e31"), 1)
            self.assertEqual(c.cmd("VSETATTR", "nq", "e32", '{"late": true}'), 1)
            for i in range(10):
                self.ok(vadd(c, "late", rand_vec(rnd, 3), "l%d" % i, "NOQUANT", "M", "6",
                             "SETATTR", json.dumps({"i": i})))
            self.assertEqual(c.cmd("VREM", "late", "l0"), 1)

    def state(self, c):
        out = {"gone": c.cmd("EXISTS", "gone")}
        for key in self.KEYS:
            if not c.cmd("EXISTS", key):
                continue
            members = c.cmd("VRANGE", key, "-", "+")
            info = c.cmd("VINFO", key)
            info = dict(zip(info[0::2], info[1::2]))
            del info["vset-uid"]
            st = {"type": c.cmd("TYPE", key), "card": c.cmd("VCARD", key),
                  "dim": c.cmd("VDIM", key), "info": info, "members": members,
                  "emb": {m: c.cmd("VEMB", key, m, "RAW") for m in members},
                  "vemb": {m: c.cmd("VEMB", key, m) for m in members},
                  "attr": {m: c.cmd("VGETATTR", key, m) for m in members}}
            st["sim"] = [c.cmd("VSIM", key, "ELE", m, "WITHSCORES", "WITHATTRIBS", "COUNT", "10")
                         for m in members[:6]]
            st["sim"].append(c.cmd("VSIM", key, "ELE", members[-1], "WITHSCORES", "COUNT", "60",
                                   "FILTER", ".g == 1"))
            st["sim"].append(c.cmd("VSIM", key, "ELE", members[1], "TRUTH", "COUNT", "60"))
            out[key] = st
        return out

    def check_same(self, before, after):
        self.assertEqual(before.keys(), after.keys())
        for key in before:
            if key == "gone":
                self.assertEqual(after[key], 0)
                continue
            for part in before[key]:
                self.assertEqual(after[key][part], before[key][part], "%s: %s" % (key, part))

    def test_snapshot(self):
        s, c = self.start()
        self.populate(c, 1)
        self.populate(c, 2)
        before = self.state(c)
        self.assertEqual(set(before), {"gone", "q8", "nq", "bin", "red", "late"})
        self.assertEqual(before["red"]["info"]["projection-input-dim"], 12)
        self.assertEqual(c.cmd("SAVE"), "OK")
        s.kill()
        s2, c2 = self.start()
        self.check_same(before, self.state(c2))

    def test_log_after_kill9(self):
        s, c = self.start()
        self.populate(c, 1)
        self.populate(c, 2)
        before = self.state(c)
        s.kill()
        s2, c2 = self.start()
        self.check_same(before, self.state(c2))

    def test_snapshot_then_log(self):
        s, c = self.start()
        self.populate(c, 1)
        self.assertEqual(c.cmd("SAVE"), "OK")
        self.populate(c, 2)
        before = self.state(c)
        s.kill()
        s2, c2 = self.start()
        self.check_same(before, self.state(c2))
        # and once more through a snapshot the restarted server writes
        self.assertEqual(c2.cmd("SAVE"), "OK")
        s2.stop()
        s3, c3 = self.start()
        self.check_same(before, self.state(c3))


if __name__ == "__main__":
    main()
