/* SPDX-License-Identifier: Apache-2.0 */
/* profile_embed.h - the table that profiles/embed.py generates: every file of profiles/ compiled in. */
#pragma once

#include <stddef.h>

struct nono_embedded {
        const char *name; /* file name, "default.json" */
        size_t len;
        const char *data;
};

/* Terminated by an entry with name NULL. */
extern const struct nono_embedded nono_embedded_files[];
