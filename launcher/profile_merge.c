/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile_merge.c - nono_profile_load(): opens a profile and its bases, checks each, merges `extends` left
 * to right (lists are unions, scalars are overridden by the later profile), puts the deny groups first,
 * expands variables, and checks what only the merged result shows: extends cycles and missing bases, a path
 * granted read-only and read-write, a grant that would lift a deny group, a command both allowed and
 * denied, a variable both denied and set; and, on request, granted paths that do not exist (warnings).
 *
 * What it stops: a profile, or a chain of them, cannot drop a deny group: the groups are not part of any
 * profile file, they are added here to every result, and a grant inside one is an error. What it does not
 * stop: a profile granting a broad directory (e.g. $HOME); the deny groups then still mask their paths, but
 * everything else in it is granted. Every item remembers where it was written, for the error messages.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "launcher/policy.h"
#include "launcher/profile_doc.h"

struct loc {
        char *file, *pointer;
        unsigned line, col;
};

struct item {
        char *value;
        unsigned access;
        char *group;
        struct loc loc;
};

struct list {
        struct item *v;
        size_t n;
        struct nono_strset idx; /* value -> index in v */
};

struct merged {
        int workdir;
        struct loc workdir_loc;
        bool net_block, net_block_set, rollback_enabled, capability_elevation;
        struct list allow, read, system, deny, allow_domain, cmd_allow, cmd_deny, env_allow, env_deny,
            env_set, rollback_exclude, extends;
        const char *top_file;
};

struct frame {
        const char *id, *name;
        const struct frame *up;
};

struct loader {
        const struct nono_vars *vars;
        struct nono_diags *d;
        struct merged m;
};

static void loc_free(struct loc *l)
{
        free(l->file);
        free(l->pointer);
}

static void list_free(struct list *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].value);
                free(l->v[i].group);
                loc_free(&l->v[i].loc);
        }
        free(l->v);
        nono_strset_free(&l->idx);
        *l = (struct list){0};
}

static struct loc loc_at(const struct nono_profile_doc *doc, const char *pointer)
{
        struct loc l = {.file = strdup(doc->file), .pointer = pointer ? strdup(pointer) : NULL};

        if (pointer)
                jsonpos_lookup(&doc->pos, pointer, false, &l.line, &l.col);
        if (!l.file || (pointer && !l.pointer))
                abort();
        return l;
}

static struct item *list_find(const struct list *l, const char *value)
{
        size_t i = nono_strset_get(&l->idx, value);

        return i == (size_t)-1 ? NULL : &l->v[i];
}

/* Adds value (taking ownership) unless present; a repeated deny widens the denied access. */
static void list_add(struct list *l, char *value, unsigned access, const char *group, struct loc loc)
{
        struct item *it = list_find(l, value), *nv;

        if (it) {
                it->access |= access;
                free(value);
                loc_free(&loc);
                return;
        }
        nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
        if (!nv)
                abort();
        l->v = nv;
        l->v[l->n] = (struct item){value, access, group ? strdup(group) : NULL, loc};
        if (nono_strset_put(&l->idx, value, l->n) == (size_t)-1)
                abort();
        l->n++;
}

/* Collapses "//" and "/./" and drops a trailing '/': grants compare equal however they were written. */
static void normalize(char *p)
{
        char *w = p;

        for (char *r = p; *r;) {
                if (r[0] == '/' && (r[1] == '/' || (r[1] == '.' && (r[2] == '/' || r[2] == 0)))) {
                        r += r[1] == '/' ? 1 : 2;
                        continue;
                }
                *w++ = *r++;
        }
        *w = 0;
        while (w - p > 1 && w[-1] == '/')
                *--w = 0;
        if (!*p)
                strcpy(p, "/");
}

