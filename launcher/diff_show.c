/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diff_show.c - a session's changes from its path records (contract in diff_show.h). The "before" side comes
 * from the store (whole pre-images, or the captured blocks over the live file when only blocks were kept);
 * the "after" side is the live file, used only when it still has the content the session left (its object
 * id equals the post-image digest) - otherwise the diff says so instead of showing something else.
 */
#include "launcher/diff_show.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/diff.h"
#include "launcher/restore_fs.h"

#define MAX_DIFF_BYTES (16u << 20)

static bool post_exists(const struct nono_path_rec *r)
{
        return r->has_post && r->post_type != NONO_FT_ABSENT;
}

static bool selected(const struct nono_path_rec *r, const uint32_t *sr, char *const *sp, size_t n)
{
        if (!n)
                return true;
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(sp[i]);
                if (r->root == sr[i] &&
                    (!l || (!strncmp(r->path, sp[i], l) && (!r->path[l] || r->path[l] == '/'))))
                        return true;
        }
        return false;
}

int nono_changes_load(nono_store *st, const char *session, const uint32_t *sel_root, char *const *sel_rel,
                      size_t n_sel, struct nono_changes *c)
{
        bool *used;
        int r;

        memset(c, 0, sizeof *c);
        r = nono_path_list(st, session, &c->recs, &c->n_recs);
        if (r < 0)
                return r;
        c->v = calloc(c->n_recs + 1, sizeof *c->v);
        used = calloc(c->n_recs + 1, 1);
        if (!c->v || !used) {
                free(used);
                return -ENOMEM;
        }
        /* renames: the node that was at A ended at B, A is empty now and B was empty at the start */
        for (size_t a = 0; a < c->n_recs; a++) {
                const struct nono_path_rec *ra = &c->recs[a];
                if (!ra->pre_node || post_exists(ra) || !ra->has_post)
                        continue;
                for (size_t b = 0; b < c->n_recs; b++) {
                        const struct nono_path_rec *rb = &c->recs[b];
                        if (b == a || used[b] || rb->pre_node || rb->post_node != ra->pre_node ||
                            !post_exists(rb) || rb->root != ra->root)
                                continue;
                        if (selected(rb, sel_root, sel_rel, n_sel) || selected(ra, sel_root, sel_rel, n_sel))
                                c->v[c->n++] = (struct nono_change){
                                    NONO_CH_RENAMED, rb->root, rb->path, ra->path, rb, ra, ra->pre_node};
                        used[a] = used[b] = true;
                        c->renamed++;
                        break;
                }
        }
        for (size_t i = 0; i < c->n_recs; i++) {
                const struct nono_path_rec *ri = &c->recs[i];
                enum nono_change_kind k;
                if (used[i] || !selected(ri, sel_root, sel_rel, n_sel))
                        continue;
                if (!ri->pre_node && !post_exists(ri)) {
                        if (ri->has_post)
                                continue; /* made and removed within the session */
                        k = NONO_CH_CREATED;
                } else if (!ri->pre_node)
                        k = NONO_CH_CREATED;
                else if (ri->has_post && !post_exists(ri))
                        k = NONO_CH_DELETED;
                else {
                        if (ri->has_post && ri->post_type == NONO_FT_DIR) {
                                struct nono_node n = {0};
                                bool same = nono_node_get(st, session, ri->pre_node, &n) == 0 &&
                                            n.type == NONO_FT_DIR && n.mode == ri->post_mode;
                                nono_node_clear(&n);
                                if (same)
                                        continue; /* a directory whose entries changed: its entries say it */
                        }
                        k = NONO_CH_MODIFIED;
                }
                c->v[c->n++] = (struct nono_change){k, ri->root, ri->path, NULL, ri, NULL, ri->pre_node};
                if (k == NONO_CH_CREATED)
                        c->created++;
                else if (k == NONO_CH_DELETED)
                        c->deleted++;
                else
                        c->modified++;
        }
        free(used);
        return 0;
}

void nono_changes_free(struct nono_changes *c)
{
        nono_path_list_free(c->recs, c->n_recs);
        free(c->v);
        memset(c, 0, sizeof *c);
}

static const char *type_name(uint32_t t)
{
        static const char *n[] = {"absent", "file", "dir", "symlink", "fifo", "socket"};
        return t < 6 ? n[t] : "?";
}

struct showctx {
        nono_store *st;
        const struct nono_session *s;
        const struct nono_changes *c;
        int *rootfds;
        size_t n_roots;
};

