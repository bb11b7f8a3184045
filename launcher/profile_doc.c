/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile_doc.c - finding, reading and parsing profile files, and listing the available profiles.
 * Files are read once into memory (at most 1 MiB, regular files only) and never re-read, so a profile that
 * changes while nono checks it cannot make the check and the use disagree.
 */
#include "launcher/profile_doc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher/profile_embed.h"

#define PROFILE_MAX_SIZE (1u << 20)

void nono_profile_doc_free(struct nono_profile_doc *doc)
{
        if (!doc)
                return;
        free(doc->name);
        free(doc->origin);
        free(doc->file);
        free(doc->id);
        free(doc->dir);
        free(doc->text);
        cJSON_Delete(doc->json);
        jsonpos_free(&doc->pos);
        free(doc);
}

void nono_doc_diag(const struct nono_profile_doc *doc, struct nono_diags *d, int severity,
                   const char *pointer, bool key, const char *fmt, ...)
{
        unsigned line = 0, col = 0;
        char *msg;
        va_list ap;

        if (doc->json && pointer)
                jsonpos_lookup(&doc->pos, pointer, key, &line, &col);
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                abort();
        va_end(ap);
        nono_diags_add(d, severity, doc->file, line, col, pointer, "%s", msg);
        free(msg);
}

/* Reads a regular file of at most PROFILE_MAX_SIZE bytes. */
static int read_file(const char *path, char **text, size_t *len)
{
        struct stat st;
        char *buf;
        size_t n = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PROFILE_MAX_SIZE) {
                int r = S_ISDIR(st.st_mode) ? -EISDIR : st.st_size > PROFILE_MAX_SIZE ? -EFBIG : -EINVAL;
                close(fd);
                return r;
        }
        buf = malloc(st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (n < (size_t)st.st_size) {
                ssize_t k = read(fd, buf + n, st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += k;
        }
        close(fd);
        buf[n] = 0;
        *text = buf;
        *len = n;
        return 0;
}

static void parse(struct nono_profile_doc *doc, struct nono_diags *d)
{
        struct jsonpos_error e = {0};
        int r = jsonpos_build(doc->text, doc->len, &doc->pos, &e);

        if (r == -EINVAL) {
                nono_diags_add(d, NONO_DIAG_ERROR, doc->file, e.line, e.col, NULL, "invalid JSON: %s", e.msg);
                return;
        }
        if (r < 0) {
                nono_diags_add(d, NONO_DIAG_ERROR, doc->file, 0, 0, NULL, "out of memory");
                return;
        }
        doc->json = cJSON_ParseWithLength(doc->text, doc->len);
        if (!doc->json)
                nono_diags_add(d, NONO_DIAG_ERROR, doc->file, 0, 0, NULL, "invalid JSON (rejected by cJSON)");
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);

        return a >= b && !strcmp(s + a - b, suffix);
}

static char *strip_json(const char *path)
{
        const char *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        return strndup(base, ends_with(base, ".json") ? strlen(base) - 5 : strlen(base));
}

static struct nono_profile_doc *doc_new(const char *name, const char *origin, const char *file)
{
        struct nono_profile_doc *doc = calloc(1, sizeof(*doc));

        if (!doc)
                return NULL;
        doc->name = strdup(name);
        doc->origin = strdup(origin);
        doc->file = strdup(file);
        if (!doc->name || !doc->origin || !doc->file) {
                nono_profile_doc_free(doc);
                return NULL;
        }
        return doc;
}

static int open_builtin(const char *name, struct nono_profile_doc **out, struct nono_diags *d)
{
        char fn[128], disp[160];
        const char *data;
        size_t len;
        struct nono_profile_doc *doc;

        snprintf(fn, sizeof(fn), "%s.json", name);
        data = nono_profile_embedded(fn, &len);
        if (!data)
                return -ENOENT;
        snprintf(disp, sizeof(disp), "<built-in>/%s", fn);
        doc = doc_new(name, "built-in", disp);
        if (!doc || asprintf(&doc->id, "builtin:%s", name) < 0 || !(doc->text = strndup(data, len))) {
                nono_profile_doc_free(doc);
                return -ENOMEM;
        }
        doc->len = len;
        parse(doc, d);
        *out = doc;
        return 0;
}

static int open_path(const char *path, const char *origin, struct nono_profile_doc **out,
                     struct nono_diags *d)
{
        _Static_assert(PATH_MAX >= 4096, "PATH_MAX");
        char real[PATH_MAX], *name, *slash;
        struct nono_profile_doc *doc;
        int r;

        if (!realpath(path, real))
                return errno == ENOENT ? -ENOENT : -errno;
        name = strip_json(path);
        doc = name ? doc_new(name, origin, path) : NULL;
        free(name);
        if (!doc || !(doc->id = strdup(real)) || !(doc->dir = strdup(real))) {
                nono_profile_doc_free(doc);
                return -ENOMEM;
        }
        slash = strrchr(doc->dir, '/');
        slash[slash == doc->dir] = 0; /* keep "/" for a file in the root */
        r = read_file(real, &doc->text, &doc->len);
        if (r < 0) {
                nono_diags_add(d, NONO_DIAG_ERROR, path, 0, 0, NULL, "cannot read the profile: %s",
                               strerror(-r));
                nono_profile_doc_free(doc);
                return r;
        }
        parse(doc, d);
        *out = doc;
        return 0;
}