/* Expands variables; NULL for an unknown one, which profile_check.c has already reported. */
static char *expand(struct loader *L, const char *s, bool path)
{
        char *out, *bad;
        int r = nono_vars_expand(L->vars, s, &out, &bad);

        if (r == -EINVAL) {
                free(bad);
                return NULL;
        }
        if (r < 0)
                abort();
        if (path)
                normalize(out);
        return out;
}

static void add_strings(struct loader *L, const struct nono_profile_doc *doc, const cJSON *sec,
                        const char *sec_name, const char *key, struct list *l, bool path, unsigned access,
                        const char *group)
{
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(sec, key), *e;
        size_t i = 0;

        cJSON_ArrayForEach(e, arr)
        {
                char *ptr, *v;

                if (asprintf(&ptr, "/%s/%s/%zu", sec_name, key, i++) < 0)
                        abort();
                if (cJSON_IsString(e) && (v = expand(L, e->valuestring, path)))
                        list_add(l, v, access, group, loc_at(doc, ptr));
                free(ptr);
        }
}

static const cJSON *deny_groups_json(void)
{
        static cJSON *groups; /* parsed once; the embedded text never changes */
        size_t len;
        const char *text;

        if (!groups) {
                text = nono_profile_embedded("deny-groups.json", &len);
                groups = text ? cJSON_ParseWithLength(text, len) : NULL;
                if (!groups)
                        abort(); /* the build embeds a checked file: this cannot fail */
        }
        return groups;
}

static unsigned group_access(const char *group)
{
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(deny_groups_json(), group);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(g, "access");

        return cJSON_IsString(a) && !strcmp(a->valuestring, "write") ? NONO_ACCESS_WRITE
                                                                     : NONO_ACCESS_READ | NONO_ACCESS_WRITE;
}

static void add_builtin_groups(struct loader *L)
{
        const cJSON *g, *p;

        cJSON_ArrayForEach(g, deny_groups_json())
        {
                const cJSON *paths = cJSON_GetObjectItemCaseSensitive(g, "paths");
                size_t i = 0;

                if (!cJSON_IsObject(g))
                        continue;
                cJSON_ArrayForEach(p, paths)
                {
                        char *out, *bad;
                        struct loc l = {.file = strdup("<built-in>/deny-groups.json")};

                        if (asprintf(&l.pointer, "/%s/paths/%zu", g->string, i++) < 0 || !l.file)
                                abort();
                        if (nono_vars_expand(L->vars, p->valuestring, &out, &bad) < 0)
                                abort();
                        normalize(out);
                        list_add(&L->m.deny, out, group_access(g->string), g->string, l);
                }
        }
}

static void apply_filesystem(struct loader *L, const struct nono_profile_doc *doc, const cJSON *fs)
{
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(fs, "workdir"), *e, *groups;
        size_t i = 0;

        if (cJSON_IsString(w)) {
                L->m.workdir = !strcmp(w->valuestring, "read")   ? NONO_WORKDIR_READ
                               : !strcmp(w->valuestring, "none") ? NONO_WORKDIR_NONE
                                                                 : NONO_WORKDIR_READWRITE;
                loc_free(&L->m.workdir_loc);
                L->m.workdir_loc = loc_at(doc, "/filesystem/workdir");
        }
        add_strings(L, doc, fs, "filesystem", "allow", &L->m.allow, true,
                    NONO_ACCESS_READ | NONO_ACCESS_WRITE | NONO_ACCESS_EXEC, NULL);
        add_strings(L, doc, fs, "filesystem", "read", &L->m.read, true, NONO_ACCESS_READ | NONO_ACCESS_EXEC,
                    NULL);
        add_strings(L, doc, fs, "filesystem", "system", &L->m.system, true,
                    NONO_ACCESS_READ | NONO_ACCESS_EXEC, NULL);
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(fs, "deny"))
        {
                const cJSON *path = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "path") : e;
                const cJSON *acc = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "access") : NULL;
                unsigned a = cJSON_IsString(acc) && !strcmp(acc->valuestring, "write")
                                 ? NONO_ACCESS_WRITE
                                 : NONO_ACCESS_READ | NONO_ACCESS_WRITE;
                char *ptr, *v;

                if (asprintf(&ptr, "/filesystem/deny/%zu", i++) < 0)
                        abort();
                if (cJSON_IsString(path) && (v = expand(L, path->valuestring, true)))
                        list_add(&L->m.deny, v, a, NULL, loc_at(doc, ptr));
                free(ptr);
        }
        groups = cJSON_GetObjectItemCaseSensitive(fs, "deny_groups");
        cJSON_ArrayForEach(e, groups)
        {
                if (cJSON_IsArray(e) && cJSON_GetObjectItemCaseSensitive(deny_groups_json(), e->string))
                        add_strings(L, doc, groups, "filesystem/deny_groups", e->string, &L->m.deny, true,
                                    group_access(e->string), e->string);
        }
}

