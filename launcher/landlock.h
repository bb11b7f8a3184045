/* SPDX-License-Identifier: Apache-2.0 */
/*
 * landlock.h - confines the calling thread (and what it execs) with Landlock at the best ABI the kernel has.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NONO_LL_READ  0x1u /* read files, list directories */
#define NONO_LL_WRITE 0x2u /* write, create, remove, rename, truncate (no device nodes) */
#define NONO_LL_EXEC  0x4u
#define NONO_LL_DEV   0x8u /* ioctls on device files (terminals under /dev) */

struct nono_ll_rule {
        const char *path; /* as seen by the calling process */
        unsigned access;  /* NONO_LL_* */
};

struct nono_ll_config {
        const struct nono_ll_rule *rules;
        size_t n_rules;
        const uint16_t *tcp_connect_ports; /* allowed TCP connect ports (the proxy); others denied */
        size_t n_tcp_connect_ports;
};

/* The kernel's Landlock ABI version (0: not available). */
int nono_landlock_abi(void);

/* Restricts the calling thread. Returns the ABI used (>= 1), 0 when Landlock is unavailable (nothing
 * enforced: the caller warns), or a negative errno. A rule whose path does not exist is skipped. */
int nono_landlock_apply(const struct nono_ll_config *c);

/* One line saying what the given ABI enforces and what it does not (for warnings and --dry-run). */
const char *nono_landlock_describe(int abi);
