/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.c - a MINIMAL implementation of policy.h from the command-line flags only, with one built-in
 * default: the workdir read-write, the system paths read-only and executable, the deny list below, no
 * network. The profiles part replaces this file with real profile resolution (extends, variables, user
 * profiles); nothing else depends on how it works, only on policy.h. Keep sandbox logic out of here.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "launcher/policy.h"

static const char *const system_paths[] = {"/usr",   "/bin",    "/sbin", "/lib", "/lib32",
                                           "/lib64", "/libx32", "/etc",  "/opt", NULL};

static const struct {
        const char *rel; /* relative to $HOME */
        unsigned access;
        const char *group;
} default_denies[] = {
    {".ssh", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".gnupg", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".aws", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".config/gcloud", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".kube", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".docker", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".netrc", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".git-credentials", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".config/gh", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "credentials"},
    {".password-store", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "keychains"},
    {".local/share/keyrings", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "keychains"},
    {".bash_history", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".zsh_history", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".histfile", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".local/share/fish/fish_history", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".python_history", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".node_repl_history", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".psql_history", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".mysql_history", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "shell_history"},
    {".mozilla", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "browser_data"},
    {".config/google-chrome", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "browser_data"},
    {".config/chromium", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "browser_data"},
    {".config/BraveSoftware", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "browser_data"},
    {".config/microsoft-edge", NONO_ACCESS_READ | NONO_ACCESS_WRITE, "browser_data"},
    {".bashrc", NONO_ACCESS_WRITE, "shell_configs"},
    {".bash_profile", NONO_ACCESS_WRITE, "shell_configs"},
    {".bash_login", NONO_ACCESS_WRITE, "shell_configs"},
    {".profile", NONO_ACCESS_WRITE, "shell_configs"},
    {".zshrc", NONO_ACCESS_WRITE, "shell_configs"},
    {".zshenv", NONO_ACCESS_WRITE, "shell_configs"},
    {".zprofile", NONO_ACCESS_WRITE, "shell_configs"},
};

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

static int add_grant(struct nono_policy *p, const char *path, unsigned access, bool is_file, bool system)
{
        struct nono_grant *g;

        for (size_t i = 0; i < p->n_grants; i++)
                if (!strcmp(p->grants[i].path, path) && p->grants[i].system == system) {
                        p->grants[i].access |= access;
                        return 0;
                }
        g = realloc(p->grants, (p->n_grants + 1) * sizeof(*g));
        if (!g)
                return -ENOMEM;
        p->grants = g;
        g = &p->grants[p->n_grants];
        *g =
            (struct nono_grant){.path = strdup(path), .access = access, .is_file = is_file, .system = system};
        if (!g->path)
                return -ENOMEM;
        p->n_grants++;
        return 0;
}

static int add_deny(struct nono_policy *p, const char *pattern, unsigned access, const char *group)
{
        struct nono_deny *d = realloc(p->denies, (p->n_denies + 1) * sizeof(*d));

        if (!d)
                return -ENOMEM;
        p->denies = d;
        d = &p->denies[p->n_denies];
        *d = (struct nono_deny){
            .pattern = strdup(pattern), .access = access, .group = group ? strdup(group) : NULL};
        if (!d->pattern)
                return -ENOMEM;
        p->n_denies++;
        return 0;
}

static char **strv_copy(char **v)
{
        size_t n = 0;
        char **r;

        while (v && v[n])
                n++;
        r = calloc(n + 1, sizeof(*r));
        for (size_t i = 0; r && i < n; i++)
                r[i] = strdup(v[i]);
        return r;
}

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static const char *home_dir(void)
{
        const char *h = getenv("HOME");
        struct passwd *pw;

        if (h && h[0] == '/')
                return h;
        pw = getpwuid(getuid());
        return pw ? pw->pw_dir : "/";
}

/* A user grant: must exist; canonical; a file or a directory. */
static int user_grant(struct nono_policy *p, const char *flag, const char *arg, unsigned access, char **err)
{
        char real[PATH_MAX];
        struct stat st;

        if (!realpath(arg, real))
                return fail(err, -errno, "%s does not exist: create it or remove %s %s", arg, flag, arg);
        if (stat(real, &st) < 0)
                return fail(err, -errno, "cannot stat %s: %s", real, strerror(errno));
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return fail(err, -EINVAL, "%s is neither a directory nor a regular file: remove %s %s", arg,
                            flag, arg);
        return add_grant(p, real, access, !S_ISDIR(st.st_mode), false);
}

