/* SPDX-License-Identifier: Apache-2.0 */
#include "harness.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool is_root(void)
{
        return geteuid() == 0;
}

int store_home_up(char *buf, size_t len, const char *tag)
{
        const char *tmp = getenv("TMPDIR");
        snprintf(buf, len, "%s/nono-fs-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
        if (!mkdtemp(buf))
                return -1;
        setenv("NONO_HOME", buf, 1);
        return 0;
}

void tr(char **trace, const char *fmt, ...)
{
        char *line = NULL, *n = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&line, fmt, ap) < 0)
                abort();
        va_end(ap);
        if (asprintf(&n, "%s%s\n", *trace ? *trace : "", line) < 0)
                abort();
        free(line);
        free(*trace);
        *trace = n;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
        if (flag == FTW_DP || flag == FTW_D)
                chmod(p, 0700);
        return remove(p) < 0 ? 0 : 0;
}

void rm_rf(const char *path)
{
        nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

int mnt_serve(struct mnt *m, const struct nono_fs_config *cfg)
{
        struct nono_fs_config c = {0};
        int r;

        if (cfg)
                c = *cfg;
        c.root_fd = open(m->back, O_PATH | O_CLOEXEC);
        c.root_path = m->back;
        if (c.root_fd < 0) {
                perror("open back");
                return -1;
        }
        r = nono_fs_new(&c, &m->fs);
        close(c.root_fd);
        if (r < 0) {
                fprintf(stderr, "nono_fs_new: %s\n", strerror(-r));
                return -1;
        }
        r = nono_fs_mount(m->fs, m->mp);
        if (r < 0) {
                fprintf(stderr, "nono_fs_mount %s: %s\n", m->mp, strerror(-r));
                nono_fs_free(m->fs);
                m->fs = NULL;
                return -1;
        }
        r = nono_fs_start(m->fs);
        if (r < 0) {
                fprintf(stderr, "nono_fs_start: %s\n", strerror(-r));
                return -1;
        }
        return 0;
}

int mnt_up(struct mnt *m, const struct nono_fs_config *cfg)
{
        const char *tmp = getenv("TMPDIR");

        memset(m, 0, sizeof(*m));
        snprintf(m->base, sizeof(m->base), "%s/nono-fs-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(m->base)) {
                perror("mkdtemp");
                return -1;
        }
        chmod(m->base, 0755);
        snprintf(m->back, sizeof(m->back), "%s/back", m->base);
        snprintf(m->native, sizeof(m->native), "%s/native", m->base);
        snprintf(m->mp, sizeof(m->mp), "%s/mnt", m->base);
        if (mkdir(m->back, 0755) < 0 || mkdir(m->native, 0755) < 0 || mkdir(m->mp, 0755) < 0) {
                perror("mkdir");
                return -1;
        }
        return mnt_serve(m, cfg);
}

void mnt_unmount(struct mnt *m)
{
        if (m->fs) {
                nono_fs_stop(m->fs);
                nono_fs_free(m->fs);
                m->fs = NULL;
        }
}

void mnt_down(struct mnt *m)
{
        mnt_unmount(m);
        if (m->base[0])
                rm_rf(m->base);
}