/* environment.set is keyed by variable name, not by "K=V": a later profile's value replaces the earlier
 * one in place. (Not through list_add: its index is by whole value.) */
static void apply_env_set(struct loader *L, const struct nono_profile_doc *doc, const cJSON *set)
{
        struct list *l = &L->m.env_set;
        const cJSON *e;

        cJSON_ArrayForEach(e, set)
        {
                char *ptr, *kv;
                size_t klen = strlen(e->string), i;

                if (!cJSON_IsString(e))
                        continue;
                if (!(ptr = json_pointer_join("/environment/set", e->string)) ||
                    asprintf(&kv, "%s=%s", e->string, e->valuestring) < 0)
                        abort();
                for (i = 0; i < l->n; i++)
                        if (!strncmp(l->v[i].value, e->string, klen) && l->v[i].value[klen] == '=')
                                break;
                if (i == l->n) {
                        struct item *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
                        if (!nv)
                                abort();
                        l->v = nv;
                        l->v[l->n++] = (struct item){.value = kv, .loc = loc_at(doc, ptr)};
                } else {
                        free(l->v[i].value);
                        loc_free(&l->v[i].loc);
                        l->v[i].value = kv;
                        l->v[i].loc = loc_at(doc, ptr);
                }
                free(ptr);
        }
}

static void apply(struct loader *L, const struct nono_profile_doc *doc)
{
        const cJSON *root = doc->json, *s, *v;

        if ((s = cJSON_GetObjectItemCaseSensitive(root, "filesystem")) && cJSON_IsObject(s))
                apply_filesystem(L, doc, s);
        if ((s = cJSON_GetObjectItemCaseSensitive(root, "network")) && cJSON_IsObject(s)) {
                if (cJSON_IsBool(v = cJSON_GetObjectItemCaseSensitive(s, "block"))) {
                        L->m.net_block = cJSON_IsTrue(v);
                        L->m.net_block_set = true;
                }
                add_strings(L, doc, s, "network", "allow_domain", &L->m.allow_domain, false, 0, NULL);
        }
        if ((s = cJSON_GetObjectItemCaseSensitive(root, "commands")) && cJSON_IsObject(s)) {
                add_strings(L, doc, s, "commands", "allow", &L->m.cmd_allow, false, 0, NULL);
                add_strings(L, doc, s, "commands", "deny", &L->m.cmd_deny, false, 0, NULL);
        }
        if ((s = cJSON_GetObjectItemCaseSensitive(root, "environment")) && cJSON_IsObject(s)) {
                add_strings(L, doc, s, "environment", "allow", &L->m.env_allow, false, 0, NULL);
                add_strings(L, doc, s, "environment", "deny", &L->m.env_deny, false, 0, NULL);
                if (cJSON_IsObject(v = cJSON_GetObjectItemCaseSensitive(s, "set")))
                        apply_env_set(L, doc, v);
        }
        if ((s = cJSON_GetObjectItemCaseSensitive(root, "rollback")) && cJSON_IsObject(s)) {
                if (cJSON_IsBool(v = cJSON_GetObjectItemCaseSensitive(s, "enabled")))
                        L->m.rollback_enabled = cJSON_IsTrue(v);
                add_strings(L, doc, s, "rollback", "exclude", &L->m.rollback_exclude, false, 0, NULL);
        }
        if ((s = cJSON_GetObjectItemCaseSensitive(root, "security")) && cJSON_IsObject(s))
                if (cJSON_IsBool(v = cJSON_GetObjectItemCaseSensitive(s, "capability_elevation")))
                        L->m.capability_elevation = cJSON_IsTrue(v);
}

