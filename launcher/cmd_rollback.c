/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_rollback.c - `nono rollback list|show|restore|mount|verify|cleanup`: argument parsing and printing
 * over the engine (restore.h), the change model (diff_show.h), retention (retention.h) and fs/'s past view.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "launcher/cli.h"
#include "launcher/commands.h"
#include "launcher/diff_show.h"
#include "launcher/restore.h"
#include "launcher/retention.h"
#include "launcher/rollback_verify.h"

static void usage(FILE *f)
{
        fputs("usage: nono rollback list [--json]\n"
              "       nono rollback show ID [--stat|--diff|--json] [PATH...]\n"
              "       nono rollback restore ID [--dry-run] [--force] [PATH...]\n"
              "       nono rollback mount ID DIR [--before|--after] [--root N]\n"
              "       nono rollback verify ID\n"
              "       nono rollback cleanup [--keep N] [--older-than DAYS] [--dry-run]\n",
              f);
}

static int open_store(bool rdonly, nono_store **st)
{
        int r = nono_store_open(NULL, rdonly ? NONO_STORE_RDONLY : 0, st);

        if (r < 0)
                nono_err("cannot open the store: %s", nono_store_errmsg());
        return r;
}

static void cleanup_store(nono_store **st)
{
        if (*st)
                nono_store_close(*st);
}
#define _cleanup_store_ __attribute__((cleanup(cleanup_store)))

static int get_session(nono_store *st, const char *id, struct nono_session *s)
{
        int r = nono_session_get(st, id, s);

        if (r == -ENOENT)
                nono_err("no session '%s': see `nono rollback list`", id);
        else if (r == -EEXIST)
                nono_err("'%s' matches several sessions: give more of the id", id);
        else if (r < 0)
                nono_err("cannot read session %s: %s", id, nono_store_errmsg());
        return r;
}

