/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsonpos.h - where things are in a JSON text. cJSON keeps no positions, so error messages about a profile
 * ("line 12, column 7, /filesystem/allow/2") need a second, tiny pass: jsonpos_build() scans the text once,
 * strictly by RFC 8259, and records the line and column of every value and member name under its JSON
 * pointer (RFC 6901). A syntax error is reported with its own position. Lines and columns count from 1;
 * columns count characters (UTF-8 code points), not bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct jsonpos_entry {
        char *pointer;              /* "" for the root, "/a/0/b~1c" ... */
        unsigned line, col;         /* of the value */
        unsigned key_line, key_col; /* of the member name; 0 for array elements and the root */
};

struct jsonpos {
        struct jsonpos_entry *v;
        size_t n;
        struct jsonpos_entry *dups; /* member names that repeat an earlier one in the same object */
        size_t n_dups;
        size_t *index;    /* open addressing over v by pointer: entry index + 1, 0 = empty */
        size_t index_cap; /* a power of two */
};

struct jsonpos_error {
        unsigned line, col;
        const char *msg; /* static text: "expected ',' or '}'" ... */
};

/* Returns 0, -EINVAL on a syntax error (err filled), -ENOMEM. */
int jsonpos_build(const char *text, size_t len, struct jsonpos *out, struct jsonpos_error *err);
void jsonpos_free(struct jsonpos *p);

/* Line and column of pointer's value (or its member name when key is true and it has one). A pointer that
 * is not in the text (a missing member) falls back to its nearest ancestor that is. */
void jsonpos_lookup(const struct jsonpos *p, const char *pointer, bool key, unsigned *line, unsigned *col);

/* base + "/" + token, with '~' and '/' in token escaped; malloc'd, NULL on ENOMEM. */
char *json_pointer_join(const char *base, const char *token);
char *json_pointer_index(const char *base, size_t index);
