/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_plan.c - turns a session's path and node records into a restore plan (see restore_int.h for the
 * phases) without changing anything: selects the paths, finds where each needed live inode is now (the
 * post-image says which node ended at which path), checks for conflicts (the tree changed after the
 * session ended), and refuses a plan that would need content the store does not have.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/restore_fs.h"
#include "launcher/restore_int.h"

struct nodemap {
        uint64_t *ids;
        struct nono_node *nodes;
        size_t n;
        size_t *src;     /* item index of the live inode, or SIZE_MAX */
        size_t *primary; /* first item (shallowest) restored to this node */
        ssize_t *src_of; /* per item: the node index it is the live inode of, or -1 */
};

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static ssize_t node_index(const struct nodemap *m, uint64_t id)
{
        uint64_t *f = bsearch(&id, m->ids, m->n, sizeof *m->ids, cmp_u64);
        return f ? f - m->ids : -1;
}

static void nodemap_free(struct nodemap *m)
{
        for (size_t i = 0; i < m->n; i++)
                nono_node_clear(&m->nodes[i]);
        free(m->ids);
        free(m->nodes);
        free(m->src);
        free(m->primary);
        free(m->src_of);
}

static size_t depth(const char *p)
{
        size_t d = *p ? 1 : 0;
        for (; *p; p++)
                d += *p == '/';
        return d;
}

static const struct rb_item *sort_items;
static int cmp_depth_desc(const void *a, const void *b)
{
        const struct rb_item *x = &sort_items[*(const size_t *)a], *y = &sort_items[*(const size_t *)b];
        size_t dx = depth(x->path), dy = depth(y->path);
        if (dx != dy)
                return dx > dy ? -1 : 1;
        if (x->root != y->root)
                return x->root < y->root ? -1 : 1;
        return strcmp(x->path, y->path);
}
static int cmp_depth_asc(const void *a, const void *b)
{
        return -cmp_depth_desc(a, b);
}

static int cmp_item(const void *a, const void *b)
{
        const struct rb_item *x = a, *y = b;
        if (x->root != y->root)
                return x->root < y->root ? -1 : 1;
        return strcmp(x->path, y->path);
}

static ssize_t item_find(const struct rb_plan *p, uint32_t root, const char *path)
{
        struct rb_item key = {.root = root, .path = (char *)path};
        struct rb_item *f = bsearch(&key, p->items, p->n_recorded, sizeof key, cmp_item);
        return f ? f - p->items : -1;
}

/* Lexically normalises an absolute path ("/a/./b/../c" -> "/a/c"). */
static void normalise(char *p)
{
        char *out = p, *in = p;

        while (*in) {
                while (*in == '/')
                        in++;
                if (!*in)
                        break;
                char *end = strchrnul(in, '/');
                size_t len = end - in;
                if (len == 1 && in[0] == '.') {
                } else if (len == 2 && in[0] == '.' && in[1] == '.') {
                        while (out > p && *--out != '/')
                                ;
                } else {
                        *out++ = '/';
                        memmove(out, in, len);
                        out += len;
                }
                in = end;
        }
        if (out == p)
                *out++ = '/';
        *out = 0;
}

/* Maps a user path to (root, path relative to the root). */
static int user_path(const struct rb_plan *p, const char *arg, uint32_t *root, char **rel)
{
        int r = nono_rollback_user_path(p->roots, arg, root, rel);

        if (r == -ENOENT)
                rb_set_err("%s is not inside any root of session %s: give a path under %s", arg, p->session,
                           p->n_roots ? p->roots[0] : "(none)");
        return r;
}

