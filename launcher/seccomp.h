/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seccomp.h - the agent's seccomp deny filter (see seccomp.c for what it stops and what it does not).
 */
#pragma once

#include <linux/filter.h>
#include <stdbool.h>

struct nono_seccomp_opts {
        /* Also return a seccomp user-notification fd for execve/execveat (the audit supervisor logs execs
         * through it; it is not a security decision). */
        bool notify_exec;
};

/* Loads the filter into the calling thread (no_new_privs must be set). With notify_exec, *notify_fd gets
 * the listener fd, else -1. Returns 0 or a negative errno. */
int nono_seccomp_install(const struct nono_seccomp_opts *o, int *notify_fd);

/* The same in two steps: compile builds both programs (no seccomp state changes: done early, in the
 * sandbox's init while it waits), load installs them in the calling thread (sets no_new_privs). */
struct nono_seccomp_prog {
        struct sock_fprog deny;   /* the deny filter */
        struct sock_fprog notify; /* the audit filter (notify_exec only) */
        bool audit;
};
int nono_seccomp_compile(const struct nono_seccomp_opts *o, struct nono_seccomp_prog *p);
/* The same programs compiled with libseccomp now (nono_seccomp_compile copies the build's). */
int nono_seccomp_compile_live(const struct nono_seccomp_opts *o, struct nono_seccomp_prog *p);
int nono_seccomp_load(const struct nono_seccomp_prog *p, int *notify_fd);
void nono_seccomp_prog_free(struct nono_seccomp_prog *p);

/* The programs compiled at build time (seccomp-gen.c writes seccomp-prebuilt.c), indexed by notify_exec;
 * all empty in a binary that does not link them (it then compiles live). */
struct nono_seccomp_prebuilt {
        const struct sock_filter *deny, *notify;
        unsigned short deny_len, notify_len;
};
extern const struct nono_seccomp_prebuilt nono_seccomp_prebuilt[2];

/* The names of the syscalls the filter denies outright (NULL-terminated), for --dry-run and docs. */
extern const char *const nono_seccomp_denied[];
