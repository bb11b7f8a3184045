/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_run.c - `nono run`: resolve the policy, check it, record the session, start the agent in the sandbox,
 * wait, and report. The mechanisms live in sandbox*.c, landlock.c, seccomp.c and env.c; this file is the
 * order of the steps and the messages the user sees.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "launcher/cli.h"
#include "launcher/env.h"
#include "launcher/landlock.h"
#include "launcher/policy.h"
#include "launcher/proxy-audit.h"
#include "launcher/proxy.h"
#include "launcher/run.h"
#include "launcher/sandbox-util.h"
#include "launcher/sandbox.h"
#ifdef NONO_HAVE_FS
#include "launcher/sandbox-fs.h"
#endif
#ifdef NONO_HAVE_STORE
#include "launcher/audit.h"
#include "launcher/run-session.h"
#include "launcher/seal.h"
#include "launcher/supervisor.h"
#include "store/store.h"
#include <sodium.h>
#endif

extern char **environ;

static void usage(FILE *f)
{
        fputs("usage: nono run [OPTIONS] [--] CMD [ARGS...]\n\n"
              "Runs CMD confined to the current directory (read-write), the system paths (read-only), and\n"
              "what the options grant; no network.\n\n"
              "  --allow PATH          grant PATH read-write (repeatable)\n"
              "  --read PATH           grant PATH read-only (repeatable)\n"
              "  --workdir DIR         the project directory (default: the current directory)\n"
              "  --profile NAME        the profile to start from (default: default)\n"
              "  --allow-domain HOST   let the agent reach HOST through the proxy (repeatable)\n"
              "  --allow-net           no network confinement at all\n"
              "  --rollback            keep pre-images so that `nono rollback restore` can undo the session\n"
              "  --no-audit            do not record audit events\n"
              "  --dry-run             print the resolved policy and start nothing (with --json: as JSON)\n"
              "  --summary             print the exit summary even when stderr is not a terminal\n",
              f);
}

