/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile_check.c - checks one profile document: everything profiles/schema.json says (types, unknown keys,
 * path and name syntax), plus the rules a schema cannot say (a user profile shadowing a built-in, unknown
 * variables, a removed deny group, settings the sandbox always strips). The e2e tests feed the same broken
 * files to this checker and to python3-jsonschema with schema.json, so the two cannot drift apart silently.
 * Rules that need the merged profile (cycles, read vs write) live in profile_merge.c.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/profile_doc.h"

enum kind { K_PATH, K_PATTERN, K_DOMAIN, K_COMMAND, K_ENVNAME, K_GLOB, K_PROFILE };

struct ctx {
        const struct nono_profile_doc *doc;
        struct nono_diags *d;
        size_t errors;
};

#define ERR(c, ptr, key, ...)                                                                                \
        do {                                                                                                 \
                nono_doc_diag((c)->doc, (c)->d, NONO_DIAG_ERROR, ptr, key, __VA_ARGS__);                     \
                (c)->errors++;                                                                               \
        } while (0)

static const char *type_name(const cJSON *v)
{
        if (cJSON_IsString(v))
                return "a string";
        if (cJSON_IsNumber(v))
                return "a number";
        if (cJSON_IsBool(v))
                return cJSON_IsTrue(v) ? "true" : "false";
        if (cJSON_IsNull(v))
                return "null";
        if (cJSON_IsArray(v))
                return "a list";
        return "an object";
}

static char *child(const char *ptr, const cJSON *v, size_t idx)
{
        char *r = v->string ? json_pointer_join(ptr, v->string) : json_pointer_index(ptr, idx);

        if (!r)
                abort();
        return r;
}

static bool want(struct ctx *c, const char *ptr, const cJSON *v, int type, const char *what)
{
        bool ok = (type == cJSON_String && cJSON_IsString(v)) || (type == cJSON_True && cJSON_IsBool(v)) ||
                  (type == cJSON_Array && cJSON_IsArray(v)) || (type == cJSON_Object && cJSON_IsObject(v));

        if (!ok)
                ERR(c, ptr, false, "wrong type: expected %s, found %s", what, type_name(v));
        return ok;
}

/* Reports members of obj not in keys (NULL-terminated). */
static void known_keys(struct ctx *c, const char *ptr, const cJSON *obj, const char *const *keys)
{
        const cJSON *m;

        cJSON_ArrayForEach(m, obj)
        {
                bool ok = false;
                char list[512] = "";

                for (const char *const *k = keys; *k; k++)
                        ok |= !strcmp(*k, m->string);
                if (ok)
                        continue;
                for (const char *const *k = keys; *k; k++)
                        if (strcmp(*k, "$comment")) {
                                strncat(list, list[0] ? ", " : "", sizeof(list) - strlen(list) - 1);
                                strncat(list, *k, sizeof(list) - strlen(list) - 1);
                        }
                {
                        char *p = child(ptr, m, 0);
                        ERR(c, p, true, "unknown key \"%s\" (allowed here: %s)", m->string, list);
                        free(p);
                }
        }
}

static const char *check_path(const char *s, bool glob)
{
        const char *rest = s;

        if (s[0] == '~' && (s[1] == '/' || s[1] == 0)) {
                rest = s + 1;
        } else if (s[0] == '$') {
                bool braced = s[1] == '{';
                const char *n = s + 1 + braced;
                size_t len = strcspn(n, braced ? "}" : "/");
                if (!nono_var_known(n, len) || (len == 3 && !memcmp(n, "UID", 3)))
                        return "must start with /, ~ or one of $HOME $WORKDIR $XDG_CONFIG_HOME "
                               "$XDG_DATA_HOME "
                               "$XDG_CACHE_HOME $TMPDIR";
                rest = n + len + braced;
                if (*rest && *rest != '/')
                        return "a variable at the start must be followed by / or end the path";
        } else if (s[0] != '/') {
                return "is relative: paths must be absolute or start with ~ or a variable such as $WORKDIR";
        }
        for (const char *p = rest; *p; p++) {
                if (*p == '$') {
                        bool braced = p[1] == '{';
                        const char *n = p + 1 + braced;
                        size_t len = 0;
                        while ((n[len] >= 'A' && n[len] <= 'Z') || n[len] == '_' ||
                               (len && n[len] >= '0' && n[len] <= '9'))
                                len++;
                        if (!nono_var_known(n, len) || (braced && n[len] != '}'))
                                return "uses an unknown variable (known: $HOME $WORKDIR $XDG_CONFIG_HOME "
                                       "$XDG_DATA_HOME $XDG_CACHE_HOME $TMPDIR $UID)";
                }
                if (!glob && (*p == '*' || *p == '?' || *p == '['))
                        return "contains a glob character: only filesystem.deny entries may use globs";
        }
        return NULL;
}

