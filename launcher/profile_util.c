/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile_util.c - the small pieces every profile module shares: diagnostics, variables, globs and the
 * embedded files. Variables come from the environment of the user running nono, never from the profile,
 * so a profile cannot redefine $HOME to move a grant somewhere else.
 */
#include "launcher/profile.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/profile_embed.h"

void nono_diags_add(struct nono_diags *d, int severity, const char *file, unsigned line, unsigned col,
                    const char *pointer, const char *fmt, ...)
{
        struct nono_diag *nv = realloc(d->v, (d->n + 1) * sizeof(*nv));
        struct nono_diag *g;
        va_list ap;

        if (!nv)
                abort(); /* out of memory while reporting: nothing sensible left to do */
        d->v = nv;
        g = &d->v[d->n++];
        *g = (struct nono_diag){.severity = severity, .line = line, .col = col};
        g->file = file ? strdup(file) : NULL;
        g->pointer = pointer ? strdup(pointer) : NULL;
        va_start(ap, fmt);
        if (vasprintf(&g->msg, fmt, ap) < 0)
                g->msg = NULL;
        va_end(ap);
        if ((file && !g->file) || (pointer && !g->pointer) || !g->msg)
                abort();
        if (severity == NONO_DIAG_ERROR)
                d->n_errors++;
}

static void diag_format(const struct nono_diag *g, FILE *f)
{
        if (g->file && g->line)
                fprintf(f, "%s:%u:%u: ", g->file, g->line, g->col);
        else if (g->file)
                fprintf(f, "%s: ", g->file);
        fprintf(f, "%s: %s", g->severity == NONO_DIAG_ERROR ? "error" : "warning", g->msg);
        if (g->pointer)
                fprintf(f, " (at %s)", *g->pointer ? g->pointer : "the top level");
}

void nono_diags_print(const struct nono_diags *d, FILE *f)
{
        for (size_t i = 0; i < d->n; i++) {
                diag_format(&d->v[i], f);
                fputc('\n', f);
        }
}

char *nono_diags_errors(const struct nono_diags *d)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        bool first = true;

        if (!f)
                return NULL;
        for (size_t i = 0; i < d->n; i++) {
                if (d->v[i].severity != NONO_DIAG_ERROR)
                        continue;
                if (!first)
                        fputs("\n  ", f);
                first = false;
                diag_format(&d->v[i], f);
        }
        fclose(f);
        return buf;
}

cJSON *nono_diags_to_json(const struct nono_diags *d)
{
        cJSON *a = cJSON_CreateArray();

        for (size_t i = 0; a && i < d->n; i++) {
                const struct nono_diag *g = &d->v[i];
                cJSON *o = cJSON_CreateObject();

                if (!o)
                        break;
                cJSON_AddStringToObject(o, "severity", g->severity == NONO_DIAG_ERROR ? "error" : "warning");
                if (g->file)
                        cJSON_AddStringToObject(o, "file", g->file);
                else
                        cJSON_AddNullToObject(o, "file");
                cJSON_AddNumberToObject(o, "line", g->line);
                cJSON_AddNumberToObject(o, "column", g->col);
                if (g->pointer)
                        cJSON_AddStringToObject(o, "pointer", g->pointer);
                else
                        cJSON_AddNullToObject(o, "pointer");
                cJSON_AddStringToObject(o, "message", g->msg);
                cJSON_AddItemToArray(a, o);
        }
        return a;
}

void nono_diags_free(struct nono_diags *d)
{
        for (size_t i = 0; i < d->n; i++) {
                free(d->v[i].file);
                free(d->v[i].pointer);
                free(d->v[i].msg);
        }
        free(d->v);
        *d = (struct nono_diags){0};
}

/* ---- variables ---- */

static char *env_abs(const char *name)
{
        const char *v = getenv(name);

        return v && v[0] == '/' ? strdup(v) : NULL;
}

static char *join2(const char *a, const char *b)
{
        char *r;

        return asprintf(&r, "%s%s", a, b) < 0 ? NULL : r;
}

