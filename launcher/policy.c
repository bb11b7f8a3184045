/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.c - nono_policy_resolve(): the profile (see profile.h: extends, deny groups, variables) plus the
 * command-line flags, made concrete: every path canonical, missing profile paths dropped, missing flag
 * paths refused, duplicates folded.
 *
 * How flags combine with the profile: flags only add. --allow and --read add grants (they must exist);
 * --allow-domain adds domains; --allow-net, --rollback and --capability-elevation switch on what the profile
 * may have left off; --no-audit turns auditing off. Nothing on the command line removes a deny: a flag grant
 * inside a deny group is refused, because the group would mask it anyway and the user should know.
 *
 * Deny patterns are canonicalised too (the longest existing prefix, up to the first glob), so that a
 * symlinked $HOME or ~/.ssh is masked where the kernel will actually find it.
 */
#include "launcher/policy.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "launcher/profile.h"

#define RWX (NONO_ACCESS_READ | NONO_ACCESS_WRITE | NONO_ACCESS_EXEC)
#define RX  (NONO_ACCESS_READ | NONO_ACCESS_EXEC)

static int fail(char **err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char **err, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(err, fmt, ap) < 0)
                *err = NULL;
        va_end(ap);
        return r;
}

static bool path_under(const char *path, const char *root)
{
        size_t n = strlen(root);

        if (!strcmp(root, "/"))
                return true;
        return !strncmp(path, root, n) && (path[n] == '/' || path[n] == 0);
}

static int add_grant(struct nono_policy *p, const char *path, unsigned access, bool is_file, bool system,
                     bool optional)
{
        struct nono_grant *g;

        for (size_t i = 0; i < p->n_grants; i++)
                if (!strcmp(p->grants[i].path, path) && p->grants[i].system == system) {
                        p->grants[i].access |= access;
                        p->grants[i].optional &= optional;
                        return 0;
                }
        g = realloc(p->grants, (p->n_grants + 1) * sizeof(*g));
        if (!g)
                return -ENOMEM;
        p->grants = g;
        g = &p->grants[p->n_grants];
        *g = (struct nono_grant){.path = strdup(path),
                                 .access = access,
                                 .is_file = is_file,
                                 .system = system,
                                 .optional = optional};
        if (!g->path)
                return -ENOMEM;
        p->n_grants++;
        return 0;
}

static int add_deny(struct nono_policy *p, const char *pattern, unsigned access, const char *group)
{
        struct nono_deny *d;

        for (size_t i = 0; i < p->n_denies; i++)
                if (!strcmp(p->denies[i].pattern, pattern)) {
                        p->denies[i].access |= access;
                        return 0;
                }
        d = realloc(p->denies, (p->n_denies + 1) * sizeof(*d));
        if (!d)
                return -ENOMEM;
        p->denies = d;
        d = &p->denies[p->n_denies];
        *d = (struct nono_deny){
            .pattern = strdup(pattern), .access = access, .group = group ? strdup(group) : NULL};
        if (!d->pattern || (group && !d->group))
                return -ENOMEM;
        p->n_denies++;
        return 0;
}

/* The canonical form of a path that may not exist or may hold globs: realpath() of the longest existing
 * prefix that has no glob character, then the rest as written. The default profile's hundred deny paths,
 * most of them absent, made this a visible part of `nono run`'s start, and their prefixes repeat ($HOME,
 * $HOME/.config, $HOME/.var/app...). So every prefix tried is remembered (struct canon_cache), present with
 * its realpath() or absent: a prefix below an absent one is absent without a call, and one whose parent is
 * known costs one lstat() (its realpath is the parent's plus its name when it is not a symlink) instead of
 * a stat() and a readlink() per component. Paths are resolved once, before the sandbox is built: the cache
 * lives for one nono_policy_resolve(). */
struct canon_entry {
        char *pre, *real; /* real NULL: pre does not exist (or cannot be stat'ed) */
};
struct canon_cache {
        struct canon_entry *e;
        size_t n, cap;
};

static void canon_cache_free(struct canon_cache *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->e[i].pre);
                free(c->e[i].real);
        }
        free(c->e);
        *c = (struct canon_cache){0};
}

/* Remembers pre (real: its realpath, or NULL for absent); on ENOMEM it is just not remembered. */
static void canon_remember(struct canon_cache *c, const char *pre, const char *real)
{
        if (c->n == c->cap) {
                size_t cap = c->cap ? 2 * c->cap : 64;
                struct canon_entry *e = realloc(c->e, cap * sizeof(*e));
                if (!e)
                        return;
                c->e = e;
                c->cap = cap;
        }
        struct canon_entry x = {strdup(pre), real ? strdup(real) : NULL};
        if (!x.pre || (real && !x.real)) {
                free(x.pre);
                free(x.real);
                return;
        }
        c->e[c->n++] = x;
}

