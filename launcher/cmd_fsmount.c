/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_fsmount.c - `nono __fs-mount`, a hidden command for tests and benchmarks: serves ROOT at MOUNTPOINT
 * through fs/ in the foreground, exactly as `nono run` serves an allowed root, but without a sandbox.
 *
 *   nono __fs-mount [--rollback] [--read-only] [--no-record] [--deny PATTERN:r|w|rw]... [--session ID]
 *                   ROOT MOUNTPOINT
 *
 * When the store is available a session is created in it (or --session names an existing one), events are
 * recorded and, with --rollback, pre-images are kept. Prints "ready SESSION" (or "ready -") on stdout once
 * the mount serves requests, so callers synchronise on a pipe. Stops, writes post-images and flushes on
 * SIGTERM/SIGINT or when unmounted (fusermount3 -u).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "launcher/cli.h"

#define MAX_RULES 64

struct fsmount_args {
        bool rollback, read_only, record;
        const char *session, *root, *mountpoint;
        struct nono_fs_rule rules[MAX_RULES];
        size_t n_rules;
};

static int usage(void)
{
        fputs("usage: nono __fs-mount [--rollback] [--read-only] [--no-record] [--deny PATTERN:r|w|rw]...\n"
              "                       [--session ID] ROOT MOUNTPOINT\n",
              stderr);
        return 2;
}

static int parse_deny(struct fsmount_args *a, char *spec)
{
        char *c = strrchr(spec, ':');
        unsigned d = 0;

        if (!c || c == spec || a->n_rules == MAX_RULES)
                return -EINVAL;
        *c = 0;
        for (const char *m = c + 1; *m; m++) {
                if (*m == 'r')
                        d |= NONO_DENY_READ;
                else if (*m == 'w')
                        d |= NONO_DENY_WRITE;
                else
                        return -EINVAL;
        }
        if (!d)
                return -EINVAL;
        a->rules[a->n_rules++] = (struct nono_fs_rule){.pattern = spec, .deny = d};
        return 0;
}

static int parse(int argc, char **argv, struct fsmount_args *a)
{
        int pos = 0;

        a->record = true;
        for (int k = 1; k < argc; k++) {
                if (!strcmp(argv[k], "--rollback"))
                        a->rollback = true;
                else if (!strcmp(argv[k], "--read-only"))
                        a->read_only = true;
                else if (!strcmp(argv[k], "--no-record"))
                        a->record = false;
                else if (!strcmp(argv[k], "--deny") && k + 1 < argc) {
                        if (parse_deny(a, argv[++k]) < 0) {
                                nono_err("--deny %s: expected PATTERN:r, PATTERN:w or PATTERN:rw", argv[k]);
                                return -1;
                        }
                } else if (!strcmp(argv[k], "--session") && k + 1 < argc)
                        a->session = argv[++k];
                else if (argv[k][0] == '-' && argv[k][1]) {
                        nono_err("__fs-mount: unknown option %s", argv[k]);
                        return -1;
                } else if (pos == 0)
                        a->root = argv[k], pos++;
                else if (pos == 1)
                        a->mountpoint = argv[k], pos++;
                else
                        return -1;
        }
        return pos == 2 ? 0 : -1;
}

#ifdef NONO_HAVE_STORE
static int open_session(struct fsmount_args *a, nono_store **st, struct nono_session *s, char *abs)
{
        int r = nono_store_open(NULL, 0, st);
        if (r < 0)
                return nono_err("cannot open the store: %s", nono_store_errmsg());
        if (a->session) {
                r = nono_session_get(*st, a->session, s);
                if (r < 0)
                        return nono_err("no session %s in the store: %s", a->session, nono_store_errmsg());
                return 0;
        }
        static char *argv[] = {"nono", "__fs-mount", NULL};
        char cwd[4096] = "/";
        char *roots[] = {abs, NULL};
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        if (!getcwd(cwd, sizeof(cwd)))
                strcpy(cwd, "/");
        *s = (struct nono_session){
                .kind = NONO_SESSION_RUN,
                .state = NONO_SESSION_RUNNING,
                .argv = argv,
                .cwd = cwd,
                .policy_json = "{}",
                .roots = roots,
                .rollback = a->rollback,
                .start_ns = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec,
                .pid = getpid(),
        };
        r = nono_session_create(*st, s);
        if (r < 0)
                return nono_err("cannot create a session: %s", nono_store_errmsg());
        /* the strings above are ours; keep only the id */
        s->argv = NULL;
        s->cwd = NULL;
        s->policy_json = NULL;
        s->roots = NULL;
        return 0;
}
#endif

static int serve(nono_fs *fs)
{
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        int sfd = signalfd(-1, &set, SFD_CLOEXEC);
        if (sfd < 0)
                return -errno;
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = nono_fs_done_fd(fs), .events = POLLIN}};
        while (poll(p, 2, -1) < 0 && errno == EINTR)
                ;
        close(sfd);
        return 0;
}

int cmd_fsmount(int argc, char **argv)
{
        struct fsmount_args a = {0};
        char abs[4096];
        int r;

        if (parse(argc, argv, &a) < 0)
                return usage();
        if (!realpath(a.root, abs))
                return nono_err("%s: %s: create it or pass an existing ROOT", a.root, strerror(errno));
        int root_fd = open(abs, O_PATH | O_CLOEXEC);
        if (root_fd < 0)
                return nono_err("cannot open %s: %s", abs, strerror(errno));

        /* Signals are taken through a signalfd: block them before any thread exists. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        sigprocmask(SIG_BLOCK, &set, NULL);

        struct nono_fs_config cfg = {
                .root_fd = root_fd,
                .root_path = abs,
                .read_only = a.read_only,
                .rules = a.rules,
                .n_rules = a.n_rules,
        };
        char sid[NONO_SESSION_ID_LEN + 1] = "-";
#ifdef NONO_HAVE_STORE
        nono_store *st = NULL;
        struct nono_session s = {0};
        if (a.record || a.rollback) {
                if (open_session(&a, &st, &s, abs))
                        return 1;
                snprintf(sid, sizeof(sid), "%s", s.id);
                cfg.store = st;
                cfg.session = s.id;
                cfg.record = a.record;
                cfg.preimages = a.rollback;
        }
#else
        if (a.rollback)
                return nono_err("--rollback needs the store, which this build does not have");
#endif
        nono_fs *fs = NULL;
        r = nono_fs_new(&cfg, &fs);
        close(root_fd);
        if (r < 0)
                return nono_err("cannot serve %s: %s", abs, strerror(-r));
        r = nono_fs_mount(fs, a.mountpoint);
        if (r < 0) {
                nono_fs_free(fs);
                return nono_err("cannot mount %s on %s: is it an existing %s you may mount on?", abs,
                                a.mountpoint, "directory (or file, for a file ROOT)");
        }
        r = nono_fs_start(fs);
        if (r < 0) {
                nono_fs_free(fs);
                return nono_err("cannot start serving: %s", strerror(-r));
        }
        printf("ready %s\n", sid);
        fflush(stdout);
        serve(fs);
        r = nono_fs_stop(fs);
        if (r < 0)
                nono_err("stopping the filesystem: %s", strerror(-r));
        nono_fs_free(fs);
#ifdef NONO_HAVE_STORE
        if (st) {
                if (!a.session) {
                        struct timespec t;
                        clock_gettime(CLOCK_REALTIME, &t);
                        s.state = NONO_SESSION_FINISHED;
                        s.end_ns = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
                        nono_session_update(st, &s);
                }
                nono_session_clear(&s);
                nono_store_close(st);
        }
#endif
        return r < 0 ? 1 : 0;
}
