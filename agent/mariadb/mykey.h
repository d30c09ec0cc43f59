/*
 * mykey: a MariaDB primary key's values as text and as SQL, with no
 * connection and no state, so unit tests reach all of it. The copy's rule
 * (mycopy.c) and the verify's (myverify.h) are the same and live here.
 *
 * A value travels as text in one of two forms, chosen by the column's
 * DATA_TYPE: a numeric column's value as the server prints it (selected
 * as the column itself: "42", "-3.500"), which a bare literal gives back
 * exactly (HEX() of a DECIMAL would be the hex of its integer part); any
 * other column's value as HEX(col), the bytes in the column's own
 * character set, written back as X'..' with the character set as an
 * introducer (_utf8mb4 X'..') so that a comparison uses the column's
 * collation, as the key's ORDER BY does. Neither form holds a ',' or a
 * line break, which is what lets the bounds and the key lists below be
 * joined with them.
 *
 * A range of a key (k1, k2, ..): above lower (exclusive) and at most upper
 * (inclusive), each a full set of values or none (open), written in the
 * form the range optimizer reads as ranges of the key:
 * k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...
 *
 * Everything returned as char * or char ** is malloc'd; the caller frees
 * it (mykey_strv_free for a vector). Values coming from a request are
 * checked here (a number's text, hex digits): nothing else reaches SQL.
 */
#ifndef GODWIT_MYKEY_H
#define GODWIT_MYKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "mytext.h"

typedef enum {
    MYKEY_NUM = 0, /* selected as it is, written bare */
    MYKEY_HEX,     /* selected as HEX(col), written as [_charset ]X'..' */
    MYKEY_FLOAT,   /* a FLOAT: selected as CAST(col AS DOUBLE) (its own text has 6 digits) */
} mykey_kind_t;

/* The form of a column of information_schema.COLUMNS.DATA_TYPE type
 * ("int", "decimal", "varchar", ...); NULL: MYKEY_HEX. */
mykey_kind_t mykey_kind(const char *data_type);

/* Whether a column of that type may be part of a key a range is cut on:
 * exact types whose text or bytes order as the server orders them (no
 * FLOAT/DOUBLE, no BIT, ENUM, SET, geometry). */
bool mykey_range_type(const char *data_type);

/* qcol (quoted) as its form selects it: `c`, HEX(`c`), CAST(`c` AS DOUBLE). */
char *mykey_select(const char *qcol, mykey_kind_t kind);

/* Whether v is a number's text (digits, sign, point, exponent). */
bool mykey_number_text(const char *v);

/* Whether v is hex digits only (the empty string is: an empty string's HEX). */
bool mykey_hex_text(const char *v);

/* The literal for value v of a column of that kind: the number bare, or
 * X'..' (an odd number of digits, as HEX() of a BIT prints, gets a leading
 * 0) after _charset when charset is a plain name other than "binary".
 * NULL when v is not of its form (a request's value that is not a number,
 * or not hex). */
char *mykey_literal(const char *v, mykey_kind_t kind, const char *charset);

/* The same literal appended to b (no allocation of its own: the copy
 * writes one a value); false, and b unchanged, when v is not of its form. */
bool mykey_literal_add(mytext_buf_t *b, const char *v, mykey_kind_t kind, const char *charset)
    __attribute__((warn_unused_result));

/* A key: n columns, quoted, with their kinds and character sets
 * (charset[i] NULL: none; charset itself may be NULL). Borrowed. */
typedef struct {
    size_t n;
    const char *const *cols;
    const mykey_kind_t *kind;
    const char *const *charset;
} mykey_key_t;

/* The condition (no WHERE) of the rows above lower (n_lower values,
 * exclusive) and at most upper (n_upper values, inclusive); a side with no
 * values is open, both open is "TRUE". false (and *out NULL) when a side
 * has a count other than 0 or key->n, or a value is not of its column's
 * form. */
bool mykey_range_where(const mykey_key_t *key, const char *const *lower, size_t n_lower,
                       const char *const *upper, size_t n_upper, char **out)
    __attribute__((warn_unused_result));

/* ORDER BY's list: `k1`, `k2`. */
char *mykey_order_by(const mykey_key_t *key);

/* A bound as one text: the values joined by ','. false when a value holds
 * a ',' (never one of the two forms above). n == 0: *out is NULL (open). */
bool mykey_bound_text(const char *const *v, size_t n, char **out)
    __attribute__((warn_unused_result));

/* A text of mykey_bound_text (NULL: open) back into its values: the count;
 * *out is NULL for 0, else n strings (mykey_strv_free). */
size_t mykey_bound_parse(const char *text, char ***out);

/* text split on '\n' (a chunk's keys): the count; NULL or "" is 0. */
size_t mykey_lines(const char *text, char ***out);

void mykey_strv_free(char **v, size_t n);

#endif