static void cycle_error(struct loader *L, const struct nono_profile_doc *doc, const char *ptr,
                        const struct frame *fr, const char *target)
{
        char chain[1024] = "";
        const struct frame *stack[64];
        size_t n = 0;

        for (const struct frame *f = fr; f && n < 64; f = f->up)
                stack[n++] = f;
        while (n--) {
                strncat(chain, stack[n]->name, sizeof(chain) - strlen(chain) - 1);
                strncat(chain, " -> ", sizeof(chain) - strlen(chain) - 1);
        }
        strncat(chain, target, sizeof(chain) - strlen(chain) - 1);
        nono_doc_diag(doc, L->d, NONO_DIAG_ERROR, ptr, false,
                      "extends cycle: %s: remove one of these extends", chain);
}

static void merge_doc(struct loader *L, const struct nono_profile_doc *doc, const struct frame *up);

static void merge_base(struct loader *L, const struct nono_profile_doc *doc, const struct frame *fr,
                       const char *ref, const char *ptr)
{
        struct nono_profile_doc *base = NULL;
        int r = nono_profile_doc_open(ref, doc, &base, L->d);

        if (r == -ENOENT) {
                char *dir = nono_profile_user_dir();
                nono_doc_diag(doc, L->d, NONO_DIAG_ERROR, ptr, false,
                              "extends \"%s\": no such profile (see nono profile list; user profiles live in "
                              "%s)",
                              ref, dir ? dir : "~/.config/nono/profiles");
                free(dir);
                return;
        }
        if (r < 0)
                return; /* reported */
        for (const struct frame *f = fr; f; f = f->up)
                if (!strcmp(f->id, base->id)) {
                        cycle_error(L, doc, ptr, fr, base->name);
                        nono_profile_doc_free(base);
                        return;
                }
        merge_doc(L, base, fr);
        list_add(&L->m.extends, strdup(base->name), 0, NULL, loc_at(doc, ptr));
        nono_profile_doc_free(base);
}

static void merge_doc(struct loader *L, const struct nono_profile_doc *doc, const struct frame *up)
{
        struct frame fr = {.id = doc->id, .name = doc->name, .up = up};
        const cJSON *ext, *e;
        size_t errors = L->d->n_errors;

        nono_profile_doc_check(doc, L->d);
        if (!doc->json || !cJSON_IsObject(doc->json))
                return;
        ext = cJSON_GetObjectItemCaseSensitive(doc->json, "extends");
        if (cJSON_IsString(ext) && *ext->valuestring) {
                merge_base(L, doc, &fr, ext->valuestring, "/extends");
        } else if (cJSON_IsArray(ext)) {
                size_t i = 0;
                cJSON_ArrayForEach(e, ext)
                {
                        char *ptr = json_pointer_index("/extends", i++);
                        if (!ptr)
                                abort();
                        if (cJSON_IsString(e) && *e->valuestring)
                                merge_base(L, doc, &fr, e->valuestring, ptr);
                        free(ptr);
                }
        }
        (void)errors;
        apply(L, doc);
}

/* ---- checks on the merged result ---- */

static void item_diag(struct loader *L, const struct item *it, int sev, const char *fmt, const char *a,
                      const char *b)
{
        nono_diags_add(L->d, sev, it->loc.file, it->loc.line, it->loc.col, it->loc.pointer, fmt, a, b);
}

