/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pastview.c - the read-only view of a past session (nono_fs_mount_past in fs.h), for `nono rollback mount`.
 *
 * The view is the live tree with the session's records laid over it:
 *   before: a recorded path shows its pre-image node (attributes and directory entries from the node,
 *           content from the store, or the live file with the captured blocks over it); below a recorded
 *           directory that moved, the live directory it ended up as is shown under its old name;
 *   after:  a recorded path shows its post-image; the content is the live file when its object id is still
 *           the recorded one, else the store's copy when the store has that object.
 * Never silently wrong: a file whose bytes cannot be reproduced (the live file changed since the session
 * and the store lacks what is needed) reads as EIO, with a message on stderr naming the path.
 *
 * Security: the view is read-only (the mount is "ro" and every handler that could change anything is
 * absent); the live tree is reached only fd-relative beneath the root with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), so a symlink left in the tree is shown as a symlink and never followed out of the
 * root. Files are served with the mounting user's rights only (no allow_other).
 */
#define FUSE_USE_VERSION 34
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/fs.h"

enum okind { O_ABSENT, O_LIVE, O_NODE, O_POST };

struct obj {
        enum okind kind;
        char live[4096];                 /* O_LIVE, O_POST: live path; O_NODE: live copy of the node or "" */
        const struct nono_path_rec *rec; /* O_NODE, O_POST */
        struct nono_node node;           /* O_NODE */
};

struct pv {
        nono_store *st;
        const char *session;
        uint32_t root;
        enum nono_fs_when when;
        int rootfd;
        struct nono_path_rec *recs; /* this root's records, sorted by path */
        size_t n;
        char **paths; /* ino - 1 -> view path */
        size_t n_ino, cap_ino;
};

/* ---- live tree, fd-relative ---- */

static int open_beneath(int rootfd, const char *rel, int flags)
{
        struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC | O_NOFOLLOW,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        long fd = syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how);
        return fd < 0 ? -errno : (int)fd;
}

static int live_stat(struct pv *v, const char *rel, struct stat *st)
{
        int fd = open_beneath(v->rootfd, rel, O_PATH);
        int r;

        if (fd < 0)
                return fd == -ELOOP || fd == -ENOTDIR || fd == -EXDEV ? -ENOENT : fd;
        r = fstat(fd, st) < 0 ? -errno : 0;
        close(fd);
        return r;
}

/* ---- records ---- */

static int cmp_rec(const void *a, const void *b)
{
        return strcmp(((const struct nono_path_rec *)a)->path, ((const struct nono_path_rec *)b)->path);
}

