/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rollback_verify.c - checks that a session can be restored exactly: every node a path record points at is in
 * the store, and its content (a whole object, or the blocks captured of a big file) hashes to its digest.
 *
 * What it catches: a store damaged on disk (bit rot, a truncated data file, objects removed by hand or by a
 * broken garbage collection). What it does not: the live blocks of a big file that the session never
 * changed are not in the store and are not checked (restore reads them from the file itself).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/rollback_verify.h"

static int verify_chunk(nono_store *st, const struct nono_chunkref *c, void *buf)
{
        size_t len = 0;
        unsigned char md[32];
        unsigned int l = 0;

        if (nono_chunk_get(st, &c->digest, buf, NONO_CHUNK_SIZE, &len) < 0)
                return -ENOENT;
        if (!EVP_Digest(buf, len, md, &l, EVP_sha256(), NULL))
                return -EIO;
        return memcmp(md, c->digest.b, 32) ? -EBADMSG : 0;
}

static void report(FILE *out, int r, const char *path, const char *what)
{
        if (out)
                fprintf(out, "%s  %s: %s %s\n", r == -ENOENT ? "MISSING" : "CORRUPT", path, what,
                        r == -ENOENT ? "missing from the store" : "does not match its SHA-256");
}

int nono_rollback_verify(nono_store *st, const char *session, FILE *out, struct nono_verify_counts *counts)
{
        struct nono_path_rec *recs = NULL;
        size_t n = 0;
        int r;

        *counts = (struct nono_verify_counts){0};
        void *buf = malloc(NONO_CHUNK_SIZE);
        if (!buf)
                return -ENOMEM;
        if ((r = nono_path_list(st, session, &recs, &n)) < 0) {
                free(buf);
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                struct nono_node nd = {0};
                bool dup = false;
                if (!recs[i].pre_node)
                        continue;
                for (size_t j = 0; j < i && !dup; j++)
                        dup = recs[j].pre_node == recs[i].pre_node;
                if (dup)
                        continue;
                if (nono_node_get(st, session, recs[i].pre_node, &nd) < 0) {
                        if (out)
                                fprintf(out, "MISSING  %s: its pre-image record is gone\n", recs[i].path);
                        counts->bad++;
                        continue;
                }
                if (nd.type == NONO_FT_FILE && nd.complete) {
                        int v = nono_object_verify(st, &nd.object);
                        counts->objects++;
                        if (v < 0) {
                                report(out, v, recs[i].path, "content");
                                counts->bad++;
                        }
                }
                for (size_t c = 0; nd.type == NONO_FT_FILE && !nd.complete && c < nd.n_chunks; c++) {
                        int v = verify_chunk(st, &nd.chunks[c], buf);
                        counts->chunks++;
                        if (v < 0) {
                                char what[40];
                                snprintf(what, sizeof what, "block %llu",
                                         (unsigned long long)nd.chunks[c].index);
                                report(out, v, recs[i].path, what);
                                counts->bad++;
                        }
                }
                nono_node_clear(&nd);
        }
        free(buf);
        nono_path_list_free(recs, n);
        return 0;
}
