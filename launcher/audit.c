/* SPDX-License-Identifier: Apache-2.0 */
/* audit.c - session start and end events, operation names (see audit.h). */
#include "launcher/audit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)

static const char *const op_names[128] = {
    [NONO_OP_NONE] = "none",           [NONO_OP_OPEN] = "open",
    [NONO_OP_CREATE] = "create",       [NONO_OP_UNLINK] = "unlink",
    [NONO_OP_RMDIR] = "rmdir",         [NONO_OP_MKDIR] = "mkdir",
    [NONO_OP_MKNOD] = "mknod",         [NONO_OP_SYMLINK] = "symlink",
    [NONO_OP_LINK] = "link",           [NONO_OP_RENAME] = "rename",
    [NONO_OP_CHMOD] = "chmod",         [NONO_OP_CHOWN] = "chown",
    [NONO_OP_UTIMENS] = "utimens",     [NONO_OP_TRUNCATE] = "truncate",
    [NONO_OP_SETXATTR] = "setxattr",   [NONO_OP_REMOVEXATTR] = "removexattr",
    [NONO_OP_FALLOCATE] = "fallocate", [NONO_OP_COPY_RANGE] = "copy_range",
    [NONO_OP_READDIR] = "readdir",     [NONO_OP_READLINK] = "readlink",
    [NONO_OP_LOOKUP] = "lookup",       [NONO_OP_ACCESS] = "access",
    [NONO_OP_GETXATTR] = "getxattr",   [NONO_OP_EXEC] = "exec",
    [NONO_OP_CONNECT] = "connect",     [NONO_OP_SENDTO] = "sendto",
    [NONO_OP_PROXY] = "proxy",         [NONO_OP_BIND] = "bind",
    [NONO_OP_START] = "start",         [NONO_OP_END] = "end",
    [NONO_OP_SYSCALL] = "syscall",     [NONO_OP_OTHER] = "other",
};

const char *nono_op_name(unsigned op)
{
        return op < 128 && op_names[op] ? op_names[op] : "?";
}

const char *nono_event_type_name(unsigned type)
{
        static const char *const t[] = {"?", "file", "exec", "net", "session"};

        return type < 5 ? t[type] : "?";
}

