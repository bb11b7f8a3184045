/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c - deny rules inside a root: globs on the path relative to the root.
 *
 * Syntax (fs.h): "**" crosses '/', "*" and "?" do not; a pattern without '/' matches a component at any
 * depth (like .gitignore); a leading '/' anchors at the root (and is otherwise implied by any '/').
 * A rule that matches a directory covers everything below it, so "secrets" denies "secrets/key" too.
 *
 * What it stops: reading/writing a denied path by its name, by a hard link to it (deny bits stick to the
 * inode, see inode.c), or by renaming an ancestor directory of a possible match away and back (rules_below
 * makes such renames and rmdirs fail). What it does not stop: a file that was already hard-linked outside the
 * pattern before the session and is reached only through that other name.
 */
#include <string.h>

#include "fs/fs-internal.h"

/* partial: does pat match s itself or could it match s + "/" + something? */
static bool gm(const char *p, const char *s, bool partial, int depth)
{
        if (depth > 64)
                return false;
        while (*p) {
                if (p[0] == '*' && p[1] == '*') {
                        p += 2;
                        if (*p == '/') {
                                if (gm(p + 1, s, partial, depth + 1))
                                        return true;
                                for (const char *t = s; *t; t++)
                                        if (*t == '/' && gm(p + 1, t + 1, partial, depth + 1))
                                                return true;
                                return partial;
                        }
                        for (const char *t = s;; t++) {
                                if (gm(p, t, partial, depth + 1))
                                        return true;
                                if (!*t)
                                        break;
                        }
                        return partial;
                }
                if (!*s)
                        return partial && *p == '/';
                if (*p == '*') {
                        p++;
                        for (const char *t = s;; t++) {
                                if (gm(p, t, partial, depth + 1))
                                        return true;
                                if (!*t || *t == '/')
                                        break;
                        }
                        return false;
                }
                if (*p == '?') {
                        if (*s == '/')
                                return false;
                } else if (*p != *s)
                        return false;
                p++;
                s++;
        }
        return !*s;
}

bool glob_match(const char *pattern, const char *path)
{
        return gm(pattern, path, false, 0);
}

static bool has_slash(const char *p)
{
        for (; *p; p++)
                if (*p == '/')
                        return true;
        return false;
}

static bool rule_matches(const char *pat, const char *path)
{
        if (*pat == '/')
                pat++;
        if (!has_slash(pat)) {
                /* any component */
                const char *c = path;
                while (*c) {
                        const char *e = strchrnul(c, '/');
                        char comp[256];
                        size_t l = (size_t)(e - c);
                        if (l < sizeof(comp)) {
                                memcpy(comp, c, l);
                                comp[l] = 0;
                                if (glob_match(pat, comp))
                                        return true;
                        }
                        c = *e ? e + 1 : e;
                }
                return false;
        }
        /* the path or any ancestor */
        if (glob_match(pat, path))
                return true;
        char buf[4096];
        size_t l = strlen(path);
        if (l >= sizeof(buf))
                return false;
        memcpy(buf, path, l + 1);
        for (char *s = strrchr(buf, '/'); s; s = strrchr(buf, '/')) {
                *s = 0;
                if (glob_match(pat, buf))
                        return true;
        }
        return false;
}

unsigned rules_match(const struct nono_fs_rule *r, size_t n, const char *path)
{
        unsigned deny = 0;

        for (size_t k = 0; k < n; k++)
                if ((r[k].deny & ~deny) && rule_matches(r[k].pattern, path))
                        deny |= r[k].deny;
        return deny;
}

unsigned rules_below(const struct nono_fs_rule *r, size_t n, const char *dirpath)
{
        unsigned deny = 0;

        for (size_t k = 0; k < n; k++) {
                const char *pat = r[k].pattern[0] == '/' ? r[k].pattern + 1 : r[k].pattern;
                if (!strncmp(pat, "**/", 3) && !has_slash(pat + 3))
                        continue; /* a leading "**" then one component is unanchored too */
                if (!has_slash(pat))
                        continue; /* unanchored rules match wherever the directory goes */
                if (!*dirpath || gm(pat, dirpath, true, 0))
                        deny |= r[k].deny;
        }
        return deny;
}
