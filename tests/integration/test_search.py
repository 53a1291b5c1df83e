"""Search indices over hashes: FT.CREATE, FT.SEARCH, FT.INFO, FT._LIST,
FT.DROPINDEX, FT.ALTER, FT.TAGVALS, FT.EXPLAIN, as RediSearch 2.6 / Redis 8
answer them (engram-only: the harness's Redis 7.0 has no search module;
the reply shapes and error texts are RediSearch's, from its source and
test suite: /docs/commands.md lists them).

  * TestCreate: the FT.CREATE grammar (prefixes, field types and options,
    vector attributes) and its errors; FT._LIST; FT.DROPINDEX [DD]; FT.ALTER;
    db != 0 refused; MODULE LIST / INFO modules / INFO cluster.
  * TestIndexing: every write reaches the index -- HSET, HDEL, DEL, UNLINK,
    EXPIRE, field expiry, RENAME in and out of a prefix, SET over a hash,
    FLUSHALL (which drops the indices, as RediSearch does), SWAPDB; a hash
    with a bad vector or numeric value is not indexed and counts in
    hash_indexing_failures while the write succeeds; the initial scan, in
    the background for a big keyspace (indexing / percent_indexed).
  * TestQuery: text, tag, numeric, negation, OR, phrases, prefixes,
    SORTBY, LIMIT, RETURN (with AS), NOCONTENT, WITHSCORES, PARAMS,
    the RESP2 and RESP3 reply shapes, errors naming the offset.
  * TestKnn: KNN against brute force (L2, COSINE, IP; HNSW and FLAT) with
    tag and numeric prefilters of 1 %, 10 % and 100 % selectivity: k results
    whenever k documents match, distances as RediSearch reports them
    (L2 squared, 1 - cos, 1 - dot, %.12g), the default alias, EF_RUNTIME,
    spaces around =>, blob size errors; concurrent searches while writing.
  * TestSearchPersistence: definitions survive kill -9 (log) and SAVE
    (snapshot), the documents are indexed again after the load.
"""

import math
import random
import struct
import threading
import time

from engram_test import (RespError, ServerTestCase, engram_only, main, parse_info, wait_until)
import test_persist as tp


def vec(xs):
    return struct.pack("<%df" % len(xs), *xs)


def fields(flat):
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def docs(reply):
    """A RESP2 FT.SEARCH reply with content: (total, [(key, fields dict)])."""
    total = reply[0]
    out = []
    for i in range(1, len(reply), 2):
        out.append((reply[i], fields(reply[i + 1])))
    return total, out


def info(c, idx):
    r = c.cmd("FT.INFO", idx)
    return {r[i]: r[i + 1] for i in range(0, len(r), 2)}


SCHEMA = ["ON", "HASH", "PREFIX", "1", "doc:", "SCHEMA", "title", "TEXT", "WEIGHT", "2",
          "body", "TEXT", "tag", "TAG", "SORTABLE", "n", "NUMERIC", "SORTABLE"]


