/* SPDX-License-Identifier: Apache-2.0 */
/* helpers.h - shared by the store's unit tests: a fresh temporary nono home per test. */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        chmod(p, 0700);
        return remove(p);
}

static inline void rm_rf(const char *p)
{
        /* make directories traversable first, so a test that removed permissions still cleans up */
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "chmod -R u+rwX '%s' 2>/dev/null", p);
        if (system(cmd) != 0) {
        }
        nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct fixture {
        char home[256];
        nono_store *st;
};

static inline char *make_home(char *buf, size_t len)
{
        const char *t = getenv("TMPDIR");
        snprintf(buf, len, "%s/nono-store-test.XXXXXX", t && *t ? t : "/tmp");
        assert_non_null(mkdtemp(buf));
        return buf;
}

static inline int fx_setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        make_home(f->home, sizeof(f->home));
        int r = nono_store_open(f->home, 0, &f->st);
        if (r < 0)
                fprintf(stderr, "open: %s\n", nono_store_errmsg());
        assert_int_equal(r, 0);
        nono_store_set_gc_grace(f->st, 0);
        *state = f;
        return 0;
}

static inline int fx_teardown(void **state)
{
        struct fixture *f = *state;
        nono_store_close(f->st);
        rm_rf(f->home);
        free(f);
        return 0;
}

#define assert_ok(expr)                                                                                      \
        do {                                                                                                 \
                int _r = (expr);                                                                             \
                if (_r < 0)                                                                                  \
                        fail_msg("%s = %d (%s): %s", #expr, _r, strerror(-_r), nono_store_errmsg());         \
        } while (0)

static inline void fill_random(void *buf, size_t len, unsigned seed)
{
        uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
        uint8_t *p = buf;
        for (size_t i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p[i] = (uint8_t)x;
        }
}

static inline void new_session(nono_store *st, struct nono_session *s)
{
        static char *argv[] = {"agent", "--flag", NULL};
        static char *roots[] = {"/work/project", NULL};
        *s = (struct nono_session){
            .argv = argv, .cwd = "/work/project", .policy_json = "{}", .roots = roots, .rollback = true};
        assert_ok(nono_session_create(st, s));
}