static const struct canon_entry *canon_find(const struct canon_cache *c, const char *pre, size_t len)
{
        for (size_t i = 0; i < c->n; i++)
                if (!strncmp(c->e[i].pre, pre, len) && !c->e[i].pre[len])
                        return &c->e[i];
        return NULL;
}

/* The realpath() of one path, by stat() and realpath(), remembered. */
static const char *canon_slow(struct canon_cache *c, const char *pre, char real[PATH_MAX])
{
        struct stat st;
        bool ok = stat(pre, &st) == 0 && realpath(pre, real);
        canon_remember(c, pre, ok ? real : NULL);
        return ok ? real : NULL;
}

/* pre's realpath() when pre exists (in real); NULL otherwise. An absolute pre is walked down from its
 * deepest remembered ancestor one component at a time: lstat() of a component under a known directory
 * gives its realpath unless it is a symlink (then realpath() of it); an absent component ends the walk. */
static const char *canon_lookup(struct canon_cache *c, const char *pre, char real[PATH_MAX])
{
        size_t len = strlen(pre), at = 0;
        const struct canon_entry *e = canon_find(c, pre, len);
        struct stat st;

        if (e)
                return e->real ? strcpy(real, e->real) : NULL;
        if (pre[0] != '/' || len >= PATH_MAX)
                return canon_slow(c, pre, real);
        /* the deepest remembered ancestor, or "/" */
        for (size_t k = len; k > 0; k--) {
                if (pre[k] != '/')
                        continue;
                if ((e = canon_find(c, pre, k))) {
                        at = k;
                        break;
                }
        }
        if (!e)
                strcpy(real, "/");
        else if (!e->real)
                return NULL; /* below an absent directory */
        else
                strcpy(real, e->real);
        char cur[PATH_MAX];
        memcpy(cur, pre, len + 1);
        while (at < len) {
                size_t end = at + 1;
                while (end < len && pre[end] != '/')
                        end++;
                size_t cl = end - at - 1; /* the component pre[at+1 .. end) */
                cur[end] = 0;
                if (!cl || (cl == 1 && pre[at + 1] == '.') || (cl == 2 && !strncmp(pre + at + 1, "..", 2))) {
                        if (!canon_slow(c, cur, real))
                                return NULL;
                } else if (lstat(cur, &st) < 0) {
                        canon_remember(c, cur, NULL);
                        return NULL;
                } else if (S_ISLNK(st.st_mode)) {
                        if (!canon_slow(c, cur, real))
                                return NULL;
                } else {
                        size_t rl = strcmp(real, "/") ? strlen(real) : 0;
                        if (rl + cl + 1 >= PATH_MAX)
                                return canon_slow(c, pre, real);
                        real[rl] = '/';
                        memcpy(real + rl + 1, pre + at + 1, cl);
                        real[rl + 1 + cl] = 0;
                        canon_remember(c, cur, real);
                }
                cur[end] = pre[end];
                at = end;
        }
        return real;
}

static char *canon_prefix(struct canon_cache *cache, const char *path)
{
        char real[PATH_MAX], *pre, *r;
        size_t n = strcspn(path, "*?[");

        if (path[n]) /* back up to the component that holds the glob: "/a/b*" -> "/a/" */
                while (n > 0 && path[n - 1] != '/')
                        n--;
        for (;;) {
                size_t m = n;

                while (m > 1 && path[m - 1] == '/')
                        m--;
                if (!(pre = strndup(path, m)))
                        return NULL;
                const char *rp = canon_lookup(cache, pre, real);
                free(pre);
                if (rp) {
                        const char *rest = path + m;
                        if (!strcmp(rp, "/"))
                                return asprintf(&r, "/%s", rest + (*rest == '/')) < 0 ? NULL : r;
                        return asprintf(&r, "%s%s", rp, rest) < 0 ? NULL : r;
                }
                if (m <= 1)
                        return strdup(path);
                n = m;
                while (n > 0 && path[n - 1] != '/')
                        n--;
        }
}

static const struct nono_deny *deny_covering(const struct nono_policy *p, const char *path, unsigned access)
{
        for (size_t i = 0; i < p->n_denies; i++)
                if (p->denies[i].group && (p->denies[i].access & access) &&
                    nono_glob_covers(p->denies[i].pattern, path))
                        return &p->denies[i];
        return NULL;
}