int nono_vars_init(struct nono_vars *v, const char *workdir, char **err)
{
        char cwd[PATH_MAX];

        *v = (struct nono_vars){0};
        v->home = env_abs("HOME");
        if (!v->home) {
                struct passwd *pw = getpwuid(getuid());
                if (!pw || !pw->pw_dir || pw->pw_dir[0] != '/') {
                        *err = strdup("HOME is not set and the passwd entry has no home: set HOME");
                        return -ENOENT;
                }
                v->home = strdup(pw->pw_dir);
        }
        if (!workdir) {
                if (!getcwd(cwd, sizeof(cwd))) {
                        int r = -errno;
                        if (asprintf(err,
                                     "cannot get the current directory (%s): cd into a directory "
                                     "that exists",
                                     strerror(errno)) < 0)
                                *err = NULL;
                        nono_vars_free(v);
                        return r;
                }
                workdir = cwd;
        }
        v->workdir = strdup(workdir);
        v->xdg_config_home = env_abs("XDG_CONFIG_HOME");
        if (!v->xdg_config_home && v->home)
                v->xdg_config_home = join2(v->home, "/.config");
        v->xdg_data_home = env_abs("XDG_DATA_HOME");
        if (!v->xdg_data_home && v->home)
                v->xdg_data_home = join2(v->home, "/.local/share");
        v->xdg_cache_home = env_abs("XDG_CACHE_HOME");
        if (!v->xdg_cache_home && v->home)
                v->xdg_cache_home = join2(v->home, "/.cache");
        v->tmpdir = env_abs("TMPDIR");
        if (!v->tmpdir)
                v->tmpdir = strdup("/tmp");
        if (asprintf(&v->uid, "%u", (unsigned)getuid()) < 0)
                v->uid = NULL;
        if (!v->home || !v->workdir || !v->xdg_config_home || !v->xdg_data_home || !v->xdg_cache_home ||
            !v->tmpdir || !v->uid) {
                nono_vars_free(v);
                *err = strdup("out of memory");
                return -ENOMEM;
        }
        return 0;
}

void nono_vars_free(struct nono_vars *v)
{
        free(v->home);
        free(v->workdir);
        free(v->xdg_config_home);
        free(v->xdg_data_home);
        free(v->xdg_cache_home);
        free(v->tmpdir);
        free(v->uid);
        *v = (struct nono_vars){0};
}

static const char *var_value(const struct nono_vars *v, const char *name, size_t len)
{
        static const struct {
                const char *name;
                size_t off;
        } tab[] = {
            {"HOME", offsetof(struct nono_vars, home)},
            {"WORKDIR", offsetof(struct nono_vars, workdir)},
            {"XDG_CONFIG_HOME", offsetof(struct nono_vars, xdg_config_home)},
            {"XDG_DATA_HOME", offsetof(struct nono_vars, xdg_data_home)},
            {"XDG_CACHE_HOME", offsetof(struct nono_vars, xdg_cache_home)},
            {"TMPDIR", offsetof(struct nono_vars, tmpdir)},
            {"UID", offsetof(struct nono_vars, uid)},
        };

        for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
                if (strlen(tab[i].name) == len && !memcmp(tab[i].name, name, len))
                        return v ? *(char *const *)((const char *)v + tab[i].off) : "";
        return NULL;
}

bool nono_var_known(const char *name, size_t len)
{
        return var_value(NULL, name, len) != NULL;
}

static bool is_name_char(char c, bool first)
{
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (!first && c >= '0' && c <= '9');
}

/* Two passes over s, the first measuring (dst NULL), the second writing: one exact malloc per string. It was
 * an open_memstream per string, whose 8 KiB calloc'd buffer was most of the resolve's memory traffic (a
 * policy expands ~125 strings). Returns the length, or -1 with *bad set at an unknown or malformed variable.
 */
static ssize_t expand_into(const struct nono_vars *v, const char *s, char *dst, const char **bad,
                           size_t *badlen)
{
        size_t len = 0;

#define EMIT(p, n)                                                                                           \
        do {                                                                                                 \
                if (dst)                                                                                     \
                        memcpy(dst + len, (p), (n));                                                         \
                len += (n);                                                                                  \
        } while (0)
        if (s[0] == '~' && (s[1] == '/' || s[1] == 0)) {
                EMIT(v->home, strlen(v->home));
                s++;
        }
        while (*s) {
                const char *name, *val;
                size_t n = 0;
                bool braced;

                if (*s != '$') {
                        size_t run = strcspn(s, "$");
                        EMIT(s, run);
                        s += run;
                        continue;
                }
                braced = s[1] == '{';
                name = s + 1 + braced;
                while (is_name_char(name[n], n == 0))
                        n++;
                val = n ? var_value(v, name, n) : NULL;
                if (!val || (braced && name[n] != '}')) {
                        size_t bl = n + 1 + braced + (braced && name[n] == '}');
                        *bad = s;
                        *badlen = bl ? bl : 1;
                        return -1;
                }
                EMIT(val, strlen(val));
                s = name + n + braced;
        }
#undef EMIT
        return (ssize_t)len;
}

int nono_vars_expand(const struct nono_vars *v, const char *s, char **out, char **bad)
{
        const char *b = NULL;
        size_t bl = 0;
        ssize_t n = expand_into(v, s, NULL, &b, &bl);

        *bad = NULL;
        *out = NULL;
        if (n < 0) {
                *bad = strndup(b, bl);
                return *bad ? -EINVAL : -ENOMEM;
        }
        char *buf = malloc((size_t)n + 1);
        if (!buf)
                return -ENOMEM;
        expand_into(v, s, buf, &b, &bl);
        buf[n] = 0;
        *out = buf;
        return 0;
}

/* ---- globs ---- */

