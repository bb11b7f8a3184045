/* SPDX-License-Identifier: Apache-2.0 */
/* testlib.h - helpers shared by the audit unit tests and the nono-audit-fixture tool. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "store/store.h"

/* Creates a running session owned by this process with the given argv. */
int tl_session_create(nono_store *st, char *const *argv, struct nono_session *out);

/* Marks the session finished with exit status and end time now; then the end event. */
int tl_session_finish(nono_store *st, struct nono_session *s, int exit_status);

/*
 * Forks a child that sets no_new_privs, (optionally) installs a deny filter refusing connect() to port
 * deny_port with EACCES, installs the audit filter (what: NONO_SUP_*), hands the listener over and then runs
 * fn(arg) if fn is set (its return is the exit status), else execv(argv[0], argv). Returns the child's pid
 * and the listener in *notify_fd, or a negative errno.
 */
pid_t tl_spawn(unsigned what, bool deny_connect, char *const *argv, int (*fn)(void *), void *arg,
               int *notify_fd);

/* The same with the deny-and-record list (nono_supervisor_install_filter_deny), exec audit only. */
pid_t tl_spawn_deny(const int *deny, size_t n, int (*fn)(void *), void *arg, int *notify_fd);

/* Waits for pid; returns nono-style exit status (code, or 128+signal). */
int tl_wait(pid_t pid);
