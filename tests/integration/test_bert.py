"""The BERT embedder against references written here, in numpy.

A small random BERT (2 layers, hidden 64, 4 heads, intermediate 128, 64
positions, a ~500-token vocabulary) is generated with a fixed seed and saved
as a Hugging Face model directory: model.safetensors (written here, no
library), config.json, vocab.txt, tokenizer_config.json.  Then:

  * tokens: engram's ids (tests/tools/embed_tool) equal those of a reference
    BasicTokenizer + WordpieceTokenizer transcribed below from Hugging Face's
    tokenization_bert.py, on sentences with punctuation, accents (precomposed
    and combining), CJK, control and zero-width characters, odd whitespace,
    unknown characters, a 120-character word and truncation;
  * embeddings: engram's vectors equal a numpy forward pass (float64, a
    padded batch with the attention mask, as transformers runs it, and
    sentence-transformers' masked mean pooling) within 1e-4 (max abs, float32
    weights), for mean and CLS pooling, with and without normalisation, at
    max-tokens 64 and 8, in one batch and one by one, with every matrix
    kernel this CPU runs;
  * float16 and bfloat16 weights: within 1e-4 of the reference run on the
    same (rounded) weights, and within 2e-3 (F16) / 2e-2 (BF16) of the
    float32 model's vectors -- the rounding of the weights themselves
    (measured: 3.8e-4 and 4.5e-3);
  * the server: `embedder tiny bert DIR pooling mean max-tokens 64` in the
    config, VNEW ... EMBED tiny, VADD ... TEXT then VGET gives the reference
    vector (1e-4); VSEARCH ... TEXT finds the sentence itself first;
  * bad model directories (missing tensor, wrong shape, truncated
    safetensors, vocabulary size mismatch, bad config.json, unsupported
    dtype) are refused with a message naming the file and the tensor, by
    the tool and by the server at start-up.

Needs Debian's python3-numpy; skipped without it.  tests/cross/arm64.sh runs
the model tests again with the aarch64 build of the tool under qemu, so the
NEON kernel is checked against the same references."""

import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unicodedata
import unittest

from engram_test import IS_REDIS, REPO, Server, ServerTestCase, encode, engram_bin, free_port, main

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

TOOL = os.environ.get("ENGRAM_EMBED_TOOL") or os.path.join(REPO, "build", "tests", "embed_tool")
# A command to run the tool under (tests/cross/arm64.sh: qemu-aarch64 -L ...).
TOOL_WRAP = os.environ.get("ENGRAM_EMBED_TOOL_WRAP", "").split()

CFG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
           max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
           hidden_act="gelu", model_type="bert", position_embedding_type="absolute")

WORDS = ("hello world how are you the a an is of to and in it that cafe naive resume deja vu "
         "mixed with english ca va un ##aff ##able ##s ##ing ##ed ##er ##ly disk full no space "
         "left on device user logged from error warning test sentence quick brown fox jumps over "
         "lazy dog zero width control char tab new line").split()

SENTENCES = [
    "Hello, world! How are you?",
    "The caf\u00e9's na\u00efve r\u00e9sum\u00e9 \u2014 d\u00e9j\u00e0 vu.",
    "\u00c0\u00c9\u00ce\u00d5\u00dc \u00c7A VA cafe\u0301 NA\u00cfVE",
    "\u4e2d\u6587\u5b57\u7b26 mixed with English\u3002",
    "unaffable unaffables testing tested",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u039f\u0394\u039f\u03a3 \u20ac100",
    "control\x01char and zero\u200bwidth tab\there\u2028line\u00a0nbsp",
    "a" * 120 + " short",
    "disk full: no space left on device (errno=28) [retry #3] {ok} <x> ~y~ |z| ^w^ $5 %6 &7 *8 +9 =0 @ `q`",
    " ".join(["quick brown fox jumps over the lazy dog"] * 12),
    "!!!",
    "",
    "x",
]


def build_vocab():
    v = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    v += [chr(c) for c in range(33, 127) if not chr(c).isalnum()]
    v += [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    v += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)] + ["##" + str(d) for d in range(10)]
    v += ["\u4e2d", "\u6587", "\u5b57", "\u3002", "\u2014"]
    for w in WORDS:
        if w not in v:
            v.append(w)
    i = 0
    while len(v) < 500:
        v.append("w%d" % i if i % 2 else "##p%d" % i)
        i += 1
    return v


# ---- the reference tokenizer (transformers' tokenization_bert.py) --------------

