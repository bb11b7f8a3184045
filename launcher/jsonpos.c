/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsonpos.c - a strict single-pass JSON scanner that records positions (see jsonpos.h). It builds no values:
 * cJSON does that afterwards on a text this scanner has accepted, so the two never disagree on syntax
 * (cJSON alone accepts some texts RFC 8259 does not, e.g. trailing garbage with some options).
 * Nesting is limited to JSONPOS_MAX_DEPTH so that a hostile file cannot exhaust the stack.
 */
#include "launcher/jsonpos.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSONPOS_MAX_DEPTH 256

struct scan {
        const char *s;
        size_t len, i;
        unsigned line, col;
        struct jsonpos *out;
        size_t cap, dcap;
        struct jsonpos_error *err;
        int depth;
};

static int fail(struct scan *sc, const char *msg)
{
        sc->err->line = sc->line;
        sc->err->col = sc->col;
        sc->err->msg = msg;
        return -EINVAL;
}

static int peek(const struct scan *sc)
{
        return sc->i < sc->len ? (unsigned char)sc->s[sc->i] : -1;
}

static void advance(struct scan *sc)
{
        unsigned char c = (unsigned char)sc->s[sc->i++];

        if (c == '\n') {
                sc->line++;
                sc->col = 1;
        } else if ((c & 0xC0) != 0x80) {
                sc->col++;
        }
}

static void skip_ws(struct scan *sc)
{
        for (int c = peek(sc); c == ' ' || c == '\t' || c == '\n' || c == '\r'; c = peek(sc))
                advance(sc);
}

static int push(struct jsonpos_entry **v, size_t *n, size_t *cap, char *ptr, unsigned line, unsigned col,
                unsigned kl, unsigned kc)
{
        if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 32;
                struct jsonpos_entry *nv = realloc(*v, nc * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = nc;
        }
        (*v)[(*n)++] = (struct jsonpos_entry){ptr, line, col, kl, kc};
        return 0;
}

/* Scans a string; when out is non-NULL stores its decoded value (only \uXXXX BMP escapes are decoded
 * faithfully enough for member names; others become '?', which only affects pointers of odd keys). */
static int scan_string(struct scan *sc, char **out)
{
        size_t cap = 16, n = 0;
        char *buf = out ? malloc(cap) : NULL;

        if (out && !buf)
                return -ENOMEM;
        advance(sc); /* the opening quote */
        for (;;) {
                int c = peek(sc);
                char ch;

                if (c < 0) {
                        free(buf);
                        return fail(sc, "unterminated string");
                }
                if (c < 0x20) {
                        free(buf);
                        return fail(sc, "control character in string (escape it)");
                }
                if (c == '"') {
                        advance(sc);
                        break;
                }
                ch = (char)c;
                if (c == '\\') {
                        advance(sc);
                        c = peek(sc);
                        switch (c) {
                        case '"':
                        case '\\':
                        case '/':
                                ch = (char)c;
                                break;
                        case 'b':
                                ch = '\b';
                                break;
                        case 'f':
                                ch = '\f';
                                break;
                        case 'n':
                                ch = '\n';
                                break;
                        case 'r':
                                ch = '\r';
                                break;
                        case 't':
                                ch = '\t';
                                break;
                        case 'u':
                                for (int k = 0; k < 4; k++) {
                                        advance(sc);
                                        if (peek(sc) <= 0 || !strchr("0123456789abcdefABCDEF", peek(sc))) {
                                                free(buf);
                                                return fail(sc, "invalid \\u escape (needs 4 hex digits)");
                                        }
                                }
                                ch = '?';
                                break;
                        default:
                                free(buf);
                                return fail(sc, "invalid escape in string");
                        }
                }
                advance(sc);
                if (buf) {
                        if (n + 2 > cap) {
                                char *nb = realloc(buf, cap *= 2);
                                if (!nb) {
                                        free(buf);
                                        return -ENOMEM;
                                }
                                buf = nb;
                        }
                        buf[n++] = ch;
                }
        }
        if (buf) {
                buf[n] = 0;
                *out = buf;
        }
        return 0;
}

