/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_audit.c - `nono audit list | show ID | verify ID`: what did the agent do, and is the record intact.
 *
 * The store is opened read-only: reading the trail never changes it. JSON output is one object per line
 * (easy to stream into jq or grep); the fields are documented in docs/README-audit.md and only ever grow.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "launcher/audit.h"
#include "launcher/cli.h"
#include "launcher/seal.h"
#include "store/store.h"

#define RED   "\033[1;31m"
#define RESET "\033[0m"

static void store_closep(nono_store **s)
{
        if (*s)
                nono_store_close(*s);
}
#define _cleanup_store_ __attribute__((cleanup(store_closep)))

static int open_store(nono_store **st)
{
        int r = nono_store_open(NULL, NONO_STORE_RDONLY, st);

        if (r == -ENOENT) {
                *st = NULL;
                return 0; /* no store yet: no sessions */
        }
        if (r < 0)
                return nono_err("cannot open the store: %s", nono_store_errmsg());
        return 0;
}

static int get_session(nono_store *st, const char *id, struct nono_session *s)
{
        int r = st ? nono_session_get(st, id, s) : -ENOENT;

        if (r == -ENOENT)
                return nono_err("no session '%s': see nono audit list", id);
        if (r == -EEXIST)
                return nono_err("'%s' matches several sessions: give more characters of the id", id);
        if (r < 0)
                return nono_err("cannot read session '%s': %s", id, nono_store_errmsg());
        return 0;
}

/* ---- formatting helpers --------------------------------------------------------------------------- */

static void fmt_local(int64_t ns, char *buf, size_t len, const char *fmt)
{
        time_t t = (time_t)(ns / 1000000000);
        struct tm tm;

        localtime_r(&t, &tm);
        strftime(buf, len, fmt, &tm);
}

static void fmt_utc_iso(int64_t ns, char *buf, size_t len)
{
        time_t t = (time_t)(ns / 1000000000);
        struct tm tm;
        char b[32];

        gmtime_r(&t, &tm);
        strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, len, "%s.%03dZ", b, (int)(ns % 1000000000 / 1000000));
}

static void fmt_duration(const struct nono_session *s, char *buf, size_t len)
{
        int64_t ms;

        if (!s->end_ns) {
                snprintf(buf, len, s->state == NONO_SESSION_CRASHED ? "crashed" : "running");
                return;
        }
        ms = (s->end_ns - s->start_ns) / 1000000;
        if (ms < 60000)
                snprintf(buf, len, "%.1fs", (double)ms / 1000);
        else if (ms < 3600000)
                snprintf(buf, len, "%dm%02ds", (int)(ms / 60000), (int)(ms / 1000 % 60));
        else
                snprintf(buf, len, "%dh%02dm", (int)(ms / 3600000), (int)(ms / 60000 % 60));
}

static const char *state_name(uint32_t st)
{
        static const char *const n[] = {"running", "finished", "crashed", "restored"};

        return st < 4 ? n[st] : "?";
}

/*
 * Names, paths and arguments come from the agent, which may put terminal escape sequences in them to
 * repaint the screen and hide a violation. Human output shows every control byte as \xNN (and a backslash as
 * \\); JSON output is escaped by cJSON.
 */
static void defang(char *s, size_t cap)
{
        size_t n = strlen(s), extra = 0;
        char *tmp;

        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
                        extra += s[i] == '\\' ? 1 : 3;
        if (!extra || !(tmp = malloc(n + extra + 1)))
                return;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '\\') {
                        tmp[o++] = '\\';
                        tmp[o++] = '\\';
                } else if (c < 0x20 || c == 0x7f) {
                        o += (size_t)sprintf(tmp + o, "\\x%02x", c);
                } else {
                        tmp[o++] = (char)c;
                }
        }
        tmp[o] = 0;
        snprintf(s, cap, "%s", tmp);
        free(tmp);
}

static void join_argv(char **argv, char *buf, size_t len)
{
        size_t used = 0;

        buf[0] = 0;
        for (size_t i = 0; argv && argv[i] && used + 1 < len; i++)
                used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? " " : "", argv[i]);
}