static void check_merged(struct loader *L, unsigned flags)
{
        struct merged *m = &L->m;
        char where[512];

        for (size_t i = 0; i < m->allow.n; i++) {
                const struct item *a = &m->allow.v[i], *r = list_find(&m->read, a->value);
                if (r) {
                        snprintf(where, sizeof(where), "%s:%u:%u", r->loc.file, r->loc.line, r->loc.col);
                        item_diag(L, a, NONO_DIAG_ERROR,
                                  "\"%s\" is read-only (filesystem.read at %s) and also granted write here: "
                                  "keep one",
                                  a->value, where);
                }
                if (m->workdir == NONO_WORKDIR_READ && !strcmp(a->value, L->vars->workdir))
                        item_diag(L, a, NONO_DIAG_ERROR,
                                  "\"%s\" is $WORKDIR, which filesystem.workdir makes read-only%s: keep one",
                                  a->value, "");
        }
        for (size_t g = 0; g < m->deny.n; g++) {
                const struct item *dn = &m->deny.v[g];
                if (!dn->group)
                        continue;
                for (int which = 0; which < 2; which++) {
                        const struct list *l = which ? &m->read : &m->allow;
                        if (which && !(dn->access & NONO_ACCESS_READ))
                                continue;
                        for (size_t i = 0; i < l->n; i++) {
                                if (!nono_glob_covers(dn->value, l->v[i].value))
                                        continue;
                                snprintf(where, sizeof(where), "deny group \"%s\" (%s)", dn->group,
                                         dn->value);
                                item_diag(L, &l->v[i], NONO_DIAG_ERROR,
                                          "\"%s\" lies inside %s, and deny groups cannot be removed: grant "
                                          "something next to it instead",
                                          l->v[i].value, where);
                        }
                }
        }
        for (size_t i = 0; i < m->cmd_allow.n; i++)
                if (list_find(&m->cmd_deny, m->cmd_allow.v[i].value))
                        item_diag(L, &m->cmd_allow.v[i], NONO_DIAG_ERROR,
                                  "command \"%s\" is both allowed and denied%s: keep one",
                                  m->cmd_allow.v[i].value, "");
        for (size_t i = 0; i < m->env_set.n; i++) {
                char key[256];
                const char *kv = m->env_set.v[i].value;
                size_t k = strcspn(kv, "=");
                if (!*kv || k >= sizeof(key))
                        continue;
                memcpy(key, kv, k);
                key[k] = 0;
                for (size_t j = 0; j < m->env_deny.n; j++)
                        if (!fnmatch(m->env_deny.v[j].value, key, 0))
                                item_diag(
                                    L, &m->env_set.v[i], NONO_DIAG_ERROR,
                                    "\"%s\" is set here but denied by environment.deny \"%s\": keep one", key,
                                    m->env_deny.v[j].value);
        }
        if (m->net_block_set && !m->net_block && m->allow_domain.n)
                item_diag(
                    L, &m->allow_domain.v[0], NONO_DIAG_WARNING,
                    "allow_domain has no effect: network.block is false, so all network access is open%s%s",
                    "", "");
        if (!(flags & NONO_PROFILE_CHECK_PATHS))
                return;
        /* only the paths of the profile being checked: its bases are checked on their own */
        for (int which = 0; which < 2; which++) {
                const struct list *l = which ? &m->read : &m->allow;
                for (size_t i = 0; i < l->n; i++) {
                        struct stat st;
                        if (strcmp(l->v[i].loc.file, m->top_file) || lstat(l->v[i].value, &st) == 0)
                                continue;
                        item_diag(L, &l->v[i], NONO_DIAG_WARNING,
                                  "\"%s\" does not exist: nono run skips it%s (create it, or remove it)",
                                  l->v[i].value, "");
                }
        }
}

/* ---- the result ---- */