int nono_rollback_user_path(char *const *roots, const char *arg, uint32_t *root, char **rel)
{
        char abs[PATH_MAX * 2], cwd[PATH_MAX];

        if (arg[0] == '/')
                snprintf(abs, sizeof abs, "%s", arg);
        else if (getcwd(cwd, sizeof cwd))
                snprintf(abs, sizeof abs, "%s/%s", cwd, arg);
        else
                return -errno;
        normalise(abs);
        for (size_t r = 0; roots && roots[r]; r++) {
                size_t l = strlen(roots[r]);
                while (l > 1 && roots[r][l - 1] == '/')
                        l--;
                if (strncmp(abs, roots[r], l) || (abs[l] && abs[l] != '/'))
                        continue;
                *root = r;
                *rel = strdup(abs[l] ? abs + l + 1 : "");
                return *rel ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

static bool under(const char *path, const char *sel)
{
        size_t l = strlen(sel);
        return !*sel || (!strncmp(path, sel, l) && (!path[l] || path[l] == '/'));
}

static int select_items(struct rb_plan *p, const struct nono_restore_opts *o, struct nono_path_rec *recs,
                        size_t n)
{
        uint32_t *sroot = calloc(o->n_paths + 1, sizeof *sroot);
        char **srel = calloc(o->n_paths + 1, sizeof *srel);
        size_t *hits = calloc(o->n_paths + 1, sizeof *hits);
        int r = 0;

        p->items = calloc(n + 1, sizeof *p->items);
        if (!sroot || !srel || !hits || !p->items) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < o->n_paths && r >= 0; i++)
                r = user_path(p, o->paths[i], &sroot[i], &srel[i]);
        if (r < 0)
                goto out;
        p->full = o->n_paths == 0;
        for (size_t i = 0; i < n; i++) {
                bool sel = o->n_paths == 0;
                for (size_t j = 0; j < o->n_paths; j++)
                        if (recs[i].root == sroot[j] && under(recs[i].path, srel[j]))
                                sel = true, hits[j]++;
                if (!sel)
                        continue;
                struct rb_item *it = &p->items[p->n_items++];
                it->root = recs[i].root;
                if (it->root < p->n_roots && p->filebase && p->filebase[it->root] && !*recs[i].path)
                        it->path = strdup(p->filebase[it->root]); /* a file root: its name in its directory */
                else
                        it->path = strdup(recs[i].path);
                it->target = recs[i].pre_node;
                it->has_post = recs[i].has_post;
                it->rec = recs[i];
                it->rec.path = it->path;
                it->rec.post_link_target = recs[i].post_link_target ? strdup(recs[i].post_link_target) : NULL;
        }
        for (size_t j = 0; j < o->n_paths; j++)
                if (!hits[j]) {
                        rb_set_err("session %s did not change %s: see `nono rollback show %s`", p->session,
                                   o->paths[j], p->session);
                        r = -ENOENT;
                }
        qsort(p->items, p->n_items, sizeof *p->items, cmp_item);
        p->n_recorded = p->n_items;
out:
        for (size_t i = 0; srel && i < o->n_paths; i++)
                free(srel[i]);
        free(srel);
        free(sroot);
        free(hits);
        return r;
}

static int load_nodes(nono_store *st, struct rb_plan *p, struct nodemap *m)
{
        m->ids = calloc(2 * p->n_items + 1, sizeof *m->ids);
        if (!m->ids)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_items; i++) {
                const struct rb_item *it = &p->items[i];
                if (it->target)
                        m->ids[m->n++] = it->target;
                /* a file now at a path that no path started with (a restore session's relinked inode,
                 * rb_plan.relinked): its node too, so its content goes back (RB_REWRITE) */
                if (p->full && it->has_post && it->rec.post_node && it->rec.post_type == NONO_FT_FILE &&
                    it->rec.post_node != it->target)
                        m->ids[m->n++] = it->rec.post_node;
        }
        qsort(m->ids, m->n, sizeof *m->ids, cmp_u64);
        size_t u = 0;
        for (size_t i = 0; i < m->n; i++)
                if (!u || m->ids[u - 1] != m->ids[i])
                        m->ids[u++] = m->ids[i];
        m->n = u;
        m->nodes = calloc(u + 1, sizeof *m->nodes);
        m->src = malloc((u + 1) * sizeof *m->src);
        m->primary = malloc((u + 1) * sizeof *m->primary);
        if (!m->nodes || !m->src || !m->primary)
                return -ENOMEM;
        for (size_t i = 0; i < u; i++) {
                int r = nono_node_get(st, p->session, m->ids[i], &m->nodes[i]);
                if (r < 0) {
                        rb_set_err(
                            "session %s is missing the pre-image of node %llu (%s): the store is damaged; "
                            "run `nono rollback verify %s`",
                            p->session, (unsigned long long)m->ids[i], strerror(-r), p->session);
                        return -ENODATA;
                }
                m->src[i] = m->primary[i] = SIZE_MAX;
        }
        return 0;
}

static uint32_t ftype_of(mode_t m)
{
        return S_ISREG(m)    ? NONO_FT_FILE
               : S_ISDIR(m)  ? NONO_FT_DIR
               : S_ISLNK(m)  ? NONO_FT_SYMLINK
               : S_ISFIFO(m) ? NONO_FT_FIFO
               : S_ISSOCK(m) ? NONO_FT_SOCK
                             : NONO_FT_ABSENT;
}

static const char *ftype_name(uint32_t t)
{
        static const char *n[] = {"absent", "file", "directory", "symlink", "fifo", "socket"};
        return t < 6 ? n[t] : "?";
}

