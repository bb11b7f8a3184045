/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cow-post.c - the two things the pre-image recorder does after the fact: the background ingest of stash
 * entries into complete nodes, and the post-images written when the session ends (record format: cow.c).
 *
 * Ingest: reads the stash entry (base content), THEN lays the chunks captured so far over it. The order
 * matters: a write that changes the stashed inode after we read a chunk of it has captured that chunk first
 * (write-ahead), so reading the chunk list last never misses one. Only after nono_node_set_object is durable
 * is the stash entry removed; a crash in between leaves both, which restore handles (complete wins).
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "fs/cow-internal.h"
#include "fs/ops.h"

#define CH ((uint64_t)NONO_CHUNK_SIZE)

/* Builds the start content of node into an unnamed temporary file in the stash and stores it. */
static int ingest_one(struct nono_fs *fs, uint64_t node)
{
        struct nono_cow *c = fs->cow;
        struct nono_node n = {0};
        char name[32];
        int r, src = -1, tmp = -1;
        char *buf = malloc(CH);

        stash_name(node, name, sizeof(name));
        if (!buf)
                return -ENOMEM;
        src = openat(c->stash_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        tmp = openat(c->stash_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (src < 0 || tmp < 0) {
                r = -errno;
                goto out;
        }
        for (;;) {
                ssize_t k = read(src, buf, CH);
                if (k < 0) {
                        r = -errno;
                        goto out;
                }
                if (k == 0)
                        break;
                if (write(tmp, buf, (size_t)k) != k) {
                        r = -EIO;
                        goto out;
                }
        }
        r = nono_node_get(fs->cfg.store, fs->session, node, &n);
        if (r < 0)
                goto out;
        if (n.complete)
                goto done; /* someone (a previous run) did it */
        for (size_t k = 0; k < n.n_chunks; k++) {
                size_t len = 0;
                r = nono_chunk_get(fs->cfg.store, &n.chunks[k].digest, buf, CH, &len);
                if (r < 0)
                        goto out;
                if (pwrite(tmp, buf, len, (off_t)(n.chunks[k].index * CH)) != (ssize_t)len) {
                        r = -EIO;
                        goto out;
                }
        }
        if (ftruncate(tmp, (off_t)n.size) < 0) {
                r = -errno;
                goto out;
        }
        nono_digest d;
        uint64_t size;
        r = nono_object_put_fd(fs->cfg.store, tmp, &d, &size, 0);
        if (r >= 0)
                r = nono_node_set_object(fs->cfg.store, fs->session, node, &d, 0);
        if (r < 0)
                goto out;
        atomic_fetch_add(&fs->preimage_bytes, size);
done:
        unlinkat(c->stash_fd, name, 0);
        r = 0;
out:
        if (r < 0)
                fprintf(stderr, "nono: stash entry %s of %s stays for restore (%s)\n", name, fs->root_path,
                        nono_store_errmsg());
        nono_node_clear(&n);
        if (src >= 0)
                close(src);
        if (tmp >= 0)
                close(tmp);
        free(buf);
        return r;
}

static void *ingest_main(void *arg)
{
        struct nono_fs *fs = arg;
        struct nono_cow *c = fs->cow;

        /* idle at first: the first pre-image then finds content hashing ready */
        if (fs->cfg.store)
                nono_store_warm_content_hash(fs->cfg.store);
        pthread_mutex_lock(&c->lock);
        for (;;) {
                while (!c->queue && !c->ingest_stop)
                        pthread_cond_wait(&c->ingest_wake, &c->lock);
                if (!c->queue)
                        break;
                struct ingest *q = c->queue;
                c->queue = q->next;
                c->ingest_busy = true;
                pthread_mutex_unlock(&c->lock);
                ingest_one(fs, q->node);
                free(q);
                pthread_mutex_lock(&c->lock);
                c->ingest_busy = false;
                pthread_cond_broadcast(&c->ingest_idle);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

int ingest_start(struct nono_fs *fs)
{
        return -pthread_create(&fs->cow->ingest_thread, NULL, ingest_main, fs);
}

/* Waits for the queue to drain, then ends the thread (idempotent). */
void ingest_stop(struct nono_fs *fs)
{
        struct nono_cow *c = fs->cow;

        pthread_mutex_lock(&c->lock);
        if (c->ingest_stop) {
                pthread_mutex_unlock(&c->lock);
                return;
        }
        c->ingest_stop = true;
        pthread_cond_signal(&c->ingest_wake);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->ingest_thread, NULL);
}

void ingest_queue(struct nono_fs *fs, uint64_t node) /* caller holds c->lock */
{
        struct nono_cow *c = fs->cow;
        struct ingest *q = calloc(1, sizeof(*q));

        if (!q)
                return; /* the stash entry stays; restore uses it */
        q->node = node;
        struct ingest **p = &c->queue;
        while (*p)
                p = &(*p)->next;
        *p = q;
        pthread_cond_signal(&c->ingest_wake);
}

static int post_one(struct nono_fs *fs, const char *path)
{
        struct nono_path_rec r = {.root = fs->cfg.root_id, .path = (char *)path, .has_post = true};
        struct stat st;
        char target[4097];
        int fd;

        if (!*path)
                fd = fcntl(fs->root.fd, F_DUPFD_CLOEXEC, 3);
        else {
                struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                                       .resolve =
                                           RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
                fd = (int)syscall(SYS_openat2, fs->root.fd, path, &how, sizeof(how));
        }
        if (fd < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                r.post_type = NONO_FT_ABSENT;
        } else {
                struct obj *o = obj_find(fs->cow, st.st_dev, st.st_ino);
                r.post_type = S_ISREG(st.st_mode)    ? NONO_FT_FILE
                              : S_ISDIR(st.st_mode)  ? NONO_FT_DIR
                              : S_ISLNK(st.st_mode)  ? NONO_FT_SYMLINK
                              : S_ISFIFO(st.st_mode) ? NONO_FT_FIFO
                                                     : NONO_FT_SOCK;
                r.post_mode = st.st_mode & 07777;
                r.post_size = (uint64_t)st.st_size;
                r.post_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
                r.post_node = o ? o->node : 0;
                if (o)
                        o->reached = true;
                if (S_ISREG(st.st_mode)) {
                        char p[64];
                        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
                        int rfd = open(p, O_RDONLY | O_CLOEXEC);
                        uint64_t size;
                        if (rfd >= 0 && nono_object_put_fd(fs->cfg.store, rfd, &r.post_digest, &size, 0) >= 0)
                                r.post_has_digest = true;
                        if (rfd >= 0)
                                close(rfd);
                } else if (S_ISLNK(st.st_mode)) {
                        ssize_t l = readlinkat(fd, "", target, sizeof(target) - 1);
                        if (l >= 0) {
                                target[l] = 0;
                                r.post_link_target = target;
                        }
                }
        }
        if (fd >= 0)
                close(fd);
        int e = nono_path_put_post(fs->cfg.store, fs->session, &r, NONO_ASYNC);
        if (e < 0)
                fprintf(stderr, "nono: cannot record the end state of %s: %s\n", path, nono_store_errmsg());
        return e;
}

/* True if a proper prefix of path is a recorded path that was absent at session start: then nothing was
 * at path either, and a record "absent at start" for it is the truth. */
static bool under_absent(struct nono_fs *fs, const char *path)
{
        char buf[4097];
        bool yes = false;

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *s = buf; !yes && (s = strchr(s, '/')); s++) {
                struct nono_path_rec pr = {0};
                *s = 0;
                if (cow_path_known(fs->cow, buf) &&
                    nono_path_get(fs->cfg.store, fs->session, fs->cfg.root_id, buf, &pr) == 0)
                        yes = !pr.pre_node;
                nono_path_rec_clear(&pr);
                *s = '/';
        }
        return yes;
}

/* A node alive at the end whose current path is no recorded path (an ancestor directory was renamed after
 * it moved in, so its record's path string no longer leads to it) gets a locator: a path record at its
 * current path, absent at start, whose post-image names it, so restore finds the live inode (and its
 * untouched entries). Written only where "absent at start" is proven (below a recorded absent path); the
 * rest keep the old behaviour (restore rebuilds the node from the store). */
static int locate_one(struct nono_fs *fs, struct obj *o)
{
        struct nono_cow *c = fs->cow;
        struct stat st;
        int r = 0;
        char *path = fsino_path_of(fs, o->dev, o->ino);

        if (!path || !*path || cow_path_known(c, path) || (o->start && !strcmp(o->start, path)))
                goto out;
        struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        int fd = (int)syscall(SYS_openat2, fs->root.fd, path, &how, sizeof(how));
        if (fd < 0)
                goto out;
        bool same = fstat(fd, &st) == 0 && st.st_dev == o->dev && st.st_ino == o->ino;
        close(fd);
        if (!same || !under_absent(fs, path))
                goto out;
        r = nono_path_put_pre(fs->cfg.store, fs->session, fs->cfg.root_id, path, 0, NONO_ASYNC);
        if (r >= 0)
                r = post_one(fs, path);
out:
        free(path);
        return r;
}

int write_post_images(struct nono_fs *fs) /* caller holds c->lock */
{
        struct nono_cow *c = fs->cow;
        int r = 0;

        for (size_t k = 0; k < c->n_paths; k++) {
                int e = post_one(fs, c->paths[k]);
                if (e < 0 && !r)
                        r = e;
        }
        int s = nono_store_sync(fs->cfg.store); /* the pre records are readable for under_absent() */
        for (size_t b = 0; b < c->tab_size && s >= 0; b++)
                for (struct obj *o = c->tab[b]; o; o = o->next)
                        if (o->node && !o->created) {
                                int e = locate_one(fs, o);
                                if (e < 0 && !r)
                                        r = e;
                        }
        if (s >= 0)
                s = nono_store_sync(fs->cfg.store);
        /* a recorded path leads restore to each of these inodes: their h<node> stash names are not needed */
        for (size_t b = 0; b < c->tab_size && s >= 0 && r >= 0; b++)
                for (struct obj *o = c->tab[b]; o; o = o->next)
                        if (o->hlinked && o->reached)
                                stash_hunlink(fs, o);
        if (s >= 0 && r >= 0)
                stash_remove_if_empty(fs);
        return r < 0 ? r : s;
}