static char **strv_from(const struct list *l)
{
        char **v = calloc(l->n + 1, sizeof(char *));
        size_t n = 0;

        if (!v)
                abort();
        for (size_t i = 0; i < l->n; i++) {
                if (!(v[n++] = strdup(l->v[i].value)))
                        abort();
        }
        return v;
}

static void merged_free(struct merged *m)
{
        struct list *lists[] = {&m->allow,        &m->read,      &m->system,           &m->deny,
                                &m->allow_domain, &m->cmd_allow, &m->cmd_deny,         &m->env_allow,
                                &m->env_deny,     &m->env_set,   &m->rollback_exclude, &m->extends};

        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
                list_free(lists[i]);
        loc_free(&m->workdir_loc);
}

static void to_profile(struct loader *L, const struct nono_profile_doc *doc, struct nono_profile *p)
{
        struct merged *m = &L->m;
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(doc->json, "description");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc->json, "name");

        *p = (struct nono_profile){0};
        p->name = strdup(cJSON_IsString(name) ? name->valuestring : doc->name);
        p->description = strdup(cJSON_IsString(desc) ? desc->valuestring : "");
        p->origin = strdup(doc->origin);
        p->file = strdup(doc->file);
        p->extends = strv_from(&m->extends);
        p->workdir = m->workdir;
        p->allow = strv_from(&m->allow);
        p->read = strv_from(&m->read);
        p->system = strv_from(&m->system);
        p->deny = calloc(m->deny.n + 1, sizeof(*p->deny));
        if (!p->deny)
                abort();
        for (size_t i = 0; i < m->deny.n; i++) {
                p->deny[i].path = strdup(m->deny.v[i].value);
                p->deny[i].access = m->deny.v[i].access;
                p->deny[i].group = m->deny.v[i].group ? strdup(m->deny.v[i].group) : NULL;
        }
        p->n_deny = m->deny.n;
        p->net_block = m->net_block;
        p->allow_domain = strv_from(&m->allow_domain);
        p->cmd_allow = strv_from(&m->cmd_allow);
        p->cmd_deny = strv_from(&m->cmd_deny);
        p->env_allow = strv_from(&m->env_allow);
        p->env_deny = strv_from(&m->env_deny);
        p->env_set = strv_from(&m->env_set);
        p->rollback_enabled = m->rollback_enabled;
        p->rollback_exclude = strv_from(&m->rollback_exclude);
        p->capability_elevation = m->capability_elevation;
}

int nono_profile_load(const char *ref, const struct nono_vars *vars, unsigned flags, struct nono_profile *out,
                      struct nono_diags *d)
{
        struct loader L = {.vars = vars, .d = d};
        struct nono_profile_doc *doc = NULL;
        size_t errors0 = d->n_errors;
        int r;

        *out = (struct nono_profile){0};
        r = nono_profile_doc_open(ref, NULL, &doc, d);
        if (r == -ENOENT && (strchr(ref, '/') || strstr(ref, ".json"))) {
                nono_diags_add(d, NONO_DIAG_ERROR, NULL, 0, 0, NULL,
                               "no profile file %s: check the path (or give a profile name)", ref);
                return -ENOENT;
        }
        if (r == -ENOENT) {
                char *dir = nono_profile_user_dir();
                nono_diags_add(d, NONO_DIAG_ERROR, NULL, 0, 0, NULL,
                               "no profile \"%s\": see nono profile list (user profiles live in %s), or give "
                               "a file path",
                               ref, dir ? dir : "~/.config/nono/profiles");
                free(dir);
                return -ENOENT;
        }
        if (r < 0)
                return r;
        L.m.net_block = true;
        L.m.workdir = NONO_WORKDIR_READWRITE;
        L.m.top_file = doc->file;
        add_builtin_groups(&L);
        merge_doc(&L, doc, NULL);
        if (d->n_errors == errors0)
                check_merged(&L, flags);
        if (d->n_errors == errors0)
                to_profile(&L, doc, out);
        merged_free(&L.m);
        nono_profile_doc_free(doc);
        return d->n_errors == errors0 ? 0 : -EINVAL;
}

