/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention.h - which rollback sessions to keep: `nono rollback cleanup` and the automatic retention that
 * `nono run --rollback` applies after each session. Settings live in $XDG_CONFIG_HOME/nono/config.json
 * (else ~/.config/nono/config.json):
 *
 *     {"rollback": {"keep": 50, "max_bytes": 10737418240, "max_age_days": 30}}
 *
 * Defaults: keep the newest 50 rollback sessions, at most 10 GiB of pre-images, no age limit. A running
 * session, a session with a pending restore journal, and the newest session are never removed. Objects are
 * reference counted by the store, so removing a session never breaks one that is kept; gc then frees what
 * nothing references.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

struct nono_retention {
        int64_t keep;         /* newest sessions to keep; <0: no limit */
        int64_t max_age_days; /* <0: no limit */
        int64_t max_bytes;    /* pre-image bytes; <0: no limit */
};

#define NONO_RETENTION_KEEP      50
#define NONO_RETENTION_MAX_BYTES (10LL << 30)

/* Defaults overlaid by the config file; a malformed file is an error that names it. */
int nono_retention_load(struct nono_retention *out, char *err, size_t errlen);

struct nono_cleanup_result {
        size_t removed, kept;
        uint64_t bytes; /* pre-image bytes of the removed sessions */
        struct nono_gc_stats gc;
        int busy_pid; /* -EBUSY: the nono holding the store's rollback lock (restore or cleanup) */
};

/* Removes the rollback sessions the rules select (oldest first); dry_run lists them on out instead. -EBUSY
 * when a restore or another cleanup holds the store's rollback lock. With sweep (`nono rollback cleanup`),
 * the content no session references is freed too even when no session was removed, and when no rollback
 * session is running, without the grace period (nono_store_gc_now): a pre-image refused because the disk
 * was full leaves its chunks behind, and they would otherwise keep the store full for an hour. */
int nono_cleanup(nono_store *st, const struct nono_retention *rules, bool dry_run, bool sweep, FILE *out,
                 struct nono_cleanup_result *res);

/* The automatic retention: load the config and clean up quietly. For `nono run --rollback` at exit. */
int nono_retention_apply(nono_store *st);
