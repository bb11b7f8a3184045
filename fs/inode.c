/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inode.c - the inode table of fs/: (dev, ino) -> struct fsino, with one binding (parent, name) per inode.
 *
 * Why bindings: audit events and deny rules need a path, and fs/ must never resolve a path string against
 * the real tree. So the path of an inode is built by walking bindings up to the root. An inode with several
 * names (hard links) keeps the first live binding it was found by; deny bits seen on any of its names stick
 * to the inode (so a hard link cannot launder a denied file).
 *
 * Lifetime: an inode lives while the kernel holds lookups on it or a child's binding points at it. Every
 * field of every inode is protected by fs->lock, except dev, ino and type, which never change, and fd, which
 * changes once, from -1 to an fd that then stays until the inode is freed.
 *
 * Inodes without an fd: a directory always has its O_PATH fd (children are reached through it), but a
 * non-directory that the kernel only looked up (stat, readdirplus, `git status`) gets none: holding one
 * O_PATH fd per file the kernel remembers is what made a 100,000-file stat exceed RLIMIT_NOFILE and made the
 * fd budget (evict.c) make the kernel forget dentries, so that a warm stat was as slow as a cold one. Such an
 * inode is stat'ed through its binding (fstatat(parent fd, name, AT_SYMLINK_NOFOLLOW), one component, never
 * followed) and gets its fd the first time a request needs more (fsino_get: open, setattr, xattrs, link,
 * readlink, changes): openat2(parent fd, name, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) and a check that it is
 * the same (dev, ino); another object at the name (changed outside nono) is ESTALE, never used. Before fs/
 * itself removes or renames a name (ops-entry.c), the inode there gets its fd first, so a binding that
 * fs/ invalidates never leaves an inode unreachable. Access stays fd-relative and no-follow.
 */
#include <stdio.h>
#include <string.h>

#include "fs/fs-internal.h"
#include "fs/ops.h"

static size_t hash_key(dev_t dev, ino_t ino, size_t size)
{
        uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4full;
        return (size_t)(h ^ (h >> 29)) & (size - 1);
}

void fsino_table_init(struct nono_fs *fs)
{
        fs->table_size = 1024;
        fs->table = calloc(fs->table_size, sizeof(*fs->table));
        fs->table_count = 0;
}

static void free_ino(struct nono_fs *fs, struct fsino *i)
{
        watch_forget_locked(fs, i);
        if (i->fd >= 0) {
                close(i->fd);
                fs->fd_count--;
        }
        free(i->name);
        free(i);
}

void fsino_table_free(struct nono_fs *fs)
{
        for (size_t b = 0; fs->table && b < fs->table_size; b++) {
                struct fsino *i = fs->table[b];
                while (i) {
                        struct fsino *n = i->hnext;
                        free_ino(fs, i);
                        i = n;
                }
        }
        free(fs->table);
        fs->table = NULL;
}

struct fsino *fsino_peek(struct nono_fs *fs, fuse_ino_t n)
{
        if (n == FUSE_ROOT_ID)
                return &fs->root;
        struct fsino *i = (struct fsino *)(uintptr_t)n;
        evict_touch(fs, i);
        return i;
}

struct fsino *fsino_get(struct nono_fs *fs, fuse_ino_t n)
{
        struct fsino *i = fsino_peek(fs, n);
        if (__atomic_load_n(&i->fd, __ATOMIC_ACQUIRE) < 0)
                (void)fsino_materialize(fs, i);
        return i;
}

static struct fsino *find_locked(struct nono_fs *fs, dev_t dev, ino_t ino)
{
        if (fs->root.dev == dev && fs->root.ino == ino)
                return &fs->root;
        for (struct fsino *i = fs->table[hash_key(dev, ino, fs->table_size)]; i; i = i->hnext)
                if (i->dev == dev && i->ino == ino)
                        return i;
        return NULL;
}

struct fsino *fsino_find_locked(struct nono_fs *fs, dev_t dev, ino_t ino)
{
        return find_locked(fs, dev, ino);
}

struct fsino *fsino_find(struct nono_fs *fs, dev_t dev, ino_t ino)
{
        pthread_mutex_lock(&fs->lock);
        struct fsino *i = find_locked(fs, dev, ino);
        pthread_mutex_unlock(&fs->lock);
        return i;
}

