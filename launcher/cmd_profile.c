/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_profile.c - `nono profile list|show|init|validate|schema`. A thin layer over profile.h: parse the
 * arguments, call the library, print for humans or as JSON (--json shapes are stable; see
 * docs/README-profiles.md). Exit status: 0 success, 1 an invalid profile or a failure, 2 a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher/cli.h"
#include "launcher/profile.h"

int nono_cmd_profile(int argc, char **argv);

static const char usage_text[] = "usage: nono profile list [--json]\n"
                                 "       nono profile show NAME|FILE [--json]\n"
                                 "       nono profile init NAME [--extends BASE] [--force]\n"
                                 "       nono profile validate NAME|FILE [--json]\n"
                                 "       nono profile schema\n";

struct args {
        bool json, force;
        const char *extends;
        const char *pos[2];
        size_t n_pos;
};

static int parse_args(int argc, char **argv, struct args *a)
{
        *a = (struct args){0};
        for (int i = 0; i < argc; i++) {
                if (!strcmp(argv[i], "--json"))
                        a->json = true;
                else if (!strcmp(argv[i], "--force"))
                        a->force = true;
                else if (!strcmp(argv[i], "--extends") && i + 1 < argc)
                        a->extends = argv[++i];
                else if (!strncmp(argv[i], "--extends=", 10))
                        a->extends = argv[i] + 10;
                else if (argv[i][0] == '-' && argv[i][1]) {
                        nono_err("profile: unknown option '%s' (see nono profile --help)", argv[i]);
                        return -EINVAL;
                } else if (a->n_pos < 2)
                        a->pos[a->n_pos++] = argv[i];
                else {
                        nono_err("profile: unexpected argument '%s' (see nono profile --help)", argv[i]);
                        return -EINVAL;
                }
        }
        return 0;
}

static void print_json(cJSON *o)
{
        char *s = cJSON_Print(o);

        if (s)
                puts(s);
        free(s);
        cJSON_Delete(o);
}

static int cmd_list(const struct args *a)
{
        struct nono_profile_info *v;
        size_t n;

        if (nono_profile_list(&v, &n) < 0)
                return nono_err("profile list: out of memory");
        if (a->json) {
                cJSON *arr = cJSON_CreateArray();
                for (size_t i = 0; i < n; i++) {
                        cJSON *o = cJSON_CreateObject();
                        cJSON_AddStringToObject(o, "name", v[i].name);
                        cJSON_AddStringToObject(o, "source", v[i].origin);
                        cJSON_AddStringToObject(o, "file", v[i].file);
                        cJSON_AddStringToObject(o, "description", v[i].description);
                        cJSON_AddBoolToObject(o, "overrides_builtin", v[i].overrides);
                        cJSON_AddItemToArray(arr, o);
                }
                print_json(arr);
        } else {
                printf("%-16s %-9s %s\n", "NAME", "SOURCE", "DESCRIPTION");
                for (size_t i = 0; i < n; i++)
                        printf("%-16s %-9s %s%s\n", v[i].name, v[i].origin,
                               v[i].overrides ? "(overrides built-in) " : "", v[i].description);
        }
        nono_profile_info_free(v, n);
        return 0;
}

static void print_list(const char *title, char **v)
{
        printf("  %-14s", title);
        if (!v || !*v)
                fputs(" -", stdout);
        for (; v && *v; v++)
                printf(" %s", *v);
        putchar('\n');
}

static void show_human(const struct nono_profile *p)
{
        static const char *const wd[] = {"read-write", "read-only", "none"};

        printf("profile %s (%s, %s)\n", p->name, p->origin, p->file);
        if (*p->description)
                printf("  %s\n", p->description);
        print_list("extends", p->extends);
        printf("filesystem\n  %-14s %s\n", "workdir", wd[p->workdir]);
        print_list("read-write", p->allow);
        print_list("read-only", p->read);
        print_list("system", p->system);
        printf("  deny\n");
        for (size_t i = 0; i < p->n_deny; i++)
                printf("    %-5s %-40s %s\n", p->deny[i].access & 1 ? "rw" : "write", p->deny[i].path,
                       p->deny[i].group ? p->deny[i].group : "(profile)");
        printf("network\n  %-14s %s\n", "block", p->net_block ? "yes" : "no (open network)");
        print_list("allow_domain", p->allow_domain);
        printf("commands\n");
        print_list("allow", p->cmd_allow);
        print_list("deny", p->cmd_deny);
        printf("environment\n");
        print_list("allow", p->env_allow);
        print_list("deny", p->env_deny);
        print_list("set", p->env_set);
        printf("rollback\n  %-14s %s\n", "enabled", p->rollback_enabled ? "yes" : "no (use --rollback)");
        print_list("exclude", p->rollback_exclude);
        printf("security\n  %-14s %s\n", "capability_elevation", p->capability_elevation ? "yes" : "no");
}