/* A grant from the command line: must exist; canonical; a directory or a regular file. */
static int flag_grant(struct nono_policy *p, const char *flag, const char *arg, unsigned access, char **err)
{
        char real[PATH_MAX];
        const struct nono_deny *d;
        struct stat st;

        if (!realpath(arg, real))
                return fail(err, -errno, "%s: %s: create it or remove %s %s", arg,
                            errno == ENOENT ? "does not exist" : strerror(errno), flag, arg);
        if (stat(real, &st) < 0)
                return fail(err, -errno, "cannot stat %s: %s", real, strerror(errno));
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return fail(err, -EINVAL, "%s is neither a directory nor a regular file: remove %s %s", arg,
                            flag, arg);
        d = deny_covering(p, real, access & (NONO_ACCESS_READ | NONO_ACCESS_WRITE));
        if (d)
                return fail(
                    err, -EPERM,
                    "%s %s: %s lies inside deny group \"%s\" (%s), which no profile or flag can lift: "
                    "remove %s %s",
                    flag, arg, real, d->group, d->pattern, flag, arg);
        return add_grant(p, real, access, !S_ISDIR(st.st_mode), false, false);
}

/* A grant from the profile: skipped when missing (nono profile validate warns about it). */
static int profile_grant(struct nono_policy *p, const char *path, unsigned access, bool system, char **err)
{
        char real[PATH_MAX];
        const struct nono_deny *d;
        struct stat st;

        if (!realpath(path, real) || stat(real, &st) < 0)
                return 0;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return 0;
        d = deny_covering(p, real, access & (NONO_ACCESS_READ | NONO_ACCESS_WRITE));
        if (d)
                return fail(
                    err, -EPERM,
                    "profile \"%s\" grants %s, which lies inside deny group \"%s\" (%s): remove it from "
                    "the profile",
                    p->profile, real, d->group, d->pattern);
        if (system)
                for (size_t i = 0; i < p->n_grants; i++)
                        if (p->grants[i].system && path_under(real, p->grants[i].path))
                                return 0; /* /bin -> /usr/bin on merged-/usr systems: covered by /usr */
        return add_grant(p, real, access, !S_ISDIR(st.st_mode), system, true);
}

static char **strv_copy(char **v, char **extra)
{
        size_t n = 0, k = 0;
        char **r;

        while (v && v[n])
                n++;
        while (extra && extra[k])
                k++;
        r = calloc(n + k + 1, sizeof(*r));
        if (!r)
                return NULL;
        k = 0;
        for (char **s = v; s && *s; s++)
                if (!(r[k++] = strdup(*s)))
                        goto oom;
        for (char **s = extra; s && *s; s++) {
                bool dup = false;
                for (size_t i = 0; i < k; i++)
                        dup |= !strcmp(r[i], *s);
                if (!dup && !(r[k++] = strdup(*s)))
                        goto oom;
        }
        return r;
oom:
        for (size_t i = 0; i < k; i++)
                free(r[i]);
        free(r);
        return NULL;
}

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static int resolve_grants(struct nono_policy *p, const struct nono_profile *prof,
                          const struct nono_policy_flags *f, char **err)
{
        int r = 0;

        for (char **s = prof->system; r == 0 && *s; s++)
                r = profile_grant(p, *s, RX, true, err);
        if (r == 0 && prof->workdir != NONO_WORKDIR_NONE)
                r = add_grant(p, p->workdir, prof->workdir == NONO_WORKDIR_READ ? RX : RWX, false, false,
                              false);
        for (char **s = prof->allow; r == 0 && *s; s++)
                r = profile_grant(p, *s, RWX, false, err);
        for (char **s = prof->read; r == 0 && *s; s++)
                r = profile_grant(p, *s, RX, false, err);
        for (size_t i = 0; r == 0 && f->allow && f->allow[i]; i++)
                r = flag_grant(p, "--allow", f->allow[i], RWX, err);
        for (size_t i = 0; r == 0 && f->read && f->read[i]; i++) {
                char a[PATH_MAX], b[PATH_MAX];

                for (size_t j = 0; f->allow && f->allow[j]; j++)
                        if (realpath(f->allow[j], a) && realpath(f->read[i], b) && !strcmp(a, b))
                                return fail(err, -EINVAL,
                                            "%s is given to both --allow and --read: keep one of them", b);
                r = flag_grant(p, "--read", f->read[i], RX, err);
        }
        return r;
}