/* A touched path differs from what the session left there: the user kept working. */
/* A path already back at its start state (an earlier restore of just that PATH) is not a conflict. */
static bool already_restored(const struct rb_plan *p, const struct rb_item *it, const struct nodemap *m)
{
        ssize_t ni = it->target ? node_index(m, it->target) : -1;
        const struct nono_node *n = ni >= 0 ? &m->nodes[ni] : NULL;

        if (!it->target)
                return !it->cur_exists;
        if (!it->cur_exists || ftype_of(it->cur.st_mode) != n->type || (it->cur.st_mode & 07777) != n->mode)
                return false;
        if (n->type == NONO_FT_FILE) {
                _cleanup_close_ int o = rfs_open_path(p->rootfds[it->root], it->path);
                _cleanup_close_ int fd = o >= 0 ? rfs_open_read(o) : o;
                nono_digest d;
                return n->complete && fd >= 0 && nono_object_id_fd(fd, &d, NULL) == 0 &&
                       !memcmp(d.b, n->object.b, 32);
        }
        if (n->type == NONO_FT_SYMLINK) {
                _cleanup_close_ int o = rfs_open_path(p->rootfds[it->root], it->path);
                char buf[4096];
                ssize_t l = o >= 0 ? readlinkat(o, "", buf, sizeof buf - 1) : -1;
                return l >= 0 && (buf[l] = 0, !strcmp(buf, n->link_target ? n->link_target : ""));
        }
        return true;
}

/* The object id of the regular file at it's path; small files are read into it->content once, for the
 * restore session's pre-image (restore.c record_pre). */
static int current_id(struct rb_plan *p, struct rb_item *it, nono_digest *d)
{
        _cleanup_close_ int o = rfs_open_path(p->rootfds[it->root], it->path);
        _cleanup_close_ int fd = o >= 0 ? rfs_open_read(o) : o;
        char *buf;
        size_t len;

        if (fd < 0)
                return fd;
        if (it->cur.st_size > RB_CONTENT_FILE_MAX || p->content_bytes + it->cur.st_size > RB_CONTENT_MAX ||
            rfs_read_all(fd, RB_CONTENT_FILE_MAX, &buf, &len) < 0)
                return nono_object_id_fd(fd, d, NULL);
        free(it->content);
        it->content = buf;
        it->content_len = len;
        p->content_bytes += len;
        return nono_object_id_buf(buf, len, d);
}

static int check_conflict(struct rb_plan *p, struct rb_item *it, const struct nodemap *m, FILE *out)
{
        const struct nono_path_rec *r = &it->rec;
        uint32_t now = it->cur_exists ? ftype_of(it->cur.st_mode) : NONO_FT_ABSENT;
        char why[256] = "";

        if (!it->has_post || p->crashed)
                return 0; /* interim post-images of a crashed session say where things went, not what */
        if (now != r->post_type)
                snprintf(why, sizeof why, "the session left a %s, now it is a %s", ftype_name(r->post_type),
                         ftype_name(now));
        else if (now != NONO_FT_ABSENT && now != NONO_FT_SYMLINK && (it->cur.st_mode & 07777) != r->post_mode)
                snprintf(why, sizeof why, "mode changed from %04o to %04o", r->post_mode,
                         it->cur.st_mode & 07777);
        else if (now == NONO_FT_FILE && (uint64_t)it->cur.st_size != r->post_size)
                snprintf(why, sizeof why, "size changed from %llu to %llu", (unsigned long long)r->post_size,
                         (unsigned long long)it->cur.st_size);
        else if (now == NONO_FT_FILE && r->post_has_digest) {
                nono_digest d;
                if (current_id(p, it, &d) < 0)
                        snprintf(why, sizeof why, "cannot be read to compare");
                else if (memcmp(d.b, r->post_digest.b, 32))
                        snprintf(why, sizeof why, "content changed");
        } else if (now == NONO_FT_SYMLINK && r->post_link_target) {
                _cleanup_close_ int o = rfs_open_path(p->rootfds[it->root], it->path);
                char buf[4096];
                ssize_t l = o >= 0 ? readlinkat(o, "", buf, sizeof buf - 1) : -1;
                if (l < 0 || (buf[l] = 0, strcmp(buf, r->post_link_target)))
                        snprintf(why, sizeof why, "symlink target changed");
        }
        if (!*why || already_restored(p, it, m))
                return 0;
        fprintf(out, "conflict: %s%s%s: %s after the session ended\n", p->roots[it->root],
                *it->path ? "/" : "", it->path, why);
        return 1;
}

/* A directory the restore removes holds things the session did not record (a user's later work, or a
 * session that crashed before its end was written): list them as extra items so they are recorded in the
 * restore session (undoable) and reported as conflicts. */