static int strv_push(char ***v, size_t *n, const char *s)
{
        char **nv = realloc(*v, (*n + 2) * sizeof(char *));

        if (!nv)
                return -ENOMEM;
        nv[(*n)++] = (char *)s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

/* The nono home: the store's own rule when the store is built in, else the same rule here. */
static void state_home(char *buf, size_t len)
{
        const char *v, *home = getenv("HOME");

        buf[0] = '\0';
#ifdef NONO_HAVE_STORE
        if (nono_store_home(buf, len) == 0)
                return;
        buf[0] = '\0';
#endif
        if ((v = getenv("NONO_HOME")) && *v)
                snprintf(buf, len, "%s", v);
        else if ((v = getenv("XDG_DATA_HOME")) && *v == '/')
                snprintf(buf, len, "%s/nono", v);
        else if (home)
                snprintf(buf, len, "%s/.local/share/nono", home);
}

/* nono's own state: the nono home (store) and the config dir (keys, profiles), absolute and canonical
 * where they exist. */
int nono_run_state_paths(char ***out)
{
        const char *home = getenv("HOME"), *v;
        char buf[PATH_MAX], abs[PATH_MAX], real[PATH_MAX], cwd[PATH_MAX / 2];
        char **paths = calloc(3, sizeof(char *));
        size_t n = 0;

        if (!paths)
                return -ENOMEM;
        for (int i = 0; i < 2; i++) {
                buf[0] = '\0';
                if (i == 0)
                        state_home(buf, sizeof(buf));
                else if ((v = getenv("XDG_CONFIG_HOME")) && *v)
                        snprintf(buf, sizeof(buf), "%s/nono", v);
                else if (home)
                        snprintf(buf, sizeof(buf), "%s/.config/nono", home);
                if (!buf[0])
                        continue;
                if (buf[0] != '/') { /* relative NONO_HOME: relative to the cwd, as the store reads it */
                        if (!getcwd(cwd, sizeof(cwd)))
                                continue;
                        snprintf(abs, sizeof(abs), "%s/%s", cwd, buf);
                } else {
                        snprintf(abs, sizeof(abs), "%s", buf);
                }
                paths[n] = strdup(realpath(abs, real) ? real : abs);
                if (!paths[n++])
                        return -ENOMEM;
        }
        *out = paths;
        return 0;
}

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

/* A grant inside nono's state is refused; one that contains it gets the state masked (noted). */
static int check_state(const struct nono_policy *p, char **state)
{
        for (size_t i = 0; i < p->n_grants; i++)
                if (!strcmp(p->grants[i].path, "/")) {
                        nono_err("granting / would expose the whole system (and nono's own state): grant the "
                                 "project directory instead (--workdir, --allow DIR)");
                        return -EPERM;
                }
        for (size_t i = 0; i < p->n_grants; i++)
                for (size_t j = 0; state[j]; j++)
                        if (nono_path_under(p->grants[i].path, state[j])) {
                                nono_err("%s is inside nono's own state (%s): the agent may never reach "
                                         "nono's store, keys or config; grant a directory outside it",
                                         p->grants[i].path, state[j]);
                                return -EPERM;
                        }
        return 0;
}

/* A grant inside a read-denied path is a contradiction. (Deny paths are canonical already: the mount tree
 * holds canonical paths only, and policy.c resolved each one's longest existing prefix, so one that exists
 * is its own realpath.) */
static int check_denies(struct nono_policy *p)
{
        for (size_t i = 0; i < p->n_grants; i++)
                for (size_t j = 0; j < p->n_denies; j++)
                        if ((p->denies[j].access & NONO_ACCESS_READ) &&
                            nono_path_under(p->grants[i].path, p->denies[j].pattern)) {
                                nono_err("%s is inside %s, which the policy denies%s%s%s: grant something "
                                         "outside it",
                                         p->grants[i].path, p->denies[j].pattern,
                                         p->denies[j].group ? " (" : "",
                                         p->denies[j].group ? p->denies[j].group : "",
                                         p->denies[j].group ? ")" : "");
                                return -EPERM;
                        }
        return 0;
}

static const char *access_str(unsigned a)
{
        static const char *const s[] = {"none", "r", "w", "rw", "x", "rx", "wx", "rwx"};
        return s[a & 7];
}

static void print_human(const struct nono_policy *p, char **state, char **argv, const char *provider)
{
        int abi = nono_landlock_abi();

        printf("profile:  %s\nworkdir:  %s\ncommand: ", p->profile, p->workdir);
        for (size_t i = 0; argv && argv[i]; i++)
                printf(" %s", argv[i]);
        printf("\n\ngrants:\n");
        for (size_t i = 0; i < p->n_grants; i++)
                printf("  %-4s %s%s%s\n", access_str(p->grants[i].access), p->grants[i].path,
                       p->grants[i].is_file ? " (file)" : "", p->grants[i].system ? " (system)" : "");
        printf("  rwx  /tmp (private, empty)\n  rw   /dev (null zero full random urandom tty pts shm)\n"
               "  rw   /proc (this sandbox's processes only)\n\ndenied (masked when visible):\n");
        for (size_t i = 0; i < p->n_denies; i++)
                printf("  %-6s %s%s%s%s\n", p->denies[i].access & NONO_ACCESS_READ ? "all" : "write",
                       p->denies[i].pattern, p->denies[i].group ? " [" : "",
                       p->denies[i].group ? p->denies[i].group : "", p->denies[i].group ? "]" : "");
        for (size_t j = 0; state[j]; j++)
                printf("  all    %s [nono state]\n", state[j]);
        printf("\nnetwork:  %s\n",
               p->allow_net ? "host network (--allow-net)" : "none (own namespace, loopback only)");
        for (size_t i = 0; p->allow_domains && p->allow_domains[i]; i++)
                printf("  allow-domain %s\n", p->allow_domains[i]);
        printf("roots:    %s\n", strcmp(provider, "fuse") ? "bind mounts (fs/ not built in: not recorded)"
                                                          : "served by fs/ over FUSE (recorded)");
        printf("rollback: %s\naudit:    %s\nlandlock: ABI %d: %s\n", p->rollback ? "on" : "off",
               p->audit ? "on" : "off", abi, nono_landlock_describe(abi));
}

static void print_json(const struct nono_policy *p, char **state, char **argv)
{
        _cleanup_free_ char *pj = nono_policy_to_json(p);

        printf("{\"policy\":%s,\"command\":[", pj ? pj : "null");
        for (size_t i = 0; argv && argv[i]; i++) {
                fputs(i ? ",\"" : "\"", stdout);
                for (const char *c = argv[i]; *c; c++)
                        if (*c == '"' || *c == '\\')
                                printf("\\%c", *c);
                        else if ((unsigned char)*c < 0x20)
                                printf("\\u%04x", *c);
                        else
                                putchar(*c);
                putchar('"');
        }
        printf("],\"state_masked\":[");
        for (size_t j = 0; state[j]; j++)
                printf("%s\"%s\"", j ? "," : "", state[j]);
        printf("],\"landlock_abi\":%d}\n", nono_landlock_abi());
}

/* The command must exist before anything is built: "command not found" is the most common mistake. */
static int check_command(const char *cmd, const char *workdir)
{
        const char *path = getenv("PATH");
        char buf[PATH_MAX];

        if (strchr(cmd, '/')) {
                if (cmd[0] != '/') /* relative to the agent's cwd, the workdir */
                        snprintf(buf, sizeof(buf), "%s/%s", workdir, cmd);
                if (access(cmd[0] == '/' ? cmd : buf, X_OK) == 0)
                        return 0;
                nono_err("%s: %s", cmd, strerror(errno));
                return -1;
        }
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *s = path; *s;) {
                const char *e = strchr(s, ':');
                size_t n = e ? (size_t)(e - s) : strlen(s);
                snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, n ? s : ".", cmd);
                if (access(buf, X_OK) == 0)
                        return 0;
                s += n + (e ? 1 : 0);
        }
        nono_err("%s: command not found (searched PATH=%s)", cmd, path);
        return -1;
}