static const char *state_name(uint32_t s)
{
        static const char *n[] = {"running", "finished", "crashed", "restored"};
        return s < 4 ? n[s] : "?";
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
        time_t t = ns / 1000000000LL;
        struct tm tm;

        if (!ns) {
                snprintf(buf, len, "-");
                return;
        }
        localtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static char *command_line(const struct nono_session *s)
{
        size_t len = 1;
        char *out;

        for (char **a = s->argv; a && *a; a++)
                len += strlen(*a) + 1;
        out = calloc(len, 1);
        for (char **a = s->argv; out && a && *a; a++) {
                if (a != s->argv)
                        strcat(out, " ");
                strcat(out, *a);
        }
        return out;
}

static int cmd_list(int argc, char **argv)
{
        _cleanup_store_ nono_store *st = NULL;
        struct nono_session *v = NULL;
        bool json = argc > 1 && !strcmp(argv[1], "--json");
        size_t n = 0;
        cJSON *arr = json ? cJSON_CreateArray() : NULL;

        if (open_store(true, &st) < 0)
                return 1;
        if (nono_session_list_rollback(st, &v, &n) < 0)
                return nono_err("cannot list sessions: %s", nono_store_errmsg());
        if (!json)
                printf("%-14s %-19s %-19s %-9s %7s %8s %7s %10s  %s\n", "ID", "STARTED", "ENDED", "STATE",
                       "CREATED", "MODIFIED", "DELETED", "PRE-IMAGES", "COMMAND");
        for (size_t i = 0; i < n; i++) {
                struct nono_session *s = &v[i];
                struct nono_changes c = {0};
                char a[32], b[32], *cmd;
                nono_changes_load(st, s->id, NULL, NULL, 0, &c);
                cmd = command_line(s);
                if (json) {
                        cJSON *o = cJSON_CreateObject();
                        cJSON_AddStringToObject(o, "id", s->id);
                        cJSON_AddStringToObject(o, "kind",
                                                s->kind == NONO_SESSION_RESTORE ? "restore" : "run");
                        if (s->parent)
                                cJSON_AddStringToObject(o, "parent", s->parent);
                        nono_json_add_i64(o, "start_ns", s->start_ns);
                        nono_json_add_i64(o, "end_ns", s->end_ns);
                        cJSON_AddStringToObject(o, "state", state_name(s->state));
                        cJSON_AddStringToObject(o, "command", cmd ? cmd : "");
                        cJSON_AddNumberToObject(o, "created", (double)c.created);
                        cJSON_AddNumberToObject(o, "modified", (double)(c.modified + c.renamed));
                        cJSON_AddNumberToObject(o, "deleted", (double)c.deleted);
                        nono_json_add_i64(o, "preimage_bytes", (long long)s->preimage_bytes);
                        cJSON_AddItemToArray(arr, o);
                } else {
                        fmt_time(s->start_ns, a, sizeof a);
                        fmt_time(s->end_ns, b, sizeof b);
                        printf("%-14s %-19s %-19s %-9s %7zu %8zu %7zu %10llu  %s%s%s\n", s->id, a, b,
                               state_name(s->state), c.created, c.modified + c.renamed, c.deleted,
                               (unsigned long long)s->preimage_bytes,
                               s->kind == NONO_SESSION_RESTORE ? "(restore of " : "",
                               s->kind == NONO_SESSION_RESTORE ? (s->parent ? s->parent : "?")
                                                               : (cmd ? cmd : ""),
                               s->kind == NONO_SESSION_RESTORE ? ")" : "");
                }
                free(cmd);
                nono_changes_free(&c);
        }
        if (json) {
                char *t = cJSON_Print(arr);
                printf("%s\n", t ? t : "[]");
                free(t);
                cJSON_Delete(arr);
        }
        nono_session_list_free(v, n);
        return 0;
}

static int cmd_show(int argc, char **argv)
{
        static const struct option opts[] = {{"stat", no_argument, NULL, 's'},
                                             {"diff", no_argument, NULL, 'd'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        enum nono_show_mode m = NONO_SHOW_NAMES;
        _cleanup_store_ nono_store *st = NULL;
        struct nono_session s = {0};
        struct nono_changes c = {0};
        uint32_t *sr;
        char **sp;
        size_t ns = 0;
        int o, r;

        optind = 1;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (o) {
                case 's':
                        m = NONO_SHOW_STAT;
                        break;
                case 'd':
                        m = NONO_SHOW_DIFF;
                        break;
                case 'j':
                        m = NONO_SHOW_JSON;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        if (open_store(true, &st) < 0 || get_session(st, argv[optind], &s) < 0)
                return 1;
        sr = calloc(argc, sizeof *sr);
        sp = calloc(argc, sizeof *sp);
        for (int i = optind + 1; i < argc; i++) {
                if (nono_rollback_user_path(s.roots, argv[i], &sr[ns], &sp[ns]) < 0) {
                        r = nono_err("%s is not inside any root of session %s (%s)", argv[i], s.id,
                                     s.roots && s.roots[0] ? s.roots[0] : "no roots");
                        goto out;
                }
                ns++;
        }
        r = nono_changes_load(st, s.id, sr, sp, ns, &c);
        if (r < 0) {
                r = nono_err("cannot read the changes of %s: %s", s.id, nono_store_errmsg());
                goto out;
        }
        if (!s.rollback && m != NONO_SHOW_JSON)
                fprintf(stderr, "nono: session %s ran without --rollback: no changes were recorded\n", s.id);
        r = nono_show(st, &s, &c, m, nono_color(stdout), stdout) < 0;
out:
        for (size_t i = 0; i < ns; i++)
                free(sp[i]);
        free(sp);
        free(sr);
        nono_changes_free(&c);
        nono_session_clear(&s);
        return r;
}

static int cmd_restore(int argc, char **argv)
{
        static const struct option opts[] = {{"dry-run", no_argument, NULL, 'n'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        struct nono_restore_opts ro = {.progress = isatty(2)};
        struct nono_restore_report rep;
        _cleanup_store_ nono_store *st = NULL;
        int o, r;

        optind = 1;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (o) {
                case 'n':
                        ro.dry_run = true;
                        break;
                case 'f':
                        ro.force = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        ro.paths = (const char *const *)argv + optind + 1;
        ro.n_paths = argc - optind - 1;
        ro.argv = argv - 2; /* main passed argv+1, the dispatcher argv+1 again: the whole command line */
        if (open_store(ro.dry_run, &st) < 0)
                return 1;
        r = nono_restore(st, argv[optind], &ro, &rep);
        if (r < 0)
                return nono_err("%s", *nono_restore_errmsg() ? nono_restore_errmsg() : strerror(-r));
        if (ro.dry_run) {
                printf("dry run: nothing was changed (%zu to restore, %zu to remove, %zu to recreate)\n",
                       rep.restored, rep.removed, rep.created);
                return 0;
        }
        printf("restored session %s: %zu path(s) restored, %zu removed, %zu recreated\n"
               "this restore is session %s: `nono rollback restore %s` undoes it\n",
               argv[optind], rep.restored, rep.removed, rep.created, rep.restore_id, rep.restore_id);
        return 0;
}

static int cmd_mount(int argc, char **argv)
{
        static const struct option opts[] = {{"before", no_argument, NULL, 'b'},
                                             {"after", no_argument, NULL, 'a'},
                                             {"root", required_argument, NULL, 'r'},
                                             {NULL, 0, NULL, 0}};
        enum nono_fs_when when = NONO_FS_BEFORE;
        _cleanup_store_ nono_store *st = NULL;
        struct nono_session s = {0};
        unsigned root = 0;
        int o, r;

        optind = 1;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (o) {
                case 'b':
                        when = NONO_FS_BEFORE;
                        break;
                case 'a':
                        when = NONO_FS_AFTER;
                        break;
                case 'r':
                        root = strtoul(optarg, NULL, 10);
                        break;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (argc - optind != 2) {
                usage(stderr);
                return 2;
        }
        if (open_store(true, &st) < 0 || get_session(st, argv[optind], &s) < 0)
                return 1;
        size_t nr = 0;
        while (s.roots && s.roots[nr])
                nr++;
        if (root >= nr) {
                nono_session_clear(&s);
                return nono_err("session %s has %zu root(s): use --root 0..%zu", argv[optind], nr,
                                nr ? nr - 1 : 0);
        }
        fprintf(stderr, "nono: showing %s %s session %s, read-only; Ctrl-C or `fusermount3 -u %s` ends it\n",
                s.roots[root], when == NONO_FS_BEFORE ? "as it was before" : "as it was after", s.id,
                argv[optind + 1]);
        r = nono_fs_mount_past(st, s.id, root, when, argv[optind + 1]);
        nono_session_clear(&s);
        if (r < 0)
                return nono_err("cannot mount session %s at %s: %s", argv[optind], argv[optind + 1],
                                strerror(-r));
        return 0;
}

static int cmd_verify(int argc, char **argv)
{
        _cleanup_store_ nono_store *st = NULL;
        struct nono_session s = {0};
        struct nono_verify_counts vc;
        int r;

        if (argc != 2) {
                usage(stderr);
                return 2;
        }
        if (open_store(true, &st) < 0 || get_session(st, argv[1], &s) < 0)
                return 1;
        if ((r = nono_rollback_verify(st, s.id, stdout, &vc)) < 0) {
                nono_session_clear(&s);
                return nono_err("cannot read session %s: %s", argv[1], nono_store_errmsg());
        }
        if (vc.bad) {
                nono_err("session %s: %zu pre-image(s) missing or corrupt: the listed paths cannot be "
                         "restored exactly",
                         s.id, vc.bad);
                nono_session_clear(&s);
                return 1;
        }
        printf("session %s: ok (%zu objects and %zu blocks match their SHA-256)\n", s.id, vc.objects,
               vc.chunks);
        nono_session_clear(&s);
        return 0;
}

static int cmd_cleanup(int argc, char **argv)
{
        static const struct option opts[] = {{"keep", required_argument, NULL, 'k'},
                                             {"older-than", required_argument, NULL, 'o'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {NULL, 0, NULL, 0}};
        struct nono_retention rules;
        struct nono_cleanup_result res;
        _cleanup_store_ nono_store *st = NULL;
        bool dry = false, explicit = false;
        char err[512], *end;
        int o, r;

        if (nono_retention_load(&rules, err, sizeof err) < 0)
                return nono_err("%s", err);
        optind = 1;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (o) {
                case 'k':
                case 'o': {
                        long v = strtol(optarg, &end, 10);
                        if (*end || v < 0 || end == optarg)
                                return nono_err("--%s needs a number >= 0, not '%s'",
                                                o == 'k' ? "keep" : "older-than", optarg);
                        if (!explicit)
                                rules = (struct nono_retention){-1, -1, -1};
                        explicit = true;
                        if (o == 'k')
                                rules.keep = v;
                        else
                                rules.max_age_days = v;
                        break;
                }
                case 'n':
                        dry = true;
                        break;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (open_store(false, &st) < 0)
                return 1;
        r = nono_cleanup(st, &rules, dry, true, stdout, &res);
        if (r == -EBUSY)
                return nono_err("another nono%s is restoring or cleaning up sessions in this store: let it "
                                "finish, then run this again",
                                nono_pid_note(res.busy_pid));
        if (r < 0)
                return nono_err("cleanup failed: %s", nono_store_errmsg());
        printf("%s %zu session(s), kept %zu", dry ? "would remove" : "removed", res.removed, res.kept);
        if (!dry && res.gc.bytes_freed)
                printf("; freed %llu bytes", (unsigned long long)res.gc.bytes_freed);
        printf("\n");
        return 0;
}

int nono_cmd_rollback(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } sub[] = {{"list", cmd_list},   {"show", cmd_show},     {"restore", cmd_restore},
                   {"mount", cmd_mount}, {"verify", cmd_verify}, {"cleanup", cmd_cleanup}};

        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        for (size_t i = 0; i < sizeof sub / sizeof *sub; i++)
                if (!strcmp(argv[1], sub[i].name))
                        return sub[i].fn(argc - 1, argv + 1);
        nono_err("unknown rollback command '%s' (see nono rollback --help)", argv[1]);
        return 2;
}
