/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diff.h - one file's change printed the way `git diff` prints it: the diff --git header, new/deleted file
 * mode, old/new mode, rename from/to, symlink targets as content, "Binary files ... differ", and unified
 * hunks computed by libgit2's patch API (git_patch_from_buffers). Color (git's default palette) only when
 * the caller says so (nono_color(): a tty and no NO_COLOR).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct nono_diff_side {
        bool exists;
        uint32_t type; /* enum nono_ftype */
        uint32_t mode; /* permission bits */
        const char *path;
        const void *data; /* file content, or the symlink target; NULL when not available */
        size_t len;
        const char *missing; /* why data is NULL (printed instead of hunks) */
};

/* Prints the diff of one path; returns 0 or a negative errno. adds/dels (may be NULL) get line counts. */
int nono_diff_print(FILE *out, const struct nono_diff_side *a, const struct nono_diff_side *b, bool color,
                    size_t *adds, size_t *dels, bool *binary);
/* Only counts lines (for --stat); *binary when either side is binary. */
int nono_diff_count(const struct nono_diff_side *a, const struct nono_diff_side *b, size_t *adds,
                    size_t *dels, bool *binary);