/* nono's own configuration (user profiles, keys) and data: an agent that could write a user profile
 * with "override": true would choose its next sandbox. The sandbox masks the store as well; this makes the
 * policy say so, and refuses flag grants inside them. */
static int deny_nono_state(struct nono_policy *p, const struct nono_vars *vars, struct canon_cache *cache)
{
        const char *home = getenv("NONO_HOME");
        const char *dirs[] = {vars->xdg_config_home, vars->xdg_data_home, NULL};
        int r = 0;

        for (size_t i = 0; r == 0 && dirs[i]; i++) {
                char *path, *c;
                if (asprintf(&path, "%s/nono", dirs[i]) < 0)
                        return -ENOMEM;
                c = canon_prefix(cache, path);
                free(path);
                r = c ? add_deny(p, c, NONO_ACCESS_READ | NONO_ACCESS_WRITE, "nono") : -ENOMEM;
                free(c);
        }
        if (r == 0 && home && home[0] == '/') {
                char *c = canon_prefix(cache, home);
                r = c ? add_deny(p, c, NONO_ACCESS_READ | NONO_ACCESS_WRITE, "nono") : -ENOMEM;
                free(c);
        }
        return r;
}

static int resolve_denies(struct nono_policy *p, const struct nono_profile *prof, struct canon_cache *cache)
{
        for (size_t i = 0; i < prof->n_deny; i++) {
                char *c = canon_prefix(cache, prof->deny[i].path);
                int r;

                if (!c)
                        return -ENOMEM;
                r = add_deny(p, c, prof->deny[i].access, prof->deny[i].group);
                free(c);
                if (r < 0)
                        return r;
        }
        return 0;
}

int nono_policy_resolve(const struct nono_policy_flags *f, struct nono_policy *out, char **err)
{
        struct nono_policy p = {0};
        struct nono_profile prof = {0};
        struct nono_diags d = {0};
        struct nono_vars vars = {0};
        const char *name = f->profile ? f->profile : "default";
        char real[PATH_MAX];
        struct stat st;
        int r;

        *err = NULL;
        *out = (struct nono_policy){0};
        if (f->workdir && (!realpath(f->workdir, real) || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)))
                return fail(err, -ENOENT,
                            "--workdir %s is not an existing directory: create it or fix the path",
                            f->workdir);
        r = nono_vars_init(&vars, f->workdir ? real : NULL, err);
        if (r < 0)
                return r;
        if (realpath(vars.workdir, real)) {
                free(vars.workdir);
                vars.workdir = strdup(real);
        }
        r = nono_profile_load(name, &vars, 0, &prof, &d);
        if (r < 0) {
                char *msgs = nono_diags_errors(&d);
                if (r == -ENOENT)
                        fail(err, r, "%s", msgs ? msgs : "profile not found");
                else
                        fail(err, r, "profile \"%s\" is invalid (see nono profile validate %s):\n  %s", name,
                             name, msgs ? msgs : "out of memory");
                free(msgs);
                goto out;
        }
        p.profile = strdup(prof.name);
        p.workdir = strdup(vars.workdir);
        if (!p.profile || !p.workdir) {
                r = -ENOMEM;
                goto out;
        }
        struct canon_cache cache = {0};
        r = resolve_denies(&p, &prof, &cache);
        if (r == 0)
                r = deny_nono_state(&p, &vars, &cache);
        canon_cache_free(&cache);
        if (r == 0)
                r = resolve_grants(&p, &prof, f, err);
        if (r < 0)
                goto out;
        p.allow_net = f->allow_net || !prof.net_block;
        p.net_block = !p.allow_net;
        p.allow_domains = strv_copy(prof.allow_domain, f->allow_domain);
        p.cmd_allow = strv_copy(prof.cmd_allow, NULL);
        p.cmd_deny = strv_copy(prof.cmd_deny, NULL);
        p.env_allow = strv_copy(prof.env_allow, NULL);
        p.env_deny = strv_copy(prof.env_deny, NULL);
        p.env_set = strv_copy(prof.env_set, NULL);
        p.rollback_exclude = strv_copy(prof.rollback_exclude, NULL);
        p.rollback = f->rollback || prof.rollback_enabled;
        p.capability_elevation = f->capability_elevation || prof.capability_elevation;
        p.audit = !f->no_audit;
        if (!p.allow_domains || !p.cmd_allow || !p.cmd_deny || !p.env_allow || !p.env_deny || !p.env_set ||
            !p.rollback_exclude)
                r = -ENOMEM;