@engram_only
class TestCreate(ServerTestCase):
    def test_create_list_drop(self):
        c = self.conn()
        self.assertEqual(c.cmd("FT.CREATE", "idx", *SCHEMA), "OK")
        self.assert_error(c.cmd("FT.CREATE", "idx", *SCHEMA), "Index already exists")
        self.assertEqual(c.cmd("FT.CREATE", "other", "SCHEMA", "t", "TEXT"), "OK")
        self.assertEqual(sorted(c.cmd("FT._LIST")), [b"idx", b"other"])
        c.cmd("HSET", "doc:1", "title", "hello", "n", "3")
        self.assertEqual(c.cmd("FT.DROPINDEX", "other"), "OK")
        self.assertEqual(c.cmd("FT._LIST"), [b"idx"])
        self.assert_error(c.cmd("FT.DROPINDEX", "other"), "Unknown Index name")
        self.assertEqual(c.cmd("EXISTS", "doc:1"), 1)
        self.assertEqual(c.cmd("FT.DROPINDEX", "idx", "DD"), "OK")
        self.assertEqual(c.cmd("EXISTS", "doc:1"), 0)
        self.assertEqual(c.cmd("FT._LIST"), [])

    def test_create_errors(self):
        c = self.conn()
        cases = [
            (["i", "SCHEMA"], "ERR wrong number of arguments for 'FT.CREATE' command"),
            (["i", "ON", "HASH"], "No schema found"),
            (["i", "ON", "HASH", "SCHEMA"], "Fields arguments are missing"),
            (["i", "SCHEMA", "f", "BLOB"], "Invalid field type for field `f`"),
            (["i", "SCHEMA", "f", "TEXT", "f", "TAG"], "Duplicate field in schema - f"),
            (["i", "BOGUS", "SCHEMA", "f", "TEXT"], "Unknown argument `BOGUS`"),
            (["i", "SCHEMA", "v", "VECTOR", "HNSW", "4", "TYPE", "FLOAT32", "DIM", "4"],
             "Missing mandatory parameter: cannot create HNSW index without specifying "
             "DISTANCE_METRIC argument"),
            (["i", "SCHEMA", "v", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM", "0",
              "DISTANCE_METRIC", "L2"], "Bad arguments for vector similarity FLAT index dim"),
            (["i", "SCHEMA", "v", "VECTOR", "HNSW", "5", "TYPE", "FLOAT32", "DIM", "4",
              "DISTANCE_METRIC"],
             "Bad number of arguments for vector similarity index: got 5 but expected even number"),
            (["i", "SCHEMA", "v", "VECTOR", "SPHERE", "6"],
             "Bad arguments for vector similarity algorithm"),
            (["i", "SCHEMA", "v", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", "4",
              "DISTANCE_METRIC", "HAMMING"], "Bad arguments for vector similarity HNSW index metric"),
        ]
        for args, err in cases:
            got = c.cmd("FT.CREATE", *args)
            self.assert_error(got, err)
        self.assertEqual(c.cmd("FT._LIST"), [])

    def test_db_other_than_zero(self):
        c = self.conn()
        c.cmd("SELECT", 2)
        self.assert_error(c.cmd("FT.CREATE", "i", "SCHEMA", "t", "TEXT"),
                          "Cannot create index on db != 0")

    def test_modules_and_info(self):
        c = self.conn()
        mods = {m[1]: m[3] for m in c.cmd("MODULE", "LIST")}
        self.assertEqual(mods[b"search"], 20600)
        self.assertIn(b"vectorset", mods)
        text = c.cmd("INFO", "modules").decode()
        self.assertIn("module:name=search,ver=20600", text)
        self.assertEqual(parse_info(c.cmd("INFO", "cluster"))["cluster_enabled"], "0")

    def test_info_layout(self):
        c = self.conn()
        c.cmd("FT.CREATE", "idx", "PREFIX", "2", "doc:", "d2:", "SCHEMA", "t", "AS", "title",
              "TEXT", "NOSTEM", "g", "TAG", "SEPARATOR", ";", "CASESENSITIVE", "n", "NUMERIC",
              "v", "VECTOR", "HNSW", "10", "TYPE", "FLOAT32", "DIM", "2", "DISTANCE_METRIC",
              "COSINE", "M", "8", "EF_CONSTRUCTION", "50")
        c.cmd("HSET", "doc:1", "t", "hello there", "g", "A;b", "n", "1", "v", vec([1, 0]))
        r = c.cmd("FT.INFO", "idx")
        keys = r[0::2]
        self.assertEqual(keys, [
            b"index_name", b"index_options", b"index_definition", b"attributes", b"num_docs",
            b"max_doc_id", b"num_terms", b"num_records", b"inverted_sz_mb",
            b"vector_index_sz_mb", b"total_inverted_index_blocks", b"offset_vectors_sz_mb",
            b"doc_table_size_mb", b"sortable_values_size_mb", b"key_table_size_mb",
            b"records_per_doc_avg", b"bytes_per_record_avg", b"offsets_per_term_avg",
            b"offset_bits_per_record_avg", b"hash_indexing_failures", b"indexing",
            b"percent_indexed", b"number_of_uses", b"gc_stats", b"cursor_stats"])
        self.assertGreaterEqual(len(r), 48)       # node-redis 4 reads [45] and [47]
        d = fields(r)
        self.assertEqual(d[b"index_name"], b"idx")
        self.assertEqual(fields(d[b"index_definition"]),
                         {b"key_type": b"HASH", b"prefixes": [b"doc:", b"d2:"],
                          b"default_score": b"1"})
        attrs = d[b"attributes"]
        self.assertEqual(attrs[0], [b"identifier", b"t", b"attribute", b"title", b"type", b"TEXT",
                                    b"WEIGHT", b"1", b"NOSTEM"])
        self.assertEqual(attrs[1], [b"identifier", b"g", b"attribute", b"g", b"type", b"TAG",
                                    b"SEPARATOR", b";", b"CASESENSITIVE"])
        self.assertEqual(attrs[2], [b"identifier", b"n", b"attribute", b"n", b"type", b"NUMERIC"])
        self.assertEqual(attrs[3], [b"identifier", b"v", b"attribute", b"v", b"type", b"VECTOR",
                                    b"algorithm", b"HNSW", b"data_type", b"FLOAT32", b"dim", 2,
                                    b"distance_metric", b"COSINE", b"M", 8,
                                    b"ef_construction", 50])
        self.assertEqual(d[b"num_docs"], b"1")
        self.assertEqual(d[b"hash_indexing_failures"], b"0")
        self.assertEqual(d[b"indexing"], b"0")
        self.assertEqual(d[b"percent_indexed"], b"1")
        self.assertEqual(fields(d[b"cursor_stats"])[b"index_capacity"], 128)
        self.assertEqual(c.cmd("FT.TAGVALS", "idx", "g"), [b"A", b"b"])
        self.assert_error(c.cmd("FT.TAGVALS", "idx", "n"), "Not a tag field")
        self.assert_error(c.cmd("FT.INFO", "nope"), "nope: no such index")
        # RESP3: a map with the same keys
        c3 = self.conn()
        c3.cmd("HELLO", 3)
        m = c3.cmd("FT.INFO", "idx")
        self.assertIsInstance(m, dict)
        self.assertEqual(list(m.keys()), keys)
        self.assertEqual(m[b"index_definition"][b"key_type"], b"HASH")
        self.assertEqual(m[b"attributes"][3][b"dim"], 2)
        self.assertEqual(m[b"attributes"][1][b"flags"], [b"CASESENSITIVE"])
        self.assertEqual(m[b"num_docs"], 1.0)

    def test_custom_stopwords_and_alter(self):
        c = self.conn()
        c.cmd("FT.CREATE", "idx", "STOPWORDS", "1", "foo", "SCHEMA", "t", "TEXT")
        c.cmd("HSET", "a", "t", "foo bar", "n", "7")
        d = info(c, "idx")
        self.assertEqual(d[b"stopwords_list"], [b"foo"])
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "foo", "NOCONTENT"), [0])
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "bar", "NOCONTENT"), [1, b"a"])
        self.assert_error(c.cmd("FT.SEARCH", "idx", "@n:[1 10]"),
                          "Unknown field at offset 0 near n")
        self.assertEqual(c.cmd("FT.ALTER", "idx", "SCHEMA", "ADD", "n", "NUMERIC"), "OK")
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "@n:[1 10]", "NOCONTENT"), [1, b"a"])
        # SKIPINITIALSCAN keeps what is indexed (engram indexes it again)
        self.assertEqual(c.cmd("FT.ALTER", "idx", "SKIPINITIALSCAN", "SCHEMA", "ADD", "m",
                               "NUMERIC"), "OK")
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "bar", "NOCONTENT"), [1, b"a"])
        self.assert_error(c.cmd("FT.ALTER", "nope", "SCHEMA", "ADD", "x", "TEXT"),
                          "Unknown Index name")
        self.assert_error(c.cmd("FT.ALTER", "idx", "SCHEMA", "ADD", "n", "TEXT"),
                          "Duplicate field in schema - n")

    def test_explain(self):
        c = self.conn()
        c.cmd("FT.CREATE", "idx", *SCHEMA)
        out = c.cmd("FT.EXPLAIN", "idx", "@tag:{a|b} hello")
        self.assertIsInstance(out, bytes)
        self.assertIn(b"tag:tag", out)
        self.assertTrue(out.endswith(b"\n"))
        self.assert_error(c.cmd("FT.EXPLAIN", "nope", "x"), "nope: no such index")


