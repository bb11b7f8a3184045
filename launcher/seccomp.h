/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seccomp.h - the agent's seccomp deny filter (see seccomp.c for what it stops and what it does not).
 */
#pragma once

#include <stdbool.h>

struct nono_seccomp_opts {
        /* Also return a seccomp user-notification fd for execve/execveat (the audit supervisor logs execs
         * through it; it is not a security decision). */
        bool notify_exec;
};

/* Loads the filter into the calling thread (no_new_privs must be set). With notify_exec, *notify_fd gets
 * the listener fd, else -1. Returns 0 or a negative errno. */
int nono_seccomp_install(const struct nono_seccomp_opts *o, int *notify_fd);

/* The names of the syscalls the filter denies outright (NULL-terminated), for --dry-run and docs. */
extern const char *const nono_seccomp_denied[];
