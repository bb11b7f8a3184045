/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nono-audit-fixture - builds audit sessions for the end-to-end tests and the benchmark while `nono run` is
 * not there, through the same store and supervisor API that `nono run` uses. Not installed.
 *
 *   nono-audit-fixture make                       a finished, sealed session with one event of each kind
 *                                                 and two violations; prints its id
 *   nono-audit-fixture run [--no-audit] [--no-seal] -- CMD [ARGS]
 *                                                 runs CMD under the supervisor in a new session; prints the
 *                                                 id on stderr as "session ID"; exits with CMD's status
 *   nono-audit-fixture crash                      a session whose owner is SIGKILLed after 3 durable events
 *   nono-audit-fixture tamper ID modify|delete|reorder|append|truncate|exit|reseal [SEQ]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launcher/audit.h"
#include "launcher/seal.h"
#include "launcher/supervisor.h"
#include "testlib.h"

static int die(const char *what, int r)
{
        fprintf(stderr, "nono-audit-fixture: %s: %s (%s %s)\n", what, strerror(-r), nono_store_errmsg(),
                nono_audit_errmsg());
        return 1;
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmd_make(nono_store *st)
{
        char *argv[] = {"agent", "--task", "fix the build", NULL};
        struct nono_session s;
        int r = tl_session_create(st, argv, &s);

        if (r < 0)
                return die("session", r);
        struct nono_event ev[] = {
            {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "src/main.c", .oflags = 0, .bytes_read = 120},
            {.type = NONO_EV_FILE,
             .op = NONO_OP_OPEN,
             .path = "src/main.c",
             .oflags = 1,
             .bytes_written = 64},
            {.type = NONO_EV_FILE, .op = NONO_OP_RENAME, .path = "a.tmp", .path2 = "a.txt"},
            {.type = NONO_EV_FILE,
             .op = NONO_OP_OPEN,
             .path = ".env",
             .result = EACCES,
             .flags = NONO_EVF_VIOLATION},
            {.type = NONO_EV_EXEC,
             .op = NONO_OP_EXEC,
             .path = "/usr/bin/make",
             .detail = "[\"make\",\"-j2\"]"},
            {.type = NONO_EV_NET, .op = NONO_OP_CONNECT, .oflags = 2, .detail = "93.184.216.34:443"},
            {.type = NONO_EV_NET,
             .op = NONO_OP_CONNECT,
             .oflags = 2,
             .detail = "10.0.0.1:22",
             .result = ENETUNREACH,
             .flags = NONO_EVF_VIOLATION},
        };
        r = nono_audit_session_start(st, s.id, argv, "{\"profile\":\"test\"}", -1);
        for (size_t i = 0; r == 0 && i < sizeof(ev) / sizeof(*ev); i++) {
                ev[i].time_ns = now_ns();
                ev[i].pid = (uint32_t)getpid();
                ev[i].ppid = (uint32_t)getppid();
                r = nono_events_append(st, s.id, &ev[i], 1, 0);
        }
        if (r == 0)
                r = tl_session_finish(st, &s, 2);
        if (r == 0)
                r = nono_audit_seal(st, s.id);
        if (r < 0)
                return die("make", r);
        puts(s.id);
        nono_session_clear(&s);
        return 0;
}

static int cmd_run(nono_store *st, int argc, char **argv)
{
        bool audit = true, seal = true;
        struct nono_session s;
        nono_supervisor *sup = NULL;
        int i = 0, fd = -1, status, r;
        pid_t pid;

        for (; i < argc && strcmp(argv[i], "--"); i++) {
                if (!strcmp(argv[i], "--no-audit"))
                        audit = false;
                else if (!strcmp(argv[i], "--no-seal"))
                        seal = false;
        }
        if (i + 1 >= argc)
                return die("run: usage: run [--no-audit] [--no-seal] -- CMD", -EINVAL);
        argv += i + 1;
        r = tl_session_create(st, argv, &s);
        if (r == 0)
                r = nono_audit_session_start(st, s.id, argv, NULL, -1);
        if (r < 0)
                return die("session", r);
        fprintf(stderr, "session %s\n", s.id);
        if (audit) {
                pid = tl_spawn(NONO_SUP_DEFAULT, false, argv, NULL, NULL, &fd);
                if (pid < 0)
                        return die("spawn", pid);
                r = nono_supervisor_start(fd, st, s.id, &sup);
                if (r < 0)
                        return die("supervisor", r);
        } else {
                pid = fork();
                if (pid == 0) {
                        execv(argv[0], argv);
                        _exit(127);
                }
        }
        status = tl_wait(pid);
        r = nono_supervisor_stop(sup);
        if (r == 0)
                r = tl_session_finish(st, &s, status);
        if (r == 0 && seal)
                r = nono_audit_seal(st, s.id);
        if (r < 0)
                return die("finish", r);
        nono_session_clear(&s);
        return status;
}

static int cmd_crash(nono_store *st)
{
        int p[2];
        char id[NONO_SESSION_ID_LEN + 1] = {0};
        pid_t pid;

        if (pipe(p) < 0)
                return die("pipe", -errno);
        nono_store_close(st); /* the child opens its own: an LMDB env must not cross a fork */
        pid = fork();
        if (pid == 0) {
                char *argv[] = {"agent", "--crash", NULL};
                struct nono_session s;
                nono_store *cst;
                if (nono_store_open(NULL, 0, &cst) < 0 || tl_session_create(cst, argv, &s) < 0)
                        _exit(1);
                for (int i = 0; i < 3; i++) {
                        struct nono_event ev = {.type = NONO_EV_FILE,
                                                .op = NONO_OP_OPEN,
                                                .path = "f",
                                                .time_ns = now_ns(),
                                                .pid = (uint32_t)getpid()};
                        if (nono_events_append(cst, s.id, &ev, 1, 0) < 0)
                                _exit(1);
                }
                (void)!write(p[1], s.id, strlen(s.id));
                raise(SIGKILL);
        }
        close(p[1]);
        if (read(p[0], id, NONO_SESSION_ID_LEN) != NONO_SESSION_ID_LEN)
                return die("crash child", -EPROTO);
        tl_wait(pid);
        puts(id);
        return 0;
}

struct grab {
        uint64_t seq;
        struct nono_event ev;
        char path[256], path2[256], detail[1024];
        bool found;
        uint64_t last;
        nono_digest last_chain;
};

static int grab_cb(const struct nono_event *ev, void *u)
{
        struct grab *g = u;

        g->last = ev->seq;
        g->last_chain = ev->chain;
        if (ev->seq != g->seq)
                return 0;
        g->ev = *ev;
        snprintf(g->path, sizeof(g->path), "%s", ev->path ? ev->path : "");
        snprintf(g->path2, sizeof(g->path2), "%s", ev->path2 ? ev->path2 : "");
        snprintf(g->detail, sizeof(g->detail), "%s", ev->detail ? ev->detail : "");
        g->ev.path = ev->path ? g->path : NULL;
        g->ev.path2 = ev->path2 ? g->path2 : NULL;
        g->ev.detail = ev->detail ? g->detail : NULL;
        g->found = true;
        return 0;
}

static int grab(nono_store *st, const char *id, uint64_t seq, struct grab *g)
{
        memset(g, 0, sizeof(*g));
        g->seq = seq;
        int r = nono_events_iterate(st, id, 1, grab_cb, g);
        return r < 0 ? r : g->found || !seq ? 0 : -ENOENT;
}

static int cmd_tamper(nono_store *st, const char *id, const char *how, uint64_t seq)
{
        struct grab a, b;
        int r;

        if (!strcmp(how, "modify")) {
                if ((r = grab(st, id, seq, &a)) < 0)
                        return die("grab", r);
                a.ev.path = "/etc/innocent";
                a.ev.flags &= ~NONO_EVF_VIOLATION;
                r = nono_events_raw_put(st, id, &a.ev);
        } else if (!strcmp(how, "delete")) {
                r = nono_events_raw_delete(st, id, seq);
        } else if (!strcmp(how, "reorder")) {
                if ((r = grab(st, id, seq, &a)) < 0 || (r = grab(st, id, seq + 1, &b)) < 0)
                        return die("grab", r);
                a.ev.seq = seq + 1;
                b.ev.seq = seq;
                r = nono_events_raw_put(st, id, &b.ev);
                if (r == 0)
                        r = nono_events_raw_put(st, id, &a.ev);
        } else if (!strcmp(how, "append") || !strcmp(how, "truncate")) {
                if ((r = grab(st, id, 0, &a)) < 0)
                        return die("grab", r);
                if (!strcmp(how, "truncate")) {
                        r = nono_events_raw_delete(st, id, a.last);
                } else { /* a well-formed event with a correct chain value: only the seal can tell */
                        struct nono_event ev = {.seq = a.last + 1,
                                                .time_ns = now_ns(),
                                                .type = NONO_EV_EXEC,
                                                .op = NONO_OP_EXEC,
                                                .path = "/bin/forged",
                                                .detail = "[]"};
                        nono_event_chain(&a.last_chain, &ev, &ev.chain);
                        r = nono_events_raw_put(st, id, &ev);
                }
        } else if (!strcmp(how, "exit") || !strcmp(how, "reseal")) {
                struct nono_session s = {0};
                if ((r = nono_session_get(st, id, &s)) < 0)
                        return die("session", r);
                if (!strcmp(how, "exit")) {
                        s.exit_status = 0;
                        r = nono_session_update(st, &s);
                } else { /* someone else's key: a forger re-sealing after an edit */
                        char dir[] = "/tmp/nono-forger-XXXXXX";
                        struct nono_audit_key k;
                        if (!mkdtemp(dir))
                                return die("mkdtemp", -errno);
                        r = nono_audit_key_load(dir, true, &k);
                        if (r == 0)
                                r = nono_audit_seal_with(st, id, &k);
                        char f[64];
                        snprintf(f, sizeof(f), "%s/audit.key", dir);
                        unlink(f);
                        snprintf(f, sizeof(f), "%s/audit.pub", dir);
                        unlink(f);
                        rmdir(dir);
                }
                nono_session_clear(&s);
        } else {
                return die(how, -EINVAL);
        }
        if (r < 0)
                return die(how, r);
        return nono_store_sync(st) < 0;
}

int main(int argc, char **argv)
{
        nono_store *st;
        int r;

        if (argc < 2)
                return die("usage: make | run | crash | tamper", -EINVAL);
        r = nono_store_open(NULL, 0, &st);
        if (r < 0)
                return die("store", r);
        if (!strcmp(argv[1], "make"))
                r = cmd_make(st);
        else if (!strcmp(argv[1], "run"))
                r = cmd_run(st, argc - 2, argv + 2);
        else if (!strcmp(argv[1], "crash"))
                return cmd_crash(st);
        else if (!strcmp(argv[1], "tamper") && argc >= 4)
                r = cmd_tamper(st, argv[2], argv[3], argc > 4 ? strtoull(argv[4], NULL, 10) : 0);
        else
                r = die(argv[1], -EINVAL);
        nono_store_close(st);
        return r;
}