@engram_only
class TestIndexing(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.c = self.conn()
        self.c.cmd("FT.CREATE", "idx", *SCHEMA)

    def num_docs(self):
        return int(info(self.c, "idx")[b"num_docs"])

    def found(self, q="*"):
        r = self.c.cmd("FT.SEARCH", "idx", q, "NOCONTENT", "LIMIT", "0", "1000")
        return sorted(r[1:])

    def test_write_paths(self):
        c = self.c
        c.cmd("HSET", "doc:1", "title", "red apple", "tag", "fruit", "n", "5")
        c.cmd("HSET", "doc:2", "title", "green pear", "tag", "fruit", "n", "7")
        c.cmd("HSET", "other:1", "title", "red herring")
        c.cmd("SET", "doc:str", "not a hash")
        self.assertEqual(self.found(), [b"doc:1", b"doc:2"])
        self.assertEqual(self.found("red"), [b"doc:1"])
        c.cmd("HSET", "doc:1", "title", "yellow banana")          # re-indexed whole
        self.assertEqual(self.found("red"), [])
        self.assertEqual(self.found("banana"), [b"doc:1"])
        c.cmd("HDEL", "doc:1", "title")
        self.assertEqual(self.found("banana"), [])
        self.assertEqual(self.found("@n:[5 5]"), [b"doc:1"])
        c.cmd("HINCRBY", "doc:1", "n", "10")
        self.assertEqual(self.found("@n:[15 15]"), [b"doc:1"])
        c.cmd("DEL", "doc:1")
        self.assertEqual(self.found(), [b"doc:2"])
        c.cmd("HSET", "doc:3", "title", "plum")
        c.cmd("UNLINK", "doc:3")
        self.assertEqual(self.found(), [b"doc:2"])
        c.cmd("RENAME", "doc:2", "other:2")                       # out of the prefix
        self.assertEqual(self.found(), [])
        c.cmd("RENAME", "other:1", "doc:9")                       # into it
        self.assertEqual(self.found("herring"), [b"doc:9"])
        c.cmd("SET", "doc:9", "now a string")
        self.assertEqual(self.found(), [])
        c.cmd("HSET", "doc:5", "title", "kiwi")
        c.cmd("MOVE", "doc:5", 3)
        self.assertEqual(self.found(), [])
        c.cmd("HSET", "doc:6", "title", "fig")
        c.cmd("COPY", "doc:6", "doc:7")
        self.assertEqual(self.found("fig"), [b"doc:6", b"doc:7"])
        self.assertEqual(self.num_docs(), 2)

    def test_expiry(self):
        c = self.c
        c.cmd("HSET", "doc:1", "title", "short lived")
        c.cmd("HSET", "doc:2", "title", "field lived", "tag", "x")
        c.cmd("PEXPIRE", "doc:1", 50)
        c.cmd("HPEXPIRE", "doc:2", 50, "FIELDS", 1, "title")
        self.assertEqual(self.found("lived"), [b"doc:1", b"doc:2"])
        self.assertTrue(wait_until(lambda: self.found("lived") == [], 5),
                        "expired keys and fields leave the index: %r" % self.found("lived"))
        self.assertEqual(self.found(), [b"doc:2"])              # its tag field is still there

    def test_flushall_drops_indices_and_swapdb(self):
        c = self.c
        c.cmd("HSET", "doc:1", "title", "one")
        c.cmd("SELECT", 1)
        c.cmd("HSET", "doc:2", "title", "two")
        c.cmd("SELECT", 0)
        c.cmd("SWAPDB", 0, 1)
        self.assertEqual(self.found(), [b"doc:2"])
        c.cmd("FLUSHDB")
        self.assertEqual(c.cmd("FT._LIST"), [])
        c.cmd("FT.CREATE", "idx", *SCHEMA)
        c.cmd("SELECT", 1)
        c.cmd("FLUSHDB")                                          # another db: kept
        c.cmd("SELECT", 0)
        self.assertEqual(c.cmd("FT._LIST"), [b"idx"])
        c.cmd("FLUSHALL")
        self.assertEqual(c.cmd("FT._LIST"), [])

    def test_failures(self):
        c = self.c
        c.cmd("FT.CREATE", "vidx", "PREFIX", "1", "v:", "SCHEMA", "n", "NUMERIC", "v", "VECTOR",
              "FLAT", "6", "TYPE", "FLOAT32", "DIM", "2", "DISTANCE_METRIC", "L2")
        self.assertEqual(c.cmd("HSET", "v:1", "v", vec([1, 2]), "n", "1"), 2)
        self.assertEqual(int(info(c, "vidx")[b"num_docs"]), 1)
        self.assertEqual(c.cmd("HSET", "v:1", "v", b"abc"), 0)       # the write succeeds
        d = info(c, "vidx")
        self.assertEqual(d[b"num_docs"], b"0")                      # the document left
        self.assertEqual(d[b"hash_indexing_failures"], b"1")
        self.assertEqual(c.cmd("HSET", "v:2", "v", vec([0, 0]), "n", "many"), 2)
        self.assertEqual(info(c, "vidx")[b"hash_indexing_failures"], b"2")
        c.cmd("HSET", "v:1", "v", vec([3, 4]))                        # good again
        self.assertEqual(info(c, "vidx")[b"num_docs"], b"1")
        self.assertEqual(c.cmd("HGET", "v:2", "n"), b"many")

    def test_scan_at_create_and_background(self):
        c = self.c
        c.cmd("FT.DROPINDEX", "idx")
        for i in range(0, 30000, 1000):
            c.cmd("MSET", *[x for j in range(i, i + 1000) for x in ("s:%d" % j, "v")])
        for i in range(3000):
            c.send_cmd("HSET", "doc:%d" % i, "title", "word%d common" % (i % 7), "n", str(i))
        for i in range(3000):
            c.read()
        self.assertEqual(c.cmd("FT.CREATE", "idx", *SCHEMA), "OK")  # 33,000 keys: background
        seen = []
        def done():
            d = info(c, "idx")
            seen.append((d[b"indexing"], d[b"percent_indexed"]))
            return d[b"indexing"] == b"0"
        self.assertTrue(wait_until(done, 30))
        self.assertEqual(self.num_docs(), 3000)
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "common", "LIMIT", "0", "0"), [3000])
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "word3", "LIMIT", "0", "0")[0], 429)
        # SKIPINITIALSCAN leaves existing hashes out
        c.cmd("FT.CREATE", "skip", "SKIPINITIALSCAN", "PREFIX", "1", "doc:", "SCHEMA", "title",
              "TEXT")
        self.assertEqual(c.cmd("FT.SEARCH", "skip", "*", "LIMIT", "0", "0"), [0])
        c.cmd("HSET", "doc:1", "title", "x")
        self.assertEqual(c.cmd("FT.SEARCH", "skip", "*", "LIMIT", "0", "0"), [1])


