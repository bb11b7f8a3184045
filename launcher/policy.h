/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.h - the resolved policy of one session: what the profile (after extends and variables) and the
 * command-line flags grant. The sandbox builds exactly this; `nono run --dry-run` prints it; the session
 * record stores its JSON.
 *
 * All paths are absolute and canonical (symlinks resolved) after nono_policy_resolve(), except deny
 * patterns, which may contain globs ("**" crosses '/', "*" and "?" do not).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define NONO_ACCESS_READ  0x1u
#define NONO_ACCESS_WRITE 0x2u
#define NONO_ACCESS_EXEC  0x4u

struct nono_grant {
        char *path;
        unsigned access; /* NONO_ACCESS_* */
        bool is_file;    /* a single file, not a directory */
        bool system;     /* a system path (/usr, /etc, ...): bind-mounted read-only, not recorded by fs/ */
        bool optional;   /* silently skipped when it does not exist (profile system paths) */
};

struct nono_deny {
        char *pattern;   /* absolute path or glob */
        unsigned access; /* NONO_ACCESS_READ and/or NONO_ACCESS_WRITE that are denied */
        char *group;     /* deny group it comes from ("credentials", ...), or NULL */
};

struct nono_policy {
        char *profile; /* name of the profile used */
        char *workdir; /* $WORKDIR: the cwd or --workdir */
        struct nono_grant *grants;
        size_t n_grants;
        struct nono_deny *denies;
        size_t n_denies;
        bool net_block;       /* no network except the proxy for allow_domains */
        bool allow_net;       /* --allow-net: network confinement off (audited) */
        char **allow_domains; /* NULL-terminated */
        char **cmd_allow;     /* NULL-terminated; empty: everything on granted exec paths */
        char **cmd_deny;
        char **env_allow; /* NULL-terminated patterns; empty: all but the dangerous ones */
        char **env_deny;
        char **env_set; /* "KEY=VALUE" */
        char **rollback_exclude;
        bool rollback;
        bool capability_elevation;
        bool audit; /* false with --no-audit */
};

/* What `nono run` was given on its command line. Lists are NULL-terminated (may be NULL). */
struct nono_policy_flags {
        const char *profile; /* NULL: "default" */
        const char *workdir; /* NULL: the cwd */
        char **allow;
        char **read;
        char **allow_domain;
        bool allow_net;
        bool rollback;
        bool no_audit;
        bool capability_elevation;
};

/* Resolves profile + flags. On failure returns a negative errno and sets *err to a malloc'd message that
 * names the problem and the fix. */
int nono_policy_resolve(const struct nono_policy_flags *f, struct nono_policy *out, char **err);
void nono_policy_free(struct nono_policy *p);
/* The policy as JSON (malloc'd), the shape `nono run --dry-run --json` prints. */
char *nono_policy_to_json(const struct nono_policy *p);