void nono_profile_free(struct nono_profile *p)
{
        char **lists[] = {p->extends,         p->allow,    p->read,      p->system,   p->allow_domain,
                          p->cmd_allow,       p->cmd_deny, p->env_allow, p->env_deny, p->env_set,
                          p->rollback_exclude};

        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
                for (char **s = lists[i]; s && *s; s++)
                        free(*s);
                free(lists[i]);
        }
        for (size_t i = 0; i < p->n_deny; i++) {
                free(p->deny[i].path);
                free(p->deny[i].group);
        }
        free(p->deny);
        free(p->name);
        free(p->description);
        free(p->origin);
        free(p->file);
        *p = (struct nono_profile){0};
}

static cJSON *strv_json(char **v)
{
        cJSON *a = cJSON_CreateArray();

        for (; v && *v; v++)
                cJSON_AddItemToArray(a, cJSON_CreateString(*v));
        return a;
}

cJSON *nono_profile_to_json(const struct nono_profile *p)
{
        static const char *const wd[] = {"readwrite", "read", "none"};
        cJSON *o = cJSON_CreateObject(), *fs, *deny, *s, *set;

        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "description", p->description);
        cJSON_AddStringToObject(o, "source", p->origin);
        cJSON_AddStringToObject(o, "file", p->file);
        cJSON_AddItemToObject(o, "extends", strv_json(p->extends));
        fs = cJSON_AddObjectToObject(o, "filesystem");
        cJSON_AddStringToObject(fs, "workdir", wd[p->workdir]);
        cJSON_AddItemToObject(fs, "allow", strv_json(p->allow));
        cJSON_AddItemToObject(fs, "read", strv_json(p->read));
        cJSON_AddItemToObject(fs, "system", strv_json(p->system));
        deny = cJSON_AddArrayToObject(fs, "deny");
        for (size_t i = 0; i < p->n_deny; i++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "path", p->deny[i].path);
                cJSON_AddStringToObject(e, "access",
                                        p->deny[i].access & NONO_ACCESS_READ ? "readwrite" : "write");
                if (p->deny[i].group)
                        cJSON_AddStringToObject(e, "group", p->deny[i].group);
                else
                        cJSON_AddNullToObject(e, "group");
                cJSON_AddItemToArray(deny, e);
        }
        s = cJSON_AddObjectToObject(o, "network");
        cJSON_AddBoolToObject(s, "block", p->net_block);
        cJSON_AddItemToObject(s, "allow_domain", strv_json(p->allow_domain));
        s = cJSON_AddObjectToObject(o, "commands");
        cJSON_AddItemToObject(s, "allow", strv_json(p->cmd_allow));
        cJSON_AddItemToObject(s, "deny", strv_json(p->cmd_deny));
        s = cJSON_AddObjectToObject(o, "environment");
        cJSON_AddItemToObject(s, "allow", strv_json(p->env_allow));
        cJSON_AddItemToObject(s, "deny", strv_json(p->env_deny));
        set = cJSON_AddObjectToObject(s, "set");
        for (char **kv = p->env_set; kv && *kv; kv++) {
                char *eq = strchr(*kv, '='), *k = strndup(*kv, eq - *kv);
                cJSON_AddStringToObject(set, k, eq + 1);
                free(k);
        }
        s = cJSON_AddObjectToObject(o, "rollback");
        cJSON_AddBoolToObject(s, "enabled", p->rollback_enabled);
        cJSON_AddItemToObject(s, "exclude", strv_json(p->rollback_exclude));
        s = cJSON_AddObjectToObject(o, "security");
        cJSON_AddBoolToObject(s, "capability_elevation", p->capability_elevation);
        return o;
}
