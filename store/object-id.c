/* SPDX-License-Identifier: Apache-2.0 */
/*
 * object-id.c - the id nono_object_put_* gives content (SHA-256("nono-object-v1" || le64 size || the SHA-256
 * of each chunk)), computed without storing anything: restore's conflict checks, diffs of live files and the
 * past view compare live files with the store by it.
 */
#include <endian.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"

static void finish(EVP_MD_CTX *outer, uint64_t size, const uint8_t *digests, size_t nd, nono_digest *out)
{
        uint64_t le = htole64(size);

        EVP_DigestInit_ex(outer, EVP_sha256(), NULL);
        EVP_DigestUpdate(outer, "nono-object-v1", 14);
        EVP_DigestUpdate(outer, &le, 8);
        if (nd)
                EVP_DigestUpdate(outer, digests, nd * 32);
        EVP_DigestFinal_ex(outer, out->b, NULL);
}

/* One chunk buffer and two hash contexts per thread, reused: a restore hashes thousands of files. */
static __thread unsigned char *idbuf;
static __thread EVP_MD_CTX *idctx[2];

int nono_object_id_fd(int fd, nono_digest *out, uint64_t *size)
{
        if (!idbuf)
                idbuf = malloc(NONO_CHUNK_SIZE);
        for (int i = 0; i < 2; i++)
                if (!idctx[i])
                        idctx[i] = EVP_MD_CTX_new();
        EVP_MD_CTX *outer = idctx[0], *c = idctx[1];
        unsigned char *buf = idbuf;
        uint8_t *digests = NULL;
        size_t nd = 0, cap = 0;
        uint64_t total = 0;
        int r = 0;

        if (!outer || !c || !buf) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                size_t got = 0;
                while (got < NONO_CHUNK_SIZE) {
                        ssize_t k = pread(fd, buf + got, NONO_CHUNK_SIZE - got, total + got);
                        if (k < 0) {
                                r = -errno;
                                goto out;
                        }
                        if (!k)
                                break;
                        got += k;
                }
                if (!got)
                        break;
                if (nd + 1 > cap) {
                        uint8_t *nv = realloc(digests, (cap = cap ? cap * 2 : 16) * 32);
                        if (!nv) {
                                r = -ENOMEM;
                                goto out;
                        }
                        digests = nv;
                }
                EVP_DigestInit_ex(c, EVP_sha256(), NULL);
                EVP_DigestUpdate(c, buf, got);
                EVP_DigestFinal_ex(c, digests + nd * 32, NULL);
                nd++;
                total += got;
                if (got < NONO_CHUNK_SIZE)
                        break;
        }
        finish(outer, total, digests, nd, out);
        if (size)
                *size = total;
out:
        free(digests);
        return r;
}

int nono_object_id_buf(const void *buf, size_t len, nono_digest *out)
{
        for (int i = 0; i < 2; i++)
                if (!idctx[i])
                        idctx[i] = EVP_MD_CTX_new();
        EVP_MD_CTX *outer = idctx[0], *c = idctx[1];
        size_t nd = (len + NONO_CHUNK_SIZE - 1) / NONO_CHUNK_SIZE;
        uint8_t *digests = malloc(nd ? nd * 32 : 1);
        int r = c && outer && digests ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < nd; i++) {
                size_t off = i * NONO_CHUNK_SIZE,
                       l = len - off < NONO_CHUNK_SIZE ? len - off : NONO_CHUNK_SIZE;
                EVP_DigestInit_ex(c, EVP_sha256(), NULL);
                EVP_DigestUpdate(c, (const uint8_t *)buf + off, l);
                EVP_DigestFinal_ex(c, digests + i * 32, NULL);
        }
        if (r == 0)
                finish(outer, len, digests, nd, out);
        free(digests);
        return r;
}
