/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diff_show.h - what a session changed, as a list of changes (created, deleted, modified, renamed), and
 * `nono rollback show` printed from it: name-status (default), --stat, --diff, --json.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "store/store.h"

enum nono_change_kind {
        NONO_CH_CREATED,
        NONO_CH_DELETED,
        NONO_CH_MODIFIED,
        NONO_CH_RENAMED,
};

struct nono_change {
        enum nono_change_kind kind;
        uint32_t root;
        const char *path;                     /* after (for renames: the new name) */
        const char *from;                     /* renames: the old name */
        const struct nono_path_rec *rec;      /* record of path */
        const struct nono_path_rec *from_rec; /* renames: record of from */
        uint64_t pre_node;                    /* node before (0: absent) */
};

struct nono_changes {
        struct nono_path_rec *recs;
        size_t n_recs;
        struct nono_change *v;
        size_t n;
        size_t created, deleted, modified, renamed;
};

/* Loads the session's records and classifies them (paths filtered by sel/n_sel as (root, rel) pairs when
 * n_sel > 0: a change is kept when its path is the selection or under it). */
int nono_changes_load(nono_store *st, const char *session, const uint32_t *sel_root, char *const *sel_rel,
                      size_t n_sel, struct nono_changes *out);
void nono_changes_free(struct nono_changes *c);

enum nono_show_mode {
        NONO_SHOW_NAMES = 0,
        NONO_SHOW_STAT,
        NONO_SHOW_DIFF,
        NONO_SHOW_JSON,
};

/* Prints the changes of session s. */
int nono_show(nono_store *st, const struct nono_session *s, const struct nono_changes *c,
              enum nono_show_mode m, bool color, FILE *out);