static int on_chan(void *userdata, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        struct nono_run_hooks *h = userdata;

        switch (m->kind) {
        case NONO_CHAN_FUSE_FD:
                if (h && h->fuse)
                        return h->fuse(h->userdata, m, fd, reply);
                break;
        case NONO_CHAN_SECCOMP_NOTIFY:
                if (h && h->seccomp_notify)
                        return h->seccomp_notify(h->userdata, m, fd, reply);
                break;
        case NONO_CHAN_PROXY_LISTENER:
                if (h && h->proxy_listener)
                        return h->proxy_listener(h->userdata, m, fd, reply);
                break;
        case NONO_CHAN_EXEC:
                reply->status = h && h->ready ? h->ready(h->userdata) : 0;
                return reply->status < 0 ? reply->status : 0;
        }
        if (fd >= 0)
                close(fd);
        reply->status = -EOPNOTSUPP;
        return 0;
}

/* ---- the default wiring: store session, fs/ roots, exit summary -------------------------------------- */

struct run_ctx {
        struct timespec t0;
        bool summary;
        const char *session;
#ifdef NONO_HAVE_FS
        struct nono_run_fs *fs;
#endif
#ifdef NONO_HAVE_STORE
        struct nono_run_session rs;
        nono_supervisor *sup;
        /* the session thread: store, session record, start event, serving the roots; then the exec audit
         * (the supervisor's loop) and the seal's warm-up. Under mu: session_done (session_result is set),
         * sup_ready (sup was handed over), warm_go (the agent's exec was answered), ending. */
        const struct nono_policy *p;
        char **argv;
        pid_t init;
        pthread_t thread;
        bool thread_on, mu_init;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        bool session_done, sup_ready, warm_go, ending;
        bool roots_pending; /* a root's fd came after the store was set: the session thread serves it */
        int session_result;
        /* the seal's key, read by the session thread beside the agent (warm_up) */
        bool warm_have_key;
        unsigned exec_asked; /* ctx_exec_ready calls */
        struct nono_audit_key warm_key;
#endif
        nono_proxy *proxy; /* --allow-domain: the filtering proxy, outside the agent's net namespace */
        struct nono_proxy_audit proxy_audit;
};

#ifdef NONO_HAVE_STORE
static int ctx_ready(void *userdata);
static void session_join(struct run_ctx *c);
#endif

/* The proxy is needed when domains are allowed and the network is not simply shared (--allow-net). */
static bool wants_proxy(const struct nono_policy *p)
{
        return p->allow_domains && p->allow_domains[0] && !p->allow_net;
}