static int scan_number(struct scan *sc)
{
        if (peek(sc) == '-')
                advance(sc);
        if (peek(sc) == '0') {
                advance(sc);
        } else if (peek(sc) >= '1' && peek(sc) <= '9') {
                while (peek(sc) >= '0' && peek(sc) <= '9')
                        advance(sc);
        } else {
                return fail(sc, "invalid number");
        }
        if (peek(sc) == '.') {
                advance(sc);
                if (!(peek(sc) >= '0' && peek(sc) <= '9'))
                        return fail(sc, "invalid number: digits expected after '.'");
                while (peek(sc) >= '0' && peek(sc) <= '9')
                        advance(sc);
        }
        if (peek(sc) == 'e' || peek(sc) == 'E') {
                advance(sc);
                if (peek(sc) == '+' || peek(sc) == '-')
                        advance(sc);
                if (!(peek(sc) >= '0' && peek(sc) <= '9'))
                        return fail(sc, "invalid number: digits expected in exponent");
                while (peek(sc) >= '0' && peek(sc) <= '9')
                        advance(sc);
        }
        return 0;
}

static int scan_literal(struct scan *sc, const char *word)
{
        for (const char *w = word; *w; w++) {
                if (peek(sc) != *w)
                        return fail(sc, "invalid literal (expected a value: string, number, object, array, "
                                        "true, false or null)");
                advance(sc);
        }
        return 0;
}

static int scan_value(struct scan *sc, char *ptr, unsigned kl, unsigned kc);

static int scan_object(struct scan *sc, const char *ptr)
{
        size_t first = sc->out->n; /* members of this object are recorded from here on */
        int r;

        advance(sc);
        skip_ws(sc);
        if (peek(sc) == '}') {
                advance(sc);
                return 0;
        }
        for (;;) {
                char *key = NULL, *child;
                unsigned kl, kc;

                skip_ws(sc);
                if (peek(sc) != '"')
                        return fail(sc, peek(sc) == '}' ? "trailing comma before '}'"
                                                        : "expected a member name in double quotes");
                kl = sc->line;
                kc = sc->col;
                r = scan_string(sc, &key);
                if (r < 0)
                        return r;
                child = json_pointer_join(ptr, key);
                free(key);
                if (!child)
                        return -ENOMEM;
                for (size_t k = first; k < sc->out->n; k++)
                        if (sc->out->v[k].key_line && !strcmp(sc->out->v[k].pointer, child)) {
                                char *d = strdup(child);
                                if (!d || push(&sc->out->dups, &sc->out->n_dups, &sc->dcap, d, kl, kc, kl,
                                               kc) < 0) {
                                        free(d);
                                        free(child);
                                        return -ENOMEM;
                                }
                                break;
                        }
                skip_ws(sc);
                if (peek(sc) != ':') {
                        free(child);
                        return fail(sc, "expected ':' after the member name");
                }
                advance(sc);
                r = scan_value(sc, child, kl, kc);
                if (r < 0)
                        return r;
                skip_ws(sc);
                if (peek(sc) == ',') {
                        advance(sc);
                        continue;
                }
                if (peek(sc) == '}') {
                        advance(sc);
                        return 0;
                }
                return fail(sc, "expected ',' or '}' after the member");
        }
}

static int scan_array(struct scan *sc, const char *ptr)
{
        int r;

        advance(sc);
        skip_ws(sc);
        if (peek(sc) == ']') {
                advance(sc);
                return 0;
        }
        for (size_t idx = 0;; idx++) {
                char *child = json_pointer_index(ptr, idx);

                if (!child)
                        return -ENOMEM;
                skip_ws(sc);
                if (peek(sc) == ']') {
                        free(child);
                        return fail(sc, "trailing comma before ']'");
                }
                r = scan_value(sc, child, 0, 0);
                if (r < 0)
                        return r;
                skip_ws(sc);
                if (peek(sc) == ',') {
                        advance(sc);
                        continue;
                }
                if (peek(sc) == ']') {
                        advance(sc);
                        return 0;
                }
                return fail(sc, "expected ',' or ']' after the element");
        }
}

/* Takes ownership of ptr (records it). */
static int scan_value(struct scan *sc, char *ptr, unsigned kl, unsigned kc)
{
        int r, c;

        skip_ws(sc);
        r = push(&sc->out->v, &sc->out->n, &sc->cap, ptr, sc->line, sc->col, kl, kc);
        if (r < 0) {
                free(ptr);
                return r;
        }
        if (++sc->depth > JSONPOS_MAX_DEPTH)
                return fail(sc, "nesting too deep");
        c = peek(sc);
        if (c == '{')
                r = scan_object(sc, ptr);
        else if (c == '[')
                r = scan_array(sc, ptr);
        else if (c == '"')
                r = scan_string(sc, NULL);
        else if (c == '-' || (c >= '0' && c <= '9'))
                r = scan_number(sc);
        else if (c == 't')
                r = scan_literal(sc, "true");
        else if (c == 'f')
                r = scan_literal(sc, "false");
        else if (c == 'n')
                r = scan_literal(sc, "null");
        else if (c < 0)
                r = fail(sc, "unexpected end of file (a value is missing, or a bracket is not closed)");
        else
                r = fail(sc, "expected a value (string, number, object, array, true, false or null)");
        sc->depth--;
        return r;
}