static cJSON *strv_json(char **v)
{
        cJSON *a = cJSON_CreateArray();

        for (size_t i = 0; v && v[i]; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
        return a;
}

/* 64-bit integers printed exactly (cJSON numbers are doubles). */
static void print_json_line(cJSON *o)
{
        char *s = cJSON_PrintUnformatted(o);

        if (s)
                puts(s);
        free(s);
        cJSON_Delete(o);
}

/* "30m", "2h", "7d", "2026-11-27", "2026-11-27 10:00", "2026-11-27T10:00:00" -> ns since the epoch. */
static int parse_since(const char *s, int64_t *out)
{
        static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
                                           "%Y-%m-%d %H:%M", "%Y-%m-%d"};
        char *end;
        long v = strtol(s, &end, 10);

        if (end != s && v >= 0 && end[0] && !end[1] && strchr("smhd", end[0])) {
                long mul = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : 86400;
                *out = ((int64_t)time(NULL) - (int64_t)v * mul) * 1000000000;
                return 0;
        }
        for (size_t i = 0; i < sizeof(fmts) / sizeof(*fmts); i++) {
                struct tm tm = {0};
                const char *e = strptime(s, fmts[i], &tm);
                if (e && !*e) {
                        tm.tm_isdst = -1;
                        time_t t = mktime(&tm);
                        *out = t > INT64_MAX / 1000000000 ? INT64_MAX : (int64_t)t * 1000000000;
                        return 0;
                }
        }
        return -EINVAL;
}

static bool command_matches(char **argv, const char *word)
{
        for (size_t i = 0; argv && argv[i]; i++) {
                const char *base = strrchr(argv[i], '/');
                if (!strcmp(argv[i], word) || (base && !strcmp(base + 1, word)))
                        return true;
        }
        return false;
}

static bool is_sealed(const struct nono_session *s)
{
        for (size_t i = 0; i < sizeof(s->seal); i++)
                if (s->seal[i])
                        return true;
        return false;
}

/* ---- list ----------------------------------------------------------------------------------------- */

