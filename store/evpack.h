/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evpack.h - what event.c (append, read, raw access) shares with evpack.c (the packed batch format, the
 * per-session path interning, the per-session event state and the hash chain). See evpack.c for the format.
 */
#pragma once

#include "store/enc.h"
#include "store/internal.h"

#define BATCH_EVENTS 4096 /* events per stored batch */
#define CHAIN_STORED 8    /* bytes of each event's chain kept in the batch */

struct evstate {
        uint64_t next_seq;
        nono_digest head;
        uint64_t next_path_id;
        struct nono_event_counts counts;
};
#define EVSTATE_SIZE (8 + 32 + 8 + 8 * 8)

/* An event as stored: paths as per-session ids, detail pointing into the batch, the chain prefix. */
struct rawev {
        struct nono_event e; /* path, path2 unused here: see the ids */
        bool has_path, has_path2, has_detail;
        uint64_t path_id, path2_id;
        const char *detail;
        size_t detail_len;
        uint8_t chain8[CHAIN_STORED];
};

void count_event(struct nono_event_counts *c, const struct nono_event *e);

/* Loads the session's event state (a fresh one, seeded chain, when it has no events yet). */
int evstate_load(nono_store *s, MDB_txn *txn, const char *sid, struct evstate *e);
int evstate_save(nono_store *s, MDB_txn *txn, const char *sid, const struct evstate *e);

/* The id of path in the session, allocating the next one (es->next_path_id) when it is new. */
int intern(nono_store *s, MDB_txn *txn, const char *sid, const char *path, struct evstate *es, uint64_t *id);

void encode_batch(struct wbuf *w, const struct rawev *v, size_t n, uint64_t first_seq);
/* Decodes a batch; detail pointers point into p. -EBADMSG on damage. */
int decode_batch(const void *p, size_t len, uint64_t first_seq, struct rawev **out, size_t *n_out);
/* Fills x from e: interns its paths, copies the stored chain prefix from e->chain. */
int rawev_from(nono_store *s, MDB_txn *txn, const char *sid, struct evstate *es, const struct nono_event *e,
               struct rawev *x);
/* Stores v[0..n) as one batch keyed by v[0].e.seq. */
int put_batch(nono_store *s, MDB_txn *txn, const char *sid, const struct rawev *v, size_t n);