static const char *check_item(enum kind k, const char *s)
{
        switch (k) {
        case K_PATH:
        case K_PATTERN:
                return check_path(s, k == K_PATTERN);
        case K_DOMAIN: {
                const char *p = !strncmp(s, "*.", 2) ? s + 2 : s;
                size_t lab = 0;
                if (!*p)
                        return "is not a host name";
                for (; *p; p++) {
                        bool alnum =
                            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
                        if (*p == '.') {
                                if (lab == 0)
                                        return "is not a host name (empty label)";
                                lab = 0;
                        } else if (alnum || (*p == '-' && lab > 0)) {
                                if (++lab > 63)
                                        return "is not a host name (label longer than 63)";
                        } else {
                                return "is not a host name (letters, digits, '-' and '.'; *.example.com for "
                                       "subdomains)";
                        }
                }
                return lab ? NULL : "is not a host name (ends with '.')";
        }
        case K_COMMAND:
                if (!*s)
                        return "is empty";
                return s[0] != '/' && strchr(s, '/') ? "must be a bare name (git) or an absolute path" : NULL;
        case K_ENVNAME:
                if (!*s || s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_*?")])
                        return "is not a variable name or glob (letters, digits, _, * and ?)";
                return NULL;
        case K_GLOB:
        case K_PROFILE:
                return *s ? NULL : "is empty";
        }
        return NULL;
}

static void check_list(struct ctx *c, const char *ptr, const cJSON *v, enum kind k)
{
        struct nono_strset seen = {0};
        const cJSON *e;
        size_t i = 0;

        if (!want(c, ptr, v, cJSON_Array, "a list"))
                return;
        cJSON_ArrayForEach(e, v)
        {
                char *p = json_pointer_index(ptr, i);
                const char *bad;

                if (!p)
                        abort();
                if (!cJSON_IsString(e)) {
                        ERR(c, p, false, "wrong type: expected a string, found %s", type_name(e));
                } else if ((bad = check_item(k, e->valuestring))) {
                        ERR(c, p, false, "\"%s\" %s", e->valuestring, bad);
                } else {
                        size_t j = nono_strset_put(&seen, e->valuestring, i);
                        if (j == (size_t)-1)
                                abort();
                        if (j != i)
                                ERR(c, p, false, "\"%s\" is listed twice (also at index %zu)", e->valuestring,
                                    j);
                }
                free(p);
                i++;
        }
        nono_strset_free(&seen);
}

static void check_bool(struct ctx *c, const char *ptr, const cJSON *v)
{
        want(c, ptr, v, cJSON_True, "true or false");
}

static void check_deny(struct ctx *c, const char *ptr, const cJSON *v)
{
        static const char *const keys[] = {"$comment", "path", "access", NULL};
        const cJSON *e;
        size_t i = 0;

        if (!want(c, ptr, v, cJSON_Array, "a list"))
                return;
        cJSON_ArrayForEach(e, v)
        {
                char *p = json_pointer_index(ptr, i++), *pp;
                const cJSON *path, *acc;
                const char *bad;

                if (!p)
                        abort();
                if (cJSON_IsString(e)) {
                        if ((bad = check_path(e->valuestring, true)))
                                ERR(c, p, false, "\"%s\" %s", e->valuestring, bad);
                } else if (want(c, p, e, cJSON_Object, "a path or an object {\"path\", \"access\"}")) {
                        known_keys(c, p, e, keys);
                        path = cJSON_GetObjectItemCaseSensitive(e, "path");
                        acc = cJSON_GetObjectItemCaseSensitive(e, "access");
                        pp = json_pointer_join(p, "path");
                        if (!path)
                                ERR(c, p, false, "a deny entry needs \"path\"");
                        else if (want(c, pp, path, cJSON_String, "a string") &&
                                 (bad = check_path(path->valuestring, true)))
                                ERR(c, pp, false, "\"%s\" %s", path->valuestring, bad);
                        free(pp);
                        pp = json_pointer_join(p, "access");
                        if (acc && want(c, pp, acc, cJSON_String, "\"readwrite\" or \"write\"") &&
                            strcmp(acc->valuestring, "readwrite") && strcmp(acc->valuestring, "write"))
                                ERR(c, pp, false, "access \"%s\" is not \"readwrite\" or \"write\"",
                                    acc->valuestring);
                        free(pp);
                }
                free(p);
        }
}

static void check_deny_groups(struct ctx *c, const char *ptr, const cJSON *v)
{
        static const char *const keys[] = {"$comment",      "credentials",   "keychains", "browser_data",
                                           "shell_history", "shell_configs", NULL};
        const cJSON *m;

        if (!want(c, ptr, v, cJSON_Object, "an object"))
                return;
        known_keys(c, ptr, v, keys);
        cJSON_ArrayForEach(m, v)
        {
                char *p = child(ptr, m, 0);

                if (!strcmp(m->string, "$comment"))
                        want(c, p, m, cJSON_String, "a string");
                else if (cJSON_IsFalse(m))
                        ERR(c, p, false,
                            "deny group \"%s\" cannot be removed: delete this line (a profile may only add "
                            "paths to a group)",
                            m->string);
                else if (!cJSON_IsTrue(m))
                        check_list(c, p, m, K_PATTERN);
                free(p);
        }
}

static void check_section(struct ctx *c, const cJSON *v, const char *name)
{
        static const char *const fs_keys[] = {"$comment", "workdir", "allow",       "read",
                                              "system",   "deny",    "deny_groups", NULL};
        static const char *const net_keys[] = {"$comment", "block", "allow_domain", NULL};
        static const char *const cmd_keys[] = {"$comment", "allow", "deny", NULL};
        static const char *const env_keys[] = {"$comment", "allow", "deny", "set", NULL};
        static const char *const rb_keys[] = {"$comment", "enabled", "exclude", NULL};
        static const char *const sec_keys[] = {"$comment", "capability_elevation", NULL};
        char *ptr = json_pointer_join("", name);
        const cJSON *m;

        if (!ptr)
                abort();
        if (!want(c, ptr, v, cJSON_Object, "an object")) {
                free(ptr);
                return;
        }
        known_keys(c, ptr, v,
                   !strcmp(name, "filesystem")    ? fs_keys
                   : !strcmp(name, "network")     ? net_keys
                   : !strcmp(name, "commands")    ? cmd_keys
                   : !strcmp(name, "environment") ? env_keys
                   : !strcmp(name, "rollback")    ? rb_keys
                                                  : sec_keys);
        cJSON_ArrayForEach(m, v)
        {
                char *p = child(ptr, m, 0);
                const char *k = m->string;

                if (!strcmp(k, "$comment"))
                        want(c, p, m, cJSON_String, "a string");
                else if (!strcmp(name, "filesystem") && !strcmp(k, "workdir")) {
                        if (want(c, p, m, cJSON_String, "\"readwrite\", \"read\" or \"none\"") &&
                            strcmp(m->valuestring, "readwrite") && strcmp(m->valuestring, "read") &&
                            strcmp(m->valuestring, "none"))
                                ERR(c, p, false, "workdir \"%s\" is not \"readwrite\", \"read\" or \"none\"",
                                    m->valuestring);
                } else if (!strcmp(name, "filesystem") &&
                           (!strcmp(k, "allow") || !strcmp(k, "read") || !strcmp(k, "system")))
                        check_list(c, p, m, K_PATH);
                else if (!strcmp(name, "filesystem") && !strcmp(k, "deny"))
                        check_deny(c, p, m);
                else if (!strcmp(name, "filesystem") && !strcmp(k, "deny_groups"))
                        check_deny_groups(c, p, m);
                else if (!strcmp(k, "block") || !strcmp(k, "enabled") || !strcmp(k, "capability_elevation"))
                        check_bool(c, p, m);
                else if (!strcmp(k, "allow_domain"))
                        check_list(c, p, m, K_DOMAIN);
                else if (!strcmp(name, "commands"))
                        check_list(c, p, m, K_COMMAND);
                else if (!strcmp(name, "environment") && strcmp(k, "set"))
                        check_list(c, p, m, K_ENVNAME);
                else if (!strcmp(name, "environment"))
                        ; /* set: checked below */
                else if (!strcmp(k, "exclude"))
                        check_list(c, p, m, K_GLOB);
                free(p);
        }
        free(ptr);
}

/* Variables the sandbox always removes (issue 4): setting them would be silently undone, or worse. */
static bool env_dangerous(const char *k)
{
        static const char *const names[] = {"LD_*",        "BASH_ENV",   "ENV",         "PROMPT_COMMAND",
                                            "BASH_FUNC_*", "GCONV_PATH", "HOSTALIASES", "LOCALDOMAIN",
                                            "RES_OPTIONS", "TMPDIR",     "MALLOC_*",    "GLIBC_TUNABLES",
                                            NULL};

        for (const char *const *n = names; *n; n++)
                if (!fnmatch(*n, k, 0))
                        return true;
        return false;
}

static void check_env_set(struct ctx *c, const cJSON *env)
{
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(env, "set"), *m;

        if (!set || !want(c, "/environment/set", set, cJSON_Object, "an object {\"NAME\": \"value\"}"))
                return;
        cJSON_ArrayForEach(m, set)
        {
                char *p = child("/environment/set", m, 0);
                const char *k = m->string;

                if (!*k || k[strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")] ||
                    (k[0] >= '0' && k[0] <= '9'))
                        ERR(c, p, true, "\"%s\" is not a variable name (letters, digits and _)", k);
                else if (env_dangerous(k))
                        ERR(c, p, true, "\"%s\" cannot be set: the sandbox always removes it", k);
                else
                        want(c, p, m, cJSON_String, "a string");
                free(p);
        }
}

static void check_root(struct ctx *c)
{
        static const char *const keys[] = {"$schema",  "$comment",   "name",    "description", "extends",
                                           "override", "filesystem", "network", "commands",    "environment",
                                           "rollback", "security",   NULL};
        const struct nono_profile_doc *doc = c->doc;
        const cJSON *root = doc->json, *m, *name, *ovr;

        if (!want(c, "", root, cJSON_Object, "an object (a profile is a JSON object)"))
                return;
        known_keys(c, "", root, keys);
        cJSON_ArrayForEach(m, root)
        {
                char *p = child("", m, 0);
                const char *k = m->string;

                if (!strcmp(k, "$schema") || !strcmp(k, "$comment") || !strcmp(k, "description") ||
                    !strcmp(k, "name"))
                        want(c, p, m, cJSON_String, "a string");
                else if (!strcmp(k, "override"))
                        check_bool(c, p, m);
                else if (!strcmp(k, "extends")) {
                        if (cJSON_IsString(m)) {
                                if (!*m->valuestring)
                                        ERR(c, p, false, "extends is empty: name a profile");
                        } else {
                                check_list(c, p, m, K_PROFILE);
                        }
                } else {
                        bool section = false;
                        for (const char *const *s = keys + 6; *s; s++)
                                section |= !strcmp(*s, k);
                        if (section)
                                check_section(c, m, k);
                }
                free(p);
        }
        if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "environment")))
                check_env_set(c, cJSON_GetObjectItemCaseSensitive(root, "environment"));

        name = cJSON_GetObjectItemCaseSensitive(root, "name");
        if (cJSON_IsString(name)) {
                if (!nono_profile_name_valid(name->valuestring))
                        ERR(c, "/name", false,
                            "\"%s\" is not a valid profile name (a-z, 0-9, '.', '_', '-'; at most 64)",
                            name->valuestring);
                else if (strcmp(doc->origin, "file") && strcmp(name->valuestring, doc->name))
                        ERR(c, "/name", false, "name \"%s\" does not match the file name %s.json: rename one",
                            name->valuestring, doc->name);
        }
        ovr = cJSON_GetObjectItemCaseSensitive(root, "override");
        if (!strcmp(doc->origin, "user") && nono_profile_is_builtin(doc->name) && !cJSON_IsTrue(ovr))
                ERR(c, ovr ? "/override" : "", ovr != NULL,
                    "user profile \"%s\" has the name of a built-in profile: add \"override\": true to "
                    "replace "
                    "it on purpose, or rename the file",
                    doc->name);
}

size_t nono_profile_doc_check(const struct nono_profile_doc *doc, struct nono_diags *d)
{
        struct ctx c = {.doc = doc, .d = d};

        if (!doc->json)
                return 1; /* the syntax error is already reported */
        for (size_t i = 0; i < doc->pos.n_dups; i++) {
                nono_diags_add(d, NONO_DIAG_ERROR, doc->file, doc->pos.dups[i].key_line,
                               doc->pos.dups[i].key_col, doc->pos.dups[i].pointer,
                               "duplicate key: this member is already defined above");
                c.errors++;
        }
        check_root(&c);
        return c.errors;
}