static const struct nono_path_rec *rec_of(struct pv *v, const char *path)
{
        size_t lo = 0, hi = v->n;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(v->recs[mid].path, path);
                if (!c)
                        return &v->recs[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static bool post_exists(const struct nono_path_rec *r)
{
        return r->has_post && r->post_type != NONO_FT_ABSENT;
}

/* Where node id lives now: the path whose post-image is that node. */
static const struct nono_path_rec *live_of_node(struct pv *v, uint64_t id)
{
        for (size_t i = 0; i < v->n; i++)
                if (v->recs[i].post_node == id && post_exists(&v->recs[i]))
                        return &v->recs[i];
        return NULL;
}

static void obj_clear(struct obj *o)
{
        nono_node_clear(&o->node);
        memset(o, 0, sizeof *o);
}

static int resolve(struct pv *v, const char *path, struct obj *o)
{
        char pre[4096];
        const struct nono_path_rec *r = rec_of(v, path), *l;

        memset(o, 0, sizeof *o);
        if (v->when == NONO_FS_AFTER) {
                snprintf(pre, sizeof pre, "%s", path);
                for (char *s; (s = strrchr(pre, '/')) || *pre;) { /* an ancestor gone at the end hides us */
                        if (s)
                                *s = 0;
                        else
                                pre[0] = 0;
                        const struct nono_path_rec *a = rec_of(v, pre);
                        if (a && a->has_post && !post_exists(a))
                                return -ENOENT;
                        if (!s)
                                break;
                }
                if (r && r->has_post) {
                        if (!post_exists(r))
                                return -ENOENT;
                        o->kind = O_POST;
                        o->rec = r;
                        snprintf(o->live, sizeof o->live, "%s", path);
                        return 0;
                }
                o->kind = O_LIVE;
                snprintf(o->live, sizeof o->live, "%s", path);
                return 0;
        }
        if (r) {
                if (!r->pre_node)
                        return -ENOENT;
                if (nono_node_get(v->st, v->session, r->pre_node, &o->node) < 0)
                        return -EIO;
                o->kind = O_NODE;
                o->rec = r;
                l = live_of_node(v, r->pre_node);
                if (l)
                        snprintf(o->live, sizeof o->live, "%s", l->path);
                else if (!r->has_post)
                        snprintf(o->live, sizeof o->live, "%s", path); /* crashed: where it was */
                return 0;
        }
        /* not recorded: under the nearest recorded ancestor, or the live tree as it is */
        snprintf(pre, sizeof pre, "%s", path);
        for (;;) {
                char *s = strrchr(pre, '/');
                if (s)
                        *s = 0;
                else if (*pre)
                        pre[0] = 0;
                else
                        break;
                const struct nono_path_rec *a = rec_of(v, pre);
                if (!a) {
                        if (!*pre)
                                break;
                        continue;
                }
                if (!a->pre_node)
                        return -ENOENT;
                l = live_of_node(v, a->pre_node);
                const char *base = l ? l->path : (!a->has_post ? a->path : NULL);
                if (!base)
                        return -ENOENT;
                o->kind = O_LIVE;
                snprintf(o->live, sizeof o->live, "%s%s%s", base, *base ? "/" : "",
                         path + strlen(pre) + (*pre ? 1 : 0));
                return 0;
        }
        o->kind = O_LIVE;
        snprintf(o->live, sizeof o->live, "%s", path);
        return 0;
}

static mode_t type_bits(uint32_t t)
{
        switch (t) {
        case NONO_FT_DIR:
                return S_IFDIR;
        case NONO_FT_SYMLINK:
                return S_IFLNK;
        case NONO_FT_FIFO:
                return S_IFIFO;
        case NONO_FT_SOCK:
                return S_IFSOCK;
        default:
                return S_IFREG;
        }
}

static int obj_stat(struct pv *v, struct obj *o, struct stat *st)
{
        memset(st, 0, sizeof *st);
        if (o->kind == O_NODE) {
                const struct nono_node *n = &o->node;
                st->st_mode = type_bits(n->type) | n->mode;
                st->st_uid = n->uid;
                st->st_gid = n->gid;
                st->st_size = n->type == NONO_FT_SYMLINK && n->link_target ? strlen(n->link_target) : n->size;
                st->st_nlink = n->nlink ? n->nlink : 1;
                st->st_atim = (struct timespec){n->atime_ns / 1000000000LL, n->atime_ns % 1000000000LL};
                st->st_mtim = (struct timespec){n->mtime_ns / 1000000000LL, n->mtime_ns % 1000000000LL};
                st->st_ctim = st->st_mtim;
                st->st_blocks = (st->st_size + 511) / 512;
                st->st_blksize = 4096;
                return 0;
        }
        int r = live_stat(v, o->live, st);
        if (o->kind == O_POST) {
                if (r < 0)
                        memset(st, 0, sizeof *st); /* gone since: attributes from the record */
                st->st_mode = type_bits(o->rec->post_type) | o->rec->post_mode;
                st->st_size = o->rec->post_size;
                if (o->rec->post_mtime_ns)
                        st->st_mtim = (struct timespec){o->rec->post_mtime_ns / 1000000000LL,
                                                        o->rec->post_mtime_ns % 1000000000LL};
                if (!st->st_nlink)
                        st->st_nlink = 1;
                return 0;
        }
        return r;
}

/* ---- inodes: view paths, never forgotten (a browsing session is small) ---- */

static fuse_ino_t ino_of(struct pv *v, const char *path)
{
        for (size_t i = 0; i < v->n_ino; i++) /* small tables; a hash would be the next step */
                if (!strcmp(v->paths[i], path))
                        return i + 1;
        if (v->n_ino == v->cap_ino) {
                v->cap_ino = v->cap_ino ? v->cap_ino * 2 : 64;
                v->paths = realloc(v->paths, v->cap_ino * sizeof *v->paths);
        }
        v->paths[v->n_ino++] = strdup(path);
        return v->n_ino;
}

static const char *path_of(struct pv *v, fuse_ino_t ino)
{
        return ino >= 1 && ino <= v->n_ino ? v->paths[ino - 1] : NULL;
}

static void child_path(const char *parent, const char *name, char *out, size_t len)
{
        snprintf(out, len, "%s%s%s", parent, *parent ? "/" : "", name);
}

/* ---- handlers ---- */

static void pv_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct pv *v = fuse_req_userdata(req);
        const char *pp = path_of(v, parent);
        struct fuse_entry_param e = {0};
        char path[4096];
        struct obj o;
        int r;

        if (!pp || strchr(name, '/'))
                return (void)fuse_reply_err(req, ENOENT);
        child_path(pp, name, path, sizeof path);
        r = resolve(v, path, &o);
        if (r == 0)
                r = obj_stat(v, &o, &e.attr);
        obj_clear(&o);
        if (r < 0)
                return (void)fuse_reply_err(req, -r);
        e.ino = e.attr.st_ino = ino_of(v, path);
        e.attr_timeout = e.entry_timeout = 3600; /* the past does not change */
        fuse_reply_entry(req, &e);
}

static void pv_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct pv *v = fuse_req_userdata(req);
        const char *p = path_of(v, ino);
        struct stat st;
        struct obj o;
        int r = p ? resolve(v, p, &o) : -ENOENT;

        if (r == 0)
                r = obj_stat(v, &o, &st);
        if (p)
                obj_clear(&o);
        if (r < 0)
                return (void)fuse_reply_err(req, -r);
        st.st_ino = ino;
        fuse_reply_attr(req, &st, 3600);
}

