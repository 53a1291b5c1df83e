/* util.h -- small pure helpers shared by the parser, the commands and the
 * config: strict number parsing and formatting, Redis-style glob matching,
 * argument splitting with Redis's quoting rules, and a monotonic/wall clock.
 *
 * All functions are pure and thread-safe unless noted. */
#ifndef ENGRAM_UTIL_H
#define ENGRAM_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse a base-10 signed 64-bit integer the way Redis's string2ll does: no
 * spaces, no '+', no leading zeros (except "0"), no overflow.  Returns 1 on
 * success with *out set, 0 otherwise. */
int util_str2ll(const char *s, size_t len, long long *out);

/* Parse a number like Redis's string2ld (strtold): no leading space, no
 * trailing bytes, no NaN, no overflow.  Returns 1 on success. */
int util_str2ld(const char *s, size_t len, long double *out);
/* The same for double (Redis's string2d rules; "inf" accepted). */
int util_str2d(const char *s, size_t len, double *out);

/* Write v in base 10 into buf (cap >= 21). Returns the length. */
size_t util_ll2str(char *buf, size_t cap, long long v);

/* Format a long double as Redis's INCRBYFLOAT does ("human" form: %.17Lf
 * with trailing zeros and a trailing '.' trimmed; "-0" becomes "0";
 * "inf"/"-inf").  Returns the length, 0 if it does not fit. */
size_t util_ld2str(char *buf, size_t cap, long double v);

/* Format a double as Redis 7.2+/8 replies with doubles (d2string): "nan",
 * "inf", "-inf", "0", "-0"; an exact integer within +-2^62 in full
 * ("3", "-1000000000000000000"); anything else as its shortest round-trip
 * digits (at most 17; the nearest of the shortest) laid out as fpconv does:
 * "0.1", "12.5", "0.000001", "1e-7", "1.5e+21", "123456789012345680000".
 * strtod reads the text back as v exactly.  Needs cap >= 26; returns the
 * length, 0 if the text and its NUL do not fit. */
size_t util_d2str(char *buf, size_t cap, double v);
/* The same text found the slow way (printf and strtod, ~1.2 us a value):
 * the reference util_d2str must equal byte for byte.  For tests and
 * benchmarks. */
size_t util_d2str_slow(char *buf, size_t cap, double v);

/* Shortest decimal that round-trips the float f (for VSEARCH distances). */
size_t util_f2str(char *buf, size_t cap, float f);

/* Code point cp (<= 0x10FFFF) as UTF-8 into o (room for 4 bytes); returns
 * the bytes written. */
size_t util_utf8_put(char *o, uint32_t cp);

/* Redis stringmatchlen(): glob with * ? [a-z] [^x] and \ escapes.
 * nocase != 0 compares case-insensitively.  Returns 1 on match. */
int util_glob_match(const char *pat, size_t plen, const char *s, size_t slen, int nocase);

/* Split a line into arguments with Redis's sdssplitargs rules: whitespace
 * separated; "double quotes" with \n \r \t \b \a \\ \" and \xHH escapes;
 * 'single quotes' with only \' escaped; a closing quote must be followed by
 * whitespace or the end.  On success returns the argument count (>= 0) and
 * sets *argv / *lens to arrays allocated with mem_alloc; each argv[i] is a
 * NUL-terminated mem_alloc'd copy.  Free with util_free_args().  Returns -1
 * on unbalanced quotes (nothing allocated). */
int util_split_args(const char *line, size_t len, char ***argv, size_t **lens);
void util_free_args(char **argv, size_t *lens, int argc);

/* Case-insensitive ASCII equality of a counted string with a C string. */
int util_eq_nocase(const char *s, size_t len, const char *cstr);

/* Clocks in milliseconds / microseconds. */
int64_t util_wall_ms(void);     /* CLOCK_REALTIME, for expiry and TIME */
int64_t util_wall_us(void);
int64_t util_mono_ms(void);     /* CLOCK_MONOTONIC, for timers and timeouts */
int64_t util_mono_us(void);

/* xorshift-style PRNG with explicit state (reproducible, thread-free). */
uint64_t util_rand64(uint64_t *state);

/* 64-bit hash of a byte string (seeded SipHash-1-3 or similar). */
uint64_t util_hash(const void *p, size_t len, uint64_t seed);

/* Bitmaps (Redis's bit order: bit 0 is the most significant bit of byte
 * 0).  util_popcount: the set bits in n bytes (8 bytes at a time through
 * __builtin_popcountll).  util_bitpos: the position of the first bit equal
 * to bit (0 or 1) in n bytes; when there is none, -1 for a 1 and n * 8 for
 * a 0 (the string is seen as padded with zeros, as Redis's redisBitpos). */
uint64_t util_popcount(const void *p, size_t n);
long long util_bitpos(const void *p, size_t n, int bit);

#endif
