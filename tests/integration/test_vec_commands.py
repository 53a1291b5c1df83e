"""The vector commands one by one: VNEW, VADD, VSEARCH (reply format), VDEL,
VGET, VEXISTS, VCARD, VINFO, VLIST, VDROP, VSAVE, plus FLUSHALL/FLUSHDB,
INFO's `# Vectors` section and COMMAND INFO -- every error message included.

engram-only: real Redis 7.0 has no vector commands."""

import math
import random
import struct

from engram_test import ServerTestCase, encode, engram_only, main, parse_info

E_SYNTAX = "ERR syntax error"
DIM_MAX = 65536


# ---- helpers ---------------------------------------------------------------

def f32(x):
    """x rounded to the nearest float32 (as a Python float)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def blob(*vals):
    """Little-endian float32 bytes."""
    return struct.pack("<%df" % len(vals), *vals)


def unblob(b):
    return list(struct.unpack("<%df" % (len(b) // 4), b))


def values(*vals):
    """The `VALUES n v1 .. vn` form as argument words."""
    return ["VALUES", str(len(vals))] + [repr(float(v)) for v in vals]


def f32_str(f):
    """The reply text engram promises for a float32 distance: the shortest
    decimal that reads back as the same float32, written fixed when the
    decimal exponent is in [-4, 17) and as d.ddde+XX otherwise."""
    f = f32(f)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    for prec in range(1, 10):
        e = "%.*e" % (prec - 1, f)
        if f32(float(e)) == f:
            break
    mant, exp = e.split("e")
    x = int(exp)
    neg = mant.startswith("-")
    digits = mant.lstrip("-").replace(".", "").rstrip("0") or "0"
    out = "-" if neg else ""
    if x < -4 or x >= 17:
        out += digits[0]
        if len(digits) > 1:
            out += "." + digits[1:]
        out += "e" + exp
    elif x < 0:
        out += "0." + "0" * (-x - 1) + digits
    else:
        intpart = "".join(digits[i] if i < len(digits) else "0" for i in range(x + 1))
        out += intpart
        if len(digits) > x + 1:
            out += "." + digits[x + 1:]
    return out


def bulk(b):
    if isinstance(b, str):
        b = b.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


def resp2_hits(pairs):
    """Expected raw RESP2 VSEARCH reply for [(key, distance_text), ...]."""
    return b"*%d\r\n" % (2 * len(pairs)) + b"".join(bulk(k) + bulk(d) for k, d in pairs)


def resp3_hits(pairs):
    return b"*%d\r\n" % len(pairs) + b"".join(
        b"*2\r\n" + bulk(k) + b"," + d.encode() + b"\r\n" for k, d in pairs)


def info_fields(reply):
    """VINFO's RESP2 flat field/value array as a dict (field names decoded)."""
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    return {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}


class VecTestCase(ServerTestCase):
    def ok(self, c, *args):
        self.assertEqual(c.cmd(*args), "OK", args)

    def err(self, c, text, *args):
        self.assert_error(c.cmd(*args), text)

    def vinfo(self, c, name):
        return info_fields(c.cmd("VINFO", name, "FULL"))


# ---- VNEW --------------------------------------------------------------------