static void grow_locked(struct nono_fs *fs)
{
        size_t nsize = fs->table_size * 2;
        struct fsino **nt = calloc(nsize, sizeof(*nt));

        if (!nt)
                return; /* a longer chain is fine */
        for (size_t b = 0; b < fs->table_size; b++)
                for (struct fsino *i = fs->table[b], *n; i; i = n) {
                        n = i->hnext;
                        size_t h = hash_key(i->dev, i->ino, nsize);
                        i->hnext = nt[h];
                        nt[h] = i;
                }
        free(fs->table);
        fs->table = nt;
        fs->table_size = nsize;
}

static void bind_locked(struct fsino *i, struct fsino *parent, char *name)
{
        if (i->parent)
                i->parent->refs--; /* the old parent is released by the caller's sweep (see unref) */
        free(i->name);
        i->parent = parent;
        i->name = name;
        i->gone = false;
        if (parent)
                parent->refs++;
}

static void unlink_from_table(struct nono_fs *fs, struct fsino *i)
{
        struct fsino **p = &fs->table[hash_key(i->dev, i->ino, fs->table_size)];

        for (; *p; p = &(*p)->hnext)
                if (*p == i) {
                        *p = i->hnext;
                        fs->table_count--;
                        return;
                }
}

/* Frees i and then every ancestor that is no longer referenced. */
static void release_locked(struct nono_fs *fs, struct fsino *i)
{
        while (i && i != &fs->root && i->nlookup == 0 && i->refs == 0) {
                struct fsino *p = i->parent;
                unlink_from_table(fs, i);
                if (p)
                        p->refs--;
                free_ino(fs, i);
                i = p;
        }
        evict_note_release_locked(fs);
}