static int ctx_prepare(void *userdata, const struct nono_policy *p, char **state)
{
        struct run_ctx *c = userdata;
#ifdef NONO_HAVE_STORE
        nono_store_tune_process(); /* before the sandbox's clone: see store.h */
#endif
#ifdef NONO_HAVE_FS
        char err[512];
        int r = nono_run_fs_open(p, state, &c->fs, err, sizeof(err));
        if (r < 0) {
                nono_err("%s", err);
                return r;
        }
#endif
        if (wants_proxy(p)) {
                /* Starts no thread (the sandbox child is a raw clone of a single-threaded nono): the proxy
                 * runs once the listener made inside the agent's net namespace is handed over. */
                struct nono_proxy_config pc = {.allow = (const char *const *)p->allow_domains,
                                               .on_event = nono_proxy_audit_event,
                                               .userdata = &c->proxy_audit};
                char *perr = NULL;
                int q = nono_proxy_new(&pc, &c->proxy, &perr);
                if (q < 0) {
                        nono_err("%s", perr ? perr : strerror(-q));
                        free(perr);
                        return q;
                }
        }
        return 0;
}

static int ctx_proxy(void *userdata, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        struct run_ctx *c = userdata;

        (void)m;
#ifdef NONO_HAVE_STORE
        ctx_ready(c);
#endif
        if (!c->proxy || !c->proxy_audit.store) {
                close(fd);
                reply->status = -ENOTCONN;
                return 0;
        }
        reply->status = nono_proxy_take_listener(c->proxy, fd);
        return 0;
}

#ifdef NONO_HAVE_STORE
/* The session record, its start event queued, the roots served with recording into it, then the record
 * durable. Only the record must be durable before the agent starts (a crash then leaves a listed session,
 * and the agent's exec waits for this function): the roots are set up and served while its flush is under
 * way (nono_session_create_begin hands out the id once the record is in the writer's transaction, and
 * everything the roots and the start event write commits after it). Until the agent's exec, the only
 * requests the roots see are nono's own (the agent's chdir and Landlock's opens), and none changes
 * anything. The start event commits in the background like every later event, and the first durable write
 * of the session (a pre-image, the end) flushes it with everything before it. */
static int session_begin(struct run_ctx *c)
{
        const struct nono_policy *p = c->p;
        char **roots = NULL, err[512];
        int r;

#ifdef NONO_HAVE_FS
        roots = nono_run_fs_roots(c->fs);
#endif
        /* the policy as JSON: in the session record and again in its start event */
        char *pj = nono_policy_to_json(p);
        if (!pj) {
                nono_err("out of memory");
                return -ENOMEM;
        }
        r = nono_run_session_begin(&c->rs, p, pj, c->argv, roots, err, sizeof(err));
        nono_trace("started: session id");
        if (r < 0) {
                free(pj);
                nono_err("%s", err);
                return r;
        }
        c->session = c->rs.s.id;
        c->proxy_audit.store = c->rs.st;
        snprintf(c->proxy_audit.session, sizeof(c->proxy_audit.session), "%s", c->rs.s.id);
        /* queued first: whatever the roots and the supervisor record follows it in the chain */
        r = nono_audit_session_start_flags(c->rs.st, c->rs.s.id, c->argv, pj, -1, NONO_ASYNC);
        if (r < 0)
                nono_err("cannot record the session start: %s", nono_store_errmsg());
#ifdef NONO_HAVE_FS
        if (r == 0 && (r = nono_run_fs_set_store(c->fs, c->rs.st, c->rs.s.id)) == 0)
                nono_trace("started: roots served");
#endif
        if (r == 0 && p->audit) {
                nono_supervisor_warm(); /* before the supervisor starts */
                /* made ahead, so that the agent's listener only has to be handed to it (ctx_seccomp) */
                if ((r = nono_supervisor_prepare(-1, c->rs.st, c->rs.s.id, &c->sup)) < 0)
                        nono_err("cannot prepare the exec/network audit: %s", strerror(-r));
                nono_trace("started: supervisor warm");
        }
        int d = nono_run_session_recorded(&c->rs, err, sizeof(err));
        free(pj);
        nono_trace("started: session record durable");
        if (d < 0) {
                nono_err("%s", err);
                c->proxy_audit.store = NULL;
                return d;
        }
        return r;
}

/* Sets one of the session thread's flags (c->mu) and wakes whoever waits on it. */
static void ctx_set(struct run_ctx *c, bool *flag)
{
        pthread_mutex_lock(&c->mu);
        *flag = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
}