static char *display(const struct showctx *x, uint32_t root, const char *path)
{
        char *d = NULL;
        const char *r = root < x->n_roots ? x->s->roots[root] : "?";

        if (x->n_roots > 1)
                asprintf(&d, "%s%s%s", r + (*r == '/'), *path ? "/" : "", path);
        else
                d = strdup(*path ? path : ".");
        return d;
}

/* Reads the live file at path when its content is what the session left (digest), else NULL. */
static void *read_live(const struct showctx *x, uint32_t root, const char *path, const nono_digest *want,
                       size_t *len, const char **why)
{
        _cleanup_close_ int o = -1, fd = -1;
        nono_digest d;
        uint64_t sz;
        struct stat st;
        void *buf;

        o = root < x->n_roots && x->rootfds[root] >= 0 ? rfs_open_path(x->rootfds[root], path) : -ENOENT;
        if (o < 0 || fstat(o, &st) < 0 || !S_ISREG(st.st_mode)) {
                if (want && nono_object_get_buf(x->st, want, &buf, len) == 0)
                        return buf;
                *why = "the file is gone since the session ended";
                return NULL;
        }
        if ((uint64_t)st.st_size > MAX_DIFF_BYTES) {
                *why = "larger than 16 MiB";
                return NULL;
        }
        fd = rfs_open_read(o);
        if (fd < 0 || (want && (nono_object_id_fd(fd, &d, &sz) < 0 || memcmp(d.b, want->b, 32)))) {
                /* changed since: fs/ stores post-image contents, so the store may still have it */
                if (want && nono_object_get_buf(x->st, want, &buf, len) == 0)
                        return buf;
                *why = fd < 0 ? "unreadable" : "the file changed after the session ended";
                return NULL;
        }
        buf = malloc(st.st_size + 1);
        if (!buf)
                return NULL;
        *len = pread(fd, buf, st.st_size, 0) == st.st_size ? (size_t)st.st_size : 0;
        return buf;
}

static const struct nono_path_rec *post_of_node(const struct nono_changes *c, uint64_t node)
{
        for (size_t i = 0; i < c->n_recs; i++)
                if (c->recs[i].post_node == node && post_exists(&c->recs[i]))
                        return &c->recs[i];
        return NULL;
}

static void *before_content(const struct showctx *x, const struct nono_node *n, size_t *len, const char **why)
{
        void *buf = NULL;

        if (n->type == NONO_FT_SYMLINK) {
                *len = n->link_target ? strlen(n->link_target) : 0;
                return strdup(n->link_target ? n->link_target : "");
        }
        if (n->size > MAX_DIFF_BYTES) {
                *why = "larger than 16 MiB";
                return NULL;
        }
        if (n->complete) {
                if (nono_object_get_buf(x->st, &n->object, &buf, len) < 0)
                        *why = "the pre-image is missing from the store (see nono rollback verify)";
                return buf;
        }
        /* blocks only: the live file (where the session left this node) with the kept blocks over it */
        const struct nono_path_rec *live = post_of_node(x->c, n->id);
        if (!live) {
                *why = "only changed blocks were kept and the file is gone";
                return NULL;
        }
        buf =
            read_live(x, live->root, live->path, live->post_has_digest ? &live->post_digest : NULL, len, why);
        if (!buf)
                return NULL;
        char *b = realloc(buf, n->size + 1);
        if (!b) {
                free(buf);
                return NULL;
        }
        if (n->size > *len)
                memset(b + *len, 0, n->size - *len);
        for (size_t i = 0; i < n->n_chunks; i++) {
                size_t cl = 0;
                uint64_t off = n->chunks[i].index * NONO_CHUNK_SIZE;
                char tmp[NONO_CHUNK_SIZE];
                if (off >= n->size || nono_chunk_get(x->st, &n->chunks[i].digest, tmp, sizeof tmp, &cl) < 0)
                        continue;
                memcpy(b + off, tmp, off + cl > n->size ? n->size - off : cl);
        }
        *len = n->size;
        return b;
}

static int diff_one(const struct showctx *x, const struct nono_change *ch, bool color, FILE *out,
                    enum nono_show_mode m, size_t *adds, size_t *dels, bool *bin)
{
        struct nono_node n = {0};
        struct nono_diff_side a = {0}, b = {0};
        void *ab = NULL, *bb = NULL;
        char *ap = display(x, ch->root, ch->from ? ch->from : ch->path), *bp = display(x, ch->root, ch->path);
        const struct nono_path_rec *r = ch->rec;
        int rc = 0;

