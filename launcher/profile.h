/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.h - nono profiles: finding them (built-in, user), checking them (schema and meaning, every
 * problem with file:line:column and JSON pointer), merging `extends` left to right, adding the deny groups
 * and expanding variables. The result, struct nono_profile, is what policy.c turns into a nono_policy and
 * what `nono profile show` prints. The file format is documented in profiles/schema.json and
 * docs/README-profiles.md.
 *
 * Trust: built-in profiles and the deny groups are compiled into the binary. User profiles are read from
 * $XDG_CONFIG_HOME/nono/profiles (default ~/.config/nono/profiles); one named like a built-in is refused
 * unless it says "override": true, so that a file dropped there cannot silently replace "default".
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* ---- diagnostics ---- */

enum { NONO_DIAG_ERROR, NONO_DIAG_WARNING };

struct nono_diag {
        int severity;
        char *file;         /* display name: a path, or "<built-in>/NAME.json" */
        unsigned line, col; /* 0 when the problem has no place in a file */
        char *pointer;      /* JSON pointer, NULL when none */
        char *msg;
};

struct nono_diags {
        struct nono_diag *v;
        size_t n, n_errors;
};

void nono_diags_add(struct nono_diags *d, int severity, const char *file, unsigned line, unsigned col,
                    const char *pointer, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* "FILE:LINE:COL: error: MSG (at POINTER)" per line. */
void nono_diags_print(const struct nono_diags *d, FILE *f);
/* All errors on one string, one per line (for nono_policy_resolve's *err); NULL on ENOMEM. */
char *nono_diags_errors(const struct nono_diags *d);
cJSON *nono_diags_to_json(const struct nono_diags *d);
void nono_diags_free(struct nono_diags *d);

/* ---- variables ---- */

struct nono_vars {
        char *home, *workdir, *xdg_config_home, *xdg_data_home, *xdg_cache_home, *tmpdir, *uid;
};

/* From the environment (HOME, XDG_*, TMPDIR, falling back to the passwd entry and the XDG defaults) and
 * workdir (NULL: the current directory). Returns 0 or a negative errno with *err set. */
int nono_vars_init(struct nono_vars *v, const char *workdir, char **err);
void nono_vars_free(struct nono_vars *v);
/* True for HOME WORKDIR XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME TMPDIR UID. */
bool nono_var_known(const char *name, size_t len);
/* Expands a leading ~ and every $NAME / ${NAME}. Returns 0, -EINVAL with *bad = the offending variable
 * text (malloc'd), -ENOMEM. */
int nono_vars_expand(const struct nono_vars *v, const char *s, char **out, char **bad);

/* ---- profiles ---- */

enum { NONO_WORKDIR_READWRITE, NONO_WORKDIR_READ, NONO_WORKDIR_NONE };

struct nono_profile_deny {
        char *path;      /* expanded; may hold globs */
        unsigned access; /* NONO_ACCESS_READ|NONO_ACCESS_WRITE (policy.h) */
        char *group;     /* deny group, or NULL for the profile's own deny entries */
};

/* A merged profile (after extends, deny groups and variables). String lists are NULL-terminated. */
struct nono_profile {
        char *name, *description;
        char *origin;   /* "built-in", "user" or "file" */
        char *file;     /* where it was read from (display name) */
        char **extends; /* every base merged, in merge order */
        int workdir;    /* NONO_WORKDIR_* */
        char **allow, **read, **system;
        struct nono_profile_deny *deny;
        size_t n_deny;
        bool net_block;
        char **allow_domain;
        char **cmd_allow, **cmd_deny;
        char **env_allow, **env_deny, **env_set; /* env_set: "KEY=VALUE" */
        bool rollback_enabled;
        char **rollback_exclude;
        bool capability_elevation;
};

#define NONO_PROFILE_CHECK_PATHS 0x1u /* warn about granted paths that do not exist */

/* Loads a profile by name (user profile, else built-in) or by file (the argument contains '/' or ends in
 * ".json"), checks it and all its bases, merges and expands. Diagnostics (errors and warnings) go to d.
 * Returns 0 (d may hold warnings), -ENOENT (no such profile), -EINVAL (errors in d), -ENOMEM. */
int nono_profile_load(const char *ref, const struct nono_vars *vars, unsigned flags, struct nono_profile *out,
                      struct nono_diags *d);
void nono_profile_free(struct nono_profile *p);
/* The merged profile in the profile format (what `nono profile show --json` prints). */
cJSON *nono_profile_to_json(const struct nono_profile *p);

/* ---- discovery ---- */

struct nono_profile_info {
        char *name, *origin, *file, *description;
        bool overrides; /* a user profile that overrides the built-in of the same name */
};

/* Built-ins and user profiles, sorted by name (a user profile that overrides a built-in replaces it in
 * the list). Returns 0 or -ENOMEM. */
int nono_profile_list(struct nono_profile_info **out, size_t *n);
void nono_profile_info_free(struct nono_profile_info *v, size_t n);
/* $XDG_CONFIG_HOME/nono/profiles or ~/.config/nono/profiles (malloc'd). */
char *nono_profile_user_dir(void);
/* An embedded file ("schema.json", "deny-groups.json", "NAME.json"), or NULL. */
const char *nono_profile_embedded(const char *filename, size_t *len);
bool nono_profile_is_builtin(const char *name);
/* A valid profile name: [a-z0-9][a-z0-9._-]{0,63}. */
bool nono_profile_name_valid(const char *name);

/* Glob match of a whole path: "**" matches across '/', "*" and "?" within one component. */
bool nono_glob_match(const char *pattern, const char *path);
/* True when path equals pattern's match or lies below something pattern matches. */
bool nono_glob_covers(const char *pattern, const char *path);

/* A set of strings (not owned) with their positions, so that long lists stay O(n) to deduplicate. */
struct nono_strset {
        const char **key;
        size_t *val;
        size_t n, cap;
};
/* Returns the value stored for key, or (size_t)-1 when absent. */
size_t nono_strset_get(const struct nono_strset *s, const char *key);
/* Stores key -> val unless key is present; returns the value now stored for key, (size_t)-1 on ENOMEM. */
size_t nono_strset_put(struct nono_strset *s, const char *key, size_t val);
void nono_strset_free(struct nono_strset *s);