static int audit_list(int argc, char **argv)
{
        static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                             {"since", required_argument, NULL, 's'},
                                             {"command", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
        _cleanup_store_ nono_store *st = NULL;
        struct nono_session *v = NULL;
        const char *word = NULL;
        bool json = false;
        int64_t since = INT64_MIN;
        size_t n = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 's':
                        if (parse_since(optarg, &since) < 0)
                                return nono_err(
                                    "--since '%s': give a date (2026-11-27, '2026-11-27 10:00') or an "
                                    "age (30m, 2h, 7d)",
                                    optarg);
                        break;
                case 'c':
                        word = optarg;
                        break;
                case 'h':
                        puts("usage: nono audit list [--json] [--since DATE|AGE] [--command WORD]");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind < argc)
                return nono_err("unexpected argument '%s' (see nono audit list --help)", argv[optind]);
        if (open_store(&st))
                return 1;
        if (st && (r = nono_session_list(st, &v, &n)) < 0)
                return nono_err("cannot list sessions: %s", nono_store_errmsg());
        if (!json)
                printf("%-13s  %-19s  %8s  %4s  %6s  %6s  %5s  %4s  %4s  %s\n", "ID", "START", "DURATION",
                       "EXIT", "READS", "WRITES", "EXECS", "NET", "VIOL", "COMMAND");
        for (size_t i = 0; i < n; i++) {
                struct nono_session *s = &v[i];
                struct nono_event_counts k = {0};
                char start[32], dur[32], cmd[512], ex[16];

                if (s->start_ns < since || (word && !command_matches(s->argv, word)))
                        continue;
                if (nono_events_count(st, s->id, &k) < 0)
                        nono_err("cannot count the events of %s: %s", s->id, nono_store_errmsg());
                if (json) {
                        cJSON *o = cJSON_CreateObject();
                        char iso[40];
                        fmt_utc_iso(s->start_ns, iso, sizeof(iso));
                        cJSON_AddStringToObject(o, "id", s->id);
                        cJSON_AddStringToObject(o, "start", iso);
                        nono_json_add_i64(o, "start_ns", s->start_ns);
                        if (s->end_ns)
                                cJSON_AddNumberToObject(o, "duration_ms",
                                                        (double)((s->end_ns - s->start_ns) / 1000000));
                        else
                                cJSON_AddNullToObject(o, "duration_ms");
                        cJSON_AddStringToObject(o, "state", state_name(s->state));
                        cJSON_AddItemToObject(o, "command", strv_json(s->argv));
                        if (s->end_ns)
                                cJSON_AddNumberToObject(o, "exit_status", s->exit_status);
                        else
                                cJSON_AddNullToObject(o, "exit_status");
                        cJSON_AddNumberToObject(o, "events", (double)k.by_type[0]);
                        cJSON_AddNumberToObject(o, "reads", (double)k.reads);
                        cJSON_AddNumberToObject(o, "writes", (double)k.writes);
                        cJSON_AddNumberToObject(o, "execs", (double)k.by_type[NONO_EV_EXEC]);
                        cJSON_AddNumberToObject(o, "net", (double)k.by_type[NONO_EV_NET]);
                        cJSON_AddNumberToObject(o, "violations", (double)k.violations);
                        cJSON_AddBoolToObject(o, "sealed", is_sealed(s));
                        print_json_line(o);
                        continue;
                }
                fmt_local(s->start_ns, start, sizeof(start), "%Y-%m-%d %H:%M:%S");
                fmt_duration(s, dur, sizeof(dur));
                join_argv(s->argv, cmd, sizeof(cmd));
                defang(cmd, sizeof(cmd));
                if (s->end_ns)
                        snprintf(ex, sizeof(ex), "%d", s->exit_status);
                else
                        snprintf(ex, sizeof(ex), "-");
                printf("%-13s  %-19s  %8s  %4s  %6llu  %6llu  %5llu  %4llu  %4llu  %s\n", s->id, start, dur,
                       ex, (unsigned long long)k.reads, (unsigned long long)k.writes,
                       (unsigned long long)k.by_type[NONO_EV_EXEC],
                       (unsigned long long)k.by_type[NONO_EV_NET], (unsigned long long)k.violations, cmd);
        }
        nono_session_list_free(v, n);
        return 0;
}

/* ---- show ----------------------------------------------------------------------------------------- */

struct show {
        const struct nono_session *s;
        bool json, violations_only, color;
        int type; /* 0: all */
};

/* The event's target in words: the full path for files, the command line for execs, the address for net. */
static void event_target(const struct show *sh, const struct nono_event *ev, char *buf, size_t len)
{
        const char *root = NULL;
        size_t nroots = 0;

        while (sh->s->roots && sh->s->roots[nroots])
                nroots++;
        switch (ev->type) {
        case NONO_EV_FILE:
                root = ev->root < nroots ? sh->s->roots[ev->root] : "";
                if (ev->path2)
                        snprintf(buf, len, "%s/%s -> %s/%s", root, ev->path ? ev->path : "", root, ev->path2);
                else
                        snprintf(buf, len, "%s%s%s", root, ev->path && *ev->path ? "/" : "",
                                 ev->path ? ev->path : "");
                return;
        case NONO_EV_EXEC: {
                cJSON *a = ev->detail ? cJSON_Parse(ev->detail) : NULL;
                size_t used = (size_t)snprintf(buf, len, "%s", ev->path ? ev->path : "?");
                cJSON *it;
                int i = 0;
                cJSON_ArrayForEach(it, a)
                {
                        if (i++ && cJSON_IsString(it) && used + 1 < len)
                                used += (size_t)snprintf(buf + used, len - used, " %s", it->valuestring);
                }
                cJSON_Delete(a);
                return;
        }
        case NONO_EV_NET:
                snprintf(buf, len, "%s", ev->detail ? ev->detail : (ev->path ? ev->path : "?"));
                return;
        default:
                snprintf(buf, len, "%s", ev->path ? ev->path : ev->detail ? ev->detail : "");
        }
}