@engram_only
class TestQuery(ServerTestCase):
    def setUp(self):
        super().setUp()
        c = self.c = self.conn()
        c.cmd("FT.CREATE", "idx", *SCHEMA)
        rows = [("doc:1", "hello world", "greeting message", "a,b", 10),
                ("doc:2", "hello there", "another greeting", "b", 20),
                ("doc:3", "goodbye world", "farewell running", "c", 30),
                ("doc:4", "world peace", "runs and runners", "a", 40),
                ("doc:5", "nothing here", "hello in the body", "d-e", 50)]
        for k, t, b, g, n in rows:
            c.cmd("HSET", k, "title", t, "body", b, "tag", g, "n", str(n))

    def ids(self, *args):
        r = self.c.cmd("FT.SEARCH", "idx", *args)
        self.assertNotIsInstance(r, RespError, repr(r))
        return r[0], [x for x in r[1:] if isinstance(x, bytes)]

    def test_operators(self):
        s = lambda q, *a: sorted(self.ids(q, "NOCONTENT", *a)[1])
        self.assertEqual(s("hello"), [b"doc:1", b"doc:2", b"doc:5"])
        self.assertEqual(s("hello world"), [b"doc:1"])
        self.assertEqual(s("hello | goodbye"), [b"doc:1", b"doc:2", b"doc:3", b"doc:5"])
        self.assertEqual(s("world -hello"), [b"doc:3", b"doc:4"])
        self.assertEqual(s("@title:hello"), [b"doc:1", b"doc:2"])
        self.assertEqual(s("@title:(hello|peace)"), [b"doc:1", b"doc:2", b"doc:4"])
        self.assertEqual(s('"hello world"'), [b"doc:1"])
        self.assertEqual(s("wor*"), [b"doc:1", b"doc:3", b"doc:4"])
        self.assertEqual(s("run"), [b"doc:3", b"doc:4"])           # stemming
        self.assertEqual(s("run", "VERBATIM"), [])
        self.assertEqual(s("@tag:{a}"), [b"doc:1", b"doc:4"])
        self.assertEqual(s("@tag:{a|c}"), [b"doc:1", b"doc:3", b"doc:4"])
        self.assertEqual(s(r"@tag:{d\-e}"), [b"doc:5"])
        self.assertEqual(s("@n:[20 40]"), [b"doc:2", b"doc:3", b"doc:4"])
        self.assertEqual(s("@n:[(20 +inf]"), [b"doc:3", b"doc:4", b"doc:5"])
        self.assertEqual(s("@n:[-inf (20]"), [b"doc:1"])
        self.assertEqual(s("@tag:{b} @n:[15 25]"), [b"doc:2"])
        self.assertEqual(s("@n:[$lo $hi]", "PARAMS", "4", "lo", "40", "hi", "50",
                           "DIALECT", "2"), [b"doc:4", b"doc:5"])
        self.assertEqual(s("*"), [b"doc:1", b"doc:2", b"doc:3", b"doc:4", b"doc:5"])

    def test_errors(self):
        c = self.c
        self.assert_error(c.cmd("FT.SEARCH", "nope", "*"), "nope: no such index")
        e = c.cmd("FT.SEARCH", "idx", "@tag:{a")
        self.assertIsInstance(e, RespError)
        self.assertTrue(str(e).startswith("Syntax error at offset"), str(e))
        self.assert_error(c.cmd("FT.SEARCH", "idx", "@nope:x"), "Unknown field at offset 0 near nope")
        self.assert_error(c.cmd("FT.SEARCH", "idx", "*", "LIMIT", "0"),
                          "Bad arguments for LIMIT: Could not convert argument to expected type")
        self.assert_error(c.cmd("FT.SEARCH", "idx", "*", "DIALECT", "9"),
                          "DIALECT requires a non negative integer >=1 and <= 4")
        self.assert_error(c.cmd("FT.SEARCH", "idx", "*", "SCORER", "NOPE"),
                          "Scoring function `NOPE` not found")
        self.assert_error(c.cmd("FT.SEARCH", "idx", "@n:[$x 5]", "DIALECT", "2"),
                          "No such parameter `x`")
        self.assert_error(c.cmd("FT.SEARCH", "idx", "*", "SORTBY", "nope"),
                          "Property `nope` not loaded nor in schema")
        self.assert_error(c.cmd("FT.SEARCH", "idx", "*", "BOGUS"),
                          "Unknown argument `BOGUS` at position 1 for <main>")

    def test_reply_shapes(self):
        c = self.c
        r = c.cmd("FT.SEARCH", "idx", "goodbye")
        self.assertEqual(r, [1, b"doc:3", [b"title", b"goodbye world", b"body", b"farewell running",
                                           b"tag", b"c", b"n", b"30"]])
        r = c.cmd("FT.SEARCH", "idx", "goodbye", "RETURN", "4", "n", "title", "AS", "t")
        self.assertEqual(r, [1, b"doc:3", [b"n", b"30", b"t", b"goodbye world"]])
        r = c.cmd("FT.SEARCH", "idx", "goodbye", "RETURN", "1", "missing")
        self.assertEqual(r, [1, b"doc:3", []])
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "goodbye", "RETURN", "0"), [1, b"doc:3"])
        r = c.cmd("FT.SEARCH", "idx", "goodbye", "WITHSCORES", "NOCONTENT")
        self.assertEqual(len(r), 3)
        self.assertGreater(float(r[2]), 0)
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "*", "LIMIT", "0", "0"), [5])
        # sorting and paging
        r = c.cmd("FT.SEARCH", "idx", "*", "SORTBY", "n", "DESC", "LIMIT", "1", "2", "NOCONTENT")
        self.assertEqual(r, [5, b"doc:4", b"doc:3"])
        r = c.cmd("FT.SEARCH", "idx", "*", "SORTBY", "@n", "ASC", "LIMIT", "0", "2", "NOCONTENT")
        self.assertEqual(r, [5, b"doc:1", b"doc:2"])
        r = c.cmd("FT.SEARCH", "idx", "*", "SORTBY", "tag", "NOCONTENT")
        self.assertEqual(r[1:3], [b"doc:4", b"doc:1"])          # "a" < "a,b"
        # text relevance: a title match (WEIGHT 2) outranks a body match
        r = c.cmd("FT.SEARCH", "idx", "hello", "NOCONTENT", "WITHSCORES")
        self.assertEqual(r[5], b"doc:5")
        self.assertGreater(float(r[2]), float(r[6]))
        # RESP3
        c3 = self.conn()
        c3.cmd("HELLO", 3)
        m = c3.cmd("FT.SEARCH", "idx", "goodbye", "WITHSCORES", "RETURN", "1", "n")
        self.assertEqual(list(m.keys()), [b"attributes", b"format", b"results", b"total_results",
                                          b"warning"])
        self.assertEqual(m[b"total_results"], 1)
        self.assertEqual(m[b"format"], b"STRING")
        res = m[b"results"][0]
        self.assertEqual(res[b"id"], b"doc:3")
        self.assertIsInstance(res[b"score"], float)
        self.assertEqual(res[b"extra_attributes"], {b"n": b"30"})
        self.assertEqual(res[b"values"], [])
        m = c3.cmd("FT.SEARCH", "idx", "goodbye", "NOCONTENT")
        self.assertEqual(m[b"results"], [{b"id": b"doc:3", b"values": []}])

    def test_number_of_uses_and_multi(self):
        c = self.c
        before = info(c, "idx")[b"number_of_uses"]
        self.assertEqual(c.cmd("MULTI"), "OK")
        c.cmd("FT.SEARCH", "idx", "hello", "NOCONTENT")
        c.cmd("HSET", "doc:6", "title", "hello again")
        c.cmd("FT.SEARCH", "idx", "hello", "NOCONTENT")
        r = c.cmd("EXEC")
        self.assertEqual(r[0][0], 3)
        self.assertEqual(r[2][0], 4)
        self.assertEqual(info(c, "idx")[b"number_of_uses"], before + 2)