@engram_only
class TestVNew(VecTestCase):
    def test_defaults(self):
        c = self.conn()
        self.ok(c, "VNEW", "idx", "4")
        info = self.vinfo(c, "idx")
        self.assertEqual(info["dim"], 4)
        self.assertEqual(info["metric"], b"cosine")
        self.assertEqual(info["type"], b"hnsw")
        self.assertEqual(info["count"], 0)
        self.assertEqual(info["M"], 16)
        self.assertEqual(info["ef_construction"], 200)
        self.assertEqual(info["ef"], 100)
        self.assertEqual(c.cmd("VCARD", "idx"), 0)

    def test_all_options(self):
        c = self.conn()
        self.ok(c, "VNEW", "a", "8", "METRIC", "l2", "TYPE", "hnsw", "M", "8",
                "EF_CONSTRUCTION", "50", "EF", "20")
        info = self.vinfo(c, "a")
        self.assertEqual((info["dim"], info["metric"], info["type"], info["M"],
                          info["ef_construction"], info["ef"]),
                         (8, b"l2", b"hnsw", 8, 50, 20))
        # option names are case-insensitive, and may come in any order
        self.ok(c, "VNEW", "b", "3", "ef", "7", "m", "4", "type", "HNSW", "ef_construction", "9",
                "metric", "dot")
        info = self.vinfo(c, "b")
        self.assertEqual((info["dim"], info["metric"], info["type"], info["M"],
                          info["ef_construction"], info["ef"]),
                         (3, b"dot", b"hnsw", 4, 9, 7))

    def test_metric_names_and_aliases(self):
        c = self.conn()
        cases = [("l2", b"l2"), ("L2", b"l2"), ("euclidean", b"l2"), ("EUCLIDEAN", b"l2"),
                 ("Euclidean", b"l2"), ("cosine", b"cosine"), ("COSINE", b"cosine"),
                 ("CoSiNe", b"cosine"), ("dot", b"dot"), ("DOT", b"dot"), ("ip", b"dot"),
                 ("IP", b"dot"), ("Ip", b"dot")]
        for i, (name, canonical) in enumerate(cases):
            with self.subTest(metric=name):
                self.ok(c, "VNEW", "m%d" % i, "2", "METRIC", name)
                self.assertEqual(self.vinfo(c, "m%d" % i)["metric"], canonical)

    def test_types(self):
        c = self.conn()
        for i, (name, canonical) in enumerate([("hnsw", b"hnsw"), ("HNSW", b"hnsw"),
                                               ("flat", b"flat"), ("FLAT", b"flat"),
                                               ("Flat", b"flat")]):
            with self.subTest(type=name):
                self.ok(c, "VNEW", "t%d" % i, "2", "TYPE", name)
                self.assertEqual(self.vinfo(c, "t%d" % i)["type"], canonical)

    def test_unknown_metric_and_type(self):
        c = self.conn()
        self.err(c, "ERR unknown metric 'manhattan' (use cosine, l2 or dot)",
                 "VNEW", "i", "2", "METRIC", "manhattan")
        self.err(c, "ERR unknown metric 'l1' (use cosine, l2 or dot)",
                 "VNEW", "i", "2", "METRIC", "l1")
        self.err(c, "ERR unknown metric '' (use cosine, l2 or dot)",
                 "VNEW", "i", "2", "METRIC", "")
        self.err(c, "ERR unknown metric 'cosine2' (use cosine, l2 or dot)",
                 "VNEW", "i", "2", "METRIC", "cosine2")
        self.err(c, "ERR unknown index type 'ivf' (use hnsw or flat)",
                 "VNEW", "i", "2", "TYPE", "ivf")
        self.err(c, "ERR unknown index type 'hnswx' (use hnsw or flat)",
                 "VNEW", "i", "2", "TYPE", "hnswx")
        self.assertEqual(c.cmd("VLIST"), [])

    def test_dimension_errors(self):
        c = self.conn()
        for bad in ("abc", "0", "-1", "-32768", "1.5", "", " 4", "4x"):
            with self.subTest(dim=bad):
                self.err(c, "ERR dimension must be a positive integer, got '%s'" % bad,
                         "VNEW", "i", bad)
        for bad in ("65537", "100000", "4294967297"):
            with self.subTest(dim=bad):
                self.err(c, "ERR dimension must be between 1 and 65536, got %s" % bad,
                         "VNEW", "i", bad)
        self.assertEqual(c.cmd("VLIST"), [])
        self.ok(c, "VNEW", "one", "1")
        self.ok(c, "VNEW", "max", str(DIM_MAX))
        self.assertEqual(self.vinfo(c, "max")["dim"], DIM_MAX)

    def test_parameter_ranges(self):
        c = self.conn()
        cases = [("M", "1", 2, 64), ("M", "65", 2, 64), ("M", "0", 2, 64), ("M", "-3", 2, 64),
                 ("M", "x", 2, 64), ("M", "8.5", 2, 64),
                 ("EF_CONSTRUCTION", "0", 1, 100000), ("EF_CONSTRUCTION", "100001", 1, 100000),
                 ("EF_CONSTRUCTION", "big", 1, 100000),
                 ("EF", "0", 1, 100000), ("EF", "100001", 1, 100000), ("EF", "-1", 1, 100000),
                 ("EF", "", 1, 100000)]
        for opt, val, lo, hi in cases:
            with self.subTest(opt=opt, val=val):
                self.err(c, "ERR %s must be an integer between %d and %d, got '%s'"
                         % (opt, lo, hi, val), "VNEW", "i", "4", opt, val)
                # the option name's case does not change the message
                self.err(c, "ERR %s must be an integer between %d and %d, got '%s'"
                         % (opt, lo, hi, val), "VNEW", "i", "4", opt.lower(), val)
        self.assertEqual(c.cmd("VLIST"), [])
        # the bounds themselves are accepted
        self.ok(c, "VNEW", "lo", "4", "M", "2", "EF_CONSTRUCTION", "1", "EF", "1")
        self.ok(c, "VNEW", "hi", "4", "M", "64", "EF_CONSTRUCTION", "100000", "EF", "100000")
        info = self.vinfo(c, "hi")
        self.assertEqual((info["M"], info["ef_construction"], info["ef"]), (64, 100000, 100000))

    def test_syntax_errors(self):
        c = self.conn()
        for args in (("METRIC",), ("TYPE",), ("M",), ("EF",), ("EF_CONSTRUCTION",),
                     ("METRIC", "l2", "TYPE"), ("TYPE", "flat", "M", "8", "EF"),
                     ("BOGUS", "1"), ("METRIC", "l2", "extra", "x"), ("DIM", "3")):
            with self.subTest(args=args):
                self.err(c, E_SYNTAX, "VNEW", "i", "4", *args)
        self.assertEqual(c.cmd("VLIST"), [])

    def test_already_exists(self):
        c = self.conn()
        self.ok(c, "VNEW", "i", "4", "METRIC", "l2")
        self.err(c, "ERR index already exists", "VNEW", "i", "4")
        self.err(c, "ERR index already exists", "VNEW", "i", "8", "METRIC", "dot", "TYPE", "flat")
        info = self.vinfo(c, "i")
        self.assertEqual((info["dim"], info["metric"], info["type"]), (4, b"l2", b"hnsw"))
        self.assertEqual(c.cmd("VLIST"), [b"i"])

    def test_arity_errors(self):
        c = self.conn()
        for args in (("VNEW",), ("VNEW", "i"), ("VADD", "i", "k"), ("VSEARCH", "i", "v"),
                     ("VDEL", "i"), ("VDEL", "i", "k", "x"), ("VGET", "i"),
                     ("VEXISTS", "i"), ("VCARD",), ("VCARD", "a", "b"),
                     ("VINFO",), ("VLIST", "x"), ("VDROP",), ("VDROP", "a", "b"),
                     ("VSAVE", "x")):
            # Redis's vector-set commands are a module's: named in capitals
            name = args[0] if args[0] in ("VADD", "VCARD", "VINFO") else args[0].lower()
            with self.subTest(args=args):
                self.err(c, "ERR wrong number of arguments for '%s' command" % name, *args)
        # VGET takes one option (WITHPAYLOAD): anything else is a syntax error.
        self.err(c, "ERR syntax error", "VGET", "i", "k", "x")
        self.err(c, "ERR syntax error", "VGET", "i", "k", "WITHPAYLOAD", "x")


# ---- VADD --------------------------------------------------------------------

