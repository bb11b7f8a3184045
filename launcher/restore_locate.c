/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_locate.c - finds where a crashed session left the nodes its interim post-images name.
 *
 * fs/ writes an interim post-image when a rename moves a node, at the target's *start* path: the start
 * path of the target's parent directory plus the new name. When that parent had itself been moved, the
 * record path leads nowhere in the live tree (crash seed 8: e6 moved to g8_1, e6/e15 moved to g8_3, then
 * g8_1 moved into g8_3 as g8_5: the record says e6/e15/g8_5, the directory is at g8_3/g8_5). A finished
 * session has final post-images at live paths; a crashed one has only these, and a directory that is not
 * found is rebuilt from the store without its untouched entries.
 *
 * So, for a crashed session, every post-image path that does not exist is translated through the live
 * location of its parent: the node that was at the parent's start path, found where a post-image that
 * exists says it is (or, recursively, by translating the parent's own parent). A translated path that
 * exists becomes an item of its own (absent at the start, the node as its post-image), so the planner
 * finds the node there like any other live inode. The same holds for a recorded directory that has no
 * post-image because it only moved with its parent (crash seed 9: e4/e5/e18 is at e6/e12/g9_6/e18): found,
 * its names that were not there at the start and have no record (the crashed session's last creations)
 * are removed like those of any other directory; not found, they came back with it. Nothing here changes
 * the tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/restore_fs.h"
#include "launcher/restore_int.h"

static int cmp_item(const void *a, const void *b)
{
        const struct rb_item *x = a, *y = b;
        if (x->root != y->root)
                return x->root < y->root ? -1 : 1;
        return strcmp(x->path, y->path);
}

static struct rb_item *find(const struct rb_plan *p, uint32_t root, const char *path)
{
        struct rb_item key = {.root = root, .path = (char *)path};
        return bsearch(&key, p->items, p->n_items, sizeof key, cmp_item);
}

/* The live path of the node that was at start path dir (NULL-terminated in out), or false. */
static bool live_dir(const struct rb_plan *p, uint32_t root, const char *dir, char *out, size_t len,
                     int depth)
{
        const struct rb_item *d = find(p, root, dir);

        if (!*dir) {
                *out = 0;
                return true;
        }
        if (depth > 64)
                return false;
        if (d && d->target) {
                /* where a post-image that exists says this node is */
                for (size_t i = 0; i < p->n_items; i++) {
                        const struct rb_item *it = &p->items[i];
                        if (it->root == root && it->has_post && it->rec.post_node == d->target &&
                            it->cur_exists && S_ISDIR(it->cur.st_mode)) {
                                snprintf(out, len, "%s", it->path);
                                return true;
                        }
                }
        }
        /* not moved itself (or not known): its parent may have been */
        const char *sl = strrchr(dir, '/');
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", sl ? (int)(sl - dir) : 0, dir);
        if (!live_dir(p, root, parent, out, len, depth + 1))
                return false;
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s%s", l ? "/" : "", sl ? sl + 1 : dir);
        return true;
}

static int add_item(struct rb_plan *p, size_t idx, const char *live, const struct stat *st, uint64_t node)
{
        struct rb_item *nv = realloc(p->items, (p->n_items + 2) * sizeof *nv);
        if (!nv)
                return -ENOMEM;
        p->items = nv;
        const struct rb_item *from = &p->items[idx];
        struct rb_item *x = &p->items[p->n_items];
        memset(x, 0, sizeof *x);
        x->root = from->root;
        x->path = strdup(live);
        if (!x->path)
                return -ENOMEM;
        x->has_post = true;
        if (from->has_post) {
                x->rec = from->rec;
                x->rec.post_link_target =
                    from->rec.post_link_target ? strdup(from->rec.post_link_target) : NULL;
        } else {
                x->rec.has_post = true;
                x->rec.post_type = nono_ftype_from_mode(st->st_mode);
                x->rec.post_node = node;
        }
        x->rec.post_type = nono_ftype_from_mode(st->st_mode);
        x->rec.post_node = node;
        x->rec.root = x->root;
        x->rec.path = x->path;
        x->rec.pre_node = 0;
        x->cur_exists = true;
        x->cur = *st;
        p->n_items++;
        return 0;
}

/* Some item that exists now says it holds node (a post-image): it is not lost. */
static bool node_located(const struct rb_plan *p, uint32_t root, uint64_t node)
{
        for (size_t i = 0; i < p->n_items; i++)
                if (p->items[i].root == root && p->items[i].has_post && p->items[i].rec.post_node == node &&
                    p->items[i].cur_exists)
                        return true;
        return false;
}

/* The node item i should be found at, when its path leads nowhere: the node its interim post-image names,
 * or (no post-image: a directory that moved only with its parent) the node it had at the start, if that
 * was a directory. 0: none. */
static uint64_t wanted_node(nono_store *st, const struct rb_plan *p, const struct rb_item *it)
{
        struct nono_node n = {0};
        bool dir;

        if (it->cur_exists || !strchr(it->path, '/'))
                return 0;
        if (it->has_post)
                return it->rec.post_node;
        if (!it->target || node_located(p, it->root, it->target) ||
            nono_node_get(st, p->session, it->target, &n) < 0)
                return 0;
        dir = n.type == NONO_FT_DIR;
        nono_node_clear(&n);
        return dir ? it->target : 0;
}

static bool in_list(char *const *v, const char *name)
{
        for (; v && *v; v++)
                if (!strcmp(*v, name))
                        return true;
        return false;
}

/* Does the live directory at live look like node n (start path start) after the session? Every live name
 * is a start entry or a name the session recorded there, every start entry is live or recorded, and at
 * least one untouched start entry is there (an empty or wholly rewritten directory proves nothing). */
static bool looks_like(const struct rb_plan *p, uint32_t root, const char *start, const struct nono_node *n,
                       const char *live)
{
        _cleanup_close_ int o = rfs_open_path(p->rootfds[root], live);
        int dfd = o >= 0 ? openat(o, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;
        char child[PATH_MAX];
        size_t kept = 0, seen = 0;
        bool ok = d != NULL;

        if (!d && dfd >= 0)
                close(dfd);
        while (ok && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                snprintf(child, sizeof child, "%s/%s", start, de->d_name);
                bool rec = find(p, root, child) != NULL, was = in_list(n->entries, de->d_name);
                ok = rec || was;
                kept += was && !rec;
                seen += was;
        }
        if (d)
                closedir(d);
        for (char *const *e = n->entries; ok && e && *e; e++) {
                snprintf(child, sizeof child, "%s/%s", start, *e);
                /* a start entry that is gone must have a record (the session removed or moved it) */
                ok = find(p, root, child) != NULL || seen-- > 0;
        }
        return ok && kept > 0;
}

/* Directories below live (a directory the session created) that look like node n; at most *budget
 * directories are read. Returns how many matched; the first is copied to out. */
static size_t search_created(const struct rb_plan *p, uint32_t root, const char *live, const char *start,
                             const struct nono_node *n, char *out, size_t len, size_t *budget, int depth)
{
        _cleanup_close_ int o = rfs_open_path(p->rootfds[root], live);
        int dfd = o >= 0 ? openat(o, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;
        size_t hits = 0;

        if (!d) {
                if (dfd >= 0)
                        close(dfd);
                return 0;
        }
        while (depth < 32 && *budget > 0 && (de = readdir(d))) {
                char child[PATH_MAX];
                struct stat sb;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || de->d_type != DT_DIR)
                        continue;
                snprintf(child, sizeof child, "%s/%s", live, de->d_name);
                if (rfs_lstat(p->rootfds[root], child, &sb) < 0 || !S_ISDIR(sb.st_mode))
                        continue;
                (*budget)--;
                if (looks_like(p, root, start, n, child)) {
                        if (!hits++)
                                snprintf(out, len, "%s", child);
                } else {
                        char sub[PATH_MAX];
                        size_t h =
                            search_created(p, root, child, start, n, sub, sizeof sub, budget, depth + 1);
                        if (h && !hits)
                                snprintf(out, len, "%s", sub);
                        hits += h;
                }
        }
        closedir(d);
        return hits;
}

/* A crashed session moved a recorded directory into a directory it had created: fs/ records no names
 * inside such a directory (so no post-image says where it went) and writes no locators before the end
 * (crash seed 33: e8 moved to e2/g33_4/g33_5, g33_4 made by the session). Look for it below the
 * directories the session created, by its names (looks_like); only an unambiguous match counts. */
static int locate_in_created(nono_store *st, struct rb_plan *p)
{
        size_t budget = 4096; /* directories read in all: a bounded search, not a walk of the tree */
        int r = 0;

        for (size_t i = 0; i < p->n_items && r >= 0 && budget; i++) {
                struct rb_item *it = &p->items[i];
                struct nono_node n = {0};
                char found[PATH_MAX] = "";
                size_t hits = 0;
                struct stat sb;
                if (it->cur_exists || !it->target || !*it->path || node_located(p, it->root, it->target) ||
                    nono_node_get(st, p->session, it->target, &n) < 0)
                        continue;
                for (size_t j = 0; n.type == NONO_FT_DIR && j < p->n_items && budget; j++) {
                        const struct rb_item *c = &p->items[j];
                        char sub[PATH_MAX];
                        if (c->root != it->root || c->target || !c->cur_exists || !S_ISDIR(c->cur.st_mode))
                                continue;
                        size_t h =
                            search_created(p, it->root, c->path, it->path, &n, sub, sizeof sub, &budget, 0);
                        if (h && !hits)
                                snprintf(found, sizeof found, "%s", sub);
                        hits += h;
                }
                nono_node_clear(&n);
                if (hits != 1 || find(p, it->root, found) || rfs_lstat(p->rootfds[it->root], found, &sb) < 0)
                        continue;
                r = add_item(p, i, found, &sb, it->target);
                qsort(p->items, p->n_items, sizeof *p->items, cmp_item);
                p->n_recorded = p->n_items;
                i = (size_t)-1; /* indices moved: scan again (each node is located once) */
        }
        return r;
}

int rb_locate_moved(nono_store *st, struct rb_plan *p)
{
        bool added = true;
        int r = 0;

        if (!p->crashed || p->n_items != p->n_recorded)
                return 0;
        /* each addition re-sorts the items, so the scan starts again; bounded by the records */
        for (size_t rounds = p->n_recorded; added && rounds > 0 && r >= 0; rounds--) {
                size_t n = p->n_items;
                added = false;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        struct rb_item *it = &p->items[i];
                        char dir[PATH_MAX], live[PATH_MAX];
                        const char *sl = strrchr(it->path, '/');
                        uint64_t node = wanted_node(st, p, it);
                        struct stat sb;
                        if (!node)
                                continue;
                        snprintf(dir, sizeof dir, "%.*s", (int)(sl - it->path), it->path);
                        if (!live_dir(p, it->root, dir, live, sizeof live, 0) || !strcmp(live, dir))
                                continue;
                        size_t l = strlen(live);
                        snprintf(live + l, sizeof live - l, "%s%s", l ? "/" : "", sl + 1);
                        if (find(p, it->root, live) || rfs_lstat(p->rootfds[it->root], live, &sb) < 0 ||
                            (it->has_post && nono_ftype_from_mode(sb.st_mode) != it->rec.post_type) ||
                            (!it->has_post && !S_ISDIR(sb.st_mode)))
                                continue;
                        r = add_item(p, i, live, &sb, node);
                        added = r >= 0;
                        /* keep items sorted for find() */
                        qsort(p->items, p->n_items, sizeof *p->items, cmp_item);
                        p->n_recorded = p->n_items;
                        break; /* indices moved: start the pass again */
                }
        }
        return r < 0 ? r : locate_in_created(st, p);
}
