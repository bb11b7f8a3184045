/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-mount.c - the agent's mount tree, built by init inside its user+mount namespace.
 *
 * The tree starts empty (a tmpfs) and receives only what the policy grants, so nothing is visible by
 * accident: system paths read-only (bind, recursive, nosuid, nodev), each granted root through its provider
 * (read-only when only read was granted), a private /tmp, a minimal /dev (null zero full random urandom tty,
 * a new devpts instance for ptys, /dev/shm), a fresh /proc of the new pid namespace with /proc/sys and
 * friends read-only, and finally masks: an empty mode-000 read-only tmpfs (directories) or file over every
 * denied path that exists under a grant, and over nono's own state, whatever the grants say.
 *
 * What it stops: reading or writing anything not granted, including through absolute paths, symlinks that
 * point outside (they resolve inside this tree, where the target does not exist), hard links (they cannot
 * cross mounts), and the /proc of processes outside (they are not in this pid namespace).
 * What it does not stop: access inside a grant (that is the grant); deny patterns with globs are left to
 * fs/ (masking them here would walk the whole tree); a denied path created by the agent after start under a
 * writable parent is not masked (fs/ refuses it by rule once the FUSE provider is in use).
 *
 * Steps follow bubblewrap: make "/" a slave, mount a tmpfs on /tmp and pivot_root into it so the old root
 * is at /oldroot, build /newroot from /oldroot's paths, detach /oldroot, pivot into /newroot.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher/sandbox-util.h"
#include "launcher/sandbox.h"

#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_pivot_root
#define __NR_pivot_root 155
#endif
#define MNT_ATTR_RDONLY 0x1ull
#define MNT_ATTR_NOSUID 0x2ull
#define MNT_ATTR_NODEV  0x4ull
#define MNT_ATTR_NOEXEC 0x8ull
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct mount_attr_k {
        uint64_t attr_set, attr_clr, propagation, userns_fd;
};

enum mkind { M_SYSTEM, M_TMP, M_DEV, M_PROC, M_GRANT, M_MASK, M_RO };

struct mentry {
        const char *path;
        enum mkind kind;
        const struct nono_grant *grant;
        unsigned index;
        bool deferred; /* made after the others (see build_tree) */
};

__attribute__((format(printf, 4, 5))) static int fail_(char *err, size_t errlen, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return r;
}
#define FAIL(r, ...) fail_(err, errlen, (r), __VA_ARGS__)

int nono_mount_attr(const char *path, unsigned long long set, bool recursive)
{
        struct mount_attr_k a = {.attr_set = set};

        if (syscall(__NR_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof(a)) < 0)
                return -errno;
        return 0;
}

static int cmp_entry(const void *a, const void *b)
{
        const struct mentry *x = a, *y = b;
        int c = strcmp(x->path, y->path);

        return c ? c : (int)x->kind - (int)y->kind;
}

static int bind(const char *src, const char *dst, unsigned long long attrs, char *err, size_t errlen)
{
        int r;

        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return FAIL(-errno, "cannot bind-mount %s on %s: %s", src, dst, strerror(errno));
        if (attrs && (r = nono_mount_attr(dst, attrs, true)) < 0)
                return FAIL(r, "cannot set mount attributes of %s: %s", dst, strerror(-r));
        return 0;
}

/* A mount point for src at dst: a directory, or an empty file. */
static int make_point(const char *dst, bool dir, char *err, size_t errlen)
{
        int r = dir ? nono_mkdir_p(dst, 0755) : nono_touch_p(dst, 0644);

        if (r < 0)
                return FAIL(r, "cannot create mount point %s: %s", dst, strerror(-r));
        return 0;
}

static int mount_system(const char *src, const char *dst, const struct nono_grant *g, char *err,
                        size_t errlen)
{
        struct stat st;

        if (stat(src, &st) < 0) {
                if (g->optional)
                        return 0;
                return FAIL(-ENOENT, "%s does not exist: remove it from the policy", g->path);
        }
        if (make_point(dst, S_ISDIR(st.st_mode), err, errlen) < 0)
                return -1;
        return bind(src, dst, MNT_ATTR_RDONLY | MNT_ATTR_NOSUID | MNT_ATTR_NODEV, err, errlen);
}

