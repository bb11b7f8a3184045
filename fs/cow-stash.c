/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cow-stash.c - the stash of the pre-image recorder (record format and content rule: cow.c).
 *
 * The stash is a directory "..nono-stash.<session>.<root id>" beside the root (same filesystem, so a link is
 * O(1)), else inside the root; fs/ hides every name with that prefix from the agent. An entry "<node id>" is
 * either a hard link to the file itself (before a partly captured file loses or changes a name) or a full
 * copy (before a big truncation). Each entry is durable (fsync of the stash directory) before fs/ makes the
 * change, and queued for the background ingest (cow-post.c).
 *
 * An entry "h<node id>" is a hard link to a file that had several names when the session first changed it
 * (why: cow.c "Hard links"). It is not ingested; fs/ removes it at the session end when a recorded path
 * still leads to the inode (restore finds it there), else it stays until the session is restored (restore
 * removes it) or deleted.
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fs/cow-internal.h"

int stash_name(uint64_t node, char *buf, size_t len)
{
        return snprintf(buf, len, "%llu", (unsigned long long)node) >= (int)len ? -ENAMETOOLONG : 0;
}

static int stash_parent(struct nono_fs *fs)
{
        if (!fs->root_is_file)
                return openat(fs->root.fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        char *dir = strdup(fs->root_path), *s = dir ? strrchr(dir, '/') : NULL;
        if (s)
                *(s == dir ? s + 1 : s) = 0;
        int parent = s ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        free(dir);
        return parent;
}

static int stash_dir(struct nono_fs *fs)
{
        struct nono_cow *c = fs->cow;
        char name[128];
        struct stat ps;

        if (c->stash_fd >= 0)
                return c->stash_fd;
        snprintf(name, sizeof(name), NONO_STASH_PREFIX "%s.%u", fs->session, fs->cfg.root_id);
        int parent = stash_parent(fs);
        if (parent >= 0 && fstat(parent, &ps) == 0 && ps.st_dev == fs->root.dev &&
            (mkdirat(parent, name, 0700) == 0 || errno == EEXIST)) {
                c->stash_fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (parent >= 0)
                close(parent);
        if (c->stash_fd < 0 && !fs->root_is_file &&
            (mkdirat(fs->root.fd, name, 0700) == 0 || errno == EEXIST)) {
                c->stash_fd = openat(fs->root.fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                c->stash_in_root = true;
        }
        return c->stash_fd >= 0 ? c->stash_fd : -EACCES;
}

static int fsync_dirfd(int pathfd)
{
        int d = openat(pathfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d < 0)
                return -errno;
        int r = fsync(d) < 0 ? -errno : 0;
        close(d);
        return r;
}

/* Links the inode of vfd (O_PATH) into the stash as <node>: O(1), then durable. */
int stash_link(struct nono_fs *fs, struct obj *o, int vfd)
{
        char name[32], p[64];
        int sd = stash_dir(fs);

        if (sd < 0)
                return sd;
        stash_name(o->node, name, sizeof(name));
        snprintf(p, sizeof(p), "/proc/self/fd/%d", vfd);
        if (linkat(vfd, "", sd, name, AT_EMPTY_PATH) < 0 && errno != EEXIST &&
            linkat(AT_FDCWD, p, sd, name, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
                return -errno;
        int r = fsync_dirfd(sd);
        if (r < 0)
                return r;
        o->stashed = true;
        ingest_queue(fs, o->node);
        return 0;
}

/* Copies the whole file into the stash as <node> (reflink when the filesystem can), then durable. */
int stash_copy(struct nono_fs *fs, struct obj *o, struct fsino *x)
{
        char name[32], tmp[48];
        int sd = stash_dir(fs), r = 0;

        if (sd < 0)
                return sd;
        stash_name(o->node, name, sizeof(name));
        snprintf(tmp, sizeof(tmp), "%s.tmp", name);
        int src = reopen(x, O_RDONLY);
        int dst = src < 0 ? -1 : openat(sd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (src < 0 || dst < 0) {
                r = -errno;
                goto out;
        }
        if (ioctl(dst, FICLONE, src) < 0) {
                struct stat st;
                if (fstat(src, &st) < 0) {
                        r = -errno;
                        goto out;
                }
                for (off_t left = st.st_size; left > 0;) {
                        ssize_t n = copy_file_range(src, NULL, dst, NULL, (size_t)left, 0);
                        if (n <= 0) {
                                r = n < 0 ? -errno : -EIO;
                                goto out;
                        }
                        left -= n;
                }
        }
        if (fsync(dst) < 0 || renameat(sd, tmp, sd, name) < 0) {
                r = -errno;
                goto out;
        }
        r = fsync_dirfd(sd);
        if (!r) {
                o->safe = true;
                o->stashed = true;
                ingest_queue(fs, o->node);
        }
out:
        if (src >= 0)
                close(src);
        if (dst >= 0)
                close(dst);
        return r;
}

/* The agent must see the link counts it would see without fs/ (test-fs-fuzz compares them with the backing
 * filesystem's): the h<node> name is fs/'s, not the tree's. */
static void hl_add(struct nono_cow *c, dev_t dev, ino_t ino)
{
        pthread_mutex_lock(&c->hl_lock);
        if (c->n_hl == c->cap_hl) {
                size_t nc = c->cap_hl ? c->cap_hl * 2 : 16;
                struct hl_key *n = realloc(c->hl, nc * sizeof(*n));
                if (!n) {
                        pthread_mutex_unlock(&c->hl_lock);
                        return; /* shown one link too many: cosmetic, the restore is unaffected */
                }
                c->hl = n;
                c->cap_hl = nc;
        }
        c->hl[c->n_hl++] = (struct hl_key){dev, ino};
        atomic_store(&c->hl_count, c->n_hl);
        pthread_mutex_unlock(&c->hl_lock);
}

static void hl_del(struct nono_cow *c, dev_t dev, ino_t ino)
{
        pthread_mutex_lock(&c->hl_lock);
        for (size_t k = 0; k < c->n_hl; k++)
                if (c->hl[k].dev == dev && c->hl[k].ino == ino) {
                        c->hl[k] = c->hl[--c->n_hl];
                        break;
                }
        atomic_store(&c->hl_count, c->n_hl);
        pthread_mutex_unlock(&c->hl_lock);
}

void cow_hide_stash_links(struct nono_fs *fs, struct stat *st)
{
        struct nono_cow *c = fs->cow;

        if (!c || st->st_nlink < 1 || !S_ISREG(st->st_mode) || !atomic_load(&c->hl_count))
                return;
        pthread_mutex_lock(&c->hl_lock);
        for (size_t k = 0; k < c->n_hl; k++)
                if (c->hl[k].dev == st->st_dev && c->hl[k].ino == st->st_ino) {
                        st->st_nlink--;
                        break;
                }
        pthread_mutex_unlock(&c->hl_lock);
}

void stash_hlink(struct nono_fs *fs, struct obj *o, int vfd)
{
        char name[40], p[64];
        int sd = stash_dir(fs);

        if (sd < 0)
                return;
        snprintf(name, sizeof(name), "h%llu", (unsigned long long)o->node);
        snprintf(p, sizeof(p), "/proc/self/fd/%d", vfd);
        if (linkat(vfd, "", sd, name, AT_EMPTY_PATH) < 0 && errno != EEXIST &&
            linkat(AT_FDCWD, p, sd, name, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
                return; /* restore falls back to the recorded names (and says what it could not relink) */
        if (fsync_dirfd(sd) == 0) {
                o->hlinked = true;
                hl_add(fs->cow, o->dev, o->ino);
        } else
                unlinkat(sd, name, 0);
}

void stash_hunlink(struct nono_fs *fs, struct obj *o)
{
        char name[40];

        if (!o->hlinked || fs->cow->stash_fd < 0)
                return;
        snprintf(name, sizeof(name), "h%llu", (unsigned long long)o->node);
        unlinkat(fs->cow->stash_fd, name, 0);
        o->hlinked = false;
        hl_del(fs->cow, o->dev, o->ino);
}

void stash_remove_if_empty(struct nono_fs *fs)
{
        struct nono_cow *c = fs->cow;
        char name[128];

        if (c->stash_fd < 0)
                return;
        snprintf(name, sizeof(name), NONO_STASH_PREFIX "%s.%u", fs->session, fs->cfg.root_id);
        int parent = c->stash_in_root ? fcntl(fs->root.fd, F_DUPFD_CLOEXEC, 3) : stash_parent(fs);
        if (parent < 0)
                return;
        if (unlinkat(parent, name, AT_REMOVEDIR) == 0) { /* fails while an entry is left for restore */
                close(c->stash_fd);
                c->stash_fd = -1;
        }
        close(parent);
}