static void pv_readlink(fuse_req_t req, fuse_ino_t ino)
{
        struct pv *v = fuse_req_userdata(req);
        const char *p = path_of(v, ino);
        char buf[4096];
        struct obj o;
        int r = p ? resolve(v, p, &o) : -ENOENT;

        if (r < 0)
                return (void)fuse_reply_err(req, -r);
        if (o.kind == O_NODE)
                snprintf(buf, sizeof buf, "%s", o.node.link_target ? o.node.link_target : "");
        else if (o.kind == O_POST && o.rec->post_link_target)
                snprintf(buf, sizeof buf, "%s", o.rec->post_link_target);
        else {
                int fd = open_beneath(v->rootfd, o.live, O_PATH);
                ssize_t l = fd >= 0 ? readlinkat(fd, "", buf, sizeof buf - 1) : -1;
                if (fd >= 0)
                        close(fd);
                if (l < 0) {
                        obj_clear(&o);
                        return (void)fuse_reply_err(req, EINVAL);
                }
                buf[l] = 0;
        }
        obj_clear(&o);
        fuse_reply_readlink(req, buf);
}

static void report(struct pv *v, const char *path, const char *why)
{
        fprintf(stderr, "nono: %s: %s; reading it fails with EIO rather than show wrong bytes\n",
                *path ? path : ".", why);
        fflush(stderr);
}

