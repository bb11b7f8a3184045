/* SPDX-License-Identifier: Apache-2.0 */
/* enc.c - record encoding helpers (see enc.h). */
#include "store/enc.h"

#include <stdlib.h>
#include <string.h>

void wb_free(struct wbuf *w)
{
        free(w->p);
        *w = (struct wbuf){0};
}

uint8_t *wb_reserve(struct wbuf *w, size_t n)
{
        if (w->oom)
                return NULL;
        if (w->len + n > w->cap) {
                size_t cap = w->cap ? w->cap : 256;
                while (cap < w->len + n)
                        cap *= 2;
                uint8_t *p = realloc(w->p, cap);
                if (!p) {
                        w->oom = true;
                        return NULL;
                }
                w->p = p;
                w->cap = cap;
        }
        uint8_t *r = w->p + w->len;
        w->len += n;
        return r;
}

void wb_bytes(struct wbuf *w, const void *b, size_t n)
{
        uint8_t *p = wb_reserve(w, n);
        if (p && n)
                memcpy(p, b, n);
}

void wb_u8(struct wbuf *w, uint8_t v)
{
        wb_bytes(w, &v, 1);
}

void wb_varint(struct wbuf *w, uint64_t v)
{
        uint8_t tmp[10];
        wb_bytes(w, tmp, varint_put(tmp, v));
}

void wb_svarint(struct wbuf *w, int64_t v)
{
        wb_varint(w, zigzag(v));
}

void wb_str(struct wbuf *w, const char *s)
{
        if (!s) {
                wb_varint(w, 0);
                return;
        }
        size_t n = strlen(s);
        wb_varint(w, n + 1);
        wb_bytes(w, s, n);
}

void wb_blob(struct wbuf *w, const void *b, size_t n)
{
        wb_varint(w, n);
        wb_bytes(w, b, n);
}

void wb_strv(struct wbuf *w, char *const *v)
{
        size_t n = 0;
        if (!v) {
                wb_varint(w, 0);
                return;
        }
        while (v[n])
                n++;
        wb_varint(w, n + 1);
        for (size_t i = 0; i < n; i++)
                wb_str(w, v[i]);
}

const uint8_t *rb_bytes(struct rbuf *r, size_t n)
{
        if (r->err || n > r->len - r->off) {
                r->err = true;
                return NULL;
        }
        const uint8_t *p = r->p + r->off;
        r->off += n;
        return p;
}

uint8_t rb_u8(struct rbuf *r)
{
        const uint8_t *p = rb_bytes(r, 1);
        return p ? *p : 0;
}

uint64_t rb_varint(struct rbuf *r)
{
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (r->err || r->off >= r->len) {
                        r->err = true;
                        return 0;
                }
                uint8_t b = r->p[r->off++];
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        return v;
        }
        r->err = true;
        return 0;
}

int64_t rb_svarint(struct rbuf *r)
{
        return unzigzag(rb_varint(r));
}

const char *rb_strview(struct rbuf *r, size_t *n, bool *isnull)
{
        uint64_t l = rb_varint(r);
        if (isnull)
                *isnull = l == 0;
        *n = 0;
        if (r->err || l == 0)
                return NULL;
        const uint8_t *p = rb_bytes(r, l - 1);
        if (!p)
                return NULL;
        *n = l - 1;
        return (const char *)p;
}

char *rb_str(struct rbuf *r, bool *isnull)
{
        size_t n;
        bool nul;
        const char *p = rb_strview(r, &n, &nul);
        if (isnull)
                *isnull = nul;
        if (!p)
                return NULL;
        if (memchr(p, 0, n)) {
                r->err = true;
                return NULL;
        }
        char *s = strndup(p, n);
        if (!s)
                r->err = true;
        return s;
}

const void *rb_blob(struct rbuf *r, size_t *n)
{
        uint64_t l = rb_varint(r);
        *n = 0;
        const uint8_t *p = rb_bytes(r, l);
        if (p)
                *n = l;
        return p;
}

void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

char **rb_strv(struct rbuf *r)
{
        uint64_t n = rb_varint(r);
        if (r->err || n == 0)
                return NULL;
        n--;
        if (n > r->len - r->off) { /* each string takes at least one byte */
                r->err = true;
                return NULL;
        }
        char **v = calloc(n + 1, sizeof(char *));
        if (!v) {
                r->err = true;
                return NULL;
        }
        for (uint64_t i = 0; i < n; i++) {
                bool nul;
                v[i] = rb_str(r, &nul);
                if (!v[i] && !nul)
                        break;
                if (!v[i])
                        v[i] = strdup("");
        }
        if (r->err) {
                strv_free(v);
                return NULL;
        }
        return v;
}

char **strv_dup(char *const *v)
{
        size_t n = 0;
        if (!v)
                return NULL;
        while (v[n])
                n++;
        char **d = calloc(n + 1, sizeof(char *));
        if (!d)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(d[i] = strdup(v[i]))) {
                        strv_free(d);
                        return NULL;
                }
        return d;
}
