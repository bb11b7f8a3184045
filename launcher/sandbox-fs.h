/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-fs.h - the FUSE provider, parent side: one fs/ instance per granted non-system root, served from a
 * root fd opened before the sandbox existed, attached to the /dev/fuse fd the sandbox's init mounted.
 * Compiled in when fs/ is (NONO_HAVE_FS).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "launcher/policy.h"
#include "launcher/sandbox-chan.h"

struct nono_store;
struct nono_run_fs;

struct nono_run_fs_totals {
        uint64_t files_read, files_changed, violations, events, preimage_bytes;
};

/* Opens an O_PATH fd on every non-system grant (root id = its rank among the non-system grants, the order
 * sandbox-mount.c uses). state_paths under a root become deny rules of that root. */
int nono_run_fs_open(const struct nono_policy *p, char *const *state_paths, struct nono_run_fs **out,
                     char *err, size_t errlen);
/* The store and session the roots record into (NULL: recording and pre-images off). May come after the
 * roots' FUSE fds (from another thread): roots are served from the later of the two. Returns the first
 * root's failure to start (the sandbox must then be killed: its accesses to that mount would wait). */
int nono_run_fs_set_store(struct nono_run_fs *f, struct nono_store *st, const char *session);
/* The roots' paths, NULL-terminated (owned by f): the session record's roots. */
char **nono_run_fs_roots(struct nono_run_fs *f);
/* Channel handler for NONO_CHAN_FUSE_FD. Returns 1 for a root parked under
 * nono_run_fs_defer() once the store was set: the caller has it served (nono_run_fs_serve_parked) by
 * another thread, so that the sandbox's init, which waits for the reply, goes on meanwhile. */
int nono_run_fs_chan(void *f, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply);
/* Defers serving roots that come after the store was set (see nono_run_fs_chan); off: served at once. */
void nono_run_fs_defer(struct nono_run_fs *f, bool on);
/* Serves the parked roots (once the store is set); a failure is said on stderr and kept for _failed. */
void nono_run_fs_serve_parked(struct nono_run_fs *f);
bool nono_run_fs_failed(struct nono_run_fs *f);
/* Stops every root (flushes events, writes post-images) and sums their counters. */
int nono_run_fs_stop(struct nono_run_fs *f, struct nono_run_fs_totals *t);
void nono_run_fs_free(struct nono_run_fs *f);