def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text, lower=True):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        out.append(" " if _is_whitespace(ch) else ch)
    text = "".join(out)
    text = "".join(" %s " % ch if _is_chinese_char(ord(ch)) else ch for ch in text)
    split = []
    for tok in text.strip().split():
        if lower:
            tok = tok.lower()
            tok = "".join(c for c in unicodedata.normalize("NFD", tok)
                          if unicodedata.category(c) != "Mn")
        cur = []
        for ch in tok:
            if _is_punctuation(ch):
                if cur:
                    split.append("".join(cur))
                    cur = []
                split.append(ch)
            else:
                cur.append(ch)
        if cur:
            split.append("".join(cur))
    return " ".join(split).strip().split()


def wordpiece(word, vocab, unk="[UNK]", max_chars=100):
    chars = list(word)
    if len(chars) > max_chars:
        return [unk]
    out, start = [], 0
    while start < len(chars):
        end, cur = len(chars), None
        while start < end:
            sub = "".join(chars[start:end])
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return [unk]
        out.append(cur)
        start = end
    return out


def ref_ids(text, vocab, max_tokens):
    pieces = [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]
    pieces = pieces[:max_tokens - 2]
    return [vocab["[CLS]"]] + [vocab[p] for p in pieces] + [vocab["[SEP]"]], len(pieces)


# ---- the model and the reference forward pass -----------------------------------

def make_weights(seed=7):
    rng = np.random.default_rng(seed)
    H, I, P, V = CFG["hidden_size"], CFG["intermediate_size"], CFG["max_position_embeddings"], 500
    W = {}

    def n(*shape, s=0.2):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    W["embeddings.word_embeddings.weight"] = n(V, H, s=1.0)
    W["embeddings.position_embeddings.weight"] = n(P, H, s=0.5)
    W["embeddings.token_type_embeddings.weight"] = n(2, H, s=0.5)
    W["embeddings.LayerNorm.weight"] = 1 + n(H, s=0.1)
    W["embeddings.LayerNorm.bias"] = n(H, s=0.1)
    W["embeddings.position_ids"] = np.arange(P, dtype=np.int64)[None, :]
    for l in range(CFG["num_hidden_layers"]):
        p = "encoder.layer.%d." % l
        for part in ("query", "key", "value"):
            W[p + "attention.self.%s.weight" % part] = n(H, H, s=0.25)
            W[p + "attention.self.%s.bias" % part] = n(H, s=0.1)
        W[p + "attention.output.dense.weight"] = n(H, H, s=0.15)
        W[p + "attention.output.dense.bias"] = n(H, s=0.1)
        W[p + "attention.output.LayerNorm.weight"] = 1 + n(H, s=0.1)
        W[p + "attention.output.LayerNorm.bias"] = n(H, s=0.1)
        W[p + "intermediate.dense.weight"] = n(I, H, s=0.2)
        W[p + "intermediate.dense.bias"] = n(I, s=0.1)
        W[p + "output.dense.weight"] = n(H, I, s=0.1)
        W[p + "output.dense.bias"] = n(H, s=0.1)
        W[p + "output.LayerNorm.weight"] = 1 + n(H, s=0.1)
        W[p + "output.LayerNorm.bias"] = n(H, s=0.1)
    W["pooler.dense.weight"] = n(H, H)
    W["pooler.dense.bias"] = n(H)
    return W


def as_dtype(W, dtype):
    """The weights as they will be stored: float arrays in dtype (F16 /
    BF16 rounding to nearest even), returned as (stored bytes, float64 values)."""
    out = {}
    for k, a in W.items():
        if a.dtype != np.float32:
            out[k] = (a, a)
        elif dtype == "F32":
            out[k] = (a, a.astype(np.float64))
        elif dtype == "F16":
            h = a.astype(np.float16)
            out[k] = (h, h.astype(np.float64))
        else:  # BF16: round to nearest even on the top 16 bits
            u = a.view(np.uint32).astype(np.uint64)
            r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
            out[k] = (r, (r.astype(np.uint32) << 16).view(np.float32).astype(np.float64))
    return out