/* The audit key is read and libsodium made ready (the store's writer usually loaded it already, for the
 * chain of the first event) off the path of the seal at the end: on the session thread, once the agent's
 * exec has been answered (while the sandbox is being built, init and the session work keep both CPUs of a
 * small machine busy, and this work is not on that path; it runs beside the agent and the sandbox's
 * teardown instead). A failure to load the key is reported by the seal, which then tries again. */
static void warm_up(void *arg)
{
        struct run_ctx *c = arg;

        if (sodium_init() < 0) {
                /* said on stderr; the seal fails and says so */
        }
        c->warm_have_key = nono_audit_key_load(NULL, true, &c->warm_key) == 0;
}

/* Runs while init builds the sandbox: the two overlap, and the agent's exec waits for it (ctx_ready).
 * On failure it kills init, which may be waiting on a root that will never be served. Then, rather than
 * ending (and another thread being started for each), it runs the exec audit on the listener the agent
 * hands over (ctx_seccomp), and the seal's warm-up after the agent's first exec was answered; without a
 * listener, the warm-up once the exec is allowed. Joined by the session's end (session_join). */
static void *session_main(void *arg)
{
        struct run_ctx *c = arg;

        prctl(PR_SET_NAME, "nono-session");
        int r = session_begin(c);
        if (r < 0)
                kill(c->init, SIGKILL); /* not reaped before session_done: the pid cannot be reused */
        pthread_mutex_lock(&c->mu);
        c->session_result = r;
        c->session_done = true;
        pthread_cond_broadcast(&c->cv);
        while (r == 0 && !c->sup_ready && !c->warm_go && !c->ending) {
#ifdef NONO_HAVE_FS
                if (c->roots_pending) { /* served here, so that init, waiting for the reply, goes on */
                        c->roots_pending = false;
                        pthread_mutex_unlock(&c->mu);
                        nono_run_fs_serve_parked(c->fs);
                        pthread_mutex_lock(&c->mu);
                        continue;
                }
#endif
                pthread_cond_wait(&c->cv, &c->mu);
        }
        bool sup = r == 0 && c->sup_ready, warm = r == 0 && !c->ending;
        pthread_mutex_unlock(&c->mu);
#ifdef NONO_HAVE_FS
        nono_run_fs_defer(c->fs, false); /* from here on the main thread serves a late root itself */
        if (warm)
                nono_run_fs_serve_parked(c->fs);
#endif
        if (sup)
                nono_supervisor_run(c->sup, warm_up, c); /* until nono_supervisor_stop_request */
        else if (warm)
                warm_up(c);
        return NULL;
}

/* Ends the session thread (main thread only): the supervisor's loop was told to stop (or never ran). */
static void session_join(struct run_ctx *c)
{
        if (!c->thread_on)
                return;
        ctx_set(c, &c->ending);
        pthread_join(c->thread, NULL);
        c->thread_on = false;
}

/* Waits for the session to be recorded and its roots served (main thread only); its result. */
static int ctx_ready(void *userdata)
{
        struct run_ctx *c = userdata;

        if (!c->thread_on)
                return c->session_result;
        pthread_mutex_lock(&c->mu);
        bool waited = !c->session_done;
        while (!c->session_done)
                pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        if (waited)
                nono_trace("started: session ready");
        return c->session_result;
}

/* The agent's exec is allowed once the session is recorded. nono_run asks twice: for the agent's exec
 * request (the reply waits for the answer), then once the reply is sent. Without a listener, the warm-up
 * starts at the second, so that its CPU does not stand between the reply and the agent's wake-up on a busy
 * machine (with one, it starts once the exec's notification was answered). */
static int ctx_exec_ready(void *userdata)
{
        struct run_ctx *c = userdata;
        int r = ctx_ready(c);

#ifdef NONO_HAVE_FS
        if (r == 0 && nono_run_fs_failed(c->fs))
                r = -EIO; /* said on stderr: a granted root is not served */
#endif
        if (r == 0 && c->exec_asked++ == 1) /* the session thread warms up, if it has no listener */
                ctx_set(c, &c->warm_go);
        return r;
}
#endif

/* nono is single-threaded until here (the sandbox is a raw clone): the session work may now take a thread.
 */