def brute(data, q, metric, ok, k):
    out = []
    for key, v in data.items():
        if not ok(key):
            continue
        if metric == "L2":
            d = sum((a - b) ** 2 for a, b in zip(v, q))
        elif metric == "IP":
            d = 1 - sum(a * b for a, b in zip(v, q))
        else:
            na = math.sqrt(sum(a * a for a in v))
            nb = math.sqrt(sum(b * b for b in q))
            d = 1 - sum(a * b for a, b in zip(v, q)) / (na * nb)
        out.append((d, key))
    out.sort()
    return out[:k]


@engram_only
class TestKnn(ServerTestCase):
    N, DIM = 1000, 8

    def load(self, algo, metric, extra=()):
        c = self.c = self.conn()
        c.cmd("FT.CREATE", "v", "PREFIX", "1", "item:", "SCHEMA", "sel", "TAG", "n", "NUMERIC",
              "emb", "VECTOR", algo, str(6 + len(extra)), "TYPE", "FLOAT32", "DIM", str(self.DIM),
              "DISTANCE_METRIC", metric, *extra)
        rnd = random.Random(7)
        self.data = {}
        for i in range(self.N):
            v = [rnd.uniform(-1, 1) for _ in range(self.DIM)]
            v = list(struct.unpack("<%df" % self.DIM, vec(v)))      # float32 values
            key = b"item:%d" % i
            self.data[key] = v
            sel = "one" if i % 100 == 0 else "ten" if i % 10 == 0 else "rest"
            c.send_cmd("HSET", key, "emb", vec(v), "sel", sel, "n", str(i))
        for _ in range(self.N):
            c.read()
        return rnd

    def knn(self, q, k, pre="*", extra=()):
        r = self.c.cmd("FT.SEARCH", "v", "%s=>[KNN %d @emb $q]" % (pre, k), "PARAMS", "2", "q",
                       vec(q), "SORTBY", "__emb_score", "LIMIT", "0", str(k), "DIALECT", "2", *extra)
        self.assertNotIsInstance(r, RespError, repr(r))
        return docs(r)

    def check(self, algo, metric, min_recall):
        rnd = self.load(algo, metric, ("EF_RUNTIME", "100") if algo == "HNSW" else ())
        filters = [("*", lambda k: True),
                   ("(@sel:{one})", lambda k: int(k[5:]) % 100 == 0),
                   ("(@sel:{ten|one})", lambda k: int(k[5:]) % 10 == 0),
                   ("(@n:[0 99])", lambda k: int(k[5:]) < 100)]
        hits = total = 0
        for pre, ok in filters:
            for _ in range(5):
                q = [rnd.uniform(-1, 1) for _ in range(self.DIM)]
                want = brute(self.data, q, metric, ok, 10)
                n, got = self.knn(q, 10, pre)
                self.assertEqual(n, 10, "k results when k documents match (%s)" % pre)
                self.assertEqual(len(got), 10)
                for key, f in got:
                    self.assertTrue(ok(key), "%s: %r passes the prefilter" % (pre, key))
                    d = float(f[b"__emb_score"])
                    true = brute({key: self.data[key]}, q, metric, lambda k: True, 1)[0][0]
                    self.assertAlmostEqual(d, true, delta=1e-4 + 1e-4 * abs(true))
                dists = [float(f[b"__emb_score"]) for _, f in got]
                self.assertEqual(dists, sorted(dists))
                hits += len({k for _, k in want} & {k for k, _ in got})
                total += len(want)
        self.assertGreaterEqual(hits / total, min_recall, "%s %s recall" % (algo, metric))

    def test_hnsw_l2(self):
        self.check("HNSW", "L2", 0.95)

    def test_hnsw_cosine(self):
        self.check("HNSW", "COSINE", 0.95)

    def test_flat_ip(self):
        self.check("FLAT", "IP", 1.0)

    def test_clause_forms_and_errors(self):
        self.load("HNSW", "L2")
        c = self.c
        q = vec([0.1] * self.DIM)
        base = c.cmd("FT.SEARCH", "v", "*=>[KNN 3 @emb $q]", "PARAMS", "2", "q", q,
                     "SORTBY", "__emb_score", "RETURN", "1", "__emb_score", "DIALECT", "2")
        self.assertEqual(base[0], 3)
        for form in ["* => [KNN 3 @emb $q]", "*=>[KNN $k @emb $q]", "*=>[KNN 3 @emb $q EF_RUNTIME 50]",
                     "(*)=>[KNN 3 @emb $q]"]:
            r = c.cmd("FT.SEARCH", "v", form, "PARAMS", "4", "q", q, "k", "3",
                      "SORTBY", "__emb_score", "RETURN", "1", "__emb_score", "DIALECT", "2")
            self.assertEqual(r, base, form)
        r = c.cmd("FT.SEARCH", "v", "*=>[KNN 2 @emb $q AS dist]", "PARAMS", "2", "q", q,
                  "RETURN", "1", "dist", "DIALECT", "2")
        self.assertEqual(r[0], 2)
        self.assertEqual(r[2][0], b"dist")
        # the score field first, then the hash's fields
        r = c.cmd("FT.SEARCH", "v", "*=>[KNN 1 @emb $q]", "PARAMS", "2", "q", q, "DIALECT", "2")
        self.assertEqual(r[2][0], b"__emb_score")
        self.assertEqual(set(r[2][2::2]), {b"emb", b"sel", b"n"})
        # distances print as RediSearch prints numbers: %.12g
        self.assertRegex(r[2][1].decode(), r"^[0-9.e+-]+$")
        self.assertLessEqual(len(r[2][1].rstrip(b"0")), 20)
        self.assert_error(
            c.cmd("FT.SEARCH", "v", "*=>[KNN 3 @emb $q]", "PARAMS", "2", "q", b"abc", "DIALECT", "2"),
            "Error parsing vector similarity query: query vector blob size (3) does not match "
            "index's expected size (32).")
        self.assert_error(c.cmd("FT.SEARCH", "v", "*=>[KNN 3 @emb $q]", "DIALECT", "2"),
                          "No such parameter `q`")
        r = c.cmd("FT.SEARCH", "v", "(@sel:{none})=>[KNN 3 @emb $q]", "PARAMS", "2", "q", q,
                  "DIALECT", "2")
        self.assertEqual(r, [0])
        r = c.cmd("FT.SEARCH", "v", "*=>[KNN 0 @emb $q]", "PARAMS", "2", "q", q, "DIALECT", "2")
        self.assertEqual(r, [0])
        # IP distance is 1 - dot, COSINE 1 - cos (checked by check()); L2 squared:
        c.cmd("HSET", "item:x", "emb", vec([1] + [0] * (self.DIM - 1)), "sel", "x")
        r = c.cmd("FT.SEARCH", "v", "(@sel:{x})=>[KNN 1 @emb $q]", "PARAMS", "2", "q",
                  vec([3] + [0] * (self.DIM - 1)), "RETURN", "1", "__emb_score", "DIALECT", "2")
        self.assertEqual(r, [1, b"item:x", [b"__emb_score", b"4"]])

    def test_searches_while_writing(self):
        self.load("HNSW", "L2")
        errors = []

        def reader():
            c = self.server.conn()
            rnd = random.Random(3)
            try:
                for _ in range(200):
                    q = vec([rnd.uniform(-1, 1) for _ in range(self.DIM)])
                    r = c.cmd("FT.SEARCH", "v", "(@sel:{rest})=>[KNN 5 @emb $q]", "PARAMS", "2",
                              "q", q, "NOCONTENT", "DIALECT", "2")
                    if isinstance(r, RespError) or r[0] != 5:
                        errors.append(r)
            finally:
                c.close()

        ts = [threading.Thread(target=reader) for _ in range(3)]
        for t in ts:
            t.start()
        c = self.c
        rnd = random.Random(5)
        for i in range(300):
            c.cmd("HSET", "item:%d" % rnd.randrange(self.N), "emb",
                  vec([rnd.uniform(-1, 1) for _ in range(self.DIM)]))
            if i % 50 == 0:
                c.cmd("DEL", "item:%d" % rnd.randrange(self.N))
        c.cmd("FT.DROPINDEX", "v")
        for t in ts:
            t.join()
        bad = [e for e in errors if not (isinstance(e, RespError) and "no such index" in str(e))]
        self.assertEqual(bad, [])


