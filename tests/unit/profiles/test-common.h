/* SPDX-License-Identifier: Apache-2.0 */
/* test-common.h - a private HOME and XDG_CONFIG_HOME per test, and helpers to write user profiles. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char tdir[200];

static inline void mkdirs(const char *rel)
{
        char path[1024], *p;

        snprintf(path, sizeof(path), "%s/%s", tdir, rel);
        for (p = path + strlen(tdir) + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        mkdir(path, 0755);
                        *p = '/';
                }
        mkdir(path, 0755);
}

static inline void write_file(const char *rel, const char *text)
{
        char path[1024];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", tdir, rel);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static inline void write_user(const char *name, const char *text)
{
        char rel[256];

        mkdirs("cfg/nono/profiles");
        snprintf(rel, sizeof(rel), "cfg/nono/profiles/%s.json", name);
        write_file(rel, text);
}

static int setup_env(void **state)
{
        char buf[1024];

        snprintf(tdir, sizeof(tdir), "%s/nono-unit-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(tdir))
                return -1;
        /* canonical, so that expected paths compare equal to realpath() results */
        if (!realpath(tdir, buf))
                return -1;
        if (strlen(buf) >= sizeof(tdir))
                return -1;
        memcpy(tdir, buf, strlen(buf) + 1);
        mkdirs("home");
        mkdirs("work");
        snprintf(buf, sizeof(buf), "%s/home", tdir);
        setenv("HOME", buf, 1);
        snprintf(buf, sizeof(buf), "%s/cfg", tdir);
        setenv("XDG_CONFIG_HOME", buf, 1);
        unsetenv("XDG_DATA_HOME");
        unsetenv("XDG_CACHE_HOME");
        setenv("TMPDIR", "/tmp", 1);
        return 0;
}

static int teardown_env(void **state)
{
        char cmd[1024];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
        return system(cmd) == 0 ? 0 : -1;
}