@engram_only
class TestVAdd(VecTestCase):
    def setUp(self):
        super().setUp()
        self.c = self.conn()
        self.ok(self.c, "VNEW", "i", "3", "METRIC", "l2", "TYPE", "flat")

    def test_blob_and_values_new_then_overwrite(self):
        c = self.c
        self.assert_reply(encode("VADD", "i", "a", blob(1, 2, 3)), b":1\r\n", conn=c)
        self.assert_reply(encode("VADD", "i", "b", *values(4, 5, 6)), b":1\r\n", conn=c)
        self.assertEqual(c.cmd("VCARD", "i"), 2)
        self.assertEqual(c.cmd("VGET", "i", "a"), blob(1, 2, 3))
        self.assertEqual(c.cmd("VGET", "i", "b"), blob(4, 5, 6))
        # overwrite: :0, either encoding, the new vector is what is stored
        self.assert_reply(encode("VADD", "i", "a", *values(-1, 0.5, 7)), b":0\r\n", conn=c)
        self.assert_reply(encode("VADD", "i", "b", blob(9, 8, 7)), b":0\r\n", conn=c)
        self.assertEqual(c.cmd("VCARD", "i"), 2)
        self.assertEqual(c.cmd("VGET", "i", "a"), blob(-1, 0.5, 7))
        self.assertEqual(c.cmd("VGET", "i", "b"), blob(9, 8, 7))
        # the overwrite is what searches see
        self.assertEqual(c.cmd("VSEARCH", "i", blob(9, 8, 7), "1"), [b"b", b"0"])

    def test_values_keyword_and_number_forms(self):
        c = self.c
        self.assertEqual(c.cmd("VADD", "i", "a", "values", "3", "1", "2", "3"), 1)
        self.assertEqual(c.cmd("VADD", "i", "b", "Values", "3", "-1.5", "2e3", "0.25"), 1)
        self.assertEqual(c.cmd("VADD", "i", "c", "VALUES", "3", "1e-3", "-0", "+7"), 1)
        self.assertEqual(unblob(c.cmd("VGET", "i", "a")), [1, 2, 3])
        self.assertEqual(unblob(c.cmd("VGET", "i", "b")), [-1.5, 2000, 0.25])
        self.assertEqual(unblob(c.cmd("VGET", "i", "c")), [f32(1e-3), 0, 7])
        # text is rounded to the nearest float32
        self.assertEqual(c.cmd("VADD", "i", "d", "VALUES", "3", "0.1", "0.2", "0.3"), 1)
        self.assertEqual(c.cmd("VGET", "i", "d"), blob(0.1, 0.2, 0.3))

    def test_no_such_index(self):
        c = self.c
        self.err(c, "ERR no such index 'nope'", "VADD", "nope", "k", blob(1, 2, 3))
        self.err(c, "ERR no such index 'nope'", "VADD", "nope", "k", *values(1, 2, 3))
        # the index is checked before the vector
        self.err(c, "ERR no such index 'nope'", "VADD", "nope", "k", b"xyz")
        self.err(c, "ERR no such index 'I'", "VADD", "I", "k", blob(1, 2, 3))
        self.assertEqual(c.cmd("VLIST"), [b"i"])

    def test_invalid_blob_encoding(self):
        c = self.c
        for data in (b"", b"\x00", b"abcde", b"\x00" * 7, b"\x00" * 13):
            with self.subTest(len=len(data)):
                self.err(c, "ERR invalid vector encoding: %d bytes is not 1 to 65536 float32 "
                         "values" % len(data), "VADD", "i", "k", data)
        big = b"\x00" * (4 * (DIM_MAX + 1))
        self.err(c, "ERR invalid vector encoding: %d bytes is not 1 to 65536 float32 values"
                 % len(big), "VADD", "i", "k", big)
        nan, inf = float("nan"), float("inf")
        for vec, pos in (((1, nan, 3), 1), ((inf, 2, 3), 0), ((1, 2, -inf), 2),
                         ((nan, nan, nan), 0)):
            with self.subTest(vec=vec):
                self.err(c, "ERR invalid vector encoding: value %d is NaN or infinite" % pos,
                         "VADD", "i", "k", blob(*vec))
        # a signalling / payload NaN bit pattern is still NaN
        self.err(c, "ERR invalid vector encoding: value 2 is NaN or infinite",
                 "VADD", "i", "k", blob(1, 2) + b"\x01\x00\x80\x7f")
        self.assertEqual(c.cmd("VCARD", "i"), 0)

    def test_invalid_values_encoding(self):
        c = self.c
        for word in ("nan", "NaN", "inf", "-inf", "+inf", "Infinity", "abc", "", "1e39",
                     "-1e39", "1,5", "0x"):
            with self.subTest(word=word):
                self.err(c, "ERR invalid vector encoding: '%s' is not a finite number" % word,
                         "VADD", "i", "k", "VALUES", "3", "1", word, "2")
        count_err = "ERR invalid vector encoding: VALUES needs a count between 1 and 65536"
        for n in ("0", "-1", "x", "", "1.0", "65537"):
            with self.subTest(count=n):
                self.err(c, count_err, "VADD", "i", "k", "VALUES", n, "1", "2", "3")
        self.err(c, count_err, "VADD", "i", "k", "VALUES")
        self.err(c, "ERR invalid vector encoding: VALUES 3 needs 3 numbers, got 2",
                 "VADD", "i", "k", "VALUES", "3", "1", "2")
        self.err(c, "ERR invalid vector encoding: VALUES 3 needs 3 numbers, got 0",
                 "VADD", "i", "k", "VALUES", "3")
        self.err(c, "ERR invalid vector encoding: VALUES 5 needs 5 numbers, got 3",
                 "VADD", "i", "k", "VALUES", "5", "1", "2", "3")
        self.assertEqual(c.cmd("VCARD", "i"), 0)

    def test_wrong_dimension(self):
        c = self.c
        self.err(c, "ERR wrong vector dimension: index expects 3, got 2",
                 "VADD", "i", "k", blob(1, 2))
        self.err(c, "ERR wrong vector dimension: index expects 3, got 4",
                 "VADD", "i", "k", blob(1, 2, 3, 4))
        self.err(c, "ERR wrong vector dimension: index expects 3, got 1",
                 "VADD", "i", "k", *values(1))
        self.err(c, "ERR wrong vector dimension: index expects 3, got 5",
                 "VADD", "i", "k", *values(1, 2, 3, 4, 5))
        self.assertEqual(c.cmd("VCARD", "i"), 0)

    def test_trailing_junk(self):
        c = self.c
        self.err(c, E_SYNTAX, "VADD", "i", "k", blob(1, 2, 3), "extra")
        self.err(c, E_SYNTAX, "VADD", "i", "k", blob(1, 2, 3), blob(1, 2, 3))
        self.err(c, E_SYNTAX, "VADD", "i", "k", "VALUES", "3", "1", "2", "3", "4")
        self.err(c, E_SYNTAX, "VADD", "i", "k", "VALUES", "3", "1", "2", "3", "EF", "5")
        self.assertEqual(c.cmd("VCARD", "i"), 0)

    def test_rejected_command_changes_nothing(self):
        c = self.c
        self.assertEqual(c.cmd("VADD", "i", "a", blob(1, 2, 3)), 1)
        before = self.vinfo(c, "i")
        bad = [("a", [blob(1, float("nan"), 3)]), ("new", [blob(1, float("nan"), 3)]),
               ("a", ["VALUES", "3", "1", "inf", "3"]), ("new", ["VALUES", "3", "1", "nan", "3"]),
               ("a", [blob(1, 2)]), ("new", [blob(1, 2, 3, 4)]),
               ("a", ["VALUES", "3", "1", "2"]), ("new", ["VALUES", "2", "1", "2"]),
               ("a", [blob(7, 7, 7), "junk"]), ("new", [b"12345"]), ("a", [b""])]
        for key, vec in bad:
            with self.subTest(key=key, vec=vec):
                r = c.cmd("VADD", "i", key, *vec)
                self.assertTrue(str(r).startswith("ERR "), r)
                self.assertEqual(c.cmd("VCARD", "i"), 1)
                self.assertEqual(c.cmd("VGET", "i", "a"), blob(1, 2, 3))
                self.assertEqual(c.cmd("VEXISTS", "i", "new"), 0)
                self.assertIsNone(c.cmd("VGET", "i", "new"))
        after = self.vinfo(c, "i")
        for f in ("count", "dim", "memory", "capacity"):
            self.assertEqual(after[f], before[f], f)
        self.assertEqual(c.cmd("VSEARCH", "i", blob(1, 2, 3), "10"), [b"a", b"0"])

    def test_extreme_finite_values(self):
        c = self.c
        big = 3.4028234663852886e38     # FLT_MAX
        tiny = 1.401298464324817e-45    # smallest subnormal
        self.assertEqual(c.cmd("VADD", "i", "a", blob(big, -big, tiny)), 1)
        self.assertEqual(c.cmd("VGET", "i", "a"), blob(big, -big, tiny))
        self.assertEqual(c.cmd("VADD", "i", "b", "VALUES", "3", "3.4028234e38", "-1e-45",
                               "1e-40"), 1)
        self.assertEqual(c.cmd("VGET", "i", "b"), blob(f32(3.4028234e38), f32(-1e-45),
                                                       f32(1e-40)))

    def test_cosine_zero_vector_and_huge_norm(self):
        c = self.c
        self.ok(c, "VNEW", "cos", "2", "METRIC", "cosine")
        self.assertEqual(c.cmd("VADD", "cos", "zero", blob(0, 0)), 1)
        self.assertEqual(c.cmd("VADD", "cos", "x", blob(1, 0)), 1)
        # a zero vector is at distance 1 from anything
        # (an exact tie: the smaller id -- the earlier insertion -- comes first)
        self.assertEqual(c.cmd("VSEARCH", "cos", blob(0, 1), "2"), [b"zero", b"1", b"x", b"1"])
        # finite components whose norm overflows float32 cannot be normalised:
        # rejected, and nothing changes
        r = c.cmd("VADD", "cos", "huge", blob(3e38, 3e38))
        self.assertTrue(str(r).startswith("ERR "), r)
        self.assertEqual(c.cmd("VCARD", "cos"), 2)
        self.assertEqual(c.cmd("VEXISTS", "cos", "huge"), 0)