bool nono_glob_match(const char *p, const char *s)
{
        for (; *p; p++, s++) {
                if (p[0] == '*' && p[1] == '*') {
                        p += 2;
                        /* "**" then "/" also matches zero directories: a/(**)/b matches a/b */
                        if (*p == '/' && nono_glob_match(p + 1, s))
                                return true;
                        for (;; s++) {
                                if (nono_glob_match(p, s))
                                        return true;
                                if (!*s)
                                        return false;
                        }
                }
                if (*p == '*') {
                        for (;; s++) {
                                if (nono_glob_match(p + 1, s))
                                        return true;
                                if (!*s || *s == '/')
                                        return false;
                        }
                }
                if (!*s)
                        return false;
                if (*p == '?') {
                        if (*s == '/')
                                return false;
                        continue;
                }
                if (*p != *s)
                        return false;
        }
        return *s == 0;
}

bool nono_glob_covers(const char *pattern, const char *path)
{
        char buf[PATH_MAX];
        size_t n = strlen(path);

        size_t lit = strcspn(pattern, "*?");

        /* whatever matches path or an ancestor of it starts with the pattern's literal prefix */
        if (n >= sizeof(buf) || lit > n || strncmp(path, pattern, lit))
                return false;
        memcpy(buf, path, n + 1);
        /* path itself, then each of its parent directories */
        for (;;) {
                if (nono_glob_match(pattern, buf))
                        return true;
                while (n > 1 && buf[n - 1] != '/')
                        n--;
                if (n <= 1)
                        return false;
                buf[--n] = 0;
        }
}

/* ---- string sets (FNV-1a, open addressing: a collision only costs time) ---- */

static size_t str_hash(const char *k)
{
        uint64_t h = 1469598103934665603ULL;

        for (; *k; k++) {
                h ^= (unsigned char)*k;
                h *= 1099511628211ULL;
        }
        return (size_t)h;
}

size_t nono_strset_get(const struct nono_strset *s, const char *key)
{
        if (!s->cap)
                return (size_t)-1;
        for (size_t h = str_hash(key) & (s->cap - 1); s->key[h]; h = (h + 1) & (s->cap - 1))
                if (!strcmp(s->key[h], key))
                        return s->val[h];
        return (size_t)-1;
}

static void strset_insert(const char **keys, size_t *vals, size_t cap, const char *key, size_t val)
{
        size_t h = str_hash(key) & (cap - 1);

        while (keys[h])
                h = (h + 1) & (cap - 1);
        keys[h] = key;
        vals[h] = val;
}

size_t nono_strset_put(struct nono_strset *s, const char *key, size_t val)
{
        size_t have = nono_strset_get(s, key);

        if (have != (size_t)-1)
                return have;
        if ((s->n + 1) * 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                const char **k = calloc(cap, sizeof(*k));
                size_t *v = calloc(cap, sizeof(*v));
                if (!k || !v) {
                        free(k);
                        free(v);
                        return (size_t)-1;
                }
                for (size_t i = 0; i < s->cap; i++)
                        if (s->key[i])
                                strset_insert(k, v, cap, s->key[i], s->val[i]);
                free(s->key);
                free(s->val);
                s->key = k;
                s->val = v;
                s->cap = cap;
        }
        strset_insert(s->key, s->val, s->cap, key, val);
        s->n++;
        return val;
}

void nono_strset_free(struct nono_strset *s)
{
        free(s->key);
        free(s->val);
        *s = (struct nono_strset){0};
}

/* ---- embedded files and names ---- */

const char *nono_profile_embedded(const char *filename, size_t *len)
{
        for (const struct nono_embedded *e = nono_embedded_files; e->name; e++)
                if (!strcmp(e->name, filename)) {
                        if (len)
                                *len = e->len;
                        return e->data;
                }
        return NULL;
}

bool nono_profile_name_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > 64 || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
                return false;
        for (size_t i = 1; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

bool nono_profile_is_builtin(const char *name)
{
        char fn[128];

        if (!nono_profile_name_valid(name) || !strcmp(name, "schema") || !strcmp(name, "deny-groups"))
                return false;
        snprintf(fn, sizeof(fn), "%s.json", name);
        return nono_profile_embedded(fn, NULL) != NULL;
}

char *nono_profile_user_dir(void)
{
        const char *x = getenv("XDG_CONFIG_HOME");
        const char *h = getenv("HOME");
        char *r;

        if (x && x[0] == '/')
                return asprintf(&r, "%s/nono/profiles", x) < 0 ? NULL : r;
        if (h && h[0] == '/')
                return asprintf(&r, "%s/.config/nono/profiles", h) < 0 ? NULL : r;
        {
                struct passwd *pw = getpwuid(getuid());
                if (!pw || !pw->pw_dir)
                        return NULL;
                return asprintf(&r, "%s/.config/nono/profiles", pw->pw_dir) < 0 ? NULL : r;
        }
}