out:
        if (r < 0) {
                if (!*err)
                        fail(err, r, "cannot resolve the policy: %s", strerror(-r));
                nono_policy_free(&p);
        } else {
                *out = p;
        }
        nono_profile_free(&prof);
        nono_diags_free(&d);
        nono_vars_free(&vars);
        return r;
}

void nono_policy_free(struct nono_policy *p)
{
        for (size_t i = 0; i < p->n_grants; i++)
                free(p->grants[i].path);
        for (size_t i = 0; i < p->n_denies; i++) {
                free(p->denies[i].pattern);
                free(p->denies[i].group);
        }
        free(p->grants);
        free(p->denies);
        free(p->profile);
        free(p->workdir);
        strv_free(p->allow_domains);
        strv_free(p->cmd_allow);
        strv_free(p->cmd_deny);
        strv_free(p->env_allow);
        strv_free(p->env_deny);
        strv_free(p->env_set);
        strv_free(p->rollback_exclude);
        *p = (struct nono_policy){0};
}

static cJSON *access_json(unsigned a)
{
        cJSON *arr = cJSON_CreateArray();

        if (a & NONO_ACCESS_READ)
                cJSON_AddItemToArray(arr, cJSON_CreateString("read"));
        if (a & NONO_ACCESS_WRITE)
                cJSON_AddItemToArray(arr, cJSON_CreateString("write"));
        if (a & NONO_ACCESS_EXEC)
                cJSON_AddItemToArray(arr, cJSON_CreateString("exec"));
        return arr;
}

static cJSON *strv_json(char **v)
{
        cJSON *arr = cJSON_CreateArray();

        for (size_t i = 0; v && v[i]; i++)
                cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
        return arr;
}

/* The shape is shared with the sandbox part's --dry-run tests: keep existing keys stable, add new ones. */
char *nono_policy_to_json(const struct nono_policy *p)
{
        cJSON *o = cJSON_CreateObject(), *grants, *denies, *net, *env, *cmd;
        char *s;

        cJSON_AddStringToObject(o, "profile", p->profile ? p->profile : "");
        cJSON_AddStringToObject(o, "workdir", p->workdir ? p->workdir : "");
        grants = cJSON_AddArrayToObject(o, "grants");
        for (size_t i = 0; i < p->n_grants; i++) {
                cJSON *g = cJSON_CreateObject();
                cJSON_AddStringToObject(g, "path", p->grants[i].path);
                cJSON_AddItemToObject(g, "access", access_json(p->grants[i].access));
                cJSON_AddBoolToObject(g, "file", p->grants[i].is_file);
                cJSON_AddBoolToObject(g, "system", p->grants[i].system);
                cJSON_AddBoolToObject(g, "optional", p->grants[i].optional);
                cJSON_AddItemToArray(grants, g);
        }
        denies = cJSON_AddArrayToObject(o, "denies");
        for (size_t i = 0; i < p->n_denies; i++) {
                cJSON *d = cJSON_CreateObject();
                cJSON_AddStringToObject(d, "pattern", p->denies[i].pattern);
                cJSON_AddItemToObject(d, "access", access_json(p->denies[i].access));
                if (p->denies[i].group)
                        cJSON_AddStringToObject(d, "group", p->denies[i].group);
                else
                        cJSON_AddNullToObject(d, "group");
                cJSON_AddItemToArray(denies, d);
        }
        net = cJSON_AddObjectToObject(o, "network");
        cJSON_AddBoolToObject(net, "block", p->net_block);
        cJSON_AddBoolToObject(net, "allow_net", p->allow_net);
        cJSON_AddItemToObject(net, "allow_domains", strv_json(p->allow_domains));
        env = cJSON_AddObjectToObject(o, "environment");
        cJSON_AddItemToObject(env, "allow", strv_json(p->env_allow));
        cJSON_AddItemToObject(env, "deny", strv_json(p->env_deny));
        cJSON_AddItemToObject(env, "set", strv_json(p->env_set));
        cmd = cJSON_AddObjectToObject(o, "commands");
        cJSON_AddItemToObject(cmd, "allow", strv_json(p->cmd_allow));
        cJSON_AddItemToObject(cmd, "deny", strv_json(p->cmd_deny));
        cJSON_AddItemToObject(o, "rollback_exclude", strv_json(p->rollback_exclude));
        cJSON_AddBoolToObject(o, "rollback", p->rollback);
        cJSON_AddBoolToObject(o, "capability_elevation", p->capability_elevation);
        cJSON_AddBoolToObject(o, "audit", p->audit);
        s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        return s;
}