static int add_extras(struct rb_plan *p, size_t idx, size_t *cap, FILE *out, bool report)
{
        struct rb_item *it = &p->items[idx];
        _cleanup_close_ int o = rfs_open_path(p->rootfds[it->root], it->path);
        int dfd = o >= 0 ? openat(o, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;
        int r = 0;

        if (!d) {
                if (dfd >= 0)
                        close(dfd);
                return 0; /* unreadable: the stash move will still carry it (and fail loudly if not) */
        }
        while ((de = readdir(d))) {
                char child[PATH_MAX];
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                snprintf(child, sizeof child, "%s%s%s", it->path, *it->path ? "/" : "", de->d_name);
                if (item_find(p, it->root, child) >= 0 || !strncmp(de->d_name, RB_FS_STASH_PREFIX, 13) ||
                    !strncmp(de->d_name, RB_STASH_PREFIX, 14))
                        continue;
                if (p->n_items + 1 >= *cap) {
                        struct rb_item *nv = realloc(p->items, (*cap *= 2) * sizeof *nv);
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        p->items = nv;
                        it = &p->items[idx];
                }
                struct rb_item *x = &p->items[p->n_items++];
                memset(x, 0, sizeof *x);
                x->root = it->root;
                x->path = strdup(child);
                x->extra = true;
                x->cur_exists = rfs_lstat(p->rootfds[x->root], x->path, &x->cur) == 0;
                if (report) {
                        fprintf(out,
                                "conflict: %s/%s: not made by the session, inside a directory it created\n",
                                p->roots[x->root], x->path);
                        p->n_conflicts++;
                }
                if (x->cur_exists && S_ISDIR(x->cur.st_mode))
                        r = add_extras(p, p->n_items - 1, cap, out, report);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

/* Names in a directory the restore keeps that were not there at the session start and have no record of
 * their own: a crashed session's last creations (fs/ records the directory's start entries first), or,
 * after a finished session, someone's later work (a conflict). They go to the trash, recorded. */
static int add_new_names(struct rb_plan *p, const struct nodemap *m, size_t i, size_t *cap, FILE *out)
{
        struct rb_item *it = &p->items[i];
        ssize_t ni = it->target ? node_index(m, it->target) : -1;
        const struct nono_node *n = ni >= 0 ? &m->nodes[ni] : NULL;
        size_t src = ni >= 0 ? m->src[ni] : SIZE_MAX;
        int r = 0;

        if (!n || n->type != NONO_FT_DIR || src == SIZE_MAX)
                return 0;
        char *live = strdup(p->items[src].path), *start = strdup(it->path);
        uint32_t root = it->root;
        _cleanup_close_ int o = rfs_open_path(p->rootfds[root], live);
        int dfd = o >= 0 ? openat(o, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;

        if (!d && dfd >= 0)
                close(dfd);
        while (d && (de = readdir(d))) {
                char sp[PATH_MAX], lp[PATH_MAX];
                bool at_start = false;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
                    !strncmp(de->d_name, RB_FS_STASH_PREFIX, 13) || !strncmp(de->d_name, RB_STASH_PREFIX, 14))
                        continue;
                for (char **e = n->entries; e && *e && !at_start; e++)
                        at_start = !strcmp(*e, de->d_name);
                snprintf(sp, sizeof sp, "%s%s%s", start, *start ? "/" : "", de->d_name);
                snprintf(lp, sizeof lp, "%s%s%s", live, *live ? "/" : "", de->d_name);
                if (at_start || item_find(p, root, sp) >= 0 || item_find(p, root, lp) >= 0)
                        continue;
                if (p->n_items + 1 >= *cap) {
                        struct rb_item *nv = realloc(p->items, (*cap *= 2) * sizeof *nv);
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        p->items = nv;
                }
                struct rb_item *x = &p->items[p->n_items++];
                memset(x, 0, sizeof *x);
                x->root = root;
                x->path = strdup(lp);
                x->extra = x->trash = true;
                x->cur_exists = rfs_lstat(p->rootfds[root], x->path, &x->cur) == 0;
                if (!p->crashed) {
                        fprintf(out, "conflict: %s/%s: made after the session ended\n", p->roots[root],
                                x->path);
                        p->n_conflicts++;
                }
        }
        if (d)
                closedir(d);
        free(live);
        free(start);
        return r;
}

/* A file that had several names and whose inode fs/ kept reachable in its stash (h<node>). */
static bool has_hlink(const struct rb_plan *p, uint32_t root, const struct nono_node *n)
{
        int fd = n->type == NONO_FT_FILE && n->nlink > 1 ? rb_fs_hlink_entry(p, root, n->id, NULL) : -1;

        if (fd < 0)
                return false;
        close(fd);
        return true;
}

static bool ancestor_moves_back(const struct rb_plan *p, const struct nodemap *m, const struct rb_item *it)
{
        char buf[PATH_MAX];

        snprintf(buf, sizeof buf, "%s", it->path);
        for (char *s; (s = strrchr(buf, '/'));) {
                *s = 0;
                ssize_t a = item_find(p, it->root, buf), ni;
                if (a >= 0 && p->items[a].target && (ni = node_index(m, p->items[a].target)) >= 0 &&
                    m->src[ni] != SIZE_MAX && m->src[ni] != (size_t)a)
                        return true;
        }
        return false;
}

static void stash_name(char *buf, size_t len, char kind, uint64_t v)
{
        snprintf(buf, len, "%c%llu", kind, (unsigned long long)v);
}

struct parent_ref {
        uint32_t root;
        const char *path; /* an item's path; the parent is its first len bytes */
        size_t len;
};

static int cmp_parent_ref(const void *a, const void *b)
{
        const struct parent_ref *x = a, *y = b;
        size_t l = x->len < y->len ? x->len : y->len;
        int c;

        if (x->root != y->root)
                return x->root < y->root ? -1 : 1;
        if ((c = memcmp(x->path, y->path, l)))
                return c;
        return x->len < y->len ? -1 : x->len > y->len;
}

/* The live directory that restore puts back at start path par: par itself, or, when a recorded ancestor
 * moved (it is restored from where its live inode is now), the same path below that live inode (fidelity
 * seed 126 with NONO_TEST_SEEDS=200: e3 moved to g126_7, so untracked e3/e4/e6 is at g126_7/e4/e6). */
static int live_parent_stat(const struct rb_plan *p, const struct nodemap *m, uint32_t root, const char *par,
                            struct stat *st)
{
        char anc[PATH_MAX], live[PATH_MAX * 2];

        if (rfs_lstat(p->rootfds[root], par, st) == 0)
                return 0;
        snprintf(anc, sizeof anc, "%s", par);
        for (char *sl; (sl = strrchr(anc, '/'));) {
                *sl = 0;
                ssize_t a = item_find(p, root, anc), ni;
                if (a < 0 || !p->items[a].target || (ni = node_index(m, p->items[a].target)) < 0 ||
                    m->src[ni] == SIZE_MAX)
                        continue;
                const char *lp = p->items[m->src[ni]].path;
                snprintf(live, sizeof live, "%s%s%s", lp, *lp ? "/" : "", par + strlen(anc) + 1);
                return rfs_lstat(p->rootfds[root], live, st);
        }
        return -ENOENT;
}

/* RB_ROOTTIMES for every distinct untracked parent directory of a recorded item (sorted and deduplicated:
 * a search of the steps for each item made 10,000-file plans quadratic). */
static int add_parent_times(struct rb_plan *p, const struct nodemap *m)
{
        struct parent_ref *v = calloc(p->n_recorded + 1, sizeof *v);
        size_t n = 0;
        int r = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_recorded; i++) {
                const char *path = p->items[i].path, *sl = strrchr(path, '/');
                if (*path)
                        v[n++] = (struct parent_ref){p->items[i].root, path, sl ? (size_t)(sl - path) : 0};
        }
        qsort(v, n, sizeof *v, cmp_parent_ref);
        for (size_t i = 0; i < n && r >= 0; i++) {
                char par[PATH_MAX], t[64];
                struct stat st;
                if (i && !cmp_parent_ref(&v[i - 1], &v[i]))
                        continue;
                snprintf(par, sizeof par, "%.*s", (int)v[i].len, v[i].path);
                ssize_t a = item_find(p, v[i].root, par);
                if (a >= 0 && p->items[a].target)
                        continue; /* restored to its node's times */
                if (live_parent_stat(p, m, v[i].root, par, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                snprintf(t, sizeof t, "%lld %lld", st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec,
                         st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
                r = rb_step_add(p, RB_ROOTTIMES, 0, v[i].root, 0, par, t);
        }
        free(v);
        return r;
}

static int gen_steps(struct rb_plan *p, struct nodemap *m, size_t *order, size_t n)
{
        char nm[32];
        int r = 0;

        /* open up locked directories first, parents before children (items are sorted by path) */
        for (size_t i = 0; i < n && r >= 0; i++) {
                struct rb_item *it = &p->items[i];
                if (it->cur_exists && S_ISDIR(it->cur.st_mode) && (it->cur.st_mode & 0700) != 0700 &&
                    it->cur.st_uid == geteuid() && !it->extra)
                        r = rb_step_add(p, RB_OPENUP, 0, it->root, 0, it->path, NULL);
        }
        r = r < 0 ? r : rb_step_add(p, RB_PHASE, 0, 0, 0, "", NULL);
        for (size_t i = n; i < p->n_items && r >= 0; i++)
                if (p->items[i].trash && p->items[i].cur_exists) {
                        stash_name(nm, sizeof nm, 'x', i);
                        r = rb_step_add(p, RB_STASH, 0, p->items[i].root, 0, p->items[i].path, nm);
                }
        /* detach, deepest first */
        sort_items = p->items;
        qsort(order, n, sizeof *order, cmp_depth_desc);
        for (size_t j = 0; j < n && r >= 0; j++) {
                size_t i = order[j];
                struct rb_item *it = &p->items[i];
                ssize_t ni = m->src_of[i];
                if (!it->cur_exists || !*it->path)
                        continue;
                if (ni >= 0 && m->primary[ni] == i)
                        continue; /* already the right inode in the right place */
                if (ni >= 0)
                        stash_name(nm, sizeof nm, 'n', m->ids[ni]);
                else
                        stash_name(nm, sizeof nm, 'x', i);
                r = rb_step_add(p, RB_STASH, 0, it->root, 0, it->path, nm);
        }
        r = r < 0 ? r : rb_step_add(p, RB_PHASE, 0, 0, 0, "", NULL);
        /* attach, shallowest first */
        qsort(order, n, sizeof *order, cmp_depth_asc);
        for (size_t j = 0; j < n && r >= 0; j++) {
                size_t i = order[j];
                struct rb_item *it = &p->items[i];
                ssize_t ni = it->target ? node_index(m, it->target) : -1;
                if (ni < 0) {
                        /* absent at start; may have come back inside a re-attached directory */
                        if (*it->path) {
                                stash_name(nm, sizeof nm, 'z', i);
                                r = rb_step_add(p, RB_STASH, 0, it->root, 0, it->path, nm);
                        }
                        continue;
                }
                if (m->primary[ni] != i)
                        continue; /* another name of the node: linked below */
                size_t s = m->src[ni];
                if (s == i)
                        r = rb_step_add(p, RB_PLACE, RB_INPLACE, it->root, it->target, it->path, NULL);
                else if (s != SIZE_MAX) {
                        stash_name(nm, sizeof nm, 'n', m->ids[ni]);
                        r = rb_step_add(p, RB_PLACE, RB_FROM_STASH, it->root, it->target, it->path, nm);
                } else if (has_hlink(p, it->root, &m->nodes[ni]))
                        r = rb_step_add(p, RB_PLACE, RB_FROM_FSLINK, it->root, it->target, it->path, NULL);
                else if (m->nodes[ni].type == NONO_FT_FILE && !m->nodes[ni].complete &&
                         ancestor_moves_back(p, m, it))
                        r = rb_step_add(p, RB_PLACE, RB_INPLACE, it->root, it->target, it->path, NULL);
                else
                        r = rb_step_add(p, RB_PLACE, RB_FRESH, it->root, it->target, it->path, NULL);
        }
        for (size_t j = 0; j < n && r >= 0; j++) {
                struct rb_item *it = &p->items[order[j]];
                ssize_t ni = it->target ? node_index(m, it->target) : -1;
                if (ni >= 0 && m->primary[ni] != order[j])
                        r = rb_step_add(p, RB_LINK, 0, it->root, it->target, it->path,
                                        p->items[m->primary[ni]].path);
        }
        /* an inode with other (unrecorded) names that no path gets back: its content, in the stash */
        for (size_t k = 0; k < m->n && r >= 0; k++)
                if (m->primary[k] == SIZE_MAX && m->src[k] != SIZE_MAX && m->nodes[k].type == NONO_FT_FILE &&
                    m->nodes[k].nlink > 1) {
                        const struct rb_item *it = &p->items[m->src[k]];
                        stash_name(nm, sizeof nm, 'n', m->ids[k]);
                        r = rb_step_add(p, RB_REWRITE, 0, it->root, m->ids[k], it->path, nm);
                }
        for (size_t j = 0; j < n && r >= 0; j++) {
                struct rb_item *it = &p->items[order[j]];
                ssize_t ni = it->target ? node_index(m, it->target) : -1;
                if (ni >= 0 && m->primary[ni] == order[j])
                        r = rb_step_add(p, RB_META, 0, it->root, it->target, it->path, NULL);
        }
        for (size_t j = 0; j < n && r >= 0; j++) {
                struct rb_item *it = &p->items[order[j]];
                ssize_t ni = it->target ? node_index(m, it->target) : -1;
                if (ni >= 0 && m->primary[ni] == order[j] && m->nodes[ni].type != NONO_FT_DIR)
                        r = rb_step_add(p, RB_TIMES, 0, it->root, it->target, it->path, NULL);
        }
        r = r < 0 ? r : rb_step_add(p, RB_PHASE, 0, 0, 0, "", NULL);
        for (size_t root = 0; root < p->n_roots && r >= 0; root++)
                if (p->rootfds[root] >= 0)
                        r = rb_step_add(p, RB_CLEAN, 0, root, 0, "", NULL);
        /* directory times last: the stash and every rename above moved them */
        qsort(order, n, sizeof *order, cmp_depth_desc);
        for (size_t j = 0; j < n && r >= 0; j++) {
                struct rb_item *it = &p->items[order[j]];
                ssize_t ni = it->target ? node_index(m, it->target) : -1;
                if (ni >= 0 && m->primary[ni] == order[j] && m->nodes[ni].type == NONO_FT_DIR)
                        r = rb_step_add(p, RB_TIMES, 0, it->root, it->target, it->path, NULL);
        }
        /* directories the session did not change but the restore does (its stash, temporaries renamed into
         * them): put their times back as they were before the restore */
        r = r < 0 ? r : add_parent_times(p, m);
        /* and a root the restore only made its stash in */
        for (size_t root = 0; root < p->n_roots && r >= 0; root++) {
                struct stat st;
                char t[64];
                bool dup = false;
                for (size_t k = 0; k < p->n_steps && !dup; k++)
                        dup =
                            p->steps[k].op == RB_ROOTTIMES && p->steps[k].root == root && !*p->steps[k].path;
                if (dup || item_find(p, root, "") >= 0 || p->rootfds[root] < 0 ||
                    fstat(p->rootfds[root], &st) < 0)
                        continue;
                bool used = false;
                for (size_t i = 0; i < p->n_recorded && !used; i++)
                        used = p->items[i].root == root;
                if (!used)
                        continue;
                snprintf(t, sizeof t, "%lld %lld", st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec,
                         st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
                r = rb_step_add(p, RB_ROOTTIMES, 0, root, 0, "", t);
        }
        return r;
}

/* A file that had more names at the start (node.nlink) than the session recorded, and whose inode the
 * restore cannot reach (no recorded path leads to it now): fs/ finds other names only in directories the
 * session recorded. Restore writes a new file at the recorded names; the unrecorded names keep the inode
 * with whatever the agent left. Said plainly, since nothing else would tell the user. When the inode is
 * reachable it is restored in place, so every name of it, recorded or not, gets the start content. */
static int note_unrecorded_links(const struct rb_plan *p, const struct nodemap *m, FILE *out)
{
        size_t *names = calloc(m->n + 1, sizeof *names);

        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_recorded; i++) {
                ssize_t ni = p->items[i].target ? node_index(m, p->items[i].target) : -1;
                if (ni >= 0)
                        names[ni]++;
        }
        for (size_t k = 0; p->full && k < m->n; k++) {
                const struct nono_node *nd = &m->nodes[k];
                const struct rb_item *it = m->primary[k] != SIZE_MAX ? &p->items[m->primary[k]] : NULL;
                if (nd->type != NONO_FT_FILE || nd->nlink <= names[k] || m->src[k] != SIZE_MAX || !it ||
                    has_hlink(p, it->root, nd))
                        continue;
                fprintf(
                    out,
                    "note: %s/%s had %llu names (hard links) at the session start and the session recorded "
                    "%zu; restore makes it anew there, and its %llu other name(s), in directories the "
                    "session did not change, keep what the agent left and are no longer links of it "
                    "(relink them by hand with `ln -f`)\n",
                    p->roots[it->root], it->path, (unsigned long long)nd->nlink, names[k],
                    (unsigned long long)(nd->nlink - names[k]));
        }
        free(names);
        return 0;
}

/* Where each needed node's live inode is now, and which path gets it first. */
static int find_sources(struct rb_plan *p, struct nodemap *m, const size_t *order_asc, size_t n)
{
        for (size_t pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        struct rb_item *it = &p->items[i];
                        uint64_t id = pass == 0 ? (it->has_post ? it->rec.post_node : 0)
                                                : (!it->has_post ? it->target : 0);
                        ssize_t ni = id ? node_index(m, id) : -1;
                        /* pass 0: the post-image names the node; pass 1 (a crashed session has no
                         * post-images): the object at its own start path, if of the same type */
                        if (ni < 0 || m->src[ni] != SIZE_MAX || !it->cur_exists ||
                            ftype_of(it->cur.st_mode) != m->nodes[ni].type)
                                continue;
                        m->src[ni] = i;
                }
        m->src_of = malloc((n + 1) * sizeof *m->src_of);
        if (!m->src_of)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                m->src_of[i] = -1;
        for (size_t k = 0; k < m->n; k++)
                if (m->src[k] != SIZE_MAX)
                        m->src_of[m->src[k]] = k;
        for (size_t j = 0; j < n; j++) {
                size_t i = order_asc[j];
                ssize_t ni = p->items[i].target ? node_index(m, p->items[i].target) : -1;
                if (ni >= 0 && m->primary[ni] == SIZE_MAX)
                        m->primary[ni] = i;
        }
        /* prefer keeping a live inode where it already belongs */
        for (size_t k = 0; k < m->n; k++) {
                size_t s = m->src[k];
                if (s != SIZE_MAX && p->items[s].target == m->ids[k])
                        m->primary[k] = s;
        }
        for (size_t k = 0; k < m->n; k++) {
                const struct nono_node *nd = &m->nodes[k];
                size_t pi = m->primary[k];
                if (pi == SIZE_MAX || nd->type != NONO_FT_FILE || nd->complete || m->src[k] != SIZE_MAX ||
                    !nd->size || ancestor_moves_back(p, m, &p->items[pi]) ||
                    has_hlink(p, p->items[pi].root, nd))
                        continue;
                int e = rb_fs_stash_entry(p, p->items[pi].root, m->ids[k]);
                if (e >= 0) {
                        close(e);
                        continue;
                }
                rb_set_err("cannot restore %s/%s: the session kept only %zu changed block(s) of it and the "
                           "file itself is gone; restore the rest from a backup",
                           p->roots[p->items[pi].root], p->items[pi].path, nd->n_chunks);
                return -ENODATA;
        }
        return 0;
}

int rb_plan_build(nono_store *st, const struct nono_session *s, const struct nono_restore_opts *o,
                  struct rb_plan *p, FILE *out)
{
        struct nono_path_rec *recs = NULL;
        struct nodemap m = {0};
        size_t n = 0, cap, *order = NULL;
        int r;

        r = nono_path_list(st, s->id, &recs, &n);
        if (r < 0) {
                rb_set_err("cannot read the changes of session %s: %s", s->id, nono_store_errmsg());
                return r;
        }
        p->crashed = s->state == NONO_SESSION_CRASHED || !s->end_ns;
        r = select_items(p, o, recs, n);
        nono_path_list_free(recs, n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n_items; i++) {
                struct rb_item *it = &p->items[i];
                int fd = it->root < p->n_roots ? p->rootfds[it->root] : -1;
                if (fd < 0) {
                        rb_set_err(
                            "%s, where session %s made changes, is gone: recreate the directory (empty) to "
                            "restore into it",
                            it->root < p->n_roots ? p->roots[it->root] : "a root", s->id);
                        return -ENOENT;
                }
                it->cur_exists = rfs_lstat(fd, it->path, &it->cur) == 0;
        }
        r = rb_locate_moved(st, p);
        if (r >= 0)
                r = load_nodes(st, p, &m);
        if (r < 0)
                goto out;
        n = p->n_items;
        order = malloc((n + 1) * sizeof *order);
        if (!order) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                order[i] = i;
        sort_items = p->items;
        qsort(order, n, sizeof *order, cmp_depth_asc);
        r = find_sources(p, &m, order, n);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n; i++)
                p->n_conflicts += check_conflict(p, &p->items[i], &m, out);
        r = note_unrecorded_links(p, &m, out);
        if (r < 0)
                goto out;
        /* extras: directories that go to the trash and hold unrecorded names */
        cap = n + 1;
        for (size_t i = 0; i < n && r >= 0; i++) {
                struct rb_item *it = &p->items[i];
                bool is_src = m.src_of[i] >= 0;
                /* unchanged since the session (its mtime is the one the session left): all its content is
                 * the session's, moved in with the directory; anything else is someone's later work. A
                 * crashed session left no end state to compare with (fs/ records no names inside a
                 * directory it created): its content is taken as the session's, as in add_new_names() */
                int64_t mt = it->cur.st_mtim.tv_sec * 1000000000LL + it->cur.st_mtim.tv_nsec;
                bool report = !p->crashed && !(it->has_post && it->rec.post_type == NONO_FT_DIR &&
                                               it->rec.post_mtime_ns == mt);
                if (it->cur_exists && S_ISDIR(it->cur.st_mode) && !is_src && *it->path)
                        r = add_extras(p, i, &cap, out, report);
        }
        for (size_t i = 0; i < n && r >= 0; i++)
                r = add_new_names(p, &m, i, &cap, out);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < p->n_items; i++)
                p->items[i].k = p->items[i].cur_exists ? i + 1 : 0;
        r = gen_steps(p, &m, order, n);
out:
        free(order);
        nodemap_free(&m);
        return r;
}

void rb_plan_print(const struct rb_plan *p, FILE *out)
{
        for (size_t i = 0; i < p->n_items; i++) {
                const struct rb_item *it = &p->items[i];
                const char *what = it->extra                       ? "remove (not recorded)"
                                   : !it->target && it->cur_exists ? "remove"
                                   : !it->target                   ? NULL
                                   : it->cur_exists                ? "restore"
                                                                   : "recreate";
                if (what)
                        fprintf(out, "%-9s %s%s%s\n", what, p->roots[it->root], *it->path ? "/" : "",
                                it->path);
        }
}