int nono_policy_resolve(const struct nono_policy_flags *f, struct nono_policy *out, char **err)
{
        struct nono_policy p = {0};
        char buf[PATH_MAX];
        int r;

        *err = NULL;
        if (f->profile && strcmp(f->profile, "default")) {
                r = fail(err, -ENOENT,
                         "profile '%s' not found: only the built-in 'default' exists in this build",
                         f->profile);
                goto fail;
        }
        p.profile = strdup("default");
        if (f->workdir ? !realpath(f->workdir, buf) : !getcwd(buf, sizeof(buf))) {
                r = fail(err, -errno, "workdir %s: %s", f->workdir ? f->workdir : "(cwd)", strerror(errno));
                goto fail;
        }
        p.workdir = strdup(buf);

        for (size_t i = 0; system_paths[i]; i++) {
                struct stat st;
                bool covered = false;
                if (!realpath(system_paths[i], buf) || stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                /* /bin -> /usr/bin on merged-/usr systems: already covered by /usr */
                for (size_t j = 0; j < p.n_grants; j++) {
                        size_t n = strlen(p.grants[j].path);
                        if (!strncmp(buf, p.grants[j].path, n) && (buf[n] == '/' || buf[n] == '\0'))
                                covered = true;
                }
                if (covered)
                        continue;
                if ((r = add_grant(&p, buf, NONO_ACCESS_READ | NONO_ACCESS_EXEC, false, true)) < 0)
                        goto fail;
                p.grants[p.n_grants - 1].optional = true;
        }
        r = add_grant(&p, p.workdir, NONO_ACCESS_READ | NONO_ACCESS_WRITE | NONO_ACCESS_EXEC, false, false);
        if (r < 0)
                goto fail;
        for (size_t i = 0; f->allow && f->allow[i]; i++)
                if ((r = user_grant(&p, "--allow", f->allow[i],
                                    NONO_ACCESS_READ | NONO_ACCESS_WRITE | NONO_ACCESS_EXEC, err)) < 0)
                        goto fail;
        for (size_t i = 0; f->read && f->read[i]; i++) {
                if ((r = user_grant(&p, "--read", f->read[i], NONO_ACCESS_READ, err)) < 0)
                        goto fail;
                for (size_t j = 0; f->allow && f->allow[j]; j++) {
                        char a[PATH_MAX], b[PATH_MAX];
                        if (realpath(f->allow[j], a) && realpath(f->read[i], b) && !strcmp(a, b)) {
                                r = fail(err, -EINVAL,
                                         "%s is given to both --allow and --read: keep one of them", b);
                                goto fail;
                        }
                }
        }
        for (size_t i = 0; i < sizeof(default_denies) / sizeof(default_denies[0]); i++) {
                snprintf(buf, sizeof(buf), "%s/%s", strcmp(home_dir(), "/") ? home_dir() : "",
                         default_denies[i].rel);
                if ((r = add_deny(&p, buf, default_denies[i].access, default_denies[i].group)) < 0)
                        goto fail;
        }
        p.net_block = !f->allow_net;
        p.allow_net = f->allow_net;
        p.allow_domains = strv_copy(f->allow_domain);
        p.cmd_allow = strv_copy(NULL);
        p.cmd_deny = strv_copy(NULL);
        p.env_allow = strv_copy(NULL);
        p.env_deny = strv_copy(NULL);
        p.env_set = strv_copy(NULL);
        p.rollback_exclude = strv_copy(NULL);
        p.rollback = f->rollback;
        p.capability_elevation = f->capability_elevation;
        p.audit = !f->no_audit;
        if (!p.profile || !p.workdir || !p.allow_domains || !p.env_set || !p.rollback_exclude) {
                r = -ENOMEM;
                goto fail;
        }
        *out = p;
        return 0;
fail:
        if (!*err)
                fail(err, r, "cannot resolve the policy: %s", strerror(-r));
        nono_policy_free(&p);
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

char *nono_policy_to_json(const struct nono_policy *p)
{
        cJSON *o = cJSON_CreateObject(), *grants = cJSON_CreateArray(), *denies = cJSON_CreateArray();
        cJSON *net = cJSON_CreateObject(), *env = cJSON_CreateObject();
        char *s;

        cJSON_AddStringToObject(o, "profile", p->profile ? p->profile : "");
        cJSON_AddStringToObject(o, "workdir", p->workdir ? p->workdir : "");
        for (size_t i = 0; i < p->n_grants; i++) {
                cJSON *g = cJSON_CreateObject();
                cJSON_AddStringToObject(g, "path", p->grants[i].path);
                cJSON_AddItemToObject(g, "access", access_json(p->grants[i].access));
                cJSON_AddBoolToObject(g, "file", p->grants[i].is_file);
                cJSON_AddBoolToObject(g, "system", p->grants[i].system);
                cJSON_AddBoolToObject(g, "optional", p->grants[i].optional);
                cJSON_AddItemToArray(grants, g);
        }
        cJSON_AddItemToObject(o, "grants", grants);
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
        cJSON_AddItemToObject(o, "denies", denies);
        cJSON_AddBoolToObject(net, "block", p->net_block);
        cJSON_AddBoolToObject(net, "allow_net", p->allow_net);
        cJSON_AddItemToObject(net, "allow_domains", strv_json(p->allow_domains));
        cJSON_AddItemToObject(o, "network", net);
        cJSON_AddItemToObject(env, "allow", strv_json(p->env_allow));
        cJSON_AddItemToObject(env, "deny", strv_json(p->env_deny));
        cJSON_AddItemToObject(env, "set", strv_json(p->env_set));
        cJSON_AddItemToObject(o, "environment", env);
        cJSON_AddItemToObject(o, "commands", cJSON_CreateObject());
        cJSON_AddItemToObject(cJSON_GetObjectItem(o, "commands"), "allow", strv_json(p->cmd_allow));
        cJSON_AddItemToObject(cJSON_GetObjectItem(o, "commands"), "deny", strv_json(p->cmd_deny));
        cJSON_AddItemToObject(o, "rollback_exclude", strv_json(p->rollback_exclude));
        cJSON_AddBoolToObject(o, "rollback", p->rollback);
        cJSON_AddBoolToObject(o, "capability_elevation", p->capability_elevation);
        cJSON_AddBoolToObject(o, "audit", p->audit);
        s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        return s;
}
