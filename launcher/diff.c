/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diff.c - unified diffs of one path (contract in diff.h). The diff algorithm, binary detection and hunk
 * building are libgit2's (git_patch_from_buffers): a well-kept implementation that produces exactly what
 * `git diff` users read, instead of a home-made one. Headers are written here because nono's "files"
 * carry a type and a real mode that a git blob does not.
 */
#include "launcher/diff.h"

#include <errno.h>
#include <git2.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"

#define C_META  "\033[1m"
#define C_FRAG  "\033[36m"
#define C_OLD   "\033[31m"
#define C_NEW   "\033[32m"
#define C_RESET "\033[m"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void init_git(void)
{
        git_libgit2_init();
}

static unsigned git_mode(uint32_t type, uint32_t mode)
{
        switch (type) {
        case NONO_FT_DIR:
                return S_IFDIR | mode;
        case NONO_FT_SYMLINK:
                return 0120000;
        case NONO_FT_FIFO:
                return S_IFIFO | mode;
        case NONO_FT_SOCK:
                return S_IFSOCK | mode;
        default:
                return S_IFREG | mode;
        }
}

static bool has_data(const struct nono_diff_side *s)
{
        return s->exists && (s->type == NONO_FT_FILE || s->type == NONO_FT_SYMLINK);
}

static int make_patch(const struct nono_diff_side *a, const struct nono_diff_side *b, git_patch **p)
{
        git_diff_options o;
        const void *ad = has_data(a) ? a->data : NULL, *bd = has_data(b) ? b->data : NULL;

        pthread_once(&once, init_git);
        git_diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION);
        o.context_lines = 3;
        return git_patch_from_buffers(p, ad ? ad : "", ad ? a->len : 0, a->path, bd ? bd : "",
                                      bd ? b->len : 0, b->path, &o) < 0
                   ? -EIO
                   : 0;
}

int nono_diff_count(const struct nono_diff_side *a, const struct nono_diff_side *b, size_t *adds,
                    size_t *dels, bool *binary)
{
        git_patch *p = NULL;
        size_t ctx = 0, ad = 0, de = 0;
        int r;

        *binary = false;
        if ((has_data(a) && !a->data) || (has_data(b) && !b->data)) {
                *adds = *dels = 0;
                return 0;
        }
        r = make_patch(a, b, &p);
        if (r < 0)
                return r;
        *binary = git_patch_get_delta(p)->flags & GIT_DIFF_FLAG_BINARY;
        git_patch_line_stats(&ctx, &ad, &de, p);
        *adds = ad;
        *dels = de;
        git_patch_free(p);
        return 0;
}

static void put_line(FILE *out, bool color, const char *c, const char *fmt, const char *x, const char *y)
{
        if (color)
                fputs(c, out);
        fprintf(out, fmt, x, y);
        if (color)
                fputs(C_RESET, out);
        fputc('\n', out);
}

static void header(FILE *out, const struct nono_diff_side *a, const struct nono_diff_side *b, bool color)
{
        char buf[64];
        const char *ap = a->exists ? a->path : b->path, *bp = b->exists ? b->path : a->path;

        put_line(out, color, C_META, "diff --git a/%s b/%s", ap, bp);
        if (!a->exists) {
                snprintf(buf, sizeof buf, "%06o", git_mode(b->type, b->mode));
                put_line(out, color, C_META, "new file mode %s%s", buf, "");
        } else if (!b->exists) {
                snprintf(buf, sizeof buf, "%06o", git_mode(a->type, a->mode));
                put_line(out, color, C_META, "deleted file mode %s%s", buf, "");
        } else {
                if (strcmp(a->path, b->path)) {
                        put_line(out, color, C_META, "rename from %s%s", a->path, "");
                        put_line(out, color, C_META, "rename to %s%s", b->path, "");
                }
                if (git_mode(a->type, a->mode) != git_mode(b->type, b->mode)) {
                        char o[16], n[16];
                        snprintf(o, sizeof o, "%06o", git_mode(a->type, a->mode));
                        snprintf(n, sizeof n, "%06o", git_mode(b->type, b->mode));
                        put_line(out, color, C_META, "old mode %s%s", o, "");
                        put_line(out, color, C_META, "new mode %s%s", n, "");
                }
        }
}

int nono_diff_print(FILE *out, const struct nono_diff_side *a, const struct nono_diff_side *b, bool color,
                    size_t *adds, size_t *dels, bool *binary)
{
        git_patch *p = NULL;
        size_t na = 0, nd = 0;
        int r;

        if (binary)
                *binary = false;
        header(out, a, b, color);
        if ((has_data(a) && !a->data) || (has_data(b) && !b->data)) {
                fprintf(out, "(content not shown: %s)\n",
                        (has_data(a) && !a->data ? a->missing : b->missing) ?: "not available");
                goto done;
        }
        if (!has_data(a) && !has_data(b))
                goto done; /* directories, fifos: the header says it all */
        if (has_data(a) && has_data(b) && a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len)))
                goto done; /* same bytes (a change that was refused, or undone by the agent): no hunk */
        r = make_patch(a, b, &p);
        if (r < 0)
                return r;
        if (git_patch_get_delta(p)->flags & GIT_DIFF_FLAG_BINARY) {
                if (binary)
                        *binary = true;
                fprintf(out, "Binary files %s%s and %s%s differ\n", a->exists ? "a/" : "",
                        a->exists ? a->path : "/dev/null", b->exists ? "b/" : "",
                        b->exists ? b->path : "/dev/null");
                goto done;
        }
        if (git_patch_num_hunks(p) == 0)
                goto done;
        put_line(out, color, C_META, "--- %s%s", a->exists ? "a/" : "/dev/null", a->exists ? a->path : "");
        put_line(out, color, C_META, "+++ %s%s", b->exists ? "b/" : "/dev/null", b->exists ? b->path : "");
        for (size_t h = 0; h < git_patch_num_hunks(p); h++) {
                const git_diff_hunk *hk;
                size_t nl;
                if (git_patch_get_hunk(&hk, &nl, p, h) < 0)
                        break;
                if (color)
                        fputs(C_FRAG, out);
                fwrite(hk->header, 1, strcspn(hk->header, "\n"), out);
                fputs(color ? C_RESET "\n" : "\n", out);
                for (size_t l = 0; l < nl; l++) {
                        const git_diff_line *ln;
                        const char *c = NULL;
                        if (git_patch_get_line_in_hunk(&ln, p, h, l) < 0)
                                break;
                        switch (ln->origin) {
                        case GIT_DIFF_LINE_ADDITION:
                                c = C_NEW, na++;
                                break;
                        case GIT_DIFF_LINE_DELETION:
                                c = C_OLD, nd++;
                                break;
                        case GIT_DIFF_LINE_CONTEXT:
                                break;
                        default:
                                fputs("\\ No newline at end of file\n", out);
                                continue;
                        }
                        if (color && c)
                                fputs(c, out);
                        fputc(ln->origin, out);
                        size_t len = ln->content_len;
                        bool nl_end = len && ln->content[len - 1] == '\n';
                        fwrite(ln->content, 1, nl_end ? len - 1 : len, out);
                        if (color && c)
                                fputs(C_RESET, out);
                        fputc('\n', out);
                }
        }
done:
        if (p)
                git_patch_free(p);
        if (adds)
                *adds = na;
        if (dels)
                *dels = nd;
        return 0;
}