/* A memfd with the exact bytes of the view's file, or a negative errno (EIO with a message). */
static int materialize(struct pv *v, const char *path, struct obj *o)
{
        int mfd = memfd_create("nono-past", MFD_CLOEXEC), lfd = -1, r = 0;
        nono_digest d;

        if (mfd < 0)
                return -errno;
        if (o->kind == O_NODE && o->node.complete) {
                if (nono_object_get_fd(v->st, &o->node.object, mfd) < 0) {
                        report(v, path, "its pre-image is missing from the store");
                        r = -EIO;
                }
                goto out;
        }
        /* the live file, checked against what the session recorded */
        const struct nono_path_rec *lr = o->kind == O_POST ? o->rec : *o->live ? rec_of(v, o->live) : NULL;
        if (*o->live)
                lfd = open_beneath(v->rootfd, o->live, O_RDONLY);
        if (lfd >= 0 && lr && lr->post_has_digest) {
                nono_object_id_fd(lfd, &d, NULL);
                if (memcmp(d.b, lr->post_digest.b, 32)) {
                        close(lfd);
                        lfd = -1;
                }
        }
        if (o->kind == O_POST) {
                if (lfd < 0 && nono_object_has(v->st, &o->rec->post_digest) == 1)
                        r = nono_object_get_fd(v->st, &o->rec->post_digest, mfd) < 0 ? -EIO : 0;
                else if (lfd < 0) {
                        report(v, path, "changed since the session ended and the store has no copy of it");
                        r = -EIO;
                } else {
                        char buf[65536];
                        ssize_t k;
                        off_t off = 0;
                        while ((k = pread(lfd, buf, sizeof buf, off)) > 0 && write(mfd, buf, k) == k)
                                off += k;
                }
                goto out;
        }
        /* a node kept block-level: fs/'s stash entry (cow.c "content rule") or the live copy, with the
         * captured blocks over it */
        {
                char sn[160];
                int parent = openat(v->rootfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC), sfd = -1;
                snprintf(sn, sizeof sn, "..nono-stash.%s.%u/%llu", v->session, v->root,
                         (unsigned long long)o->node.id);
                if (parent >= 0) {
                        sfd = openat(parent, sn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        close(parent);
                }
                if (sfd < 0)
                        sfd = openat(v->rootfd, sn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (sfd >= 0) {
                        if (lfd >= 0)
                                close(lfd);
                        lfd = sfd;
                }
        }
        if (lfd < 0) {
                report(v, path, "only its changed blocks were kept and the file changed or is gone since");
                r = -EIO;
                goto out;
        }
        {
                char *buf = malloc(NONO_CHUNK_SIZE);
                ssize_t k;
                off_t off = 0;
                while (buf && (k = pread(lfd, buf, NONO_CHUNK_SIZE, off)) > 0 &&
                       pwrite(mfd, buf, k, off) == k)
                        off += k;
                for (size_t i = 0; buf && i < o->node.n_chunks; i++) {
                        size_t len = 0;
                        if (nono_chunk_get(v->st, &o->node.chunks[i].digest, buf, NONO_CHUNK_SIZE, &len) <
                            0) {
                                report(v, path, "a kept block is missing from the store");
                                r = -EIO;
                                break;
                        }
                        if (pwrite(mfd, buf, len, o->node.chunks[i].index * NONO_CHUNK_SIZE) != (ssize_t)len)
                                r = -EIO;
                }
                free(buf);
                if (ftruncate(mfd, o->node.size) < 0)
                        r = -errno;
        }
out:
        if (lfd >= 0)
                close(lfd);
        if (r < 0) {
                close(mfd);
                return r;
        }
        return mfd;
}

static void pv_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct pv *v = fuse_req_userdata(req);
        const char *p = path_of(v, ino);
        struct obj o;
        int r, fd;

        if ((fi->flags & O_ACCMODE) != O_RDONLY)
                return (void)fuse_reply_err(req, EROFS);
        r = p ? resolve(v, p, &o) : -ENOENT;
        if (r < 0)
                return (void)fuse_reply_err(req, -r);
        if (o.kind == O_LIVE)
                fd = open_beneath(v->rootfd, o.live, O_RDONLY);
        else
                fd = materialize(v, p, &o);
        obj_clear(&o);
        if (fd < 0)
                return (void)fuse_reply_err(req, -fd);
        fi->fh = fd;
        fi->keep_cache = 1;
        fuse_reply_open(req, fi);
}

static void pv_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        char *buf = malloc(size ? size : 1);
        ssize_t k = buf ? pread(fi->fh, buf, size, off) : -1;

        if (k < 0)
                fuse_reply_err(req, buf ? errno : ENOMEM);
        else
                fuse_reply_buf(req, buf, k);
        free(buf);
}

static void pv_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        close(fi->fh);
        fuse_reply_err(req, 0);
}

struct dirlist {
        char **names;
        size_t n;
};

static void add_name(struct dirlist *d, const char *name)
{
        for (size_t i = 0; i < d->n; i++)
                if (!strcmp(d->names[i], name))
                        return;
        d->names = realloc(d->names, (d->n + 1) * sizeof *d->names);
        d->names[d->n++] = strdup(name);
}

static void pv_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct pv *v = fuse_req_userdata(req);
        const char *p = path_of(v, ino);
        struct dirlist *d = calloc(1, sizeof *d), all = {0};
        struct obj o;
        int r = p ? resolve(v, p, &o) : -ENOENT;

        if (r < 0) {
                free(d);
                return (void)fuse_reply_err(req, -r);
        }
        if (o.kind == O_NODE) {
                for (char **e = o.node.entries; e && *e; e++)
                        add_name(&all, *e);
        } else {
                int fd = open_beneath(v->rootfd, o.live, O_RDONLY | O_DIRECTORY);
                DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
                struct dirent *de;
                while (dir && (de = readdir(dir)))
                        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                                add_name(&all, de->d_name);
                if (dir)
                        closedir(dir);
                /* recorded children that the live tree lacks */
                size_t pl = strlen(p);
                for (size_t i = 0; i < v->n; i++) {
                        const char *rp = v->recs[i].path;
                        if (!*rp || (pl && (strncmp(rp, p, pl) || rp[pl] != '/')))
                                continue;
                        const char *rest = rp + (pl ? pl + 1 : 0);
                        if (*rest && !strchr(rest, '/'))
                                add_name(&all, rest);
                }
        }
        obj_clear(&o);
        for (size_t i = 0; i < all.n; i++) {
                char cp[4096];
                struct obj c;
                child_path(p, all.names[i], cp, sizeof cp);
                if (strncmp(all.names[i], ".nono-", 6) && strncmp(all.names[i], "..nono-stash.", 13) &&
                    resolve(v, cp, &c) == 0)
                        add_name(d, all.names[i]);
                obj_clear(&c);
                free(all.names[i]);
        }
        free(all.names);
        fi->fh = (uintptr_t)d;
        fuse_reply_open(req, fi);
}

