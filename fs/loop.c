/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop.c - the worker threads that answer a session's requests.
 *
 * Why not libfuse's multithreaded loop: it is a thread that only waits for the session's end, plus workers,
 * of which there are two as soon as the first request came (a worker that takes a request while no other is
 * idle starts one). `nono run` serves two roots by default (the workdir and ~/.gitconfig): six threads,
 * each a few hundred microseconds of CPU to start and to end on a small VM, for an agent that may make a
 * handful of requests. Here a session starts with one worker, which starts a second only when it is needed:
 *
 * - when another request is already waiting while it takes one (poll() of the session's fd: requests come
 *   in parallel, as from `make -j`), or once the session has had WARM_REQUESTS requests (a session that
 *   does real work keeps two workers and skips the poll);
 * - when a request is about to wait for something only another request can bring: a blocking flock()
 *   waits for another process's unlock (a request for this session), a LOOKUP over the fd budget waits for
 *   FORGETs (evict.c), and a request the kernel INTERRUPTs needs its INTERRUPT read. Handlers say so with
 *   loop_may_block() before they wait. With one worker, such a request would hang the session: the
 *   `flock` test of tests/e2e/run-functional.bats is the one that fails without it.
 * Beyond that, libfuse's rule stands: a worker that takes a request (other than a FORGET) while no other is
 * idle starts one, up to the cap (8, or nono_fs_config.threads), and idle workers beyond MAX_IDLE end.
 * Requests are received and answered by libfuse's own fuse_session_receive_buf/process_buf, each worker
 * blocked in read() of the session's fd, as in libfuse's loop without clone_fd.
 *
 * The session's end: the kernel ends the connection (ENODEV, ECONNABORTED) and every worker's read fails;
 * the last worker to leave writes done_fd, and loop_join (nono_fs_stop) joins them all, so every RELEASE
 * and its event has been answered and each worker's libfuse state freed before the session is destroyed.
 *
 * Not a security mechanism: which requests are answered, and how, is decided in ops-*.c.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "fs/fs-internal.h"

#define DEFAULT_THREADS 8u  /* the cap, as libfuse's default max_threads */
#define MAX_IDLE        4u  /* idle workers beyond this end after their request */
#define WARM_REQUESTS   64u /* requests after which a second worker is kept without asking */

/* The start of every request (linux/fuse.h's fuse_in_header), and the opcodes of the requests that get no
 * reply and never wait: libfuse does not count them either, so a burst of them starts no worker */
struct in_start {
        uint32_t len, opcode;
};
#define OP_FORGET       2u
#define OP_BATCH_FORGET 42u

static void *worker_main(void *arg);

/* A worker more, idle; under fs->loop_lock. Workers block every signal: signals are the main thread's. */
static int spawn_locked(nono_fs *fs)
{
        sigset_t all, old;
        pthread_t t;

        if (fs->loop_n_tids == fs->loop_tids_cap) {
                size_t n = fs->loop_tids_cap ? 2 * fs->loop_tids_cap : 4;
                pthread_t *v = realloc(fs->loop_tids, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                fs->loop_tids = v;
                fs->loop_tids_cap = n;
        }
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int e = pthread_create(&t, NULL, worker_main, fs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e)
                return -e;
        fs->loop_tids[fs->loop_n_tids++] = t;
        fs->loop_threads++;
        fs->loop_idle++;
        return 0;
}

static bool can_spawn_locked(const nono_fs *fs)
{
        return fs->loop_idle == 0 && fs->loop_threads < fs->loop_cap;
}

void loop_may_block(nono_fs *fs)
{
        pthread_mutex_lock(&fs->loop_lock);
        if (can_spawn_locked(fs))
                (void)spawn_locked(fs);
        pthread_mutex_unlock(&fs->loop_lock);
}

static bool pending(nono_fs *fs)
{
        struct pollfd p = {.fd = fuse_session_fd(fs->se), .events = POLLIN};
        return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The worker took a request: no other worker idle means none is reading the session's fd. */
static void took(nono_fs *fs)
{
        pthread_mutex_lock(&fs->loop_lock);
        fs->loop_idle--;
        bool warm = ++fs->loop_taken > WARM_REQUESTS, maybe = can_spawn_locked(fs);
        if (maybe && warm)
                (void)spawn_locked(fs); /* as libfuse: the others wait meanwhile */
        pthread_mutex_unlock(&fs->loop_lock);
        if (maybe && !warm && pending(fs))
                loop_may_block(fs);
}

static void *worker_main(void *arg)
{
        nono_fs *fs = arg;
        struct fuse_buf buf = {.mem = NULL};

        prctl(PR_SET_NAME, "nono-fs");
        for (;;) {
                int r = fuse_session_receive_buf(fs->se, &buf);
                if (r == -EINTR || r == -EAGAIN)
                        continue;
                if (r <= 0) {
                        /* 0: the kernel ended the connection (ENODEV) or the session was told to exit; an
                         * error (libfuse said which on stderr) ends it, as it ended libfuse's loop */
                        fuse_session_exit(fs->se);
                        break;
                }
                /* the opcode is in memory unless the request was spliced (a large WRITE) */
                const struct in_start *in = buf.mem;
                bool forget = !(buf.flags & FUSE_BUF_IS_FD) && in &&
                              (in->opcode == OP_FORGET || in->opcode == OP_BATCH_FORGET);
                if (!forget)
                        took(fs);
                fuse_session_process_buf(fs->se, &buf);
                if (forget)
                        continue;
                pthread_mutex_lock(&fs->loop_lock);
                bool surplus = ++fs->loop_idle > MAX_IDLE;
                if (surplus) { /* never the last: loop_join joins it */
                        fs->loop_idle--;
                        fs->loop_threads--;
                }
                pthread_mutex_unlock(&fs->loop_lock);
                if (surplus) {
                        free(buf.mem);
                        return NULL;
                }
        }
        free(buf.mem);
        pthread_mutex_lock(&fs->loop_lock);
        fs->loop_idle--;
        bool last = --fs->loop_threads == 0;
        pthread_mutex_unlock(&fs->loop_lock);
        if (last) { /* the session's last use of fs by this thread */
                uint64_t one = 1;
                if (write(fs->done_fd, &one, sizeof(one)) < 0) {
                        /* cannot fail for an eventfd far from its maximum */
                }
        }
        return NULL;
}

int loop_start(nono_fs *fs)
{
        pthread_mutex_lock(&fs->loop_lock);
        fs->loop_cap = fs->cfg.threads ? fs->cfg.threads : DEFAULT_THREADS;
        int r = spawn_locked(fs);
        pthread_mutex_unlock(&fs->loop_lock);
        return r;
}

void loop_join(nono_fs *fs)
{
        /* after done_fd: no worker is left to start another */
        for (size_t i = 0; i < fs->loop_n_tids; i++)
                pthread_join(fs->loop_tids[i], NULL);
        fs->loop_n_tids = 0;
}