static const char *event_operation(const struct nono_event *ev)
{
        if (ev->type == NONO_EV_FILE && ev->op == NONO_OP_OPEN) {
                unsigned acc = ev->oflags & 3;
                return acc == 0 ? "read" : acc == 1 ? "write" : "read+write";
        }
        return nono_op_name(ev->op);
}

/* "ok", an errno name, "DENIED EACCES", or "-" when the kernel decided after the record (exec/net). */
static void event_result(const struct nono_event *ev, char *buf, size_t len)
{
        const char *e = ev->result ? strerrorname_np(ev->result) : NULL;
        char num[16];

        if (ev->result && !e) {
                snprintf(num, sizeof(num), "E%d", ev->result);
                e = num;
        }
        if (ev->flags & NONO_EVF_VIOLATION)
                snprintf(buf, len, "DENIED%s%s", e ? " " : "", e ? e : "");
        else if (e)
                snprintf(buf, len, "%s", e);
        else if (!ev->result &&
                 (ev->type == NONO_EV_EXEC || ev->op == NONO_OP_CONNECT || ev->op == NONO_OP_SENDTO))
                snprintf(buf, len, "-");
        else
                snprintf(buf, len, "ok");
}

static cJSON *event_json(const struct show *sh, const struct nono_event *ev)
{
        cJSON *o = cJSON_CreateObject();
        char iso[40], target[8192];
        const char *err = ev->result ? strerrorname_np(ev->result) : NULL;

        fmt_utc_iso(ev->time_ns, iso, sizeof(iso));
        event_target(sh, ev, target, sizeof(target));
        cJSON_AddStringToObject(o, "session", sh->s->id);
        cJSON_AddNumberToObject(o, "seq", (double)ev->seq);
        cJSON_AddStringToObject(o, "time", iso);
        nono_json_add_i64(o, "time_ns", ev->time_ns);
        cJSON_AddStringToObject(o, "type", nono_event_type_name(ev->type));
        cJSON_AddStringToObject(o, "op", nono_op_name(ev->op));
        cJSON_AddNumberToObject(o, "pid", ev->pid);
        cJSON_AddNumberToObject(o, "ppid", ev->ppid);
        cJSON_AddNumberToObject(o, "uid", ev->uid);
        cJSON_AddNumberToObject(o, "result", ev->result);
        if (err)
                cJSON_AddStringToObject(o, "errno", err);
        else
                cJSON_AddNullToObject(o, "errno");
        cJSON_AddBoolToObject(o, "violation", ev->flags & NONO_EVF_VIOLATION);
        cJSON_AddStringToObject(o, "target", target);
        if (ev->path)
                cJSON_AddStringToObject(o, "path", ev->path);
        if (ev->path2)
                cJSON_AddStringToObject(o, "path2", ev->path2);
        if (ev->type == NONO_EV_FILE) {
                cJSON_AddNumberToObject(o, "root", ev->root);
                cJSON_AddNumberToObject(o, "oflags", ev->oflags);
                cJSON_AddNumberToObject(o, "bytes_read", (double)ev->bytes_read);
                cJSON_AddNumberToObject(o, "bytes_written", (double)ev->bytes_written);
                if (ev->flags & NONO_EVF_UNCOUNTED) { /* FUSE passthrough: the kernel moved the bytes */
                        cJSON_AddBoolToObject(o, "bytes_counted", false);
                        cJSON_AddBoolToObject(o, "data_changed", ev->flags & NONO_EVF_DATA_CHANGED);
                }
        }
        if (ev->type == NONO_EV_EXEC) {
                cJSON *a = ev->detail ? cJSON_Parse(ev->detail) : NULL;
                cJSON_AddItemToObject(o, "argv", a ? a : cJSON_CreateArray());
        } else if (ev->type == NONO_EV_NET) {
                cJSON_AddStringToObject(o, "dest", ev->detail ? ev->detail : "");
                cJSON_AddStringToObject(o, "family",
                                        ev->oflags == 2    ? "inet"
                                        : ev->oflags == 10 ? "inet6"
                                                           : "other");
        } else if (ev->detail) {
                cJSON *d = cJSON_Parse(ev->detail);
                cJSON_AddItemToObject(o, "detail", d ? d : cJSON_CreateString(ev->detail));
        }
        return o;
}