/* The Landlock ABI version of the running kernel, or 0 when Landlock is unavailable. */
static int query_landlock_abi(void)
{
        long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

        return v < 0 ? 0 : (int)v;
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Stamps an event made by nono itself (now, this process) and sets its detail from the JSON (ev->detail is
 * then malloc'd, or NULL without detail). */
static int event_stamp(struct nono_event *ev, cJSON *detail)
{
        char *json = detail ? cJSON_PrintUnformatted(detail) : NULL;

        if (detail && !json)
                return -ENOMEM;
        ev->time_ns = now_ns();
        ev->pid = (uint32_t)getpid();
        ev->ppid = (uint32_t)getppid();
        ev->uid = (uint32_t)getuid();
        ev->detail = json;
        return 0;
}

int nono_audit_session_start(nono_store *st, const char *session, char *const *argv, const char *policy_json,
                             int landlock_abi)
{
        return nono_audit_session_start_flags(st, session, argv, policy_json, landlock_abi, 0);
}

int nono_audit_session_start_flags(nono_store *st, const char *session, char *const *argv,
                                   const char *policy_json, int landlock_abi, unsigned flags)
{
        struct utsname u;
        cJSON *d = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(d, "argv");
        int r;

        if (!d || !a) {
                cJSON_Delete(d);
                return -ENOMEM;
        }
        for (size_t i = 0; argv && argv[i]; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(argv[i]));
        /* The policy goes in as the JSON text it is (nono_policy_to_json's, an object): parsing it into
         * this tree to print it again cost the session thread a 9 KiB parse and print on the way to the
         * agent's start. Anything else is kept as a string. */
        bool splice = policy_json && policy_json[0] == '{';
        if (policy_json && !splice)
                cJSON_AddStringToObject(d, "policy", policy_json);
        cJSON *tail = cJSON_CreateObject();
        if (!tail) {
                cJSON_Delete(d);
                return -ENOMEM;
        }
        cJSON_AddNumberToObject(tail, "landlock_abi", landlock_abi < 0 ? query_landlock_abi() : landlock_abi);
        if (uname(&u) == 0)
                cJSON_AddStringToObject(tail, "kernel", u.release);
        cJSON_AddStringToObject(tail, "nono", NONO_VERSION);
        /* {"argv":[...],"policy":POLICY,"landlock_abi":N,...}: the bytes cJSON printed before for one tree */
        char *head = cJSON_PrintUnformatted(d), *rest = cJSON_PrintUnformatted(tail), *json = NULL;
        cJSON_Delete(d);
        cJSON_Delete(tail);
        if (head && rest &&
            asprintf(&json, "%.*s%s%s,%s", (int)strlen(head) - 1, head, splice ? ",\"policy\":" : "",
                     splice ? policy_json : "", rest + 1) < 0)
                json = NULL;
        free(head);
        free(rest);
        if (!json)
                return -ENOMEM;

        struct nono_event ev = {
            .type = NONO_EV_SESSION,
            .op = NONO_OP_START,
            .path = argv && argv[0] ? argv[0] : NULL,
        };
        r = event_stamp(&ev, NULL);
        ev.detail = json;
        if (r == 0)
                r = nono_events_append(st, session, &ev, 1, flags);
        free(json);
        return r;
}

int nono_audit_session_end(nono_store *st, const char *session, int exit_status, int64_t duration_ns)
{
        struct nono_event ev;
        int r = nono_audit_end_event(st, session, exit_status, duration_ns, &ev);

        if (r == 0)
                r = nono_events_append(st, session, &ev, 1, 0);
        free((char *)ev.detail);
        return r;
}

int nono_audit_sigsys_event(nono_store *st, const char *session, unsigned flags)
{
        struct nono_event v = {
            .type = NONO_EV_SESSION,
            .op = NONO_OP_SYSCALL,
            .result = EPERM,
            .flags = NONO_EVF_VIOLATION,
            .path = "SIGSYS",
            .detail = "the agent was killed by SIGSYS: it made a system call that the seccomp filter "
                      "forbids (which one needs kernel audit to see)",
        };
        v.time_ns = now_ns();
        v.pid = (uint32_t)getpid();
        return nono_events_append(st, session, &v, 1, flags);
}

int nono_audit_end_fill(const struct nono_event_counts *c, int exit_status, int64_t duration_ns,
                        struct nono_event *ev)
{
        cJSON *d, *cnt;
        int r;

        *ev = (struct nono_event){.type = NONO_EV_SESSION, .op = NONO_OP_END};
        d = cJSON_CreateObject();
        cnt = cJSON_AddObjectToObject(d, "counts");
        if (!d || !cnt) {
                cJSON_Delete(d);
                return -ENOMEM;
        }
        cJSON_AddNumberToObject(d, "exit_status", exit_status);
        cJSON_AddNumberToObject(d, "duration_ms", (double)(duration_ns / 1000000));
        cJSON_AddNumberToObject(cnt, "events", (double)c->by_type[0]);
        cJSON_AddNumberToObject(cnt, "file", (double)c->by_type[NONO_EV_FILE]);
        cJSON_AddNumberToObject(cnt, "exec", (double)c->by_type[NONO_EV_EXEC]);
        cJSON_AddNumberToObject(cnt, "net", (double)c->by_type[NONO_EV_NET]);
        cJSON_AddNumberToObject(cnt, "reads", (double)c->reads);
        cJSON_AddNumberToObject(cnt, "writes", (double)c->writes);
        cJSON_AddNumberToObject(cnt, "violations", (double)c->violations);

        r = event_stamp(ev, d);
        cJSON_Delete(d);
        return r;
}

int nono_audit_end_event(nono_store *st, const char *session, int exit_status, int64_t duration_ns,
                         struct nono_event *ev)
{
        struct nono_event_counts c;
        int r;

        *ev = (struct nono_event){.type = NONO_EV_SESSION, .op = NONO_OP_END};
        r = nono_store_sync(st);
        if (r < 0) {
                /* earlier NONO_ASYNC work that failed is reported once, here: it must not cost the end
                 * event too (the second sync fails only if the store itself does) */
                fprintf(stderr, "nono: some audit events of session %s could not be stored: %s\n", session,
                        nono_store_errmsg());
                r = nono_store_sync(st);
        }
        if (r == 0)
                r = nono_events_count(st, session, &c);
        if (r < 0)
                return r;
        if (exit_status == 128 + SIGSYS) {
                if ((r = nono_audit_sigsys_event(st, session, 0)) < 0)
                        return r;
                c.violations++;
                c.by_type[0]++;
        }
        return nono_audit_end_fill(&c, exit_status, duration_ns, ev);
}
