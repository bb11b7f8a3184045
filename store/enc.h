/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enc.h - the byte encoding of the store's records: LEB128 varints (zigzag for signed), strings as
 * varint(len + 1) + bytes with 0 meaning NULL, lists as varint(count + 1) with 0 meaning NULL. Records start
 * with a version byte so a later nono can read older ones. Writers grow a heap buffer; readers never read
 * past the end and remember the first error, so a corrupt record is reported (-EBADMSG), never trusted.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wbuf {
        uint8_t *p;
        size_t len, cap;
        bool oom;
};

struct rbuf {
        const uint8_t *p;
        size_t len, off;
        bool err;
};

void wb_free(struct wbuf *w);
uint8_t *wb_reserve(struct wbuf *w, size_t n); /* NULL on OOM; advances len */
void wb_bytes(struct wbuf *w, const void *b, size_t n);
void wb_u8(struct wbuf *w, uint8_t v);
void wb_varint(struct wbuf *w, uint64_t v);
void wb_svarint(struct wbuf *w, int64_t v);
void wb_str(struct wbuf *w, const char *s);
void wb_blob(struct wbuf *w, const void *b, size_t n); /* varint len + bytes */
void wb_strv(struct wbuf *w, char *const *v);          /* NULL-terminated vector, or NULL */

static inline struct rbuf rb_init(const void *p, size_t len)
{
        return (struct rbuf){.p = p, .len = len};
}
const uint8_t *rb_bytes(struct rbuf *r, size_t n);
uint8_t rb_u8(struct rbuf *r);
uint64_t rb_varint(struct rbuf *r);
int64_t rb_svarint(struct rbuf *r);
/* Returns a malloc'd copy (NULL for a NULL string; sets r->err on OOM/overrun). */
char *rb_str(struct rbuf *r, bool *isnull);
/* Points into the buffer: *n gets the length; returns NULL for a NULL string. */
const char *rb_strview(struct rbuf *r, size_t *n, bool *isnull);
const void *rb_blob(struct rbuf *r, size_t *n);
char **rb_strv(struct rbuf *r);
void strv_free(char **v);
char **strv_dup(char *const *v);

/* Raw varint into a fixed buffer (at least 10 bytes); returns bytes written. */
static inline size_t varint_put(uint8_t *p, uint64_t v)
{
        size_t n = 0;
        while (v >= 0x80) {
                p[n++] = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        p[n++] = (uint8_t)v;
        return n;
}
static inline uint64_t zigzag(int64_t v)
{
        return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t unzigzag(uint64_t v)
{
        return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
