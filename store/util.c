/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c - the store's error messages (thread-local, so concurrent callers never see each other's), SHA-256
 * helpers and digest formatting.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/internal.h"

static __thread char errbuf[512];

int store_err(int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
        va_end(ap);
        return err;
}

void store_err_clear(void)
{
        errbuf[0] = 0;
}

void store_err_set_raw(const char *msg)
{
        snprintf(errbuf, sizeof(errbuf), "%s", msg);
}

const char *nono_store_errmsg(void)
{
        return errbuf;
}

/* Maps an LMDB return code to a negative errno with a message that says what to do. */
int store_mdb_err(nono_store *s, int rc, const char *what)
{
        const char *dir = s && s->dir ? s->dir : "?";

        switch (rc) {
        case 0:
                return 0;
        case ENOSPC:
                return store_err(-ENOSPC,
                                 "store at %s: the disk is full while %s: free some space (or delete "
                                 "old sessions with `nono rollback cleanup`) and retry",
                                 dir, what);
        case MDB_MAP_FULL:
                return store_err(-ENOSPC,
                                 "store at %s: the map is full while %s and could not grow: free "
                                 "some space and retry",
                                 dir, what);
        case MDB_INVALID:
        case MDB_CORRUPTED:
        case MDB_PAGE_NOTFOUND:
                return store_err(-EBADMSG,
                                 "store at %s is corrupt (%s while %s): move the directory aside "
                                 "and let nono create a new store",
                                 dir, mdb_strerror(rc), what);
        case MDB_VERSION_MISMATCH:
                return store_err(-EPROTO,
                                 "store at %s was written by an incompatible LMDB version while %s: "
                                 "use the nono that created it",
                                 dir, what);
        case MDB_READERS_FULL:
                return store_err(-EAGAIN,
                                 "store at %s: too many concurrent readers while %s: close other "
                                 "nono processes and retry",
                                 dir, what);
        case MDB_TXN_FULL:
                return store_err(-E2BIG, "store at %s: transaction too large while %s", dir, what);
        case MDB_NOTFOUND:
                return store_err(-ENOENT, "store at %s: not found while %s", dir, what);
        default:
                if (rc > 0)
                        return store_err(-rc, "store at %s: %s while %s", dir, strerror(rc), what);
                return store_err(-EIO, "store at %s: %s while %s", dir, mdb_strerror(rc), what);
        }
}

/* Fetched on first use, not at open: the first fetch in a process loads OpenSSL's configuration and
 * providers (2-8 ms measured), which nono run would otherwise pay before the agent starts although nothing
 * is hashed until the agent does something. Racing threads each fetch; one wins, the others free theirs. */
const EVP_MD *store_sha256(nono_store *s)
{
        if (!s)
                return EVP_sha256();
        EVP_MD *md = __atomic_load_n(&s->sha256, __ATOMIC_ACQUIRE), *none = NULL;
        if (md)
                return md;
        if (!(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
                return EVP_sha256();
        if (__atomic_compare_exchange_n(&s->sha256, &none, md, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return md;
        EVP_MD_free(md);
        return none;
}

void nono_store_warm_content_hash(nono_store *st)
{
        (void)store_sha256(st);
}

void sha256_buf(nono_store *s, const void *buf, size_t len, nono_digest *out)
{
        unsigned int n = 32;
        EVP_Digest(buf, len, out->b, &n, store_sha256(s), NULL);
}

void object_id(nono_store *s, uint64_t size, const nono_digest *chunks, size_t n, nono_digest *out)
{
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        uint8_t le[8];
        unsigned int len = 32;

        le64_put(le, size);
        EVP_DigestInit_ex(c, store_sha256(s), NULL);
        EVP_DigestUpdate(c, "nono-object-v1", 14);
        EVP_DigestUpdate(c, le, 8);
        if (n)
                EVP_DigestUpdate(c, chunks, n * sizeof(nono_digest));
        EVP_DigestFinal_ex(c, out->b, &len);
        EVP_MD_CTX_free(c);
}

int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t now_s(void)
{
        return now_ns() / 1000000000;
}

void nono_digest_hex(const nono_digest *d, char out[65])
{
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
                out[2 * i] = hex[d->b[i] >> 4];
                out[2 * i + 1] = hex[d->b[i] & 15];
        }
        out[64] = 0;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int nono_digest_parse(const char *hex, nono_digest *out)
{
        if (!hex || strlen(hex) != 64)
                return store_err(-EINVAL, "not a SHA-256 digest (want 64 hex digits): %s",
                                 hex ? hex : "(null)");
        for (int i = 0; i < 32; i++) {
                int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return store_err(-EINVAL, "not a SHA-256 digest (want 64 hex digits): %s", hex);
                out->b[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

size_t long_key(uint8_t *out, const char *str, size_t len)
{
        if (len <= LONG_KEY_MAX) {
                memcpy(out, str, len);
                return len;
        }
        memcpy(out, str, LONG_KEY_MAX);
        sha256_buf(NULL, str, len, (nono_digest *)(out + LONG_KEY_MAX));
        return LONG_KEY_BUF;
}
