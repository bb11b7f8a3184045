/* SPDX-License-Identifier: Apache-2.0 */
/* test-proxy-pool.c - the proxy's worker pool: tasks that wait on each other finish, the cap holds, idle
 * workers are reused, free waits for everything. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "launcher/proxy-pool.h"

struct gate {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int opened, done;
};

static void opener(void *arg)
{
        struct gate *g = arg;

        pthread_mutex_lock(&g->lock);
        g->opened++;
        g->done++;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
}

/* Waits for its opener, as a relay waits for its other direction. */
static void waiter(void *arg)
{
        struct gate *g = arg;

        pthread_mutex_lock(&g->lock);
        while (!g->opened)
                pthread_cond_wait(&g->cond, &g->lock);
        g->opened--;
        g->done++;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
}

static void test_dependent_tasks_finish(void **state)
{
        nono_pool *p = NULL;
        struct gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

        assert_int_equal(nono_pool_new(400, 4, 64 * 1024, &p), 0); /* the cap covers every task at once */
        for (int round = 0; round < 200; round++) {
                assert_int_equal(nono_pool_submit(p, waiter, &g), 0);
                assert_int_equal(nono_pool_submit(p, opener, &g), 0);
        }
        pthread_mutex_lock(&g.lock);
        while (g.done < 400)
                pthread_cond_wait(&g.cond, &g.lock);
        pthread_mutex_unlock(&g.lock);
        nono_pool_free(p);
        assert_int_equal(g.opened, 0);
}

static void test_cap(void **state)
{
        nono_pool *p = NULL;
        struct gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

        assert_int_equal(nono_pool_new(2, 2, 64 * 1024, &p), 0);
        assert_int_equal(nono_pool_submit(p, waiter, &g), 0);
        assert_int_equal(nono_pool_submit(p, waiter, &g), 0);
        assert_int_equal(nono_pool_submit(p, waiter, &g), -EAGAIN); /* both workers are blocked */
        opener(&g);
        opener(&g);
        pthread_mutex_lock(&g.lock);
        while (g.done < 4)
                pthread_cond_wait(&g.cond, &g.lock);
        pthread_mutex_unlock(&g.lock);
        /* the workers become idle again and take new work (no third thread: the cap still holds) */
        opener(&g);
        int r;
        while ((r = nono_pool_submit(p, waiter, &g)) == -EAGAIN)
                sched_yield(); /* a worker is between its task and its idle wait */
        assert_int_equal(r, 0);
        nono_pool_free(p); /* waits for the task */
        assert_int_equal(g.done, 6);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dependent_tasks_finish),
            cmocka_unit_test(test_cap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
