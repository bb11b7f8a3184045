/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cow.c - write-ahead pre-images: before fs/ changes anything in the real tree, what is needed to undo the
 * change is durable in the store. This comment is the contract that `nono rollback restore` relies on.
 *
 * RECORDS (store.h "change records"), all for (session, root id):
 *
 *   node N   one per object of the real tree that the session changed, created the first time the object is
 *            about to change (node id = root_id << 40 | 1, 2, 3, ... so ids are unique in the session; an
 *            object is identified by its dev/ino while the session runs). It holds the object as it was
 *            at session start: type, mode, uid, gid, atime, mtime, nlink, size, xattrs, symlink target,
 *            and for directories the names it contained (fs/'s own stash names excluded). Regular files:
 *            content is
 *              - complete (node.complete, node.object) when the file was at most 256 KiB at first change, or
 *                after a background ingest of a stash entry (nono_node_set_object);
 *              - otherwise chunks: each 64 KiB aligned chunk (index i covers [i*64K, (i+1)*64K)) is added
 *                (nono_node_add_chunks) before the first byte of it changes (write, fallocate, punch hole,
 *                copy_file_range destination, or truncation below its end). A chunk not captured is still
 *                as it was at session start in the object's current content, see "content rule".
 *   path P   (root, start path) -> pre node, written (first change wins) before the first change to that
 *            name: node id of what was there, or 0 = absent (the name was created by the session).
 *            A record with a node is durable before the change; an "absent" record is only queued (it is
 *            durable within the store's group commit, and always at stop): after a crash, a name that is in
 *            a recorded directory now but not in its node's entries was created by the session.
 *            "start path" is where the name was at session start: for a name below a directory that the
 *            session renamed, the path under the directory's old name. Written for: the object changed
 *            (meta, data, removed, renamed away, overwritten) and the directory whose entries changed (so
 *            its node and path exist too), and for every name created or renamed onto.
 *   post     at nono_fs_stop, for every path record: what is at that start path now (type, mode, size,
 *            mtime, content digest for regular files - the content is stored as an object -, symlink target,
 *            post_node = the node of the object now there, 0 if none).
 *            Interim post: before a rename, the target's record gets has_post with post_node/post_type of
 *            the object about to arrive there (and the source's, for RENAME_EXCHANGE). After a crash (no
 *            final post-images) this is how restore finds where a renamed directory went: a node whose start
 *            path is empty now is at the path whose (interim) post_node names it and that holds such an
 *            object now. Final post-images at stop overwrite the interim ones.
 *   locator  at stop, for a node whose object is alive at a path that is no path record (an ancestor was
 *            renamed after the object moved in, so no record's path string leads to it any more): a path
 *            record at its current path, absent at start, with its post-image (post_node = the node), so
 *            restore finds the live inode and its untouched entries. Only written when a proper prefix of
 *            that path is recorded "absent at start" (so "absent" is the truth); fs/ finds the current
 *            path through its inode table (cow-post.c).
 *
 * ORDER: content (object or chunks), then node, then path, then added chunks are queued, and
 * nono_store_sync() returns before the change is made (kill points in the tests sit just before and just
 * after that sync).
 *
 * CONTENT RULE for a regular-file node that is not complete: start content = base content with every
 * captured chunk laid over it, cut (or zero-extended) to node.size, where base content is, in order:
 *   1. the stash entry STASH/<node id> if it exists, else
 *   2. the live file at the node's start path (after moving renamed directories back, see "post"): a
 *      file whose content is not all in the store is stashed before any of its names changes, so the
 *      name still holds the same inode when there is no stash entry.
 * STASH is the directory "..nono-stash.<session id>.<root id>" in the parent directory of the root, or, when
 * that was impossible (parent not writable or another filesystem), inside the root itself. fs/ hides every
 * name starting with "..nono-stash." from the agent. A stash entry is made (link of the same inode, fsync of
 * STASH) before fs/ unlinks, renames, or renames over a file with a non-complete node, or (a full copy,
 * fsync'd) before it truncates such a file, or punches or zeroes a range of it, by more than 8 MiB (see
 * cow-stash.c); after a copy is durable, fs/ captures no more
 * chunks of that file (the copy holds them). A linked entry is the same inode as the live file: later writes
 * still capture chunks first, so the content rule holds for it too. A background thread turns stash entries
 * into complete nodes and then removes the entry; an entry still present after a crash is simply used by
 * rule 1.
 *
 * Hard links: one node per inode. When a file's node is made and it has nlink > 1, every other name of it
 * found in the directory it was reached through or in a directory with a node gets a path record (pre: the
 * same node) before the change, so restore brings them back as one inode with the start content (names in
 * other directories, or beyond the first 65536 entries read in recorded directories, are not found:
 * node.nlink > 1 still says they may exist). So that those unfound names come back too, the inode itself
 * is linked into STASH as h<node id> (durable, before the change; node.nlink is the count before that
 * link). Restore writes the start content into that inode (every name of it, found or not, sees it) and
 * links the recorded names to it. At the session end h<node> is removed when a recorded path's post-image
 * names the node (restore reaches the inode there); otherwise it stays until the session is restored.
 * The agent is shown the link count without that name (cow_hide_stash_links). Best effort: when the
 * link cannot be made, restore falls back to the recorded names and says which names it could not relink.
 *
 * What is not recorded: atime-only changes caused by reads; objects created and removed within the session
 * (nothing to restore); changes made to the real tree by anyone but the agent through fs/.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <xxhash.h>

#include "fs/cow-internal.h"
#include "fs/ops.h"

#define SMALL_FILE   (256u * 1024u)
#define BIG_TRUNCATE (8ull << 20)
#define LINK_SCAN_BUDGET                                                                                     \
        65536 /* directory entries read per multiply-linked file, beyond its own directory                   \
               */
#define CH ((uint64_t)NONO_CHUNK_SIZE)

/* ---- the object table and the set of recorded paths -------------------------------------------------- */

static size_t okey(dev_t d, ino_t i, size_t size)
{
        uint64_t k[2] = {(uint64_t)d, (uint64_t)i};
        return (size_t)XXH3_64bits(k, sizeof(k)) & (size - 1);
}

struct obj *obj_find(struct nono_cow *c, dev_t dev, ino_t ino)
{
        for (struct obj *o = c->tab[okey(dev, ino, c->tab_size)]; o; o = o->next)
                if (o->dev == dev && o->ino == ino)
                        return o;
        return NULL;
}

static struct obj *obj_add(struct nono_cow *c, dev_t dev, ino_t ino)
{
        if (c->count * 2 >= c->tab_size) {
                size_t ns = c->tab_size * 2;
                struct obj **nt = calloc(ns, sizeof(*nt));
                if (nt) {
                        for (size_t b = 0; b < c->tab_size; b++)
                                for (struct obj *o = c->tab[b], *n; o; o = n) {
                                        n = o->next;
                                        size_t h = okey(o->dev, o->ino, ns);
                                        o->next = nt[h];
                                        nt[h] = o;
                                }
                        free(c->tab);
                        c->tab = nt;
                        c->tab_size = ns;
                }
        }
        struct obj *o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        o->dev = dev;
        o->ino = ino;
        size_t h = okey(dev, ino, c->tab_size);
        o->next = c->tab[h];
        c->tab[h] = o;
        c->count++;
        return o;
}

struct pset {
        char **slot;
        size_t size, count;
};

static bool pset_add(struct pset *s, const char *p) /* true if newly added */
{
        if (s->count * 2 >= s->size) {
                struct pset n = {.size = s->size ? s->size * 2 : 256};
                n.slot = calloc(n.size, sizeof(char *));
                if (!n.slot)
                        return false;
                for (size_t k = 0; k < s->size; k++)
                        if (s->slot[k]) {
                                size_t h = XXH3_64bits(s->slot[k], strlen(s->slot[k])) & (n.size - 1);
                                while (n.slot[h])
                                        h = (h + 1) & (n.size - 1);
                                n.slot[h] = s->slot[k];
                        }
                free(s->slot);
                n.count = s->count;
                *s = n;
        }
        size_t h = XXH3_64bits(p, strlen(p)) & (s->size - 1);
        for (; s->slot[h]; h = (h + 1) & (s->size - 1))
                if (!strcmp(s->slot[h], p))
                        return false;
        s->slot[h] = strdup(p);
        if (!s->slot[h])
                return false;
        s->count++;
        return true;
}

bool cow_path_known(struct nono_cow *c, const char *p)
{
        struct pset *s = c->path_set;
        if (!s->size)
                return false;
        size_t h = XXH3_64bits(p, strlen(p)) & (s->size - 1);
        for (; s->slot[h]; h = (h + 1) & (s->size - 1))
                if (!strcmp(s->slot[h], p))
                        return true;
        return false;
}

/* ---- start paths ------------------------------------------------------------------------------------- */

/* Where x was at session start, or NULL (created, or not known). Caller holds c->lock. The chain of bindings
 * is copied under fs->lock in one go (inodes may be forgotten concurrently), then read against the objects:
 * the nearest ancestor-or-self that has a node (its pinned start path) or was created decides. */
struct link_ {
        dev_t dev;
        ino_t ino;
        char *name;
};

static char *start_of(struct nono_fs *fs, struct fsino *x)
{
        struct link_ chain[256];
        size_t n = 0;
        bool rooted = false;
        char *r = NULL;

        pthread_mutex_lock(&fs->lock);
        for (struct fsino *p = x; p && n < 256; p = p->parent) {
                chain[n].dev = p->dev;
                chain[n].ino = p->ino;
                chain[n].name = p == &fs->root || !p->name ? NULL : strdup(p->name);
                n++;
                if (p == &fs->root) {
                        rooted = true;
                        break;
                }
                if (!p->name)
                        break;
        }
        pthread_mutex_unlock(&fs->lock);
        size_t k;
        const char *base = NULL;
        for (k = 0; k < n; k++) {
                struct obj *o = obj_find(fs->cow, chain[k].dev, chain[k].ino);
                if (o && o->created)
                        goto out;
                if (o && o->node) {
                        base = o->start;
                        break;
                }
                if (k == n - 1 && rooted) {
                        base = "";
                        break;
                }
        }
        if (k == n || !base)
                goto out;
        size_t len = strlen(base) + 1;
        for (size_t j = 0; j < k; j++) {
                if (!chain[j].name)
                        goto out;
                len += strlen(chain[j].name) + 1;
        }
        r = malloc(len);
        if (!r)
                goto out;
        strcpy(r, base);
        for (size_t j = k; j-- > 0;) {
                if (*r)
                        strcat(r, "/");
                strcat(r, chain[j].name);
        }
out:
        for (size_t j = 0; j < n; j++)
                free(chain[j].name);
        return r;
}

static char *child_start(struct nono_fs *fs, struct fsino *dir, const char *name)
{
        char *ds = start_of(fs, dir), *r = NULL;
        if (ds && asprintf(&r, "%s%s%s", ds, *ds ? "/" : "", name) < 0)
                r = NULL;
        free(ds);
        return r;
}

/* ---- capture ----------------------------------------------------------------------------------------- */

static int serr(int r, const char *what)
{
        fprintf(stderr, "nono: cannot save the pre-image (%s): %s\n", what, nono_store_errmsg());
        return r < 0 ? r : -EIO;
}

static int record_path(struct nono_fs *fs, const char *start, uint64_t node)
{
        struct nono_cow *c = fs->cow;
        if (!start)
                return 0;
        if (!pset_add((struct pset *)c->path_set, start))
                return 0; /* recorded before: the first change wins */
        if (c->n_paths == c->cap_paths) {
                size_t n = c->cap_paths ? c->cap_paths * 2 : 64;
                char **v = realloc(c->paths, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                c->paths = v;
                c->cap_paths = n;
        }
        c->paths[c->n_paths] = strdup(start);
        if (!c->paths[c->n_paths])
                return -ENOMEM;
        c->n_paths++;
        int r = nono_path_put_pre(fs->cfg.store, fs->session, fs->cfg.root_id, start, node, NONO_ASYNC);
        /* "absent" records need not be durable before the create: the directory's node (durable, with
         * its names) already tells restore that the name is new */
        if (node)
                c->dirty = true;
        return r < 0 ? serr(r, start) : 0;
}

static int read_xattrs(int fd, uint32_t type, struct nono_node *n)
{
        char p[64], *list = NULL;
        ssize_t len;

        (void)type; /* symlinks too: the magic link does not follow them (trusted.* on a symlink) */
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        len = listxattr(p, NULL, 0);
        if (len <= 0)
                return 0;
        list = malloc((size_t)len);
        if (!list)
                return -ENOMEM;
        len = listxattr(p, list, (size_t)len);
        size_t cnt = 0;
        for (ssize_t k = 0; k < len; k += (ssize_t)strlen(list + k) + 1)
                cnt++;
        n->xattrs = calloc(cnt ? cnt : 1, sizeof(*n->xattrs));
        for (ssize_t k = 0; n->xattrs && k < len; k += (ssize_t)strlen(list + k) + 1) {
                ssize_t vl = getxattr(p, list + k, NULL, 0);
                if (vl < 0)
                        continue;
                struct nono_xattr *x = &n->xattrs[n->n_xattrs];
                x->name = strdup(list + k);
                x->value = malloc(vl ? (size_t)vl : 1);
                if (!x->name || !x->value) {
                        free(x->name);
                        free(x->value);
                        break;
                }
                vl = getxattr(p, list + k, x->value, (size_t)vl);
                x->len = vl < 0 ? 0 : (size_t)vl;
                n->n_xattrs++;
        }
        free(list);
        return 0;
}

static int read_entries(int fd, struct nono_node *n)
{
        int d = reopen_fd(fd, O_RDONLY | O_DIRECTORY);
        if (d < 0)
                return -errno;
        DIR *dir = fdopendir(d);
        if (!dir) {
                close(d);
                return -errno;
        }
        size_t cnt = 0, cap = 16;
        char **v = malloc(cap * sizeof(*v));
        struct dirent *e;
        while (v && (e = readdir(dir))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
                    !strncmp(e->d_name, NONO_STASH_PREFIX, strlen(NONO_STASH_PREFIX)))
                        continue;
                if (cnt + 1 >= cap) {
                        char **nv = realloc(v, (cap *= 2) * sizeof(*v));
                        if (!nv)
                                break;
                        v = nv;
                }
                v[cnt++] = strdup(e->d_name);
        }
        closedir(dir);
        if (!v)
                return -ENOMEM;
        v[cnt] = NULL;
        n->entries = v;
        return 0;
}

/* Builds and queues the node of the object behind fd (an O_PATH fd) at start path `start`. */
static int put_node(struct nono_fs *fs, struct obj *o, int fd, const struct stat *st)
{
        struct nono_node n = {
            .id = o->node,
            .type = o->type,
            .mode = st->st_mode & 07777,
            .uid = st->st_uid,
            .gid = st->st_gid,
            .atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec,
            .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
            .nlink = st->st_nlink,
            .size = (uint64_t)st->st_size,
        };
        char target[4097];
        int r = read_xattrs(fd, o->type, &n);
        if (!r && o->type == NONO_FT_SYMLINK) {
                ssize_t l = readlinkat(fd, "", target, sizeof(target) - 1);
                if (l < 0)
                        r = -errno;
                else {
                        target[l] = 0;
                        n.link_target = strdup(target);
                }
        }
        if (!r && o->type == NONO_FT_DIR)
                r = read_entries(fd, &n);
        if (!r && o->type == NONO_FT_FILE && n.size <= SMALL_FILE) {
                char p[64];
                snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
                int rfd = open(p, O_RDONLY | O_CLOEXEC | O_NOATIME);
                if (rfd < 0)
                        rfd = open(p, O_RDONLY | O_CLOEXEC);
                if (rfd < 0)
                        r = -errno;
                else {
                        uint64_t got = 0;
                        r = nono_object_put_fd(fs->cfg.store, rfd, &n.object, &got, NONO_ASYNC);
                        close(rfd);
                        if (r < 0)
                                r = serr(r, "content");
                        else {
                                n.complete = true;
                                n.size = got; /* what we stored is what restore will write */
                                o->safe = true;
                                atomic_fetch_add(&fs->preimage_bytes, got);
                        }
                }
        }
        if (!r) {
                fs->cow->dirty = true;
                r = nono_node_put(fs->cfg.store, fs->session, &n, NONO_ASYNC);
                if (r < 0)
                        r = serr(r, "node");
        }
        o->size = n.size;
        nono_node_clear(&n);
        return r;
}

/* A file with several names: restore can only put the start content back under every name (and keep them
 * one inode) if each name has a path record naming the node. fs/ cannot know every name of an inode; it
 * looks in the directory of the name it reached the file by and in every directory the session recorded
 * (a node), and records each other name found there (pre: this node), before the change. Names in other
 * directories stay unrecorded: restore puts back the content of the names it knows. */
static DIR *dir_stream(int fd)
{
        int dfd = reopen_fd(fd, O_RDONLY | O_DIRECTORY);
        DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
        if (!dir && dfd >= 0)
                close(dfd);
        return dir;
}

static int scan_dir_for_links(struct nono_fs *fs, struct obj *o, struct fsino *d, size_t *found,
                              size_t *budget)
{
        DIR *dir = dir_stream(d->fd);
        if (!dir)
                return 0;
        int r = 0;
        struct dirent *e;
        while (r >= 0 && *budget && (e = readdir(dir))) {
                struct stat st;
                (*budget)--;
                if (e->d_ino != o->ino || !strncmp(e->d_name, NONO_STASH_PREFIX, strlen(NONO_STASH_PREFIX)) ||
                    fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != o->dev ||
                    st.st_ino != o->ino)
                        continue;
                (*found)++;
                char *start = child_start(fs, d, e->d_name);
                r = record_path(fs, start, o->node);
                free(start);
        }
        closedir(dir);
        return r;
}

static int record_links(struct nono_fs *fs, struct obj *o, nlink_t nlink)
{
        struct nono_cow *c = fs->cow;
        size_t found = 0, budget = SIZE_MAX;
        struct fsino *par = fsino_parent_of(fs, o->dev, o->ino);
        int r = par ? scan_dir_for_links(fs, o, par, &found, &budget) : 0;

        /* bounded, so that many changed files whose other names are outside the tree (package stores of
         * hard links) do not make each change cost a scan of every recorded directory */
        budget = LINK_SCAN_BUDGET;
        for (size_t b = 0; b < c->tab_size && r >= 0 && found < nlink && budget; b++)
                for (struct obj *d = c->tab[b]; d && r >= 0 && found < nlink; d = d->next) {
                        if (d->type != NONO_FT_DIR || !d->node)
                                continue;
                        struct fsino *x = fsino_find(fs, d->dev, d->ino);
                        if (x && x != par)
                                r = scan_dir_for_links(fs, o, x, &found, &budget);
                }
        return r;
}

/* A directory seen for the first time (start: its path at session start), after files with several names
 * were captured: an entry of it that is one of those files is another name of theirs that record_links
 * could not find then (this directory had no node yet), e.g. a/x changed, then the directory b holding
 * b/y renamed. Recording b/y now (before the change to b) lets restore bring that name back; without it,
 * restore took b/y for a/x moved and left one name. Names moved or created here during the session are
 * recorded already, and the first record of a path wins. */
static int record_dir_links(struct nono_fs *fs, int fd, const struct stat *dst, const char *start)
{
        struct nono_cow *c = fs->cow;
        DIR *dir = dir_stream(fd);
        if (!dir)
                return 0;
        int r = 0;
        size_t budget = LINK_SCAN_BUDGET;
        for (struct dirent *e; r >= 0 && budget && (e = readdir(dir)); budget--) {
                struct stat st;
                if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
                        continue;
                struct obj *x = obj_find(c, dst->st_dev, e->d_ino);
                if (!x || !x->multi || !x->node ||
                    fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != x->dev ||
                    st.st_ino != x->ino)
                        continue;
                char *p = NULL;
                if (asprintf(&p, "%s%s%s", start, *start ? "/" : "", e->d_name) < 0)
                        break;
                r = record_path(fs, p, x->node);
                free(p);
        }
        closedir(dir);
        return r;
}

/* The object of fd (O_PATH) with stat st: its node, created and queued on first sight. NULL with *err set,
 * or an obj with node 0 when it was created in the session. */
static struct obj *capture(struct nono_fs *fs, int fd, const struct stat *st, const char *start, int *err)
{
        struct nono_cow *c = fs->cow;
        struct obj *o = obj_find(c, st->st_dev, st->st_ino);

        *err = 0;
        if (o && (o->node || o->created))
                return o;
        if (!o && !(o = obj_add(c, st->st_dev, st->st_ino))) {
                *err = -ENOMEM;
                return NULL;
        }
        o->type = nono_ftype_from_mode(st->st_mode);
        if (o->type == NONO_FT_ABSENT) {
                *err = -EPERM;
                return NULL;
        }
        /* node ids are per session, and a session has several roots, each with its own nono_fs */
        o->node = ((uint64_t)fs->cfg.root_id << 40) | ++c->next_node;
        o->start = start ? strdup(start) : NULL;
        o->size = (uint64_t)st->st_size;
        *err = put_node(fs, o, fd, st);
        if (!*err && o->type == NONO_FT_FILE && !o->safe) {
                o->chunks = calloc((o->size + CH - 1) / CH / 8 + 1, 1);
                if (!o->chunks)
                        *err = -ENOMEM;
        }
        if (!*err)
                *err = record_path(fs, start, o->node);
        if (!*err && o->type == NONO_FT_FILE && st->st_nlink > 1)
                *err = record_links(fs, o, st->st_nlink);
        if (!*err && o->type == NONO_FT_FILE && st->st_nlink > 1) {
                stash_hlink(fs, o, fd);
                o->multi = true;
                c->n_multi++;
        }
        if (!*err && o->type == NONO_FT_DIR && start && c->n_multi)
                *err = record_dir_links(fs, fd, st, start);
        if (*err) {
                o->node = 0; /* not durable: try again next time */
                return NULL;
        }
        return o;
}

static int capture_ino(struct nono_fs *fs, struct fsino *x, struct obj **out)
{
        struct stat st;
        int err;

        if (fstatat(x->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        char *start = start_of(fs, x);
        struct obj *o = capture(fs, x->fd, &st, start, &err);
        free(start);
        if (out)
                *out = o;
        return err;
}

/* Test hook: NONO_FS_TEST_KILLPOINT=k makes the process SIGKILL itself at the k-th write-ahead point (just
 * before and just after each durable sync), so a test can stop nono at every such instant without a clock. */
static void killpoint(struct nono_cow *c)
{
        if (c->killpoint && ++c->points == c->killpoint)
                raise(SIGKILL);
}

static int sync_store(struct nono_fs *fs)
{
        if (!fs->cow->dirty)
                return 0; /* nothing queued that the change depends on */
        fs->cow->dirty = false;
        loop_may_block(fs); /* a disk flush: let another worker read meanwhile */
        killpoint(fs->cow);
        int r = nono_store_sync(fs->cfg.store);
        killpoint(fs->cow);
        return r < 0 ? serr(r, "sync") : 0;
}

/* ---- chunks ------------------------------------------------------------------------------------------ */

static int capture_chunks(struct nono_fs *fs, struct obj *o, struct fsino *x, int fd, uint64_t from,
                          uint64_t to)
{
        if (o->safe || !o->chunks || o->type != NONO_FT_FILE)
                return 0;
        if (to > o->size)
                to = o->size;
        if (from >= to)
                return 0;
        char *buf = NULL;
        int rfd = -1, r = 0;
        for (uint64_t i = from / CH; i <= (to - 1) / CH; i++) {
                if (o->chunks[i / 8] & (1u << (i % 8)))
                        continue;
                if (!buf && !(buf = malloc(CH))) {
                        r = -ENOMEM;
                        break;
                }
                if (rfd < 0 && (rfd = reopen(x, O_RDONLY | O_NOATIME)) < 0 && (rfd = reopen(x, O_RDONLY)) < 0)
                        rfd = fd >= 0 ? dup(fd) : -1;
                if (rfd < 0) {
                        r = -errno;
                        break;
                }
                uint64_t want = o->size - i * CH < CH ? o->size - i * CH : CH;
                ssize_t n = pread(rfd, buf, want, (off_t)(i * CH));
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if ((uint64_t)n < want) /* the file is shorter now: those bytes were captured by a truncate */
                        memset(buf + n, 0, want - (uint64_t)n);
                struct nono_chunkref ref = {.index = i, .len = (uint32_t)want};
                r = nono_chunk_put(fs->cfg.store, buf, want, &ref.digest, NONO_ASYNC);
                if (r >= 0)
                        r = nono_node_add_chunks(fs->cfg.store, fs->session, o->node, &ref, 1, NONO_ASYNC);
                if (r < 0) {
                        r = serr(r, "chunk");
                        break;
                }
                o->chunks[i / 8] |= (uint8_t)(1u << (i % 8));
                fs->cow->dirty = true;
                atomic_fetch_add(&fs->preimage_bytes, want);
        }
        free(buf);
        if (rfd >= 0)
                close(rfd);
        return r;
}

/* ---- hooks ------------------------------------------------------------------------------------------- */

#define LOCKED(body)                                                                                         \
        do {                                                                                                 \
                if (!fs->cow)                                                                                \
                        return 0;                                                                            \
                pthread_mutex_lock(&fs->cow->lock);                                                          \
                int _r = fs->cow->finished ? -EIO : (body);                                                  \
                if (!_r)                                                                                     \
                        _r = sync_store(fs);                                                                 \
                pthread_mutex_unlock(&fs->cow->lock);                                                        \
                return _r;                                                                                   \
        } while (0)

static int meta(struct nono_fs *fs, struct fsino *x)
{
        return capture_ino(fs, x, NULL);
}

int cow_before_meta(struct nono_fs *fs, struct fsino *x)
{
        LOCKED(meta(fs, x));
}

static int data(struct nono_fs *fs, struct fsino *x, int fd, uint64_t off, uint64_t len)
{
        struct obj *o;
        int r = capture_ino(fs, x, &o);
        if (r || !o || !o->node || o->safe)
                return r;
        uint64_t end = len >= o->size || off + len >= o->size ? o->size : off + len; /* no overflow */
        if (end > off && end - off > BIG_TRUNCATE)
                return stash_copy(fs, o, x); /* a range this big is cheaper copied whole */
        return capture_chunks(fs, o, x, fd, off, end);
}

/* Under cow->lock: nothing more of [off, off+len) of o's original bytes is owed to the store. */
static bool data_captured(const struct nono_cow *c, const struct obj *o, uint64_t off, uint64_t len)
{
        if (c->finished || !o)
                return false;
        if (o->created || (o->node && o->safe))
                return true;
        if (!o->node || !o->chunks)
                return false;
        uint64_t to = len >= o->size || off + len >= o->size ? o->size : off + len;
        for (uint64_t i = off / CH; off < to && i <= (to - 1) / CH; i++)
                if (!(o->chunks[i / 8] & (1u << (i % 8))))
                        return false;
        return true;
}

int cow_before_data(struct nono_fs *fs, struct fsino *x, int fd, uint64_t off, uint64_t len)
{
        if (!fs->cow)
                return 0;
        /* fast path: already safe, or created in the session, or all affected chunks captured */
        pthread_mutex_lock(&fs->cow->lock);
        bool done = data_captured(fs->cow, obj_find(fs->cow, x->dev, x->ino), off, len);
        pthread_mutex_unlock(&fs->cow->lock);
        if (done)
                return 0;
        LOCKED(data(fs, x, fd, off, len));
}

bool cow_data_free(struct nono_fs *fs, struct fsino *x)
{
        if (!fs->cow)
                return true;
        pthread_mutex_lock(&fs->cow->lock);
        bool done = data_captured(fs->cow, obj_find(fs->cow, x->dev, x->ino), 0, UINT64_MAX);
        pthread_mutex_unlock(&fs->cow->lock);
        return done;
}

static int truncate_(struct nono_fs *fs, struct fsino *x, int fd, uint64_t size)
{
        struct obj *o;
        struct stat st;
        int r = capture_ino(fs, x, &o);
        if (r || !o || !o->node || o->safe)
                return r;
        if (fstatat(x->fd, "", &st, AT_EMPTY_PATH) < 0)
                return -errno;
        uint64_t cur = (uint64_t)st.st_size < o->size ? (uint64_t)st.st_size : o->size;
        if (size >= cur)
                return 0;
        if (cur - size > BIG_TRUNCATE)
                return stash_copy(fs, o, x);
        return capture_chunks(fs, o, x, fd, size, cur);
}

int cow_before_truncate(struct nono_fs *fs, struct fsino *x, int fd, uint64_t size)
{
        LOCKED(truncate_(fs, x, fd, size));
}

/* The name dir/name is about to change: records the directory and what is at the name now (its node and
 * path, or "absent"). When the object there is a file whose content is not all in the store and it moves or
 * goes away (how: MOVES, GOES), it is linked into the stash first, so its base content stays findable. */
enum { STAYS = 0, MOVES = 1, GOES = 2 };

static int name_change(struct nono_fs *fs, struct fsino *dir, const char *name, int how, struct obj **out)
{
        struct stat st;
        int r = capture_ino(fs, dir, NULL), err;
        if (out)
                *out = NULL;
        if (r)
                return r;
        char *start = child_start(fs, dir, name);
        int vfd = open_beneath(dir->fd, name, O_PATH, 0);
        if (vfd < 0) {
                r = errno == ENOENT ? record_path(fs, start, 0) : -errno;
                free(start);
                return r;
        }
        if (fstatat(vfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                r = -errno;
        } else {
                struct obj *o = capture(fs, vfd, &st, start, &err);
                r = err;
                if (!r && o && o->node)
                        r = record_path(fs, start, o->node); /* one node, several paths (hard links) */
                if (!r && o && o->node && how != STAYS && o->type == NONO_FT_FILE && !o->safe && !o->stashed)
                        r = stash_link(fs, o, vfd);
                if (out)
                        *out = o;
        }
        close(vfd);
        free(start);
        return r;
}

int cow_before_create(struct nono_fs *fs, struct fsino *dir, const char *name)
{
        LOCKED(name_change(fs, dir, name, STAYS, NULL));
}

int cow_before_remove(struct nono_fs *fs, struct fsino *dir, const char *name)
{
        LOCKED(name_change(fs, dir, name, GOES, NULL));
}

/* Before a rename, the target's path record also gets an interim post part naming the node that is about
 * to arrive there, so that a restore after a crash (no final post-images) can find where a renamed
 * directory went. The final post-images at stop overwrite it. */
static int intent(struct nono_fs *fs, struct fsino *dir, const char *name, struct obj *o)
{
        if (!o || !o->node)
                return 0;
        char *start = child_start(fs, dir, name);
        if (!start)
                return 0;
        struct nono_path_rec r = {.root = fs->cfg.root_id,
                                  .path = start,
                                  .has_post = true,
                                  .post_type = o->type,
                                  .post_size = o->size,
                                  .post_node = o->node};
        int e = nono_path_put_post(fs->cfg.store, fs->session, &r, NONO_ASYNC);
        fs->cow->dirty = true;
        free(start);
        return e < 0 ? serr(e, "rename") : 0;
}

static int rename_(struct nono_fs *fs, struct fsino *sd, const char *sn, struct fsino *dd, const char *dn,
                   unsigned flags)
{
        struct obj *so, *dobj;
        int r = name_change(fs, sd, sn, MOVES, &so);
        if (!r)
                r = name_change(fs, dd, dn, (flags & RENAME_EXCHANGE) ? MOVES : GOES, &dobj);
        if (!r)
                r = intent(fs, dd, dn, so);
        if (!r && (flags & RENAME_EXCHANGE))
                r = intent(fs, sd, sn, dobj);
        return r;
}

int cow_before_rename(struct nono_fs *fs, struct fsino *sdir, const char *sname, struct fsino *ddir,
                      const char *dname, unsigned flags)
{
        LOCKED(rename_(fs, sdir, sname, ddir, dname, flags));
}

int cow_before_link(struct nono_fs *fs, struct fsino *x, struct fsino *ddir, const char *dname)
{
        LOCKED(meta(fs, x));
}

void cow_after_create(struct nono_fs *fs, struct fsino *x)
{
        if (!fs->cow)
                return;
        pthread_mutex_lock(&fs->cow->lock);
        struct nono_cow *c = fs->cow;
        struct obj *o = obj_find(c, x->dev, x->ino);
        if (o && o->node) {
                /* the inode number of an object the session removed, reused by a new object: the old
                 * object leaves the table (kept on the graveyard list until cow_free) */
                struct obj **pp = &c->tab[okey(o->dev, o->ino, c->tab_size)];
                while (*pp != o)
                        pp = &(*pp)->next;
                *pp = o->next;
                o->next = c->graveyard;
                c->graveyard = o;
                c->count--;
                o = NULL;
        }
        if (!o)
                o = obj_add(c, x->dev, x->ino);
        if (o)
                o->created = true;
        pthread_mutex_unlock(&fs->cow->lock);
}

/* ---- lifecycle --------------------------------------------------------------------------------------- */

int cow_new(struct nono_fs *fs)
{
        if (!fs->cfg.preimages)
                return 0;
        struct nono_cow *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->tab_size = 1024;
        c->tab = calloc(c->tab_size, sizeof(*c->tab));
        c->path_set = calloc(1, sizeof(struct pset));
        c->stash_fd = -1;
        const char *kp = getenv("NONO_FS_TEST_KILLPOINT");
        c->killpoint = kp ? strtoull(kp, NULL, 10) : 0;
        if (!c->tab || !c->path_set) {
                free(c->tab);
                free(c->path_set);
                free(c);
                return -ENOMEM;
        }
        pthread_mutex_init(&c->lock, NULL);
        pthread_mutex_init(&c->hl_lock, NULL);
        pthread_cond_init(&c->ingest_wake, NULL);
        pthread_cond_init(&c->ingest_idle, NULL);
        fs->cow = c;
        int r = ingest_start(fs);
        if (r < 0) {
                cow_free(fs);
                return r;
        }
        return 0;
}

int cow_finish(struct nono_fs *fs)
{
        if (!fs->cow)
                return 0;
        ingest_stop(fs);
        pthread_mutex_lock(&fs->cow->lock);
        if (fs->cow->finished) {
                pthread_mutex_unlock(&fs->cow->lock);
                return 0;
        }
        int r = write_post_images(fs);
        fs->cow->finished = true; /* no change is let through unrecorded after this (EIO), nor stored */
        pthread_mutex_unlock(&fs->cow->lock);
        return r;
}

void cow_free(struct nono_fs *fs)
{
        struct nono_cow *c = fs->cow;
        if (!c)
                return;
        ingest_stop(fs);
        for (size_t b = 0; b <= c->tab_size; b++)
                for (struct obj *o = b < c->tab_size ? c->tab[b] : c->graveyard, *n; o; o = n) {
                        n = o->next;
                        free(o->start);
                        free(o->chunks);
                        free(o);
                }
        struct pset *s = c->path_set;
        for (size_t k = 0; k < s->size; k++)
                free(s->slot[k]);
        free(s->slot);
        free(s);
        for (size_t k = 0; k < c->n_paths; k++)
                free(c->paths[k]);
        free(c->paths);
        free(c->hl);
        pthread_mutex_destroy(&c->hl_lock);
        free(c->tab);
        if (c->stash_fd >= 0)
                close(c->stash_fd);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->ingest_wake);
        pthread_cond_destroy(&c->ingest_idle);
        free(c);
        fs->cow = NULL;
}
