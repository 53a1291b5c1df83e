/* embed.c -- the embedder object, the tokeniser both kinds share, and the
 * public accessors.  Contract in embed.h; the private seam to the kinds in
 * embed_impl.h.  Each kind lives in a file of its own: embed_hash.c (feature
 * hashing) and embed_wordvec.c (static word-vector models: file formats,
 * loader, vocabulary, SIF-weighted mean); this file reaches them only
 * through the embedder's ops table (embed_impl.h).
 *
 * An embedder is immutable once created: embed_text reads it and writes only
 * the caller's stack and out[], so any number of threads may embed with one
 * embedder at once.  embed_free must not race with them.
 *
 * Tokeniser (both kinds; EMBED_CLASS below is its byte table)
 *   A word is a maximal run of word bytes: ASCII letters and digits, and
 *   every byte >= 0x80.  Everything else -- blanks, punctuation, '_', '-',
 *   '.', '/', control bytes, NUL -- separates words.  ASCII letters are
 *   lower-cased; bytes >= 0x80 are kept as they are, undecoded: UTF-8 words
 *   work as words (without case folding: "Ü" != "ü"), and invalid UTF-8 is
 *   just more word bytes.  "/var/log/syslog: Disk FULL" is var, log,
 *   syslog, disk, full.  No length limit (a 1 MB word is one word), no
 *   locale, no allocation. */
#include "embed_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tokeniser: 0 separator, 1 digit, 2 other word byte (letters, >= 0x80). */
const uint8_t EMBED_CLASS[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 00-1f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,  /* 20-3f */
    0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0,  /* 40-5f */
    0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0,  /* 60-7f */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 80-9f */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* a0-bf */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* c0-df */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* e0-ff */
};

int embed_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int embed_read_file(const char *path, size_t max, uint8_t **buf, size_t *len, char *err,
                    size_t errlen)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return embed_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    uint8_t *b = NULL;
    size_t n = 0;
    if (fstat(fd, &st) < 0) rc = embed_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) rc = embed_fail(err, errlen, -EINVAL, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size > max || (uint64_t)st.st_size >= SIZE_MAX)
        rc = embed_fail(err, errlen, -EINVAL, "%s: %lld bytes, more than %zu", path,
                        (long long)st.st_size, max);
    else if (!(b = malloc((size_t)st.st_size + 1)))
        rc = embed_fail(err, errlen, -ENOMEM, "%s: out of memory (%lld bytes)", path,
                        (long long)st.st_size);
    /* Read to end of file, not to st_size: a file that changes size while
     * being read is read as it ends up (and never past the buffer). */
    while (rc == 0 && n < (size_t)st.st_size) {
        ssize_t r = read(fd, b + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = embed_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
        else if (r == 0) break;
        else n += (size_t)r;
    }
    close(fd);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

void embed_l2_normalise(float *out, uint32_t dim)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++) ss += (double)out[i] * out[i];
    if (ss == 0) return;
    double inv = 1.0 / sqrt(ss);
    for (uint32_t i = 0; i < dim; i++) out[i] = (float)(out[i] * inv);
}

/* ---- the public accessors ----------------------------------------------------- */

int embed_text(const embedder *e, const void *text, size_t len, float *out)
{
    if (!e || !out || (!text && len)) return -EINVAL;
    return e->ops->text(e, text, len, out);
}

int embed_texts(const embedder *e, size_t n, const void *const *texts, const size_t *lens,
                float *out, int *counts)
{
    if (!e || (n && (!texts || !lens || !out))) return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!texts[i] && lens[i]) return -EINVAL;
    if (e->ops->texts) return e->ops->texts(e, n, texts, lens, out, counts);
    for (size_t i = 0; i < n; i++) {
        int c = e->ops->text(e, texts[i], lens[i], out + i * (size_t)e->dim);
        if (c < 0) return c;
        if (counts) counts[i] = c;
    }
    return 0;
}

int embed_tokenize(const embedder *e, const void *text, size_t len, int32_t *ids, uint32_t cap)
{
    if (!e || !e->ops->tokenize || !ids || cap < 2 || (!text && len)) return -EINVAL;
    return e->ops->tokenize(e, text, len, ids, cap);
}

uint32_t embed_max_tokens(const embedder *e)
{
    return e && e->ops->max_tokens ? e->ops->max_tokens(e) : 0;
}

int embed_lookup(const embedder *e, const void *word, size_t len, float *out, float *weight)
{
    if (!e || !e->ops->lookup || (!word && len)) return -EINVAL;
    return e->ops->lookup(e, word, len, out, weight);
}

uint32_t embed_dim(const embedder *e) { return e ? e->dim : 0; }

const char *embed_kind(const embedder *e) { return e ? e->ops->kind : ""; }

const char *embed_format(const embedder *e) { return e ? e->format : ""; }

uint32_t embed_vocab_size(const embedder *e) { return e ? e->vocab : 0; }

size_t embed_memory(const embedder *e) { return e ? e->mem : 0; }

void embed_free(embedder *e) { if (e) e->ops->free(e); }

const char *embed_strerror(int err)
{
    if (err == 0) return "ok";
    if (err == EMBED_EFORMAT) return "malformed or unsupported model file";
    if (err < 0 && err > -4096) return strerror(-err);
    return "unknown error";
}