        a.path = ap;
        b.path = bp;
        if (ch->pre_node && nono_node_get(x->st, x->s->id, ch->pre_node, &n) == 0) {
                a.exists = true;
                a.type = n.type;
                a.mode = n.mode;
                if (n.type == NONO_FT_FILE || n.type == NONO_FT_SYMLINK)
                        a.data = ab = before_content(x, &n, &a.len, &a.missing);
        }
        if (post_exists(r) || !r->has_post) {
                struct stat st;
                b.exists = r->has_post ||
                           (x->rootfds[ch->root] >= 0 && rfs_lstat(x->rootfds[ch->root], r->path, &st) == 0);
                b.type = r->has_post ? r->post_type : NONO_FT_FILE;
                b.mode = r->post_mode;
                if (!r->has_post && b.exists) {
                        b.type = S_ISDIR(st.st_mode)   ? NONO_FT_DIR
                                 : S_ISLNK(st.st_mode) ? NONO_FT_SYMLINK
                                                       : NONO_FT_FILE;
                        b.mode = st.st_mode & 07777;
                }
                if (b.exists && b.type == NONO_FT_SYMLINK && r->post_link_target) {
                        b.data = r->post_link_target;
                        b.len = strlen(r->post_link_target);
                } else if (b.exists && b.type == NONO_FT_FILE)
                        b.data = bb =
                            read_live(x, ch->root, r->path, r->post_has_digest ? &r->post_digest : NULL,
                                      &b.len, &b.missing);
        }
        if (m == NONO_SHOW_DIFF)
                rc = nono_diff_print(out, &a, &b, color, adds, dels, bin);
        else
                rc = nono_diff_count(&a, &b, adds, dels, bin);
        free(ab);
        free(bb);
        free(ap);
        free(bp);
        nono_node_clear(&n);
        return rc;
}

static cJSON *side_json(const struct showctx *x, uint64_t node, const struct nono_path_rec *r)
{
        cJSON *j = cJSON_CreateObject();
        char mode[8], hex[65];

        if (node) {
                struct nono_node n = {0};
                if (nono_node_get(x->st, x->s->id, node, &n) == 0) {
                        cJSON_AddStringToObject(j, "type", type_name(n.type));
                        snprintf(mode, sizeof mode, "%04o", n.mode);
                        cJSON_AddStringToObject(j, "mode", mode);
                        cJSON_AddNumberToObject(j, "size", (double)n.size);
                        if (n.link_target)
                                cJSON_AddStringToObject(j, "target", n.link_target);
                        if (n.complete) {
                                nono_digest_hex(&n.object, hex);
                                cJSON_AddStringToObject(j, "object", hex);
                        }
                }
                nono_node_clear(&n);
                return j;
        }
        if (!r || !post_exists(r)) {
                cJSON_AddStringToObject(j, "type", r && !r->has_post ? "unknown" : "absent");
                return j;
        }
        cJSON_AddStringToObject(j, "type", type_name(r->post_type));
        snprintf(mode, sizeof mode, "%04o", r->post_mode);
        cJSON_AddStringToObject(j, "mode", mode);
        cJSON_AddNumberToObject(j, "size", (double)r->post_size);
        if (r->post_link_target)
                cJSON_AddStringToObject(j, "target", r->post_link_target);
        if (r->post_has_digest) {
                nono_digest_hex(&r->post_digest, hex);
                cJSON_AddStringToObject(j, "object", hex);
        }
        return j;
}

static const char *kind_name(enum nono_change_kind k)
{
        static const char *n[] = {"created", "deleted", "modified", "renamed"};
        return n[k];
}

static int show_json(const struct showctx *x, FILE *out)
{
        cJSON *j = cJSON_CreateObject(), *arr, *sum;
        char *txt;

        cJSON_AddStringToObject(j, "session", x->s->id);
        arr = cJSON_AddArrayToObject(j, "roots");
        for (size_t i = 0; i < x->n_roots; i++)
                cJSON_AddItemToArray(arr, cJSON_CreateString(x->s->roots[i]));
        arr = cJSON_AddArrayToObject(j, "changes");
        for (size_t i = 0; i < x->c->n; i++) {
                const struct nono_change *ch = &x->c->v[i];
                cJSON *o = cJSON_CreateObject();
                size_t ad = 0, de = 0;
                bool bin = false;
                cJSON_AddStringToObject(o, "change", kind_name(ch->kind));
                cJSON_AddNumberToObject(o, "root", ch->root);
                cJSON_AddStringToObject(o, "path", ch->path);
                if (ch->from)
                        cJSON_AddStringToObject(o, "from", ch->from);
                cJSON_AddItemToObject(o, "before", side_json(x, ch->pre_node, NULL));
                cJSON_AddItemToObject(o, "after", side_json(x, 0, ch->rec));
                if (diff_one(x, ch, false, NULL, NONO_SHOW_STAT, &ad, &de, &bin) == 0) {
                        cJSON_AddNumberToObject(o, "insertions", (double)ad);
                        cJSON_AddNumberToObject(o, "deletions", (double)de);
                        cJSON_AddBoolToObject(o, "binary", bin);
                }
                cJSON_AddItemToArray(arr, o);
        }
        sum = cJSON_AddObjectToObject(j, "summary");
        cJSON_AddNumberToObject(sum, "created", (double)x->c->created);
        cJSON_AddNumberToObject(sum, "modified", (double)x->c->modified);
        cJSON_AddNumberToObject(sum, "deleted", (double)x->c->deleted);
        cJSON_AddNumberToObject(sum, "renamed", (double)x->c->renamed);
        txt = cJSON_Print(j);
        cJSON_Delete(j);
        if (!txt)
                return -ENOMEM;
        fprintf(out, "%s\n", txt);
        free(txt);
        return 0;
}