# ---- VSEARCH: reply format and errors ------------------------------------------

@engram_only
class TestVSearch(VecTestCase):
    def test_l2_known_distances(self):
        c = self.conn()
        for t in ("flat", "hnsw"):
            name = "l2" + t
            self.ok(c, "VNEW", name, "2", "METRIC", "l2", "TYPE", t)
            for key, vec in (("a", (0, 0)), ("b", (3, 4)), ("c", (6, 8)), ("d", (-1, 0))):
                self.assertEqual(c.cmd("VADD", name, key, blob(*vec)), 1)
            with self.subTest(type=t):
                self.assert_reply(encode("VSEARCH", name, blob(0, 0), "4"),
                                  resp2_hits([("a", "0"), ("d", "1"), ("b", "5"), ("c", "10")]),
                                  conn=c)
                self.assert_reply(encode("VSEARCH", name, *values(3, 4), "3"),
                                  resp2_hits([("b", "0"), ("a", "5"), ("c", "5")]), conn=c)
                self.assert_reply(encode("VSEARCH", name, *values(6, 8.5), "2"),
                                  resp2_hits([("c", "0.5"), ("b", f32_str(math.sqrt(29.25)))]),
                                  conn=c)

    def test_cosine_known_distances(self):
        c = self.conn()
        for t in ("flat", "hnsw"):
            name = "cos" + t
            self.ok(c, "VNEW", name, "2", "METRIC", "cosine", "TYPE", t)
            for key, vec in (("same", (2, 0)), ("orth", (0, -5)), ("opp", (-3, 0))):
                self.assertEqual(c.cmd("VADD", name, key, blob(*vec)), 1)
            with self.subTest(type=t):
                # scale does not matter for cosine
                self.assert_reply(encode("VSEARCH", name, blob(7, 0), "3"),
                                  resp2_hits([("same", "0"), ("orth", "1"), ("opp", "2")]),
                                  conn=c)
            # a non-trivial angle: 1 - cos((1,1),(3,4)) = 1 - 7/(5*sqrt 2)
            self.assertEqual(c.cmd("VADD", name, "diag", blob(3, 4)), 1)
            r = c.cmd("VSEARCH", name, blob(1, 1), "1")
            self.assertEqual(r[0], b"diag")
            d = float(r[1])
            self.assertAlmostEqual(d, 1 - 7 / (5 * math.sqrt(2)), delta=1e-6)
            self.assertEqual(r[1].decode(), f32_str(d))

    def test_dot_known_distances(self):
        c = self.conn()
        for t in ("flat", "hnsw"):
            name = "dot" + t
            self.ok(c, "VNEW", name, "3", "METRIC", "ip", "TYPE", t)
            for key, vec in (("a", (1, 2, 3)), ("b", (0.5, 0.25, 0)), ("c", (-1, -1, -1))):
                self.assertEqual(c.cmd("VADD", name, key, blob(*vec)), 1)
            with self.subTest(type=t):
                # distance = -(a . q); larger dot product = closer
                self.assert_reply(encode("VSEARCH", name, blob(4, 5, 6), "3"),
                                  resp2_hits([("a", "-32"), ("b", "-3.25"), ("c", "15")]),
                                  conn=c)

    def test_distance_text_is_shortest_float32(self):
        c = self.conn()
        self.ok(c, "VNEW", "i", "1", "METRIC", "l2", "TYPE", "flat")
        cases = [(0.1, "0.1"), (1.5, "1.5"), (1 / 3, "0.33333334"), (1e-5, "1e-05"),
                 (123456789, "123456790"), (1e18, "1e+18"), (2.5e-7, "2.5e-07"),
                 (0.0001, "0.0001"), (65536, "65536"), (3.14159265, "3.1415927")]
        for x, text in cases:
            with self.subTest(x=x):
                self.assertEqual(f32_str(x), text)     # the helper agrees with the spec
                c.cmd("VDEL", "i", "p")
                self.assertEqual(c.cmd("VADD", "i", "p", blob(x)), 1)
                self.assertEqual(c.cmd("VSEARCH", "i", blob(0), "1"), [b"p", text.encode()])
                self.assertEqual(c.cmd("VSEARCH", "i", blob(-x), "1"),
                                 [b"p", f32_str(2 * f32(x)).encode()])

    def test_exact_ties_broken_by_insertion_order(self):
        # vindex.h: "closest first, ties by smaller id"; with no deletions ids
        # follow insertion order -- including a tie across the k-th place.
        c = self.conn()
        for t in ("flat", "hnsw"):
            name = "tie" + t
            self.ok(c, "VNEW", name, "2", "METRIC", "l2", "TYPE", t)
            # ring of 8 points at distance 5 from (3,4) plus the centre
            pts = [(0, 0), (6, 8), (6, 0), (0, 8), (-1, 7), (7, 1), (-1, 1), (7, 7)]
            for i, p in enumerate(pts):
                self.assertEqual(c.cmd("VADD", name, "p%d" % i, blob(*p)), 1)
            self.assertEqual(c.cmd("VADD", name, "centre", blob(3, 4)), 1)
            for k in range(1, 10):
                with self.subTest(type=t, k=k):
                    want = [("centre", "0")] + [("p%d" % i, "5") for i in range(8)]
                    self.assert_reply(encode("VSEARCH", name, blob(3, 4), str(k)),
                                      resp2_hits(want[:k]), conn=c)

    def test_resp3_pairs(self):
        c = self.conn()
        self.assertIsInstance(c.cmd("HELLO", "3"), dict)
        self.ok(c, "VNEW", "i", "2", "METRIC", "l2", "TYPE", "flat")
        c.cmd("VADD", "i", "a", blob(0, 0))
        c.cmd("VADD", "i", "b", blob(3, 4))
        c.cmd("VADD", "i", "c", blob(0.5, 0))
        self.assert_reply(encode("VSEARCH", "i", blob(0, 0), "3"),
                          resp3_hits([("a", "0"), ("c", "0.5"), ("b", "5")]), conn=c)
        r = c.cmd("VSEARCH", "i", blob(3, 4), "2")
        self.assertEqual([p[0] for p in r], [b"b", b"c"])
        self.assertEqual([f32(p[1]) for p in r], [0.0, f32(math.sqrt(22.25))])
        self.assertIn(b",%s\r\n" % f32_str(math.sqrt(22.25)).encode(),
                      c.raw_cmd("VSEARCH", "i", blob(3, 4), "2"))
        self.assertEqual(c.cmd("VSEARCH", "i", blob(-3, -4), "1"), [[b"a", 5.0]])
        self.assert_reply(encode("VSEARCH", "i", blob(0, 0), "0"), b"*0\r\n", conn=c)
        # back to RESP2 on the same connection
        self.assertIsInstance(c.cmd("HELLO", "2"), list)
        self.assert_reply(encode("VSEARCH", "i", blob(0, 0), "1"), resp2_hits([("a", "0")]),
                          conn=c)

    def test_k_zero_and_empty_index(self):
        c = self.conn()
        for t in ("flat", "hnsw"):
            self.ok(c, "VNEW", t, "2", "TYPE", t)
            with self.subTest(type=t):
                self.assert_reply(encode("VSEARCH", t, blob(1, 0), "10"), b"*0\r\n", conn=c)
                self.assert_reply(encode("VSEARCH", t, blob(1, 0), "0"), b"*0\r\n", conn=c)
                c.cmd("VADD", t, "a", blob(1, 0))
                self.assert_reply(encode("VSEARCH", t, blob(1, 0), "0"), b"*0\r\n", conn=c)
                # k above the count: everything
                self.assertEqual(c.cmd("VSEARCH", t, blob(1, 0), "10000"), [b"a", b"0"])
                c.cmd("VDEL", t, "a")
                self.assert_reply(encode("VSEARCH", t, blob(1, 0), "5"), b"*0\r\n", conn=c)

    def test_errors(self):
        c = self.conn()
        self.ok(c, "VNEW", "i", "2", "TYPE", "flat")
        c.cmd("VADD", "i", "a", blob(1, 0))
        q = blob(1, 0)
        self.err(c, "ERR no such index 'nope'", "VSEARCH", "nope", q, "1")
        self.err(c, "ERR no such index 'I'", "VSEARCH", "I", q, "1")
        for k in ("-1", "10001", "x", "", "1.5", "99999999999999999999"):
            with self.subTest(k=k):
                self.err(c, "ERR k must be an integer between 0 and 10000, got '%s'" % k,
                         "VSEARCH", "i", q, k)
        for ef in ("0", "100001", "-5", "abc"):
            with self.subTest(ef=ef):
                self.err(c, "ERR EF must be an integer between 1 and 100000, got '%s'" % ef,
                         "VSEARCH", "i", q, "1", "EF", ef)
        self.err(c, E_SYNTAX, "VSEARCH", "i", q, "1", "EF")
        self.err(c, E_SYNTAX, "VSEARCH", "i", q, "1", "BOGUS", "3")
        self.err(c, E_SYNTAX, "VSEARCH", "i", q, "1", "EF", "3", "extra")
        self.err(c, E_SYNTAX, "VSEARCH", "i", "VALUES", "2", "1", "0")      # no k
        self.err(c, "ERR wrong vector dimension: index expects 2, got 3",
                 "VSEARCH", "i", blob(1, 2, 3), "1")
        self.err(c, "ERR wrong vector dimension: index expects 2, got 1",
                 "VSEARCH", "i", "VALUES", "1", "5", "1")
        self.err(c, "ERR invalid vector encoding: 6 bytes is not 1 to 65536 float32 values",
                 "VSEARCH", "i", b"abcdef", "1")
        self.err(c, "ERR invalid vector encoding: value 0 is NaN or infinite",
                 "VSEARCH", "i", blob(float("nan"), 0), "1")
        self.err(c, "ERR invalid vector encoding: 'inf' is not a finite number",
                 "VSEARCH", "i", "VALUES", "2", "inf", "0", "1")
        self.err(c, "ERR invalid vector encoding: VALUES 2 needs 2 numbers, got 1",
                 "VSEARCH", "i", "VALUES", "2", "1")
        # the bounds themselves are fine
        self.assertEqual(c.cmd("VSEARCH", "i", q, "10000", "EF", "100000"), [b"a", b"0"])
        self.assertEqual(c.cmd("VSEARCH", "i", q, "1", "ef", "1"), [b"a", b"0"])

    def test_ef_option(self):
        c = self.conn()
        rnd = random.Random(7)
        self.ok(c, "VNEW", "h", "8", "METRIC", "l2", "EF", "10")
        self.ok(c, "VNEW", "f", "8", "METRIC", "l2", "TYPE", "flat")
        vecs = [[rnd.uniform(-1, 1) for _ in range(8)] for _ in range(300)]
        c.send(b"".join(encode("VADD", n, "k%d" % i, blob(*v))
                        for i, v in enumerate(vecs) for n in ("h", "f")))
        for _ in range(2 * len(vecs)):
            self.assertEqual(c.read(), 1)
        for qi in range(5):
            q = blob(*[rnd.uniform(-1, 1) for _ in range(8)])
            exact = c.cmd("VSEARCH", "f", q, "10")
            self.assertEqual(len(exact), 20)
            for ef in ("10", "50", "400"):
                r = c.cmd("VSEARCH", "h", q, "10", "EF", ef)
                self.assertEqual(len(r), 20, (ef, r))
            # a beam covering the whole index makes HNSW exact here
            self.assertEqual(c.cmd("VSEARCH", "h", q, "10", "EF", "1000"), exact)

    def test_result_size_after_heavy_deletion(self):
        c = self.conn()
        rnd = random.Random(11)
        n = 400
        for t in ("flat", "hnsw"):
            with self.subTest(type=t):
                self.ok(c, "VNEW", t, "4", "METRIC", "l2", "TYPE", t)
                vecs = {"k%d" % i: [rnd.uniform(-1, 1) for _ in range(4)] for i in range(n)}
                c.send(b"".join(encode("VADD", t, k, blob(*v)) for k, v in vecs.items()))
                for _ in range(n):
                    self.assertEqual(c.read(), 1)
                keep = set(rnd.sample(sorted(vecs), 12))
                gone = [k for k in vecs if k not in keep]
                c.send(b"".join(encode("VDEL", t, k) for k in gone))
                for _ in gone:
                    self.assertEqual(c.read(), 1)
                self.assertEqual(c.cmd("VCARD", t), len(keep))
                for q in ([0, 0, 0, 0], [1, 1, 1, 1], [-1, 0.5, 0, 2]):
                    for k in (1, 5, 12, 13, 100):
                        r = c.cmd("VSEARCH", t, blob(*q), str(k))
                        keys = r[0::2]
                        self.assertEqual(len(keys), min(k, len(keep)), (t, k, r))
                        self.assertEqual(len(set(keys)), len(keys))
                        self.assertTrue(set(x.decode() for x in keys) <= keep, r)
                        dists = [float(x) for x in r[1::2]]
                        self.assertEqual(dists, sorted(dists))
                # deleted keys come back when re-added
                self.assertEqual(c.cmd("VADD", t, gone[0], blob(9, 9, 9, 9)), 1)
                self.assertEqual(c.cmd("VSEARCH", t, blob(9, 9, 9, 9), "1"),
                                 [gone[0].encode(), b"0"])
                self.assertEqual(len(c.cmd("VSEARCH", t, blob(0, 0, 0, 0), "100")),
                                 2 * (len(keep) + 1))

    def test_binary_safe_names_and_keys(self):
        c = self.conn()
        names = [b"v\x00a", b"v\x00b", b"v", b"\xff\r\n\x00"]
        for i, name in enumerate(names):
            self.ok(c, "VNEW", name, "2", "METRIC", "l2", "TYPE", "flat")
            self.assertEqual(c.cmd("VADD", name, b"only", blob(i, 0)), 1)
        self.assertEqual(c.cmd("VLIST"), sorted(names))
        for i, name in enumerate(names):
            self.assertEqual(c.cmd("VGET", name, b"only"), blob(i, 0))
            self.assertEqual(c.cmd("VCARD", name), 1)
        keys = [b"k\x00\x01", b"k\x00\x02", b"k", b"\xff\xfe\x00", b"a\r\nb", b"", b"$3\r\n"]
        name = names[0]
        for j, key in enumerate(keys):
            self.assertEqual(c.cmd("VADD", name, key, blob(10 + j, 0)), 1)
        self.assertEqual(c.cmd("VCARD", name), 1 + len(keys))
        r = c.cmd("VSEARCH", name, blob(10, 0), str(len(keys)))
        self.assertEqual(r[0::2], keys)
        self.assertEqual(r[1::2], [str(j).encode() for j in range(len(keys))])
        for j, key in enumerate(keys):
            self.assertEqual(c.cmd("VEXISTS", name, key), 1)
            self.assertEqual(c.cmd("VGET", name, key), blob(10 + j, 0))
        self.assertEqual(c.cmd("VEXISTS", name, b"k\x00"), 0)
        self.assertEqual(c.cmd("VDEL", name, b"k\x00\x01"), 1)
        self.assertEqual(c.cmd("VEXISTS", name, b"k\x00\x02"), 1)
        self.assertEqual(c.cmd("VDEL", name, b""), 1)
        self.assertEqual(c.cmd("VEXISTS", name, b""), 0)
        self.assertEqual(c.cmd("VDROP", b"v\x00a"), "OK")
        self.assertEqual(c.cmd("VLIST"), sorted(names[1:]))
        self.assertEqual(c.cmd("VCARD", b"v\x00b"), 1)
        self.assertEqual(c.cmd("VCARD", b"v\x00a"), 0)      # no such key: 0, as Redis's VCARD

    def test_names_and_keys_are_case_sensitive(self):
        c = self.conn()
        self.ok(c, "VNEW", "idx", "2", "METRIC", "l2", "TYPE", "flat")
        self.ok(c, "VNEW", "IDX", "3", "METRIC", "l2", "TYPE", "flat")
        self.assertEqual(c.cmd("VLIST"), [b"IDX", b"idx"])
        self.assertEqual(c.cmd("VCARD", "Idx"), 0)
        self.assertEqual(c.cmd("VADD", "idx", "key", blob(1, 0)), 1)
        self.assertEqual(c.cmd("VADD", "idx", "KEY", blob(2, 0)), 1)
        self.assertEqual(c.cmd("VCARD", "idx"), 2)
        self.assertEqual(c.cmd("VCARD", "IDX"), 0)
        self.assertEqual(c.cmd("VSEARCH", "idx", blob(1, 0), "2"), [b"key", b"0", b"KEY", b"1"])
        self.assertEqual(c.cmd("VEXISTS", "idx", "Key"), 0)


