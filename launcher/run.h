/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.h - `nono run` as a library call, and the hooks through which the other parts plug into a session:
 * the store (session record), fs/ (the FUSE provider), the audit supervisor (seccomp notify fd) and the
 * network proxy (listener inside the net namespace). Every hook is optional.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "launcher/policy.h"
#include "launcher/sandbox-chan.h"
#include "launcher/sandbox.h"

struct nono_run_hooks {
        void *userdata;
        /* Non-system roots are mounted by this provider (NULL: bind mounts). */
        const struct nono_root_provider *provider;
        /* Channel requests: NONO_CHAN_FUSE_FD (from the FUSE provider). */
        nono_chan_handler fuse;
        /* Set: the agent's execve/execveat go through a seccomp listener handed here. */
        nono_chan_handler seccomp_notify;
        /* Set: when the policy allows domains (and not the whole network), a socket listening on
         * 127.0.0.1:NONO_PROXY_PORT inside the agent's net namespace is handed here, and the agent's
         * HTTP(S)_PROXY variables point at it. */
        nono_chan_handler proxy_listener;
        /* Called after the policy is checked and before the sandbox exists: open the roots' fds here. */
        int (*prepare)(void *userdata, const struct nono_policy *p, char **state_paths);
        /* Called right after the sandbox's init exists and before any channel request is served: open the
         * store and create the session record here (the agent cannot start before this returns, and before
         * ready() returns if set). Return < 0 to abort (the sandbox is killed). */
        int (*started)(void *userdata, const struct nono_policy *p, char **argv, pid_t init);
        /* Optional: started() may only begin that work (in a thread, so that it overlaps with the building
         * of the sandbox); ready() waits for it and returns its result. Called before the agent may exec
         * (the session must be durable before its first instruction) and once serving ends; < 0 aborts
         * (the sandbox is killed, nono exits 1). The work itself must kill init when it fails, since the
         * sandbox may be waiting on it (a FUSE mount not yet served) rather than on the channel. */
        int (*ready)(void *userdata);
        /* Called with nono's exit status once init is gone (finalise the session); ran: the agent was
         * exec'd (false: the sandbox could not be built, or the command could not start). */
        void (*finished)(void *userdata, int status, bool ran);
};

struct nono_run_options {
        bool dry_run, json, summary;
        const struct nono_run_hooks *hooks;
};

/* Runs cmd under the policy from f. Returns nono's exit status. */
int nono_run(const struct nono_policy_flags *f, char **cmd, const struct nono_run_options *o);
int nono_cmd_run(int argc, char **argv);
/* `nono run` without its option parsing: nono_run() with every part plugged in (fs/ over the roots, the
 * session record, the audit supervisor, the proxy) and the exit summary on stderr when summary. */
int nono_run_recorded(const struct nono_policy_flags *f, char **cmd, bool dry, bool json, bool summary);
/* nono's own state directories (malloc'd, NULL-terminated). */
int nono_run_state_paths(char ***out);
