/* stem.h -- the Snowball English ("Porter2") stemmer, the one RediSearch
 * runs over every TEXT token of an index whose language is English (its
 * default) and over every query term it expands.
 *
 *   stem_english("running") = "run", ("generously") = "generous",
 *   ("skies") = "sky", ("news") = "news", ("consolatory") = "consolatori"
 *
 * The algorithm is the one snowballstem.org publishes for English (the
 * Porter2 description and its english.sbl), written here from that
 * description; src/search/stem.c lists its steps and where engram's byte-
 * level reading of UTF-8 matters.  Input is expected lower-cased (the
 * tokenizer lower-cases ASCII); bytes >= 0x80 are letters that are never
 * vowels, counted per UTF-8 character where the algorithm counts letters.
 *
 * Threads: pure, no state; any thread may call it.
 * Ownership: the caller's buffers. */
#ifndef ENGRAM_STEM_H
#define ENGRAM_STEM_H

#include <stddef.h>

/* The stem of the len bytes at word, written to out (which must hold len
 * bytes: a stem is never longer than its word; out may equal word).
 * Returns the stem's length. */
size_t stem_english(const char *word, size_t len, char *out);

#endif