@engram_only
class TestSearchPersistence(tp.PersistCase):
    def populate(self, c):
        c.cmd("FT.CREATE", "idx", "PREFIX", "1", "d:", "SCHEMA", "t", "TEXT", "v", "VECTOR",
              "HNSW", "6", "TYPE", "FLOAT32", "DIM", "2", "DISTANCE_METRIC", "L2")
        c.cmd("FT.CREATE", "gone", "SCHEMA", "t", "TEXT")
        c.cmd("FT.DROPINDEX", "gone")
        for i in range(50):
            c.cmd("HSET", "d:%d" % i, "t", "word%d shared" % i, "v", vec([i, 0]))
        c.cmd("FT.ALTER", "idx", "SCHEMA", "ADD", "n", "NUMERIC")
        c.cmd("HSET", "d:7", "n", "7")

    def check(self, c):
        self.assertEqual(c.cmd("FT._LIST"), [b"idx"])
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "shared", "LIMIT", "0", "0"), [50])
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "@n:[7 7]", "NOCONTENT"), [1, b"d:7"])
        r = c.cmd("FT.SEARCH", "idx", "*=>[KNN 1 @v $q]", "PARAMS", "2", "q", vec([9.2, 0]),
                  "NOCONTENT", "DIALECT", "2")
        self.assertEqual(r, [1, b"d:9"])

    def test_log_then_snapshot(self):
        srv = self.start()
        c = self.conn(srv)
        self.populate(c)
        self.check(c)
        self.crash(srv)
        srv = self.start()                                        # the log alone
        c = self.conn(srv)
        self.check(c)
        self.assertEqual(c.cmd("SAVE"), "OK")
        c.cmd("HSET", "d:50", "t", "shared late", "v", vec([50, 0]))
        self.crash(srv)
        srv = self.start()                                        # snapshot + log
        c = self.conn(srv)
        self.assertEqual(c.cmd("FT.SEARCH", "idx", "shared", "LIMIT", "0", "0"), [51])
        c.cmd("FLUSHALL")
        self.crash(srv)
        srv = self.start()
        c = self.conn(srv)
        self.assertEqual(c.cmd("FT._LIST"), [])


if __name__ == "__main__":
    main()
