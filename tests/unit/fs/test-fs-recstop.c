/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-recstop.c - no audit event that fs/ accepted is lost at stop (fs/rec.c).
 *
 * Threads keep recording events (as request handlers still running during a stop would) while the filesystem
 * stops. Every event that was accepted (counted in the statistics) must be in the store afterwards; one that
 * arrives after the end of recording is refused and not counted. Before the fix, events pushed while the
 * last batch was being written went into a batch that nobody wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/fs-internal.h"
#include "harness.h"
#include "store/store.h"

#define PUSHERS 3

static char home[512];

struct run {
        nono_fs *fs;
        atomic_bool done;
        atomic_ulong started;
};

static void *pusher(void *arg)
{
        struct run *r = arg;
        char path[32];

        for (unsigned k = 0; !atomic_load(&r->done); k++) {
                snprintf(path, sizeof(path), "f%u", k % 1000);
                rec_event_as(r->fs, 1, 0, NONO_OP_OPEN, path, 0, 0, O_RDONLY, 0, 0);
                atomic_fetch_add(&r->started, 1);
        }
        return NULL;
}

static int count_cb(const struct nono_event *ev, void *u)
{
        (void)ev;
        (*(uint64_t *)u)++;
        return 0;
}

static void t_events_during_stop(void **s)
{
        nono_store *st = NULL;
        char *argv[] = {"test", NULL}, *roots[] = {home, NULL};
        struct timespec t;

        assert_int_equal(nono_store_open(home, 0, &st), 0);
        clock_gettime(CLOCK_REALTIME, &t);
        struct nono_session ses = {.argv = argv,
                                   .cwd = "/",
                                   .policy_json = "{}",
                                   .roots = roots,
                                   .start_ns = t.tv_sec * 1000000000LL + t.tv_nsec,
                                   .pid = getpid()};
        assert_int_equal(nono_session_create(st, &ses), 0);
        int root = open(home, O_PATH | O_CLOEXEC);
        assert_true(root >= 0);
        struct nono_fs_config c = {
            .root_fd = root, .root_path = home, .store = st, .session = ses.id, .record = true};
        struct run r = {0};
        assert_int_equal(nono_fs_new(&c, &r.fs), 0);
        close(root);

        pthread_t th[PUSHERS];
        for (int k = 0; k < PUSHERS; k++)
                assert_int_equal(pthread_create(&th[k], NULL, pusher, &r), 0);
        while (atomic_load(&r.started) < 20000) /* several batches in flight, the flusher busy */
                sched_yield();
        assert_int_equal(nono_fs_stop(r.fs), 0); /* the pushers keep going through the stop */
        unsigned long after_stop = atomic_load(&r.started);
        while (atomic_load(&r.started) < after_stop + 1000) /* and after it: refused */
                sched_yield();
        atomic_store(&r.done, true);
        for (int k = 0; k < PUSHERS; k++)
                pthread_join(th[k], NULL);

        struct nono_fs_stats stats;
        nono_fs_get_stats(r.fs, &stats);
        uint64_t stored = 0;
        assert_int_equal(nono_events_iterate(st, ses.id, 1, count_cb, &stored), 0);
        printf("# %lu events pushed, %llu accepted, %llu stored\n", (unsigned long)atomic_load(&r.started),
               (unsigned long long)stats.events, (unsigned long long)stored);
        assert_int_equal(stored, stats.events);
        assert_true(stats.events < atomic_load(&r.started)); /* the late ones were refused */
        nono_fs_free(r.fs);
        nono_store_close(st);
}

static int setup(void **s)
{
        return store_home_up(home, sizeof(home), "recstop");
}

static int teardown(void **s)
{
        rm_rf(home);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(t_events_during_stop),
        };
        return cmocka_run_group_tests_name("fs-recstop", tests, setup, teardown);
}