/* Whether i's binding still leads to i; fs->lock held (i's parent, which i references, keeps its fd). */
static bool binding_live_locked(const struct fsino *i)
{
        struct stat st;

        return i->parent && i->name && i->parent->fd >= 0 &&
               fstatat(i->parent->fd, i->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == i->dev &&
               st.st_ino == i->ino;
}

struct fsino *fsino_find_or_add(struct nono_fs *fs, int fd, const struct stat *st, struct fsino *parent,
                                const char *name, unsigned deny)
{
        char *n = strdup(name);
        if (!n) {
                if (fd >= 0)
                        close(fd);
                errno = ENOMEM;
                return NULL;
        }
        pthread_mutex_lock(&fs->lock);
        struct fsino *i = find_locked(fs, st->st_dev, st->st_ino);
        if (i) {
                if (fd >= 0 && i->fd < 0) { /* a fresh fd of the same object: keep it */
                        __atomic_store_n(&i->fd, fd, __ATOMIC_RELEASE);
                        fs->fd_count++;
                        evict_note_locked(fs);
                } else if (fd >= 0) {
                        close(fd);
                }
                i->nlookup++;
                i->deny |= deny;
                evict_touch(fs, i);
                /* A file found under another name than its binding: renamed behind the mount (or a hard
                 * link). The first live binding stays; a dead one is replaced, or every open of the file by
                 * its new name would fail with ESTALE (inode.c "REPLACED") until the watcher caught up. */
                bool moved = i->type != S_IFDIR && i != &fs->root && i->name && !i->gone &&
                             (i->parent != parent || strcmp(i->name, name) != 0) && !binding_live_locked(i);
                if ((!i->name || i->gone || moved) && i != &fs->root && i != parent) {
                        struct fsino *old = i->parent;
                        bind_locked(i, parent, n);
                        n = NULL;
                        release_locked(fs, old);
                }
                pthread_mutex_unlock(&fs->lock);
                free(n);
                return i;
        }
        if (fd < 0 && S_ISDIR(st->st_mode)) { /* a directory always has its fd: the caller opens one */
                pthread_mutex_unlock(&fs->lock);
                free(n);
                errno = EAGAIN;
                return NULL;
        }
        i = calloc(1, sizeof(*i));
        if (!i) {
                pthread_mutex_unlock(&fs->lock);
                if (fd >= 0)
                        close(fd);
                free(n);
                errno = ENOMEM;
                return NULL;
        }
        i->fd = fd;
        i->dev = st->st_dev;
        i->ino = st->st_ino;
        i->type = st->st_mode & S_IFMT;
        i->nlookup = 1;
        i->deny = deny;
        bind_locked(i, parent, n);
        if (fs->table_count * 2 > fs->table_size)
                grow_locked(fs);
        size_t h = hash_key(i->dev, i->ino, fs->table_size);
        i->hnext = fs->table[h];
        fs->table[h] = i;
        fs->table_count++;
        if (fd >= 0)
                fs->fd_count++;
        evict_touch(fs, i);
        evict_note_locked(fs);
        pthread_mutex_unlock(&fs->lock);
        if (i->type == S_IFDIR)
                watch_add(fs, i); /* the kernel's reference, not yet given, keeps i */
        return i;
}

void fsino_forget(struct nono_fs *fs, struct fsino *i, uint64_t n)
{
        if (i == &fs->root)
                return;
        pthread_mutex_lock(&fs->lock);
        i->nlookup = n > i->nlookup ? 0 : i->nlookup - n;
        release_locked(fs, i);
        pthread_mutex_unlock(&fs->lock);
}

void fsino_rebind(struct nono_fs *fs, struct fsino *i, struct fsino *parent, const char *name)
{
        char *n = strdup(name);

        if (!n || i == &fs->root)
                return free(n);
        pthread_mutex_lock(&fs->lock);
        struct fsino *old = i->parent;
        bind_locked(i, parent, n);
        release_locked(fs, old);
        pthread_mutex_unlock(&fs->lock);
}

void fsino_mark_gone(struct nono_fs *fs, dev_t dev, ino_t ino, struct fsino *parent, const char *name)
{
        pthread_mutex_lock(&fs->lock);
        struct fsino *i = find_locked(fs, dev, ino);
        if (i && i->parent == parent && i->name && !strcmp(i->name, name))
                i->gone = true;
        pthread_mutex_unlock(&fs->lock);
}

static char *build_path_locked(struct nono_fs *fs, struct fsino *i, const char *leaf)
{
        size_t len = leaf ? strlen(leaf) + 1 : 0, depth = 0;

        for (struct fsino *p = i; p && p != &fs->root; p = p->parent) {
                len += (p->name ? strlen(p->name) : 1) + 1;
                if (++depth > 4096)
                        break; /* cannot happen: bindings form a tree rooted at fs->root */
        }
        char *buf = malloc(len + 1);
        if (!buf)
                return NULL;
        char *end = buf + len;
        *end = 0;
        if (leaf) {
                size_t l = strlen(leaf);
                end -= l;
                memcpy(end, leaf, l);
                *--end = '/';
        }
        for (struct fsino *p = i; p && p != &fs->root && end > buf; p = p->parent) {
                const char *nm = p->name ? p->name : "?";
                size_t l = strlen(nm);
                end -= l;
                memcpy(end, nm, l);
                *--end = '/';
        }
        /* drop the leading '/' */
        char *out = strdup(end + 1 <= buf + len ? end + 1 : "");
        free(buf);
        return out;
}

char *fsino_path(struct nono_fs *fs, struct fsino *i)
{
        pthread_mutex_lock(&fs->lock);
        char *p = build_path_locked(fs, i, NULL);
        pthread_mutex_unlock(&fs->lock);
        return p;
}

char *fsino_path_of(struct nono_fs *fs, dev_t dev, ino_t ino)
{
        pthread_mutex_lock(&fs->lock);
        struct fsino *i = find_locked(fs, dev, ino);
        char *p = i && !i->gone ? build_path_locked(fs, i, NULL) : NULL;
        pthread_mutex_unlock(&fs->lock);
        return p;
}

struct fsino *fsino_parent_of(struct nono_fs *fs, dev_t dev, ino_t ino)
{
        pthread_mutex_lock(&fs->lock);
        struct fsino *i = find_locked(fs, dev, ino);
        struct fsino *p = i && !i->gone ? i->parent : NULL;
        pthread_mutex_unlock(&fs->lock);
        return p;
}

char *fsino_child_path(struct nono_fs *fs, struct fsino *dir, const char *name)
{
        pthread_mutex_lock(&fs->lock);
        char *p = build_path_locked(fs, dir, name);
        pthread_mutex_unlock(&fs->lock);
        return p;
}

/* Copies i's binding and pins its parent (a reference, so a concurrent rename cannot free the parent and
 * close its fd while we use it). NULL when i has no live binding. */
static struct fsino *pin_binding(struct nono_fs *fs, struct fsino *i, char **name)
{
        pthread_mutex_lock(&fs->lock);
        struct fsino *p = i->gone || !i->name ? NULL : i->parent;
        *name = p ? strdup(i->name) : NULL;
        if (p && *name)
                p->refs++;
        else
                p = NULL;
        pthread_mutex_unlock(&fs->lock);
        return p;
}

static void unpin(struct nono_fs *fs, struct fsino *p, char *name)
{
        free(name);
        if (!p)
                return;
        pthread_mutex_lock(&fs->lock);
        p->refs--;
        release_locked(fs, p);
        pthread_mutex_unlock(&fs->lock);
}

static bool same(const struct fsino *i, const struct stat *st)
{
        return st->st_dev == i->dev && st->st_ino == i->ino && (st->st_mode & S_IFMT) == i->type;
}

int fsino_materialize(struct nono_fs *fs, struct fsino *i)
{
        struct stat st;
        char *name;

        if (__atomic_load_n(&i->fd, __ATOMIC_ACQUIRE) >= 0)
                return 0;
        struct fsino *p = pin_binding(fs, i, &name);
        if (!p) {
                unpin(fs, NULL, name);
                return -ESTALE;
        }
        int fd = open_beneath(p->fd, name, O_PATH, 0), r = 0;
        if (fd < 0)
                r = errno == ENOENT || errno == ELOOP ? -ESTALE : -errno;
        else if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                r = -errno;
        else if (!same(i, &st))
                r = -ESTALE; /* another object at the name: changed outside nono */
        unpin(fs, p, name);
        if (r) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        pthread_mutex_lock(&fs->lock);
        if (i->fd < 0) {
                __atomic_store_n(&i->fd, fd, __ATOMIC_RELEASE);
                fs->fd_count++;
                evict_note_locked(fs);
                fd = -1;
        }
        pthread_mutex_unlock(&fs->lock);
        if (fd >= 0)
                close(fd); /* another thread was first */
        return 0;
}

/*
 * REPLACED BEHIND THE MOUNT: an inode that has an fd keeps it while the kernel remembers the name, and the
 * kernel remembers names for a day. An editor that saves by writing a new file and renaming it over the old
 * one (vim, VS Code, most IDEs) leaves that fd on the old file, so every later open through the mount read
 * the old content. At an open, fs/ checks that the inode's name still leads to it; when it does not (the
 * name now holds another file, or none) and no other name keeps the old file (a link count of 0 or 1), the
 * open fails with ESTALE, and the kernel's VFS retries it once with LOOKUP_REVAL, which looks the name up
 * again and opens what it holds now. A file with several hard links is served as before (the agent may have
 * opened it by another name). Directories and opens of names the kernel only stat'ed (no fd: those are
 * opened by name with an identity check, fsino_materialize) need nothing here.
 */
int fsino_check_binding(struct nono_fs *fs, struct fsino *i)
{
        struct stat now, old;
        char *name;

        int fd = __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE);
        if (fd < 0 || i == &fs->root || i->type != S_IFREG)
                return 0;
        struct fsino *p = pin_binding(fs, i, &name);
        int r = 0;
        if (p) {
                bool moved =
                    fstatat(p->fd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 ? errno == ENOENT : !same(i, &now);
                if (moved && fstat(fd, &old) == 0 && old.st_nlink <= 1)
                        r = -ESTALE;
        }
        unpin(fs, p, name);
        return r;
}

int fsino_stat(struct nono_fs *fs, struct fsino *i, struct stat *st)
{
        int fd = __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE);
        if (fd >= 0)
                return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
        char *name;
        struct fsino *p = pin_binding(fs, i, &name);
        int r = !p ? -ESTALE : fstatat(p->fd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
        unpin(fs, p, name);
        if (r == -ENOENT || (!r && !same(i, st)))
                r = fsino_materialize(fs, i) < 0 ? -ESTALE : fsino_stat(fs, i, st);
        return r;
}

int fsino_materialize_at(struct nono_fs *fs, dev_t dev, ino_t ino)
{
        pthread_mutex_lock(&fs->lock);
        struct fsino *i = find_locked(fs, dev, ino);
        bool need = i && i != &fs->root && i->fd < 0;
        if (need)
                i->nlookup++; /* held while we open it */
        pthread_mutex_unlock(&fs->lock);
        if (!need)
                return 0;
        int r = fsino_materialize(fs, i);
        fsino_forget(fs, i, 1);
        return r;
}