static int load(const char *ref, unsigned flags, struct nono_profile *p, struct nono_diags *d)
{
        struct nono_vars vars;
        char *err = NULL;
        int r = nono_vars_init(&vars, NULL, &err);

        if (r < 0) {
                nono_err("%s", err ? err : "out of memory");
                free(err);
                return r;
        }
        r = nono_profile_load(ref, &vars, flags, p, d);
        nono_vars_free(&vars);
        return r;
}

static int cmd_show(const struct args *a)
{
        struct nono_profile p;
        struct nono_diags d = {0};
        int r;

        if (a->n_pos != 1) {
                fputs(usage_text, stderr);
                return 2;
        }
        r = load(a->pos[0], 0, &p, &d);
        if (r < 0) {
                nono_diags_print(&d, stderr);
                if (r == -EINVAL)
                        nono_err("profile \"%s\" is invalid: fix the errors above", a->pos[0]);
                nono_diags_free(&d);
                return 1;
        }
        if (a->json)
                print_json(nono_profile_to_json(&p));
        else
                show_human(&p);
        nono_profile_free(&p);
        nono_diags_free(&d);
        return 0;
}

static int cmd_validate(const struct args *a)
{
        struct nono_profile p;
        struct nono_diags d = {0};
        size_t warnings;
        int r;

        if (a->n_pos != 1) {
                fputs(usage_text, stderr);
                return 2;
        }
        r = load(a->pos[0], NONO_PROFILE_CHECK_PATHS, &p, &d);
        if (r == -ENOMEM)
                return nono_err("out of memory");
        warnings = d.n - d.n_errors;
        if (a->json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "profile", a->pos[0]);
                if (r == 0)
                        cJSON_AddStringToObject(o, "file", p.file);
                else
                        cJSON_AddNullToObject(o, "file");
                cJSON_AddBoolToObject(o, "valid", r == 0);
                cJSON_AddNumberToObject(o, "errors", d.n_errors);
                cJSON_AddNumberToObject(o, "warnings", warnings);
                cJSON_AddItemToObject(o, "diagnostics", nono_diags_to_json(&d));
                print_json(o);
        } else {
                nono_diags_print(&d, stdout);
                if (r == 0)
                        printf("profile %s is valid (%zu warning%s)\n", a->pos[0], warnings,
                               warnings == 1 ? "" : "s");
                else if (r == -ENOENT)
                        printf("profile %s not found\n", a->pos[0]);
                else
                        printf("profile %s is invalid: %zu error%s, %zu warning%s\n", a->pos[0], d.n_errors,
                               d.n_errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
        }
        if (r == 0)
                nono_profile_free(&p);
        nono_diags_free(&d);
        return r == 0 ? 0 : 1;
}

static char *skeleton(const char *name, const char *base)
{
        cJSON *o = cJSON_CreateObject(), *s;
        char *desc, *text;

        if (asprintf(&desc, "A profile based on %s: say here what it is for", base) < 0)
                return NULL;
        cJSON_AddStringToObject(o, "$schema", "https://nono.dev/schema/profile.json");
        cJSON_AddStringToObject(
            o, "$comment",
            "Lists add to what the base profile grants; nothing here can remove a deny group "
            "(credentials, keychains, browser_data, shell_history, shell_configs). Every key: "
            "nono profile schema. Check with: nono profile validate NAME.");
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "description", desc);
        cJSON_AddStringToObject(o, "extends", base);
        s = cJSON_AddObjectToObject(o, "filesystem");
        cJSON_AddStringToObject(
            s, "$comment",
            "allow: read-write, read: read-only (both executable). Paths are absolute or start "
            "with ~, $HOME, $WORKDIR, $XDG_CONFIG_HOME, $XDG_DATA_HOME, $XDG_CACHE_HOME or "
            "$TMPDIR. deny: masked even inside a grant; globs allowed; "
            "{\"path\": P, \"access\": \"write\"} leaves P readable.");
        cJSON_AddArrayToObject(s, "allow");
        cJSON_AddArrayToObject(s, "read");
        cJSON_AddArrayToObject(s, "deny");
        s = cJSON_AddObjectToObject(o, "network");
        cJSON_AddStringToObject(s, "$comment",
                                "Host names the agent may reach through the proxy (*.example.com "
                                "for subdomains); everything else is blocked.");
        cJSON_AddArrayToObject(s, "allow_domain");
        s = cJSON_AddObjectToObject(o, "commands");
        cJSON_AddStringToObject(s, "$comment",
                                "Program names or absolute paths; empty allow: any program on a "
                                "granted path. deny wins.");
        cJSON_AddArrayToObject(s, "allow");
        cJSON_AddArrayToObject(s, "deny");
        s = cJSON_AddObjectToObject(o, "environment");
        cJSON_AddStringToObject(s, "$comment",
                                "Names or globs (AWS_*) to pass or remove; set: {\"NAME\": \"value\"}.");
        cJSON_AddArrayToObject(s, "allow");
        cJSON_AddArrayToObject(s, "deny");
        cJSON_AddObjectToObject(s, "set");
        s = cJSON_AddObjectToObject(o, "rollback");
        cJSON_AddStringToObject(s, "$comment",
                                "Globs whose changes are not saved for rollback (build outputs).");
        cJSON_AddArrayToObject(s, "exclude");
        text = cJSON_Print(o);
        cJSON_Delete(o);
        free(desc);
        return text;
}