static int ctx_started(void *userdata, const struct nono_policy *p, char **argv, pid_t init)
{
        struct run_ctx *c = userdata;

#ifdef NONO_HAVE_STORE
        c->p = p;
        c->argv = argv;
        c->init = init;
        c->session_result = -EINPROGRESS;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        c->mu_init = true;
#ifdef NONO_HAVE_FS
        nono_run_fs_defer(c->fs, true); /* roots that come once the session is set: served by its thread */
#endif
        int e = pthread_create(&c->thread, NULL, session_main, c);
        if (e) {
                nono_err("cannot start the session thread: %s", strerror(e));
                return -e;
        }
        c->thread_on = true;
#endif
        (void)c, (void)p, (void)argv, (void)init;
        return 0;
}

static void ctx_finished(void *userdata, int status, bool ran)
{
        struct run_ctx *c = userdata;
        struct timespec t1;
        uint64_t read = 0, changed = 0, violations = 0, pre = 0;
        bool counted = false;

#ifdef NONO_HAVE_STORE
        ctx_ready(c);                    /* nothing may write to the session before its record exists */
        nono_run_session_ending(&c->rs); /* durable all at once at the end of nono_run_session_end */
#endif
#ifdef NONO_HAVE_STORE
        /* The whole sandbox is gone: no process can still be waiting on the listener, nor on the proxy.
         * Proxy and supervisor events are queued, the roots' last events too (below), and the session's end
         * commits them in one transaction with its end event and seal. */
        nono_proxy_free(c->proxy);
        c->proxy = NULL;
        nono_supervisor_stop_request(c->sup); /* its loop, on the session thread, drains and returns */
        session_join(c);
        int sup_r = nono_supervisor_stop_queued(c->sup);
        c->sup = NULL;
        nono_trace("fin: supervisor stopped");
#endif
#ifdef NONO_HAVE_FS
        struct nono_run_fs_totals t;
        nono_run_fs_stop(c->fs, &t);
        nono_trace("fin: fs stopped");
        read = t.files_read, changed = t.files_changed, violations = t.violations, pre = t.preimage_bytes;
        counted = true;
        /* fs/ flushes into the store until it is freed: free it before the store closes */
        nono_run_fs_free(c->fs);
        c->fs = NULL;
        nono_trace("fin: fs freed");
#endif
#ifdef NONO_HAVE_STORE
        /* the roots' and the supervisor's last events are queued: the end commits them with its own */
        if (sup_r < 0)
                nono_err("some exec/network events could not be stored: %s", nono_store_errmsg());
        c->rs.key = c->warm_key;
        c->rs.have_key = c->warm_have_key;
        nono_run_session_end(&c->rs, status, pre);
        nono_trace("fin: session ended");
#endif
        if (!c->summary || !ran)
                return;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - c->t0.tv_sec) + (double)(t1.tv_nsec - c->t0.tv_nsec) / 1e9;
        fprintf(stderr, "nono: agent exited with status %d after %.1fs", status, s);
        if (counted)
                fprintf(stderr, "; %llu files read, %llu changed, %llu violations", (unsigned long long)read,
                        (unsigned long long)changed, (unsigned long long)violations);
        fputc('\n', stderr);
        if (c->session) {
                fprintf(stderr, "nono: session %s: see `nono audit show %s`, `nono rollback show %s --diff`",
                        c->session, c->session, c->session);
                if (pre)
                        fprintf(stderr, ", undo with `nono rollback restore %s`", c->session);
                fputc('\n', stderr);
        }
        (void)pre;
}

#ifdef NONO_HAVE_STORE
/* The agent's audit listener: the supervisor records its execs and connections. The filter is already in
 * the agent, so without a supervisor its execve would fail with ENOSYS: refuse the session instead. */
static int ctx_seccomp(void *userdata, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        struct run_ctx *c = userdata;
        int r = ctx_ready(c) < 0 ? -ENOTCONN : 0;

        if (r == 0)
                r = c->sup ? 0 : -ENOTCONN;
        if (r == 0) { /* the session thread runs it */
                nono_supervisor_set_fd(c->sup, fd);
                ctx_set(c, &c->sup_ready);
        }

        (void)m;
        nono_trace("started: supervisor");
        if (r < 0) {
                close(fd);
                nono_err("cannot start the exec/network audit: %s (run with --no-audit to go without)",
                         strerror(-r));
        }
        reply->status = r;
        return r;
}
#endif

#ifdef NONO_HAVE_FS
static int ctx_fuse(void *userdata, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        struct run_ctx *c = userdata;
        int r = nono_run_fs_chan(c->fs, m, fd, reply);
#ifdef NONO_HAVE_STORE
        if (r == 1) { /* parked: the session thread serves it (session_main) */
                ctx_set(c, &c->roots_pending);
                r = 0;
        }
#endif
        return r;
}
#endif