static int show_cb(const struct nono_event *ev, void *userdata)
{
        const struct show *sh = userdata;
        bool viol = ev->flags & NONO_EVF_VIOLATION;
        char when[32], target[8192], result[64];

        if (sh->violations_only && !viol)
                return 0;
        if (sh->type && ev->type != sh->type)
                return 0;
        if (sh->json) {
                print_json_line(event_json(sh, ev));
                return 0;
        }
        fmt_local(ev->time_ns, when, sizeof(when), "%H:%M:%S");
        event_target(sh, ev, target, sizeof(target));
        event_result(ev, result, sizeof(result));
        if (ev->type == NONO_EV_FILE && (ev->flags & NONO_EVF_UNCOUNTED)) {
                size_t l = strlen(target);
                snprintf(target + l, sizeof(target) - l, " (bytes not counted: passthrough%s)",
                         (ev->flags & NONO_EVF_DATA_CHANGED) ? "; data changed" : "");
        } else if (ev->type == NONO_EV_FILE && (ev->bytes_read || ev->bytes_written)) {
                size_t l = strlen(target);
                snprintf(target + l, sizeof(target) - l, " (%llu B read, %llu B written)",
                         (unsigned long long)ev->bytes_read, (unsigned long long)ev->bytes_written);
        }
        defang(target, sizeof(target));
        printf("%s%s.%03d  %7u  %-10s  %-13s  %s%s\n", viol && sh->color ? RED : "", when,
               (int)(ev->time_ns % 1000000000 / 1000000), ev->pid, event_operation(ev), result, target,
               viol && sh->color ? RESET : "");
        return 0;
}

static int audit_show(int argc, char **argv)
{
        static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                             {"violations", no_argument, NULL, 'v'},
                                             {"type", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
        _cleanup_store_ nono_store *st = NULL;
        struct nono_session s = {0};
        struct show sh = {.s = &s};
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        sh.json = true;
                        break;
                case 'v':
                        sh.violations_only = true;
                        break;
                case 't':
                        sh.type = !strcmp(optarg, "file")   ? NONO_EV_FILE
                                  : !strcmp(optarg, "exec") ? NONO_EV_EXEC
                                  : !strcmp(optarg, "net")  ? NONO_EV_NET
                                                            : -1;
                        if (sh.type < 0)
                                return nono_err("--type '%s': use file, exec or net", optarg);
                        break;
                case 'h':
                        puts("usage: nono audit show ID [--json] [--violations] [--type file|exec|net]");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind + 1 != argc)
                return nono_err("usage: nono audit show ID [--json] [--violations] [--type file|exec|net]");
        if (open_store(&st) || get_session(st, argv[optind], &s))
                return 1;
        sh.color = !sh.json && nono_color(stdout);
        if (!sh.json) {
                char start[32], dur[32], cmd[1024];
                fmt_local(s.start_ns, start, sizeof(start), "%Y-%m-%d %H:%M:%S");
                fmt_duration(&s, dur, sizeof(dur));
                join_argv(s.argv, cmd, sizeof(cmd));
                defang(cmd, sizeof(cmd));
                printf("session %s  %s\ncommand %s\nstarted %s  duration %s", s.id, state_name(s.state), cmd,
                       start, dur);
                if (s.end_ns)
                        printf("  exit %d", s.exit_status);
                printf("\n\n%-12s  %7s  %-10s  %-13s  %s\n", "TIME", "PID", "OPERATION", "RESULT", "TARGET");
        }
        r = nono_events_iterate(st, s.id, 1, show_cb, &sh);
        nono_session_clear(&s);
        if (r < 0)
                return nono_err("cannot read the events: %s", nono_store_errmsg());
        return 0;
}

/* ---- verify --------------------------------------------------------------------------------------- */