def save_safetensors(path, stored, dtype, order=None):
    names = order or sorted(stored)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in names:
        a = stored[k][0]
        dt = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
              np.dtype(np.int64): "I64", np.dtype(np.uint16): "BF16"}[a.dtype]
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_model(d, W, dtype="F32", vocab=None, cfg=None):
    os.makedirs(d, exist_ok=True)
    vocab = vocab or build_vocab()
    c = dict(CFG, vocab_size=len(vocab))
    c.update(cfg or {})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": 512,
                   "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                   "pad_token": "[PAD]", "mask_token": "[MASK]"}, f)
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump({"unk_token": {"content": "[UNK]", "lstrip": False}, "cls_token": "[CLS]",
                   "sep_token": "[SEP]", "pad_token": "[PAD]"}, f)
    stored = as_dtype(W, dtype)
    save_safetensors(os.path.join(d, "model.safetensors"), stored, dtype)
    return {k: v[1] for k, v in stored.items()}


def layernorm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


_erf = np.vectorize(math.erf)


def ref_forward(W, batch, pooling="mean", normalize=True):
    """transformers' BertModel on a padded batch with its attention mask,
    then sentence-transformers' pooling; float64."""
    H, A = CFG["hidden_size"], CFG["num_attention_heads"]
    d, eps = H // A, CFG["layer_norm_eps"]
    B, T = len(batch), max(len(ids) for ids in batch)
    ids = np.zeros((B, T), dtype=np.int64)
    mask = np.zeros((B, T))
    for i, s in enumerate(batch):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:T]
    x = x + W["embeddings.token_type_embeddings.weight"][0]
    x = layernorm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    add = (1.0 - mask)[:, None, None, :] * -1e30
    for l in range(CFG["num_hidden_layers"]):
        p = "encoder.layer.%d." % l

        def lin(t, name):
            return t @ W[p + name + ".weight"].T + W[p + name + ".bias"]

        def heads(t):
            return t.reshape(B, T, A, d).transpose(0, 2, 1, 3)

        q, k, v = (heads(lin(x, "attention.self." + n)) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + add
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, T, H)
        x = layernorm(x + lin(ctx, "attention.output.dense"),
                      W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(x, "intermediate.dense")
        f = 0.5 * f * (1 + _erf(f / math.sqrt(2)))
        x = layernorm(x + lin(f, "output.dense"),
                      W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    if pooling == "cls":
        out = x[:, 0]
    else:
        out = (x * mask[:, :, None]).sum(1) / mask.sum(1)[:, None]
    if normalize:
        out = out / np.linalg.norm(out, axis=1, keepdims=True)
    return out


def run_tool(mode, d, texts, *opts):
    data = "".join(t + "\n" for t in texts).encode("utf-8")
    p = subprocess.run(TOOL_WRAP + [TOOL, mode, d] + [str(o) for o in opts], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


@unittest.skipIf(IS_REDIS, "engram only")
@unittest.skipIf(np is None, "needs python3-numpy")
class BertModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="engram-bert-")
        cls.W = make_weights()
        cls.vocab_list = build_vocab()
        cls.vocab = {t: i for i, t in enumerate(cls.vocab_list)}
        cls.dir = os.path.join(cls.tmp, "f32")
        cls.Wf = write_model(cls.dir, cls.W)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def embed(self, d, texts, *opts):
        rc, out, err = run_tool("embed", d, texts, *opts)
        self.assertEqual(rc, 0, err)
        return np.frombuffer(out, dtype=np.float32).reshape(len(texts), -1).astype(np.float64)

    def reference(self, W, texts, max_tokens=64, pooling="mean", normalize=True):
        ids = [ref_ids(t, self.vocab, max_tokens) for t in texts]
        live = [i for i, (_, n) in enumerate(ids) if n > 0]
        out = np.zeros((len(texts), CFG["hidden_size"]))
        out[live] = ref_forward(W, [ids[i][0] for i in live], pooling, normalize)
        return out

    def test_tokens(self):
        for mt in (64, 8):
            rc, out, err = run_tool("tokens", self.dir, SENTENCES, "max-tokens", mt)
            self.assertEqual(rc, 0, err)
            got = [[int(x) for x in l.split()] for l in out.decode().split("\n")[:-1]]
            self.assertEqual(len(got), len(SENTENCES))
            for s, g in zip(SENTENCES, got):
                want = ref_ids(s, self.vocab, mt)[0]
                self.assertEqual(g, want, "%r: %s vs %s" % (
                    s, [self.vocab_list[i] for i in g], [self.vocab_list[i] for i in want]))
        # The cases meant to be covered are covered.
        toks = [basic_tokenize(s) for s in SENTENCES]
        self.assertIn("cafe", toks[1])
        self.assertIn("\u4e2d", toks[3])
        self.assertIn("[UNK]", [p for w in toks[5] for p in wordpiece(w, self.vocab)])
        self.assertEqual(wordpiece(toks[7][0], self.vocab), ["[UNK]"])
        self.assertGreater(len(ref_ids(SENTENCES[9], self.vocab, 1000)[0]), 64)

    def test_float32_matches_reference(self):
        want = self.reference(self.Wf, SENTENCES)
        got = self.embed(self.dir, SENTENCES)
        err = np.abs(got - want).max()
        self.assertLessEqual(err, 1e-4, "max abs error %g" % err)
        self.assertTrue(np.all(got[SENTENCES.index("")] == 0))
        # One by one (no padding anywhere) equals the batch.
        one = self.embed(self.dir, SENTENCES, "batch", 1)
        self.assertLessEqual(np.abs(one - got).max(), 1e-6)

    def test_options(self):
        for opts, kw in ((("pooling", "cls"), dict(pooling="cls")),
                         (("normalize", "no"), dict(normalize=False)),
                         (("max-tokens", 8), dict(max_tokens=8)),
                         (("pooling", "cls", "normalize", "no", "max-tokens", 5),
                          dict(pooling="cls", normalize=False, max_tokens=5))):
            want = self.reference(self.Wf, SENTENCES, **kw)
            got = self.embed(self.dir, SENTENCES, *opts)
            scale = max(1.0, np.abs(want).max())
            err = np.abs(got - want).max() / scale
            self.assertLessEqual(err, 1e-4, "%s: max error %g" % (opts, err))

    def test_every_kernel(self):
        want = self.reference(self.Wf, SENTENCES)
        ran = []
        for k in ("scalar", "avx2", "avx512", "neon"):
            rc, out, err = run_tool("embed", self.dir, SENTENCES, "kernel", k)
            if rc == 2 and "not available" in err:
                continue
            self.assertEqual(rc, 0, err)
            got = np.frombuffer(out, dtype=np.float32).reshape(len(SENTENCES), -1)
            self.assertLessEqual(np.abs(got - want).max(), 1e-4, k)
            ran.append(k)
        self.assertIn("scalar", ran)

    def test_half_precision_weights(self):
        for dtype, bound in (("F16", 2e-3), ("BF16", 2e-2)):
            d = os.path.join(self.tmp, dtype.lower())
            Wh = write_model(d, self.W, dtype)
            got = self.embed(d, SENTENCES)
            err = np.abs(got - self.reference(Wh, SENTENCES)).max()
            self.assertLessEqual(err, 1e-4, "%s vs its own reference: %g" % (dtype, err))
            drift = np.abs(got - self.reference(self.Wf, SENTENCES)).max()
            self.assertLessEqual(drift, bound, "%s vs float32: %g" % (dtype, drift))

    def bad_model(self, name, mutate, expect):
        d = os.path.join(self.tmp, name)
        shutil.rmtree(d, ignore_errors=True)
        write_model(d, self.W)
        mutate(d)
        rc, _, err = run_tool("embed", d, ["x"])
        self.assertEqual(rc, 2, "%s: accepted" % name)
        self.assertIn(expect, err, name)
        return d

    def test_bad_model_dirs(self):
        def drop_tensor(d):
            W = dict(self.W)
            del W["encoder.layer.1.output.dense.weight"]
            save_safetensors(os.path.join(d, "model.safetensors"), as_dtype(W, "F32"), "F32")

        def wrong_shape(d):
            W = dict(self.W)
            W["encoder.layer.0.intermediate.dense.weight"] = W["encoder.layer.0.intermediate.dense.weight"][:100]
            save_safetensors(os.path.join(d, "model.safetensors"), as_dtype(W, "F32"), "F32")

        def int_tensor(d):
            W = dict(self.W)
            W["embeddings.LayerNorm.bias"] = np.zeros(64, dtype=np.int64)
            save_safetensors(os.path.join(d, "model.safetensors"), as_dtype(W, "F32"), "F32")

        def truncate(n):
            def f(d):
                p = os.path.join(d, "model.safetensors")
                with open(p, "rb") as fh:
                    b = fh.read()
                with open(p, "wb") as fh:
                    fh.write(b[:n] if n >= 0 else b[:len(b) + n])
            return f

        def vocab_short(d):
            with open(os.path.join(d, "vocab.txt"), "a") as f:
                f.write("extra\n")

        def config(**kw):
            def f(d):
                p = os.path.join(d, "config.json")
                with open(p) as fh:
                    c = json.load(fh)
                c.update(kw)
                for k in [k for k, v in kw.items() if v is None]:
                    del c[k]
                with open(p, "w") as fh:
                    json.dump(c, fh)
            return f

        def corrupt_header(d):
            p = os.path.join(d, "model.safetensors")
            with open(p, "r+b") as fh:
                fh.seek(20)
                fh.write(b"\x00\x01")

        self.bad_model("missing", drop_tensor, "missing tensor 'encoder.layer.1.output.dense.weight'")
        self.bad_model("shape", wrong_shape,
                       "tensor 'encoder.layer.0.intermediate.dense.weight' has shape [100, 64], expected [128, 64]")
        self.bad_model("dtype", int_tensor, "tensor 'embeddings.LayerNorm.bias' is I64")
        self.bad_model("trunc", truncate(-1), "model.safetensors: tensor '")
        self.bad_model("trunc-hdr", truncate(100), "model.safetensors: header length")
        self.bad_model("trunc-len", truncate(5), "too short for a header length")
        self.bad_model("corrupt", corrupt_header, "model.safetensors: header: JSON")
        self.bad_model("vocab", vocab_short, "vocab.txt: 501 tokens, config.json says vocab_size 500")
        self.bad_model("heads", config(num_attention_heads=5), "not a multiple of num_attention_heads")
        self.bad_model("nohidden", config(hidden_size=None), "config.json: no hidden_size")
        self.bad_model("act", config(hidden_act="swish"), "unsupported hidden_act 'swish'")
        self.bad_model("roberta", config(model_type="roberta"), "model_type 'roberta'")
        self.bad_model("novocab", lambda d: os.unlink(os.path.join(d, "vocab.txt")), "vocab.txt")
        self.bad_model("noconfig", lambda d: os.unlink(os.path.join(d, "config.json")), "config.json")
        rc, _, err = run_tool("embed", self.dir, ["x"], "max-tokens", 65)
        self.assertEqual(rc, 2)
        self.assertIn("max-tokens 65 is outside [2, 64]", err)


@unittest.skipIf(IS_REDIS, "engram only")
@unittest.skipIf(np is None, "needs python3-numpy")
class BertServerTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="engram-bert-")
        cls.dir = os.path.join(cls.tmp, "tiny")
        cls.W = write_model(cls.dir, make_weights())
        cls.vocab = {t: i for i, t in enumerate(build_vocab())}
        cls.server_config = "embedder tiny bert %s pooling mean max-tokens 64\n" % cls.dir
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_vadd_text_stores_the_reference_vector(self):
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "s", "64", "EMBED", "tiny"), "OK")
        texts = [s for s in SENTENCES if s]
        for i, s in enumerate(texts):
            self.assertEqual(c.cmd("VADD", "s", "k%d" % i, "TEXT", s), 1)
        want = ref_forward(self.W, [ref_ids(s, self.vocab, 64)[0] for s in texts])
        for i in range(len(texts)):
            got = np.frombuffer(c.cmd("VGET", "s", "k%d" % i), dtype="<f4")
            self.assertLessEqual(np.abs(got - want[i]).max(), 1e-4, texts[i])
        hits = c.cmd("VSEARCH", "s", "TEXT", texts[3], "1")
        self.assertEqual(hits[0], b"k3")
        r = c.cmd("VNEW", "bad", "32", "EMBED", "tiny")
        self.assertIn("has dimension 64, the index 32", r)
        info = c.cmd("VINFO", "s", "FULL")
        self.assertEqual(info[info.index(b"embed") + 1], b"tiny")

    def test_text_is_embedded_on_the_pool_in_order(self):
        # VADD ... TEXT and VSEARCH ... TEXT with a BERT embedder run on the
        # worker pool; pipelined with other commands, replies keep request
        # order and each command sees the writes before it.
        c = self.conn()
        self.assertEqual(c.cmd("VNEW", "p", "64", "EMBED", "tiny", "TYPE", "flat"), "OK")
        texts = [s for s in SENTENCES if s][:8]
        cmds = []
        for s in texts:
            cmds.append(("VADD", "p", "*", "TEXT", s))
            cmds.append(("VCARD", "p"))
        cmds.append(("VADD", "p", "x", "TEXT", "!!!", "PAYLOAD", "pl"))
        cmds.append(("VADD", "p", "y", "TEXT", ""))
        cmds.append(("VSEARCH", "p", "TEXT", texts[2], "1", "WITHPAYLOAD"))
        cmds.append(("VSEARCH", "p", "TEXT", "", "1"))
        cmds.append(("PING",))
        c.send(b"".join(encode(*a) for a in cmds))
        got = [c.read() for _ in cmds]
        for i in range(len(texts)):
            self.assertEqual(got[2 * i], str(i + 1).encode())
            self.assertEqual(got[2 * i + 1], i + 1)
        self.assertEqual(got[2 * len(texts)], 1)
        self.assertIn("text has no words to embed", got[2 * len(texts) + 1])
        self.assertEqual(got[-3][0], b"3")
        self.assertEqual(got[-3][2], texts[2].encode())
        self.assertIn("text has no words to embed", got[-2])
        self.assertEqual(got[-1], "PONG")
        self.assertEqual(c.cmd("VGET", "p", "x", "WITHPAYLOAD")[1], b"pl")
        want = ref_forward(self.W, [ref_ids(texts[4], self.vocab, 64)[0]])[0]
        got5 = np.frombuffer(c.cmd("VGET", "p", "5"), dtype="<f4")
        self.assertLessEqual(np.abs(got5 - want).max(), 1e-4)
        # Inside MULTI/EXEC the text is embedded inline.
        self.assertEqual(c.cmd("MULTI"), "OK")
        self.assertEqual(c.cmd("VADD", "p", "m", "TEXT", texts[0]), "QUEUED")
        self.assertEqual(c.cmd("VSEARCH", "p", "TEXT", texts[0], "1"), "QUEUED")
        r = c.cmd("EXEC")
        self.assertEqual(r[0], 1)
        self.assertIn(r[1][0], (b"1", b"m"))
        # The index dropped while its text is embedded: the reply says so.
        c.send(encode("VADD", "p", "z", "TEXT", texts[1]) + encode("VDROP", "p"))
        r1, r2 = c.read(), c.read()
        self.assertTrue(r1 == 1 or "dropped or replaced" in r1, r1)

    def test_text_inserts_reach_a_replica(self):
        # The insert done on the loop after the worker embedded the text is
        # logged and streamed as any write: the replica (with the same model
        # configured, as VNEW ... EMBED needs) holds the same vectors.
        conf = "embedder tiny bert %s max-tokens 64\n" % self.dir
        servers = [Server((), conf).start() for _ in range(2)]
        try:
            p, r = servers
            rc = r.conn()
            self.assertEqual(rc.cmd("REPLICAOF", "127.0.0.1", p.port), "OK")
            c = p.conn()
            self.assertEqual(c.cmd("VNEW", "rp", "64", "EMBED", "tiny"), "OK")
            texts = [s for s in SENTENCES if s][:6]
            c.send(b"".join(encode("VADD", "rp", "*", "TEXT", t) for t in texts))
            self.assertEqual([c.read() for _ in texts], [str(i + 1).encode() for i in range(len(texts))])
            deadline = time.time() + 20
            while time.time() < deadline and rc.cmd("VCARD", "rp") != len(texts):
                time.sleep(0.05)
            self.assertEqual(rc.cmd("VCARD", "rp"), len(texts))
            for i in range(len(texts)):
                k = str(i + 1)
                self.assertEqual(rc.cmd("VGET", "rp", k, "WITHPAYLOAD"),
                                 c.cmd("VGET", "rp", k, "WITHPAYLOAD"))
            c.close()
            rc.close()
        finally:
            for s in servers:
                if s.alive():
                    s.stop()
                s.cleanup()

    def test_bad_model_refused_at_startup(self):
        # Run the binary directly: it must exit non-zero before listening.
        d = os.path.join(self.tmp, "broken")
        write_model(d, make_weights())
        with open(os.path.join(d, "model.safetensors"), "r+b") as f:
            f.truncate(1000)
        conf = os.path.join(self.tmp, "broken.conf")
        with open(conf, "w") as f:
            f.write("embedder broken bert %s\n" % d)
        p = subprocess.run([engram_bin(), conf, "--port", str(free_port())], cwd=self.tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"embedder 'broken': model.safetensors: header length", p.stdout)
        with open(conf, "w") as f:
            f.write("embedder tiny2 bert %s pooling max\n" % self.dir)
        p = subprocess.run([engram_bin(), conf, "--port", str(free_port())], cwd=self.tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"embedder 'tiny2': bad value 'max' for pooling", p.stdout)

if __name__ == "__main__":
    main()