/* FNV-1a: a hash table over the document's own pointers, where a collision only costs time. */
static size_t hash(const char *s, size_t n)
{
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)s[i];
                h *= 1099511628211ULL;
        }
        return (size_t)h;
}

static int build_index(struct jsonpos *p)
{
        size_t cap = 16;

        while (cap < p->n * 2)
                cap *= 2;
        p->index = calloc(cap, sizeof(size_t));
        if (!p->index)
                return -ENOMEM;
        p->index_cap = cap;
        for (size_t i = 0; i < p->n; i++) {
                size_t h = hash(p->v[i].pointer, strlen(p->v[i].pointer)) & (cap - 1);
                while (p->index[h])
                        h = (h + 1) & (cap - 1);
                p->index[h] = i + 1;
        }
        return 0;
}

static const struct jsonpos_entry *find(const struct jsonpos *p, const char *ptr, size_t n)
{
        size_t h;

        if (!p->index_cap)
                return NULL;
        for (h = hash(ptr, n) & (p->index_cap - 1); p->index[h]; h = (h + 1) & (p->index_cap - 1)) {
                const struct jsonpos_entry *e = &p->v[p->index[h] - 1];
                if (strlen(e->pointer) == n && !memcmp(e->pointer, ptr, n))
                        return e;
        }
        return NULL;
}

int jsonpos_build(const char *text, size_t len, struct jsonpos *out, struct jsonpos_error *err)
{
        struct scan sc = {.s = text, .len = len, .line = 1, .col = 1, .out = out, .err = err};
        char *root = strdup("");
        int r;

        *out = (struct jsonpos){0};
        if (!root)
                return -ENOMEM;
        if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
                sc.i = 3; /* a UTF-8 byte order mark */
        r = scan_value(&sc, root, 0, 0);
        if (r == 0) {
                skip_ws(&sc);
                if (sc.i < sc.len)
                        r = fail(&sc, sc.s[sc.i] == 0 ? "NUL byte in the file"
                                                      : "unexpected text after the end of the JSON value");
        }
        if (r == 0)
                r = build_index(out);
        if (r < 0)
                jsonpos_free(out);
        return r;
}

void jsonpos_free(struct jsonpos *p)
{
        for (size_t i = 0; i < p->n; i++)
                free(p->v[i].pointer);
        for (size_t i = 0; i < p->n_dups; i++)
                free(p->dups[i].pointer);
        free(p->v);
        free(p->dups);
        free(p->index);
        *p = (struct jsonpos){0};
}

void jsonpos_lookup(const struct jsonpos *p, const char *pointer, bool key, unsigned *line, unsigned *col)
{
        size_t len = strlen(pointer);

        *line = 1;
        *col = 1;
        for (;;) {
                const struct jsonpos_entry *e = find(p, pointer, len);

                if (e) {
                        *line = key && e->key_line ? e->key_line : e->line;
                        *col = key && e->key_line ? e->key_col : e->col;
                        return;
                }
                if (len == 0)
                        return;
                while (len > 0 && pointer[len - 1] != '/')
                        len--;
                if (len > 0)
                        len--; /* drop the '/' too: the parent */
                key = false;
        }
}

char *json_pointer_join(const char *base, const char *token)
{
        size_t n = strlen(base) + 2;
        char *r, *w;

        for (const char *t = token; *t; t++)
                n += (*t == '~' || *t == '/') ? 2 : 1;
        r = malloc(n);
        if (!r)
                return NULL;
        w = stpcpy(r, base);
        *w++ = '/';
        for (const char *t = token; *t; t++) {
                if (*t == '~' || *t == '/') {
                        *w++ = '~';
                        *w++ = *t == '~' ? '0' : '1';
                } else {
                        *w++ = *t;
                }
        }
        *w = 0;
        return r;
}

char *json_pointer_index(const char *base, size_t index)
{
        char *r;

        if (asprintf(&r, "%s/%zu", base, index) < 0)
                return NULL;
        return r;
}