static int mkdir_p(const char *path)
{
        char buf[4096];
        size_t n = strlen(path);

        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        return mkdir(buf, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* Writes text to path via a temporary file and rename(): the profile is either the old one or the new. */
static int write_atomic(const char *path, const char *text, bool force)
{
        char *tmp;
        size_t len = strlen(text);
        int fd, r = 0;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                free(tmp);
                return r;
        }
        if (fchmod(fd, 0644) < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
            fsync(fd) < 0)
                r = errno ? -errno : -EIO;
        close(fd);
        if (r == 0) {
                if (force)
                        r = rename(tmp, path) < 0 ? -errno : 0;
                else /* link() fails with EEXIST instead of replacing: no race with a concurrent init */
                        r = link(tmp, path) < 0 ? -errno : 0;
        }
        unlink(tmp);
        free(tmp);
        return r;
}

static int cmd_init(const struct args *a)
{
        const char *name = a->n_pos == 1 ? a->pos[0] : NULL, *base = a->extends ? a->extends : "default";
        struct nono_profile p;
        struct nono_diags d = {0};
        char *dir = NULL, *path = NULL, *text = NULL;
        int r, status = 1;

        if (!name) {
                fputs(usage_text, stderr);
                return 2;
        }
        if (!nono_profile_name_valid(name))
                return nono_err(
                    "profile init: \"%s\" is not a valid name: use a-z, 0-9, '.', '_' and '-' (at "
                    "most 64, starting with a letter or digit)",
                    name);
        if (nono_profile_is_builtin(name))
                return nono_err("profile init: \"%s\" is a built-in profile: choose another name, e.g. my-%s",
                                name, name);
        r = load(base, 0, &p, &d);
        if (r < 0) {
                nono_diags_print(&d, stderr);
                nono_diags_free(&d);
                return nono_err(
                    "profile init: the base \"%s\" cannot be used: fix it or choose another --extends", base);
        }
        nono_profile_free(&p);
        nono_diags_free(&d);
        dir = nono_profile_user_dir();
        if (!dir || asprintf(&path, "%s/%s.json", dir, name) < 0 || !(text = skeleton(name, base))) {
                nono_err("out of memory");
                goto out;
        }
        r = mkdir_p(dir);
        if (r < 0) {
                nono_err("profile init: cannot create %s: %s", dir, strerror(-r));
                goto out;
        }
        r = write_atomic(path, text, a->force);
        if (r == -EEXIST) {
                nono_err("profile init: %s already exists: edit it, or add --force to overwrite it", path);
                goto out;
        }
        if (r < 0) {
                nono_err("profile init: cannot write %s: %s", path, strerror(-r));
                goto out;
        }
        printf("wrote %s\nedit it, then check it with: nono profile validate %s\n", path, name);
        status = 0;
out:
        free(dir);
        free(path);
        free(text);
        return status;
}

static int cmd_schema(const struct args *a)
{
        size_t len;
        const char *s = nono_profile_embedded("schema.json", &len);

        if (a->n_pos) {
                fputs(usage_text, stderr);
                return 2;
        }
        fwrite(s, 1, len, stdout);
        return 0;
}

int nono_cmd_profile(int argc, char **argv)
{
        struct args a;
        const char *sub = argc > 1 ? argv[1] : NULL;

        if (!sub) {
                fputs(usage_text, stderr);
                return 2;
        }
        if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
                fputs(usage_text, stdout);
                return 0;
        }
        if (parse_args(argc - 2, argv + 2, &a) < 0)
                return 2;
        if (!strcmp(sub, "list"))
                return a.n_pos ? (fputs(usage_text, stderr), 2) : cmd_list(&a);
        if (!strcmp(sub, "show"))
                return cmd_show(&a);
        if (!strcmp(sub, "validate"))
                return cmd_validate(&a);
        if (!strcmp(sub, "init"))
                return cmd_init(&a);
        if (!strcmp(sub, "schema"))
                return cmd_schema(&a);
        nono_err("profile: unknown subcommand '%s' (see nono profile --help)", sub);
        return 2;
}