static void ctx_free(struct run_ctx *c)
{
#ifdef NONO_HAVE_STORE
        nono_supervisor_stop_request(c->sup);
        session_join(c);
        nono_supervisor_stop_queued(c->sup); /* when the session did not reach its end */
        c->sup = NULL;
        if (c->mu_init) {
                pthread_cond_destroy(&c->cv);
                pthread_mutex_destroy(&c->mu);
        }
        explicit_bzero(&c->warm_key, sizeof(c->warm_key));
#endif
#ifdef NONO_HAVE_FS
        nono_run_fs_free(c->fs);
        c->fs = NULL;
#endif
        nono_proxy_free(c->proxy);
        c->proxy = NULL;
#ifdef NONO_HAVE_STORE
        nono_run_session_close(&c->rs);
#endif
        (void)c;
}

int nono_cmd_run(int argc, char **argv)
{
        static const struct option opts[] = {{"allow", required_argument, NULL, 'a'},
                                             {"read", required_argument, NULL, 'r'},
                                             {"profile", required_argument, NULL, 'p'},
                                             {"workdir", required_argument, NULL, 'w'},
                                             {"allow-domain", required_argument, NULL, 'D'},
                                             {"allow-net", no_argument, NULL, 'N'},
                                             {"rollback", no_argument, NULL, 'R'},
                                             {"no-audit", no_argument, NULL, 'A'},
                                             {"capability-elevation", no_argument, NULL, 'C'},
                                             {"trust-override", no_argument, NULL, 'T'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"summary", no_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        struct nono_policy_flags f = {0};
        _cleanup_free_ char **allow = NULL, **read = NULL, **domains = NULL;
        size_t na = 0, nr = 0, nd = 0;
        bool dry = false, json = false, want_summary = isatty(2);
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        strv_push(&allow, &na, optarg);
                        break;
                case 'r':
                        strv_push(&read, &nr, optarg);
                        break;
                case 'D':
                        strv_push(&domains, &nd, optarg);
                        break;
                case 'p':
                        f.profile = optarg;
                        break;
                case 'w':
                        f.workdir = optarg;
                        break;
                case 'N':
                        f.allow_net = true;
                        break;
                case 'R':
                        f.rollback = true;
                        break;
                case 'A':
                        f.no_audit = true;
                        break;
                case 'C':
                        f.capability_elevation = true;
                        break;
                case 'T':
                        break;
                case 'n':
                        dry = true;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'S':
                        want_summary = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        f.allow = allow;
        f.read = read;
        f.allow_domain = domains;
        char **cmd = argv + optind;
        if (!cmd[0] && !dry) {
                nono_err("no command given: nono run [OPTIONS] -- CMD [ARGS...]");
                return 2;
        }
        nono_trace("run: options parsed");
        return nono_run_recorded(&f, cmd, dry, json, want_summary);
}

int nono_run_recorded(const struct nono_policy_flags *f, char **cmd, bool dry, bool json, bool summary)
{
        struct run_ctx ctx = {.summary = summary};
        struct nono_run_hooks hooks = {
            .userdata = &ctx,
#ifdef NONO_HAVE_FS
            .provider = &nono_provider_fuse,
            .fuse = ctx_fuse,
#endif
#ifdef NONO_HAVE_STORE
            .seccomp_notify = ctx_seccomp,
#endif
            .proxy_listener = ctx_proxy,
            .prepare = ctx_prepare,
            .started = ctx_started,
#ifdef NONO_HAVE_STORE
            .ready = ctx_exec_ready,
#endif
            .finished = ctx_finished,
        };
        clock_gettime(CLOCK_MONOTONIC, &ctx.t0);
        int status =
            nono_run(f, cmd, &(struct nono_run_options){.dry_run = dry, .json = json, .hooks = &hooks});
        ctx_free(&ctx);
        nono_trace("run: store closed");
        return status;
}

int nono_run(const struct nono_policy_flags *f, char **cmd, const struct nono_run_options *o)
{
        struct nono_policy p = {0};
        char **state = NULL, **envp = NULL, *perr = NULL;
        struct nono_sandbox sb = {.pid = -1, .chan = -1, .pidfd = -1};
        char err[1024];
        sigset_t set, old;
        int r, status = 1, sigfd = -1;
        /* fds 0-2 must be open: otherwise the channel or a root fd could land there and survive into the
         * agent, which keeps exactly 0-2. */
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) {
                        nono_err("cannot open /dev/null for fd %d: %s", fd, strerror(errno));
                        return 1;
                }
        if ((r = nono_policy_resolve(f, &p, &perr)) < 0) {
                nono_err("%s", perr ? perr : strerror(-r));
                free(perr);
                return 1;
        }
        nono_trace("run: policy resolved");
        if (nono_run_state_paths(&state) < 0 || check_state(&p, state) < 0 || check_denies(&p) < 0)
                goto out;
        nono_trace("run: policy checked");
        if (o->dry_run) {
                if (o->json)
                        print_json(&p, state, cmd);
                else
                        print_human(&p, state, cmd,
                                    o->hooks && o->hooks->provider ? o->hooks->provider->name : "bind");
                status = 0;
                goto out;
        }
        if (check_command(cmd[0], p.workdir) < 0) {
                status = 127;
                goto out;
        }
        if (!p.audit)
                fprintf(stderr,
                        "nono: audit is off (--no-audit): commands, connections and refused system calls "
                        "are not recorded\n");
        int abi = nono_landlock_abi();
        if (abi < 6)
                fprintf(stderr, "nono: warning: this kernel has Landlock ABI %d (< 6): %s\n", abi,
                        nono_landlock_describe(abi));
        if (o->hooks && o->hooks->prepare && o->hooks->prepare(o->hooks->userdata, &p, state) < 0)
                goto out;
        nono_trace("run: prepared (root fds)");
        envp = nono_env_build(environ, &p);
        uint16_t proxy_port =
            o->hooks && o->hooks->proxy_listener && p.allow_domains && p.allow_domains[0] && !p.allow_net
                ? NONO_PROXY_PORT
                : 0;
        if (!envp || (proxy_port && nono_proxy_env(proxy_port, &envp) < 0)) {
                nono_err("out of memory");
                goto out;
        }
        nono_sandbox_sigset(&set);
        sigprocmask(SIG_BLOCK, &set, &old);
        sigfd = signalfd(-1, &set, SFD_CLOEXEC);
        if (sigfd < 0) {
                nono_err("signalfd: %s", strerror(errno));
                goto out_sig;
        }
        struct nono_sandbox_config sc = {
            .policy = &p,
            .argv = cmd,
            .envp = envp,
            .cwd = p.workdir,
            .state_paths = state,
            .provider = o->hooks && o->hooks->provider ? o->hooks->provider : &nono_provider_bind,
            .user_ns = geteuid() != 0,
            .notify_exec = o->hooks && o->hooks->seccomp_notify && p.audit,
            .proxy_port = proxy_port,
            .share_net = p.allow_net,
        };
        /* Must happen while nono is single-threaded: the child is a raw clone (see sandbox.h). */
        nono_trace("run: spawn");
        if ((r = nono_sandbox_spawn(&sc, &sb, err, sizeof(err))) < 0) {
                nono_err("%s", err);
                goto out_sig;
        }
        if (o->hooks && o->hooks->started &&
            (r = o->hooks->started(o->hooks->userdata, &p, cmd, sb.pid)) < 0) {
                nono_sandbox_kill(&sb);
                goto out_sig;
        }
        nono_trace("run: started hook done");
        r = nono_sandbox_serve(&sb, on_chan, (void *)o->hooks);
        nono_trace("run: agent exec reached");
        if (o->hooks && o->hooks->ready && o->hooks->ready(o->hooks->userdata) < 0) {
                nono_sandbox_kill(&sb); /* the session could not be recorded: nothing ran */
                goto out_sig;
        }
        status = nono_sandbox_wait(&sb, sigfd);
        nono_trace("run: init reaped");
        if (r < 0 && !sb.exec_reached && status == 0)
                status = 1;
        if (o->hooks && o->hooks->finished)
                o->hooks->finished(o->hooks->userdata, status, sb.exec_reached);
        nono_trace("run: finished hook done");
out_sig:
        nono_sandbox_kill(&sb);
        if (sigfd >= 0)
                close(sigfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
out:
        nono_env_free(envp);
        strv_free(state);
        nono_policy_free(&p);
        return status;
}