static int audit_verify(int argc, char **argv)
{
        static const struct option opts[] = {{"public-key", required_argument, NULL, 'k'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
        _cleanup_store_ nono_store *st = NULL;
        struct nono_session s = {0};
        struct nono_verify_report rep;
        uint8_t pub[32];
        bool have_pub = false, json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'k':
                        if (nono_audit_pubkey_read(optarg, pub) < 0)
                                return nono_err("%s", nono_audit_errmsg());
                        have_pub = true;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        puts("usage: nono audit verify ID [--public-key FILE] [--json]");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind + 1 != argc)
                return nono_err("usage: nono audit verify ID [--public-key FILE] [--json]");
        if (open_store(&st) || get_session(st, argv[optind], &s))
                return 1;
        r = nono_audit_verify(st, s.id, have_pub ? pub : NULL, &rep);
        if (r < 0) {
                nono_session_clear(&s);
                return nono_err("%s", nono_audit_errmsg());
        }
        if (json) {
                cJSON *o = cJSON_CreateObject();
                static const char *const v[] = {"ok", "bad", "?", "unsealed"};
                cJSON_AddStringToObject(o, "session", s.id);
                cJSON_AddStringToObject(o, "verdict", v[rep.verdict]);
                cJSON_AddNumberToObject(o, "events", (double)rep.events);
                if (rep.first_bad)
                        cJSON_AddNumberToObject(o, "first_bad", (double)rep.first_bad);
                else
                        cJSON_AddNullToObject(o, "first_bad");
                cJSON_AddBoolToObject(o, "sealed", rep.sealed);
                cJSON_AddNumberToObject(o, "sealed_events", (double)s.sealed_events);
                cJSON_AddBoolToObject(o, "signature_ok", rep.signature_ok);
                cJSON_AddBoolToObject(o, "key_trusted", rep.key_trusted);
                cJSON_AddStringToObject(o, "key", rep.sealed ? rep.fingerprint : "");
                cJSON_AddStringToObject(o, "key_source", rep.key_source);
                cJSON_AddStringToObject(o, "problem", rep.problem);
                print_json_line(o);
        } else if (rep.verdict == NONO_VERIFY_BAD) {
                printf("session %s: TAMPERED\n  %s\n", s.id, rep.problem);
        } else if (rep.verdict == NONO_VERIFY_UNSEALED) {
                printf("session %s: NOT SEALED\n  chain intact over %llu events, but the session was never "
                       "sealed: "
                       "%s\n",
                       s.id, (unsigned long long)rep.events,
                       rep.running
                           ? "it is still running"
                           : "nono did not finish it (killed or crashed); what was durable is intact, but "
                             "events lost at the end, or removed from the end, cannot be detected");
        } else {
                printf("session %s: OK\n  %llu events, chain intact, sealed by %s\n  signature checked "
                       "against %s\n",
                       s.id, (unsigned long long)rep.events, rep.fingerprint, rep.key_source);
                if (!rep.key_trusted)
                        printf(
                            "  warning: no trusted key: this proves the record is consistent, not who sealed "
                            "it (pass --public-key FILE)\n");
        }
        nono_session_clear(&s);
        return rep.verdict == NONO_VERIFY_OK ? 0 : rep.verdict == NONO_VERIFY_UNSEALED ? 3 : 1;
}

/* ---- dispatch ------------------------------------------------------------------------------------- */

int nono_audit_main(int argc, char **argv)
{
        static const char usage[] =
            "usage: nono audit list [--json] [--since DATE] [--command WORD]\n"
            "       nono audit show ID [--json] [--violations] [--type file|exec|net]\n"
            "       nono audit verify ID [--public-key FILE] [--json]\n";

        if (argc < 2) {
                fputs(usage, stderr);
                return 2;
        }
        optind = 1;
        if (!strcmp(argv[1], "list"))
                return audit_list(argc - 1, argv + 1);
        if (!strcmp(argv[1], "show"))
                return audit_show(argc - 1, argv + 1);
        if (!strcmp(argv[1], "verify"))
                return audit_verify(argc - 1, argv + 1);
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(usage, stdout);
                return 0;
        }
        nono_err("unknown audit command '%s' (list, show or verify)", argv[1]);
        return 2;
}