int nono_profile_doc_open(const char *ref, const struct nono_profile_doc *from, struct nono_profile_doc **out,
                          struct nono_diags *d)
{
        char *path = NULL, *dir;
        int r;

        *out = NULL;
        if (strchr(ref, '/') || ends_with(ref, ".json")) {
                if (ref[0] == '/' || !from || !from->dir)
                        path = strdup(ref);
                else if (asprintf(&path, "%s/%s", from->dir, ref) < 0)
                        path = NULL;
                if (!path)
                        return -ENOMEM;
                r = open_path(path, "file", out, d);
                free(path);
                return r;
        }
        if (!nono_profile_name_valid(ref))
                return -ENOENT;
        /* An overriding user profile NAME that extends "NAME" means the built-in it overrides. */
        if (!(from && !strcmp(from->origin, "user") && !strcmp(from->name, ref) &&
              nono_profile_is_builtin(ref))) {
                dir = nono_profile_user_dir();
                if (!dir || asprintf(&path, "%s/%s.json", dir, ref) < 0) {
                        free(dir);
                        return -ENOMEM;
                }
                free(dir);
                r = open_path(path, "user", out, d);
                free(path);
                if (r != -ENOENT)
                        return r;
        }
        return open_builtin(ref, out, d);
}

/* ---- listing ---- */

static int info_add(struct nono_profile_info **v, size_t *n, const char *name, const char *origin,
                    const char *file, const char *desc, bool overrides)
{
        struct nono_profile_info *nv = realloc(*v, (*n + 1) * sizeof(*nv));
        struct nono_profile_info *i;

        if (!nv)
                return -ENOMEM;
        *v = nv;
        i = &nv[(*n)++];
        *i = (struct nono_profile_info){.overrides = overrides};
        i->name = strdup(name);
        i->origin = strdup(origin);
        i->file = strdup(file);
        i->description = strdup(desc ? desc : "");
        return i->name && i->origin && i->file && i->description ? 0 : -ENOMEM;
}

static const char *json_str(const cJSON *o, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int cmp_info(const void *a, const void *b)
{
        const struct nono_profile_info *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c ? c : strcmp(x->origin, y->origin);
}

static int list_user(struct nono_profile_info **v, size_t *n)
{
        char *dir = nono_profile_user_dir();
        DIR *dp = dir ? opendir(dir) : NULL;
        struct dirent *de;
        int r = 0;

        if (!dp) {
                free(dir);
                return 0;
        }
        while (r == 0 && (de = readdir(dp))) {
                struct nono_diags d = {0};
                struct nono_profile_doc *doc = NULL;
                char *path, *name;
                const char *desc = NULL;
                bool ovr = false;

                if (!ends_with(de->d_name, ".json") || !(name = strip_json(de->d_name)))
                        continue;
                if (!nono_profile_name_valid(name) || asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
                        free(name);
                        continue;
                }
                if (open_path(path, "user", &doc, &d) == 0 && doc->json) {
                        desc = json_str(doc->json, "description");
                        ovr = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc->json, "override"));
                }
                if (nono_profile_is_builtin(name) && !ovr)
                        desc = "(invalid: shadows the built-in of the same name; add \"override\": true)";
                else if (!doc || !doc->json)
                        desc = "(invalid JSON: see nono profile validate)";
                r = info_add(v, n, name, "user", path, desc, ovr && nono_profile_is_builtin(name));
                nono_profile_doc_free(doc);
                nono_diags_free(&d);
                free(path);
                free(name);
        }
        closedir(dp);
        free(dir);
        return r;
}

int nono_profile_list(struct nono_profile_info **out, size_t *n)
{
        struct nono_profile_info *v = NULL;
        size_t cnt = 0;
        int r;

        r = list_user(&v, &cnt);
        for (const struct nono_embedded *e = nono_embedded_files; r == 0 && e->name; e++) {
                char *name = strip_json(e->name), disp[160];
                cJSON *j;
                bool shadowed = false;

                if (!name || !nono_profile_is_builtin(name)) {
                        free(name);
                        continue;
                }
                for (size_t i = 0; i < cnt; i++)
                        shadowed |= v[i].overrides && !strcmp(v[i].name, name);
                j = cJSON_ParseWithLength(e->data, e->len);
                snprintf(disp, sizeof(disp), "<built-in>/%s", e->name);
                if (!shadowed)
                        r = info_add(&v, &cnt, name, "built-in", disp, json_str(j, "description"), false);
                cJSON_Delete(j);
                free(name);
        }
        if (r < 0) {
                nono_profile_info_free(v, cnt);
                return r;
        }
        qsort(v, cnt, sizeof(*v), cmp_info);
        *out = v;
        *n = cnt;
        return 0;
}

void nono_profile_info_free(struct nono_profile_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].origin);
                free(v[i].file);
                free(v[i].description);
        }
        free(v);
}
