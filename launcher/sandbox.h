/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox.h - starts a command confined by a resolved policy, and waits for it.
 *
 * Process layout:
 *
 *   nono (parent, outside)            serves the channel (FUSE, notify fd, proxy), forwards signals, waits
 *     `- init (pid 1 of the new pid namespace; new user, mount, net, ipc, uts namespaces)
 *          builds the mount tree, then starts (CLONE_VM|CLONE_VFORK, see spawn_agent in sandbox.c):
 *          `- agent (pid 2): Landlock, capabilities dropped, seccomp, fds closed, execve(CMD)
 *
 * init reaps orphans and exits with the agent's status; when init exits the kernel kills every process left
 * in the pid namespace, and init dies with nono (PR_SET_PDEATHSIG), so nothing outlives a session.
 *
 * Each granted non-system root is "mounted by a provider" (struct nono_root_provider): the bind provider
 * bind-mounts the host directory; the FUSE provider mounts /dev/fuse and hands the fd to the parent, which
 * serves it with fs/ from a directory fd opened before the sandbox existed.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "launcher/policy.h"
#include "launcher/sandbox-chan.h"

struct nono_root_provider {
        const char *name;
        /* Child side, inside the namespaces, before pivot_root: make `target` show grant `g` (root id
         * `index`). `src` reaches the host object ("/oldroot/PATH"). `target` exists (a directory, or an
         * empty file for a file grant). Returns 0 or a negative errno and a message in err. */
        int (*child_mount)(const struct nono_grant *g, unsigned index, const char *src, const char *target,
                           int chan, char *err, size_t errlen);
};

extern const struct nono_root_provider nono_provider_bind;
extern const struct nono_root_provider nono_provider_fuse;

struct nono_sandbox_config {
        const struct nono_policy *policy;
        char *const *argv;                         /* the command; argv[0] searched in the agent's PATH */
        char *const *envp;                         /* the agent's environment (already scrubbed) */
        const char *cwd;                           /* the agent's working directory (inside) */
        char *const *state_paths;                  /* nono's own state: always masked (NULL-terminated) */
        const struct nono_root_provider *provider; /* non-system grants; NULL: bind */
        bool user_ns;        /* new user namespace mapping the caller's uid/gid to themselves */
        bool notify_exec;    /* hand a seccomp listener for execve(at) to the parent (audit) */
        uint16_t proxy_port; /* != 0: listen on 127.0.0.1:port inside the netns, hand it to the parent,
                                allow Landlock TCP connect to it */
        bool share_net;      /* --allow-net: no network namespace */
};

struct nono_sandbox {
        pid_t pid; /* init, in our pid namespace */
        int chan;  /* parent end of the channel, -1 once the agent exec'd */
        int pidfd; /* pidfd of init */
        int landlock_abi;
        bool exec_reached; /* the agent reached execve (setup succeeded) */
};

/* Spawns init. Signals must already be blocked by the caller (SIGCHLD, SIGINT, ...): the child resets
 * them. On failure returns a negative errno and a message in err. */
int nono_sandbox_spawn(const struct nono_sandbox_config *c, struct nono_sandbox *sb, char *err,
                       size_t errlen);

/* Serves channel requests until the agent execs or init dies. Returns 0 when the agent exec'd, a negative
 * errno otherwise (init's exit status is then collected by nono_sandbox_wait). */
int nono_sandbox_serve(struct nono_sandbox *sb, nono_chan_handler h, void *userdata);

/* Waits for init to exit, forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 sent to nono with
 * kill(2) (terminal-generated signals reach the agent directly: it is in nono's process group). sigfd is a
 * signalfd for those signals and SIGCHLD. Returns the exit status: the agent's code, or 128+N for signal N.
 */
int nono_sandbox_wait(struct nono_sandbox *sb, int sigfd);

/* Kills init (and so everything in the sandbox) and reaps it. */
void nono_sandbox_kill(struct nono_sandbox *sb);

/* The signals nono_sandbox_wait expects blocked and in sigfd. */
void nono_sandbox_sigset(sigset_t *set);

/* ---- internal to the sandbox modules ---- */
int nono_sandbox_build_root(const struct nono_sandbox_config *c, int chan, char *err, size_t errlen);
int nono_mount_attr(const char *path, unsigned long long set, bool recursive);