static void pv_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        struct pv *v = fuse_req_userdata(req);
        struct dirlist *d = (struct dirlist *)(uintptr_t)fi->fh;
        char *buf = calloc(1, size), cp[4096];
        size_t used = 0;
        const char *p = path_of(v, ino);

        for (size_t i = off; buf && p && i < d->n + 2; i++) {
                struct stat st = {0};
                const char *nm = i == 0 ? "." : i == 1 ? ".." : d->names[i - 2];
                if (i >= 2) {
                        child_path(p, nm, cp, sizeof cp);
                        struct obj c;
                        if (resolve(v, cp, &c) == 0)
                                obj_stat(v, &c, &st);
                        obj_clear(&c);
                        st.st_ino = ino_of(v, cp);
                } else {
                        st.st_mode = S_IFDIR;
                        st.st_ino = ino;
                }
                size_t need = fuse_add_direntry(req, buf + used, size - used, nm, &st, i + 1);
                if (need > size - used)
                        break;
                used += need;
        }
        fuse_reply_buf(req, buf, used);
        free(buf);
}

static void pv_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct dirlist *d = (struct dirlist *)(uintptr_t)fi->fh;
        for (size_t i = 0; i < d->n; i++)
                free(d->names[i]);
        free(d->names);
        free(d);
        fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops pv_ops = {
    .lookup = pv_lookup,
    .getattr = pv_getattr,
    .readlink = pv_readlink,
    .open = pv_open,
    .read = pv_read,
    .release = pv_release,
    .opendir = pv_opendir,
    .readdir = pv_readdir,
    .releasedir = pv_releasedir,
};

int nono_fs_mount_past(nono_store *st, const char *session, uint32_t root_id, enum nono_fs_when when,
                       const char *mountpoint)
{
        struct nono_session s = {0};
        struct nono_path_rec *all = NULL;
        size_t n_all = 0, nr = 0;
        struct pv v = {.st = st, .session = session, .root = root_id, .when = when, .rootfd = -1};
        char *args[] = {"nono", "-o", "ro,fsname=nono-past,subtype=nono,default_permissions", NULL};
        struct fuse_args fa = FUSE_ARGS_INIT(3, args);
        struct fuse_session *se = NULL;
        int r;

        r = nono_session_get(st, session, &s);
        if (r < 0)
                return r;
        while (s.roots && s.roots[nr])
                nr++;
        if (root_id >= nr) {
                nono_session_clear(&s);
                return -EINVAL;
        }
        v.rootfd = open(s.roots[root_id], O_PATH | O_DIRECTORY | O_CLOEXEC);
        nono_session_clear(&s);
        if (v.rootfd < 0)
                return -errno;
        r = nono_path_list(st, session, &all, &n_all);
        if (r < 0)
                goto out;
        v.recs = calloc(n_all + 1, sizeof *v.recs);
        for (size_t i = 0; i < n_all; i++)
                if (all[i].root == root_id)
                        v.recs[v.n++] = all[i]; /* shallow: `all` keeps owning the strings */
        qsort(v.recs, v.n, sizeof *v.recs, cmp_rec);
        ino_of(&v, ""); /* FUSE_ROOT_ID */
        se = fuse_session_new(&fa, &pv_ops, sizeof pv_ops, &v);
        if (!se) {
                r = -EIO;
                goto out;
        }
        if (fuse_set_signal_handlers(se) < 0 || fuse_session_mount(se, mountpoint) < 0) {
                r = -EIO;
                goto out;
        }
        /* the line callers (and tests) wait for: the view is there now */
        fprintf(stderr, "nono: mounted at %s\n", mountpoint);
        fflush(stderr);
        r = fuse_session_loop(se);
        r = r < 0 ? r : 0;
        fuse_session_unmount(se);
        fuse_remove_signal_handlers(se);
out:
        if (se)
                fuse_session_destroy(se);
        free(v.recs);
        nono_path_list_free(all, n_all);
        for (size_t i = 0; i < v.n_ino; i++)
                free(v.paths[i]);
        free(v.paths);
        close(v.rootfd);
        return r;
}
