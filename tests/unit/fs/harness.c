/* SPDX-License-Identifier: Apache-2.0 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

/* Depth-first, making each directory readable and writable for its owner before it is listed: the tests
 * leave directories with modes like 0500 or 0000 (the fuzz, as uid 65534), which nftw() cannot descend into,
 * so their temporary trees stayed behind in /tmp. Never follows a symlink. */
static void rm_at(int dfd, const char *name)
{
        struct stat st;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return;
        if (!S_ISDIR(st.st_mode)) {
                unlinkat(dfd, name, 0);
                return;
        }
        fchmodat(dfd, name, 0700, 0);
        for (int pass = 0; pass < 3 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno == ENOTEMPTY; pass++) {
                int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *d = fd < 0 ? NULL : fdopendir(fd);
                if (!d) {
                        if (fd >= 0)
                                close(fd);
                        return;
                }
                for (struct dirent *e; (e = readdir(d));)
                        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                                rm_at(dirfd(d), e->d_name);
                closedir(d);
        }
}

void rm_rf(const char *path)
{
        rm_at(AT_FDCWD, path);
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