static void show_stat(const struct showctx *x, bool color, FILE *out)
{
        size_t tot_a = 0, tot_d = 0, width = 0;
        char **names = calloc(x->c->n + 1, sizeof *names);

        for (size_t i = 0; names && i < x->c->n; i++) {
                const struct nono_change *ch = &x->c->v[i];
                char *p = display(x, ch->root, ch->path);
                if (ch->from) {
                        char *f = display(x, ch->root, ch->from);
                        asprintf(&names[i], "%s => %s", f, p);
                        free(f);
                        free(p);
                } else
                        names[i] = p;
                if (names[i] && strlen(names[i]) > width)
                        width = strlen(names[i]);
        }
        for (size_t i = 0; names && i < x->c->n; i++) {
                size_t ad = 0, de = 0;
                bool bin = false;
                diff_one(x, &x->c->v[i], false, NULL, NONO_SHOW_STAT, &ad, &de, &bin);
                tot_a += ad;
                tot_d += de;
                fprintf(out, " %-*s | ", (int)width, names[i] ? names[i] : "?");
                if (bin) {
                        fputs("Bin\n", out);
                        continue;
                }
                fprintf(out, "%zu ", ad + de);
                size_t scale = ad + de > 50 ? (ad + de + 49) / 50 : 1;
                if (color)
                        fputs("\033[32m", out);
                for (size_t k = 0; k < (ad + scale - 1) / scale; k++)
                        fputc('+', out);
                if (color)
                        fputs("\033[m\033[31m", out);
                for (size_t k = 0; k < (de + scale - 1) / scale; k++)
                        fputc('-', out);
                fputs(color ? "\033[m\n" : "\n", out);
                free(names[i]);
        }
        free(names);
        fprintf(out, " %zu file%s changed, %zu insertion%s(+), %zu deletion%s(-)\n", x->c->n,
                x->c->n == 1 ? "" : "s", tot_a, tot_a == 1 ? "" : "s", tot_d, tot_d == 1 ? "" : "s");
}

int nono_show(nono_store *st, const struct nono_session *s, const struct nono_changes *c,
              enum nono_show_mode m, bool color, FILE *out)
{
        struct showctx x = {.st = st, .s = s, .c = c};
        int r = 0;

        for (x.n_roots = 0; s->roots && s->roots[x.n_roots]; x.n_roots++)
                ;
        x.rootfds = calloc(x.n_roots + 1, sizeof *x.rootfds);
        if (!x.rootfds)
                return -ENOMEM;
        for (size_t i = 0; i < x.n_roots; i++)
                x.rootfds[i] = open(s->roots[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        switch (m) {
        case NONO_SHOW_JSON:
                r = show_json(&x, out);
                break;
        case NONO_SHOW_STAT:
                show_stat(&x, color, out);
                break;
        case NONO_SHOW_DIFF:
                for (size_t i = 0; i < c->n && r >= 0; i++)
                        r = diff_one(&x, &c->v[i], color, out, m, NULL, NULL, NULL);
                break;
        case NONO_SHOW_NAMES:
                for (size_t i = 0; i < c->n; i++) {
                        const struct nono_change *ch = &c->v[i];
                        char *p = display(&x, ch->root, ch->path),
                             *f = ch->from ? display(&x, ch->root, ch->from) : NULL;
                        static const char code[] = "ADMR";
                        if (f)
                                fprintf(out, "%c\t%s -> %s\n", code[ch->kind], f, p);
                        else
                                fprintf(out, "%c\t%s\n", code[ch->kind], p);
                        free(p);
                        free(f);
                }
                break;
        }
        for (size_t i = 0; i < x.n_roots; i++)
                if (x.rootfds[i] >= 0)
                        close(x.rootfds[i]);
        free(x.rootfds);
        return r;
}