# ---- VDEL, VGET, VEXISTS, VCARD, VINFO, VLIST, VDROP, VSAVE -------------------

@engram_only
class TestOtherCommands(VecTestCase):
    def test_vdel(self):
        c = self.conn()
        self.ok(c, "VNEW", "i", "2", "METRIC", "l2")
        c.cmd("VADD", "i", "a", blob(0, 0))
        c.cmd("VADD", "i", "b", blob(1, 0))
        self.assert_reply(encode("VDEL", "i", "a"), b":1\r\n", conn=c)
        self.assert_reply(encode("VDEL", "i", "a"), b":0\r\n", conn=c)
        self.assert_reply(encode("VDEL", "i", "never"), b":0\r\n", conn=c)
        self.assertEqual(c.cmd("VCARD", "i"), 1)
        self.assertEqual(c.cmd("VEXISTS", "i", "a"), 0)
        self.assertIsNone(c.cmd("VGET", "i", "a"))
        self.assertEqual(c.cmd("VSEARCH", "i", blob(0, 0), "5"), [b"b", b"1"])
        self.err(c, "ERR no such index 'nope'", "VDEL", "nope", "a")
        # re-adding a deleted key is new again
        self.assertEqual(c.cmd("VADD", "i", "a", blob(0, 0)), 1)

    def test_vget_exact_bytes(self):
        c = self.conn()
        rnd = random.Random(3)
        special = [0.0, -0.0, 1.401298464324817e-45, -1.1754943508222875e-38,
                   3.4028234663852886e38, -3.4028234663852886e38, 0.1, -2.5, 1e-30]
        for metric in ("l2", "dot"):
            for t in ("flat", "hnsw"):
                name = metric + t
                self.ok(c, "VNEW", name, "9", "METRIC", metric, "TYPE", t)
                vecs = [special] + [[rnd.uniform(-1e6, 1e6) for _ in range(9)]
                                    for _ in range(30)]
                raw = [blob(*v) for v in vecs]
                for i, b in enumerate(raw):
                    self.assertEqual(c.cmd("VADD", name, "k%d" % i, b), 1)
                for i, b in enumerate(raw):
                    with self.subTest(index=name, key=i):
                        self.assertEqual(c.cmd("VGET", name, "k%d" % i), b)
                self.assertIsNone(c.cmd("VGET", name, "missing"))
                self.assert_reply(encode("VGET", name, "missing"), b"$-1\r\n", conn=c)
        self.err(c, "ERR no such index 'nope'", "VGET", "nope", "k0")

    def test_vget_cosine_returns_original_scale(self):
        c = self.conn()
        rnd = random.Random(4)
        for t in ("flat", "hnsw"):
            name = "cos" + t
            self.ok(c, "VNEW", name, "6", "METRIC", "cosine", "TYPE", t)
            vecs = [[3, 4, 0, 0, 0, 0], [100, -200, 0.5, 0, 1, 2], [1e-3, 0, 0, 0, 0, 7]]
            vecs += [[rnd.uniform(-50, 50) for _ in range(6)] for _ in range(20)]
            for i, v in enumerate(vecs):
                c.cmd("VADD", name, "k%d" % i, blob(*v))
            for i, v in enumerate(vecs):
                got = unblob(c.cmd("VGET", name, "k%d" % i))
                norm = math.sqrt(sum(x * x for x in v))
                with self.subTest(index=name, key=i):
                    # not the normalised vector: the caller's own scale, to
                    # float32 precision
                    self.assertAlmostEqual(math.sqrt(sum(x * x for x in got)), norm,
                                           delta=norm * 1e-6)
                    for g, x in zip(got, v):
                        self.assertAlmostEqual(g, f32(x), delta=norm * 1e-6)
            # exactly representable after normalisation: exact
            self.assertEqual(c.cmd("VGET", name, "k0"), blob(3, 4, 0, 0, 0, 0))
            self.assertIsNone(c.cmd("VGET", name, "nope"))

    def test_vexists_and_vcard(self):
        c = self.conn()
        self.ok(c, "VNEW", "i", "2")
        self.assertEqual(c.cmd("VCARD", "i"), 0)
        self.assert_reply(encode("VEXISTS", "i", "a"), b":0\r\n", conn=c)
        c.cmd("VADD", "i", "a", blob(1, 2))
        self.assert_reply(encode("VEXISTS", "i", "a"), b":1\r\n", conn=c)
        self.assert_reply(encode("VCARD", "i"), b":1\r\n", conn=c)
        c.cmd("VADD", "i", "a", blob(2, 1))
        self.assertEqual(c.cmd("VCARD", "i"), 1)
        for j in range(50):
            c.cmd("VADD", "i", "k%d" % j, blob(j, 1))
        self.assertEqual(c.cmd("VCARD", "i"), 51)
        for j in range(0, 50, 2):
            c.cmd("VDEL", "i", "k%d" % j)
        self.assertEqual(c.cmd("VCARD", "i"), 26)
        self.assertEqual(c.cmd("VEXISTS", "i", "k2"), 0)
        self.assertEqual(c.cmd("VEXISTS", "i", "k3"), 1)
        self.assertEqual(c.cmd("VCARD", "nope"), 0)     # a missing key: 0, as Redis's VCARD
        # VEXISTS on a missing index answers 0 rather than an error
        self.assertEqual(c.cmd("VEXISTS", "nope", "a"), 0)

    def test_vinfo_resp2_and_resp3(self):
        c = self.conn()
        self.ok(c, "VNEW", "i", "5", "METRIC", "euclidean", "M", "12", "EF_CONSTRUCTION", "64",
                "EF", "33")
        for j in range(20):
            c.cmd("VADD", "i", "k%d" % j, blob(j, 0, 0, 0, 1))
        r = c.cmd("VINFO", "i", "FULL")
        self.assertIsInstance(r, list)
        self.assertEqual(len(r) % 2, 0)
        fields = r[0::2]
        self.assertTrue(all(isinstance(f, bytes) for f in fields), fields)
        self.assertEqual(len(set(fields)), len(fields))
        info = info_fields(r)
        for f in ("dim", "metric", "type", "count", "M", "ef_construction", "ef", "memory"):
            self.assertIn(f, info)
        self.assertEqual(info["dim"], 5)
        self.assertEqual(info["metric"], b"l2")
        self.assertEqual(info["type"], b"hnsw")
        self.assertEqual(info["count"], 20)
        self.assertEqual(info["M"], 12)
        self.assertEqual(info["ef_construction"], 64)
        self.assertEqual(info["ef"], 33)
        self.assertIsInstance(info["memory"], int)
        self.assertGreater(info["memory"], 20 * 5 * 4)
        # RESP3: a map with the same content
        c3 = self.conn()
        self.assertIsInstance(c3.cmd("HELLO", "3"), dict)
        raw = c3.raw_cmd("VINFO", "i", "FULL")
        self.assertTrue(raw.startswith(b"%%%d\r\n" % (len(r) // 2)), raw[:20])
        m = c3.cmd("VINFO", "i", "FULL")
        self.assertIsInstance(m, dict)
        self.assertEqual({k.decode(): v for k, v in m.items()}, info)
        # memory grows with the data
        before = info["memory"]
        for j in range(20, 220):
            c.cmd("VADD", "i", "k%d" % j, blob(j, 1, 0, 0, 1))
        self.assertGreater(self.vinfo(c, "i")["memory"], before)
        self.err(c, "ERR no such index 'nope'", "VINFO", "nope", "FULL")

    def test_vinfo_flat(self):
        c = self.conn()
        self.ok(c, "VNEW", "f", "3", "METRIC", "dot", "TYPE", "flat")
        c.cmd("VADD", "f", "a", blob(1, 2, 3))
        info = self.vinfo(c, "f")
        self.assertEqual((info["dim"], info["metric"], info["type"], info["count"]),
                         (3, b"dot", b"flat", 1))
        for f in ("M", "ef_construction", "ef", "memory"):
            self.assertIsInstance(info[f], int, f)

    def test_vlist_sorted(self):
        c = self.conn()
        self.assert_reply(encode("VLIST"), b"*0\r\n", conn=c)
        names = [b"zeta", b"alpha", b"Beta", b"alpha2", b"alph", b"a\x00", b"a", b"_x", b"9"]
        for n in names:
            self.ok(c, "VNEW", n, "2")
        self.assertEqual(c.cmd("VLIST"), sorted(names))
        self.ok(c, "VDROP", "alpha")
        self.ok(c, "VNEW", "m", "2")
        self.assertEqual(c.cmd("VLIST"), sorted([n for n in names if n != b"alpha"] + [b"m"]))

    def test_vdrop(self):
        c = self.conn()
        self.ok(c, "VNEW", "i", "2", "METRIC", "l2")
        self.ok(c, "VNEW", "j", "2", "METRIC", "l2")
        c.cmd("VADD", "i", "a", blob(1, 2))
        c.cmd("VADD", "j", "a", blob(3, 4))
        self.assert_reply(encode("VDROP", "i"), b"+OK\r\n", conn=c)
        self.assertEqual(c.cmd("VLIST"), [b"j"])
        e = "ERR no such index 'i'"
        self.err(c, e, "VDROP", "i")
        self.assertEqual(c.cmd("VCARD", "i"), 0)
        self.err(c, e, "VINFO", "i", "FULL")
        self.err(c, e, "VGET", "i", "a")
        self.err(c, e, "VDEL", "i", "a")
        self.err(c, e, "VADD", "i", "a", blob(1, 2))
        self.err(c, e, "VSEARCH", "i", blob(1, 2), "1")
        self.assertEqual(c.cmd("VEXISTS", "i", "a"), 0)
        # the other index is untouched
        self.assertEqual(c.cmd("VGET", "j", "a"), blob(3, 4))
        # the name can be used again, with other parameters, and starts empty
        self.ok(c, "VNEW", "i", "3", "METRIC", "dot", "TYPE", "flat")
        self.assertEqual(c.cmd("VCARD", "i"), 0)
        self.assertEqual(self.vinfo(c, "i")["dim"], 3)

    def test_vsave_without_persistence(self):
        c = self.conn()
        self.assert_reply(encode("VSAVE"), b"-ERR persistence not enabled; start with --dir\r\n",
                          conn=c)
        self.ok(c, "VNEW", "i", "2")
        self.err(c, "ERR persistence not enabled; start with --dir", "VSAVE")

    def test_flushall_and_flushdb_drop_indices(self):
        c = self.conn()
        for flush in (("FLUSHALL",), ("FLUSHDB",), ("FLUSHALL", "SYNC"), ("FLUSHDB", "ASYNC")):
            with self.subTest(flush=flush):
                self.ok(c, "VNEW", "a", "2")
                self.ok(c, "VNEW", "b", "2", "TYPE", "flat")
                c.cmd("VADD", "a", "k", blob(1, 2))
                self.ok(c, "SET", "plain", "1")
                self.ok(c, *flush)
                self.assertEqual(c.cmd("VLIST"), [])
                self.assertEqual(c.cmd("VCARD", "a"), 0)
                self.err(c, "ERR no such index 'b'", "VSEARCH", "b", blob(1, 2), "1")
                self.assertIsNone(c.cmd("GET", "plain"))
                info = parse_info(c.cmd("INFO", "vectors"))
                self.assertEqual(info["vector_indices"], "0")
                self.assertEqual(info["vector_count"], "0")

    def test_info_vectors_section(self):
        c = self.conn()
        text = c.cmd("INFO").decode()
        self.assertIn("# Vectors\r\n", text)
        text = c.cmd("INFO", "vectors").decode()
        self.assertTrue(text.startswith("# Vectors\r\n"), text)
        info = parse_info(text)
        for f in ("vector_indices", "simd_kernel", "search_threads"):
            self.assertIn(f, info)
        self.assertEqual(info["vector_indices"], "0")
        self.assertGreaterEqual(int(info["search_threads"]), 1)
        self.assertRegex(info["simd_kernel"], r"^[a-z0-9_]+$")
        self.ok(c, "VNEW", "a", "2")
        self.ok(c, "VNEW", "b", "2")
        c.cmd("VADD", "a", "x", blob(1, 2))
        c.cmd("VADD", "b", "x", blob(1, 2))
        c.cmd("VADD", "b", "y", blob(2, 1))
        info = parse_info(c.cmd("INFO", "vectors"))
        self.assertEqual(info["vector_indices"], "2")
        self.assertEqual(info["vector_count"], "3")
        self.assertEqual(info["simd_kernel"].encode(), self.vinfo(c, "a")["kernel"])
        # INFO all / everything include it too
        self.assertIn("vector_indices:2", c.cmd("INFO", "all").decode())

    def test_command_info(self):
        c = self.conn()
        r = c.cmd("COMMAND", "INFO", "vsearch")
        self.assertEqual(len(r), 1)
        doc = r[0]
        self.assertEqual(doc[0], b"vsearch")
        self.assertEqual(doc[1], -4)
        self.assertIn("readonly", doc[2])
        self.assertEqual(doc[3:6], [1, 1, 1])
        r = c.cmd("COMMAND", "INFO", "VADD", "vnew", "vlist", "nosuchcommand")
        self.assertEqual([x[0] if x else None for x in r], [b"VADD", b"vnew", b"vlist", None])
        self.assertIn("write", r[0][2])
        self.assertEqual(r[1][1], -3)
        self.assertEqual(r[2][1], 1)
        cnt = c.cmd("COMMAND", "COUNT")
        names = [x[0] for x in c.cmd("COMMAND")]
        self.assertEqual(len(names), cnt)
        for n in (b"vnew", b"VADD", b"vsearch", b"vdel", b"vget", b"vexists", b"VCARD",
                  b"VINFO", b"vlist", b"vdrop", b"vsave", b"VSIM", b"VREM", b"VRANGE"):
            self.assertIn(n, names)


if __name__ == "__main__":
    main()
