/* vfilter.h -- the FILTER language of Redis vector sets (VSIM ... FILTER
 * expr), compiled once per query and evaluated against each candidate's
 * attribute block (vattr.h) during the graph walk.
 *
 *   .year > 2000 and .genre == "drama"
 *   .director in ["Spielberg", "Nolan"] || "ork" in .city
 *   (.year - 2000) ** 2 < 100 and not .sold_out
 *
 * Values: numbers (2, -1.5, 1e3), strings in '...' or "..." (backslash
 * escapes), null, tuples [1, "a"] of numbers and strings, and .field
 * selectors (top-level members only).  Operators, loosest first:
 *   or ||  <  and &&  <  > >= < <= == != in  <  + -  <  * / %  <  **  <  ! not
 * all left-associative except ** and the prefix ! / not (right).  The full
 * semantics, with where they come from, open src/vec/vfilter.c.  The rule
 * to remember: an element whose attributes lack a selected field (or hold
 * an object there) does not match, whatever the rest of the expression.
 *
 * Threads: a compiled filter is immutable: any number of threads may call
 * vfilter_match on it at once (each evaluation uses a small stack array,
 * VFILTER_STACK_MAX values, and allocates nothing).
 *
 * Ownership: vfilter_compile copies what it needs from the text; the
 * filter belongs to the caller until vfilter_free.
 *
 * Errors: 0 or negative: VEC_ESYNTAX (*err: the position Redis 8.8's
 * reply quotes the expression from, and what is wrong), VEC_ELIMIT (longer
 * than VFILTER_LEN_MAX, or nesting needing more than VFILTER_STACK_MAX
 * values; *err too, at 0), -EINVAL (NULL out), -ENOMEM.  The position is
 * where Redis's tokenizer stopped for a bad token (at an unknown
 * character, after a bad word or number: ".x == foo and 1" quotes
 * " and 1"), and 0 -- the whole expression -- for anything its compiler
 * finds (unbalanced parentheses, a missing operand, two values in a row)
 * and for a tokenizer position at the end (an unterminated string); the
 * rules and engram's own errors are in src/vec/vfilter.c. */
#ifndef ENGRAM_VFILTER_H
#define ENGRAM_VFILTER_H

#include <stddef.h>

#include "engram/vattr.h"
#include "engram/vecbase.h"

typedef struct vfilter vfilter;

#define VFILTER_LEN_MAX   (1u << 20) /* bytes of expression text */
#define VFILTER_STACK_MAX 64u        /* values pending at once (nesting) */

typedef struct vfilter_error {
    size_t offset; /* Redis's position: < the length, or 0 */
    const char *what; /* static */
} vfilter_error;

/* Compile len bytes of expr into *out (NULL on failure).  alloc NULL:
 * malloc/free (copied).  err may be NULL. */
int vfilter_compile(const vec_allocator *alloc, const char *expr, size_t len, vfilter **out,
                    vfilter_error *err);
/* NULL: nothing. */
void vfilter_free(vfilter *f);

/* 1 if the element with attribute block a (NULL: none) passes, else 0.
 * An element without attributes never passes; one whose text
 * VATTR_KEEP_INVALID kept has no members, so a filter reading any field is
 * false for it and one reading none (`1`) is not, as in Redis. */
int vfilter_match(const vfilter *f, const vattr *a);

/* Redis's reply text for a compile error, without the "ERR " prefix:
 *   syntax error in FILTER expression near: <the expression from offset>
 * (from the start when the offset is at or past the end, as Redis does;
 * CR and LF become spaces, which a RESP error line cannot hold).  Written
 * into buf (cap bytes, NUL-terminated, truncated to fit); returns the full
 * length, like snprintf. */
size_t vfilter_format_error(char *buf, size_t cap, const char *expr, size_t len,
                            const vfilter_error *err);

#endif