static int mount_dev(const char *dst, char *err, size_t errlen)
{
        static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};
        static const char *const links[][2] = {{"fd", "/proc/self/fd"},
                                               {"stdin", "/proc/self/fd/0"},
                                               {"stdout", "/proc/self/fd/1"},
                                               {"stderr", "/proc/self/fd/2"},
                                               {"ptmx", "pts/ptmx"}};
        char p[PATH_MAX], s[PATH_MAX];
        int r;

        if (make_point(dst, true, err, errlen) < 0)
                return -1;
        if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
                return FAIL(-errno, "cannot mount a tmpfs on %s: %s", dst, strerror(errno));
        for (size_t i = 0; nodes[i]; i++) {
                snprintf(p, sizeof(p), "%s/%s", dst, nodes[i]);
                snprintf(s, sizeof(s), "/oldroot/dev/%s", nodes[i]);
                if (access(s, F_OK) < 0)
                        continue;
                if (make_point(p, false, err, errlen) < 0)
                        return -1;
                if (mount(s, p, NULL, MS_BIND, NULL) < 0)
                        return FAIL(-errno, "cannot bind-mount /dev/%s: %s", nodes[i], strerror(errno));
        }
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", dst, links[i][0]);
                if (symlink(links[i][1], p) < 0)
                        return FAIL(-errno, "cannot create %s: %s", p, strerror(errno));
        }
        snprintf(p, sizeof(p), "%s/pts", dst);
        if (mkdir(p, 0755) < 0 ||
            mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
                return FAIL(-errno, "cannot mount a devpts instance on /dev/pts: %s (is devpts available?)",
                            strerror(errno));
        snprintf(p, sizeof(p), "%s/shm", dst);
        if (mkdir(p, 0755) < 0 || mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
                return FAIL(-errno, "cannot mount /dev/shm: %s", strerror(errno));
        if ((r = nono_mount_attr(dst, MNT_ATTR_RDONLY, false)) < 0)
                return FAIL(r, "cannot make /dev read-only: %s", strerror(-r));
        return 0;
}

static int mount_proc(const char *dst, char *err, size_t errlen)
{
        static const char *const ro[] = {"sys", "sysrq-trigger", "irq", "bus", "fs", NULL};
        char p[PATH_MAX];

        if (make_point(dst, true, err, errlen) < 0)
                return -1;
        if (mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return FAIL(-errno,
                            "cannot mount a fresh /proc: %s (a locked-down /proc on the host prevents it)",
                            strerror(errno));
        for (size_t i = 0; ro[i]; i++) {
                snprintf(p, sizeof(p), "%s/%s", dst, ro[i]);
                if (access(p, F_OK) < 0)
                        continue;
                if (bind(p, p, MNT_ATTR_RDONLY | MNT_ATTR_NOSUID | MNT_ATTR_NODEV | MNT_ATTR_NOEXEC, err,
                         errlen) < 0)
                        return -1;
        }
        return 0;
}

static int mount_mask(const char *dst, unsigned deny, char *err, size_t errlen)
{
        struct stat st;

        if (lstat(dst, &st) < 0 || S_ISLNK(st.st_mode))
                return 0; /* nothing there to hide; a symlink's target is masked on its own if visible */
        if (!(deny & NONO_ACCESS_READ)) /* write-only deny: the path stays readable, read-only */
                return bind(dst, dst, MNT_ATTR_RDONLY | MNT_ATTR_NOSUID | MNT_ATTR_NODEV, err, errlen);
        if (S_ISDIR(st.st_mode)) {
                if (mount("tmpfs", dst, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "mode=000,size=4k") < 0)
                        return FAIL(-errno, "cannot mask %s: %s", dst, strerror(errno));
                return 0;
        }
        return bind("/maskfile", dst, MNT_ATTR_RDONLY | MNT_ATTR_NOSUID | MNT_ATTR_NODEV | MNT_ATTR_NOEXEC,
                    err, errlen);
}

static void mirror_root_symlinks(void)
{
        DIR *d = opendir("/oldroot");
        struct dirent *de;
        char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];

        if (!d)
                return;
        while ((de = readdir(d))) {
                if (de->d_type != DT_LNK)
                        continue;
                snprintf(src, sizeof(src), "/oldroot/%s", de->d_name);
                snprintf(dst, sizeof(dst), "/newroot/%s", de->d_name);
                ssize_t n = readlink(src, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                (void)symlink(target, dst); /* /bin -> usr/bin: dangling unless its target is granted */
        }
        closedir(d);
}

static bool has_glob(const char *s)
{
        return strpbrk(s, "*?[") != NULL;
}

/*
 * A write-only deny (a shell start-up file: readable, never writable) needs no read-only mask where the
 * grant it lies in is read-only itself: Landlock gives no write right there, and a read-only root refuses
 * writes (fs/ records each refusal as a violation; a system grant is a read-only bind). Skipping it keeps
 * init from touching that root while it builds the tree: masking was the first request of a FUSE root such
 * as ~/.gitconfig (granted read-only and write-denied), so init waited for that root to be served. The
 * deepest grant that holds the path decides, since it is the mount the path is reached through; a grant
 * beneath the path is its own mount with its own access, unaffected either way.
 */
static bool ro_already(const struct nono_policy *p, const struct nono_deny *d)
{
        const struct nono_grant *in = NULL;

        if (d->access & NONO_ACCESS_READ)
                return false;
        for (size_t i = 0; i < p->n_grants; i++)
                if (nono_path_under(d->pattern, p->grants[i].path) &&
                    (!in || strlen(p->grants[i].path) > strlen(in->path)))
                        in = &p->grants[i];
        return in && !(in->access & NONO_ACCESS_WRITE);
}

/*
 * A mask can only land on something that the tree holds: a path inside a grant, a mount point made for one
 * (a parent of a grant), or /dev and /proc. Anything else is in the empty tmpfs skeleton or the private /tmp
 * (empty too) and cannot exist, so it is skipped without the lstat() that would find nothing: the default
 * profile has a hundred deny paths, most of them under $HOME, which is rarely granted whole.
 */
static bool in_tree(const struct nono_policy *p, const char *path)
{
        if (nono_path_under(path, "/dev") || nono_path_under(path, "/proc"))
                return true;
        for (size_t i = 0; i < p->n_grants; i++)
                if (nono_path_under(path, p->grants[i].path) || nono_path_under(p->grants[i].path, path))
                        return true;
        return false;
}

static int build_tree(const struct nono_sandbox_config *c, int chan, char *err, size_t errlen)
{
        const struct nono_policy *p = c->policy;
        const struct nono_root_provider *prov = c->provider ? c->provider : &nono_provider_bind;
        size_t n_state = 0, n = 0, cap;
        _cleanup_free_ struct mentry *e = NULL;
        unsigned root_id = 0;
        int r = 0;

        while (c->state_paths && c->state_paths[n_state])
                n_state++;
        cap = p->n_grants + p->n_denies + n_state + 3;
        e = calloc(cap, sizeof(*e));
        if (!e)
                return FAIL(-ENOMEM, "out of memory");
        e[n++] = (struct mentry){.path = "/tmp", .kind = M_TMP};
        e[n++] = (struct mentry){.path = "/dev", .kind = M_DEV};
        e[n++] = (struct mentry){.path = "/proc", .kind = M_PROC};
        for (size_t i = 0; i < p->n_grants; i++) {
                const struct nono_grant *g = &p->grants[i];
                e[n++] = (struct mentry){.path = g->path,
                                         .kind = g->system ? M_SYSTEM : M_GRANT,
                                         .grant = g,
                                         .index = g->system ? 0 : root_id++};
        }
        for (size_t i = 0; i < p->n_denies; i++)
                if (!has_glob(p->denies[i].pattern) && !ro_already(p, &p->denies[i]) &&
                    in_tree(p, p->denies[i].pattern))
                        e[n++] =
                            (struct mentry){.path = p->denies[i].pattern,
                                            .kind = p->denies[i].access & NONO_ACCESS_READ ? M_MASK : M_RO,
                                            .index = p->denies[i].access};
        for (size_t i = 0; i < n_state; i++)
                if (in_tree(p, c->state_paths[i]))
                        e[n++] = (struct mentry){.path = c->state_paths[i],
                                                 .kind = M_MASK,
                                                 .index = NONO_ACCESS_READ | NONO_ACCESS_WRITE};
        qsort(e, n, sizeof(*e), cmp_entry);

        nono_trace("init: staging done");
        /* Masks go last, in their order, unless something is mounted beneath one later (then order
         * matters: a read-only bind taken over a later mount would make that mount read-only too).
         * Masking is what first looks inside the FUSE roots, which wait for the session record: the other
         * mounts are made meanwhile. */
        for (size_t i = 0; i < n; i++) {
                e[i].deferred = e[i].kind == M_MASK || e[i].kind == M_RO;
                for (size_t j = i + 1; e[i].deferred && j < n; j++)
                        if (e[j].kind != M_MASK && e[j].kind != M_RO && nono_path_under(e[j].path, e[i].path))
                                e[i].deferred = false;
        }
        for (size_t k = 0; k < 2 * n && r >= 0; k++) {
                size_t i = k % n;
                if (e[i].deferred != (k >= n))
                        continue;
                char src[PATH_MAX], dst[PATH_MAX];
                snprintf(src, sizeof(src), "/oldroot%s", e[i].path);
                snprintf(dst, sizeof(dst), "/newroot%s", strcmp(e[i].path, "/") ? e[i].path : "");
                switch (e[i].kind) {
                case M_SYSTEM:
                        r = mount_system(src, dst, e[i].grant, err, errlen);
                        break;
                case M_TMP:
                        r = make_point(dst, true, err, errlen);
                        if (r >= 0 && mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
                                r = FAIL(-errno, "cannot mount a private /tmp: %s", strerror(errno));
                        break;
                case M_DEV:
                        r = mount_dev(dst, err, errlen);
                        break;
                case M_PROC:
                        r = mount_proc(dst, err, errlen);
                        break;
                case M_GRANT:
                        r = make_point(dst, !e[i].grant->is_file, err, errlen);
                        if (r >= 0)
                                r = prov->child_mount(e[i].grant, e[i].index, src, dst, chan, err, errlen);
                        break;
                case M_MASK:
                case M_RO:
                        r = mount_mask(dst, e[i].index, err, errlen);
                        break;
                }
                if (e[i].kind != M_MASK && e[i].kind != M_RO)
                        nono_trace(e[i].path);
        }
        return r;
}

int nono_sandbox_build_root(const struct nono_sandbox_config *c, int chan, char *err, size_t errlen)
{
        int r;

        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return FAIL(-errno, "cannot make the mount tree private: %s", strerror(errno));
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                return FAIL(-errno, "cannot mount the staging tmpfs: %s", strerror(errno));
        if (mkdir("/tmp/oldroot", 0755) < 0 || mkdir("/tmp/newroot", 0755) < 0)
                return FAIL(-errno, "cannot create staging directories: %s", strerror(errno));
        if (syscall(__NR_pivot_root, "/tmp", "/tmp/oldroot") < 0 || chdir("/") < 0)
                return FAIL(-errno, "pivot_root into the staging tmpfs failed: %s", strerror(errno));
        r = open("/maskfile", O_CREAT | O_WRONLY | O_CLOEXEC, 0);
        if (r < 0)
                return FAIL(-errno, "cannot create the mask file: %s", strerror(errno));
        close(r);
        if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                return FAIL(-errno, "cannot mount the new root: %s", strerror(errno));
        mirror_root_symlinks();
        if ((r = build_tree(c, chan, err, errlen)) < 0)
                return r;
        nono_trace("init: masks done");
        if ((r = nono_mount_attr("/newroot", MNT_ATTR_RDONLY, false)) < 0)
                return FAIL(r, "cannot make / read-only: %s", strerror(-r));
        if (umount2("/oldroot", MNT_DETACH) < 0)
                return FAIL(-errno, "cannot detach the old root: %s", strerror(errno));
        if (chdir("/newroot") < 0 || syscall(__NR_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
            chdir("/") < 0)
                return FAIL(-errno, "pivot_root into the new root failed: %s", strerror(errno));
        return 0;
}

/* ---- the bind provider: the host directory itself, until fs/ serves it ---------------------------- */

static int bind_child_mount(const struct nono_grant *g, unsigned index, const char *src, const char *target,
                            int chan, char *err, size_t errlen)
{
        unsigned long long attrs = MNT_ATTR_NOSUID | MNT_ATTR_NODEV;

        if (!(g->access & NONO_ACCESS_WRITE))
                attrs |= MNT_ATTR_RDONLY;
        return bind(src, target, attrs, err, errlen);
}

const struct nono_root_provider nono_provider_bind = {.name = "bind", .child_mount = bind_child_mount};
