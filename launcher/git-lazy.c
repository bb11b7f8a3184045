/* SPDX-License-Identifier: Apache-2.0 */
/*
 * git-lazy.c - libgit2, loaded on first use.
 *
 * Only `nono rollback show --diff` needs libgit2 (diff.c), but linking it makes every nono process map it
 * and its dependencies (Kerberos, GSSAPI, mbedTLS, libssh2, PCRE2, zlib, http-parser: 16 libraries) and
 * relocate them before main(): a third of the start cost of `nono run -- /bin/true` on a small VM. So nono
 * links none of it: this file defines the few libgit2 functions diff.c calls (the prototypes are git2.h's,
 * so a signature mismatch does not compile), and each one dlopen()s the library once and calls the real
 * function. If libgit2 is not installed, the functions fail (or return empty results) with a message
 * naming the library, and the rest of nono is unaffected.
 */
#include <dlfcn.h>
#include <git2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#ifndef NONO_LIBGIT2_SONAME
#define NONO_LIBGIT2_SONAME "libgit2.so"
#endif

#define GIT_FUNCS(X)                                                                                         \
        X(git_libgit2_init)                                                                                  \
        X(git_diff_options_init)                                                                             \
        X(git_patch_from_buffers)                                                                            \
        X(git_patch_get_delta)                                                                               \
        X(git_patch_line_stats)                                                                              \
        X(git_patch_free)                                                                                    \
        X(git_patch_num_hunks)                                                                               \
        X(git_patch_get_hunk)                                                                                \
        X(git_patch_get_line_in_hunk)

static struct {
#define X(f) __typeof__(f) *f;
        GIT_FUNCS(X)
#undef X
} real;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;

static void load(void)
{
        void *h = dlopen(NONO_LIBGIT2_SONAME, RTLD_NOW | RTLD_LOCAL);

        if (!h) {
                fprintf(stderr, "nono: cannot load %s (install libgit2 to see diffs): %s\n",
                        NONO_LIBGIT2_SONAME, dlerror());
                return;
        }
#define X(f)                                                                                                 \
        if (!(real.f = (__typeof__(f) *)dlsym(h, #f))) {                                                     \
                fprintf(stderr, "nono: %s has no %s: install the libgit2 nono was built with\n",             \
                        NONO_LIBGIT2_SONAME, #f);                                                            \
                return;                                                                                      \
        }
        GIT_FUNCS(X)
#undef X
        loaded = true;
}

static bool ready(void)
{
        pthread_once(&once, load);
        return loaded;
}

int git_libgit2_init(void)
{
        return ready() ? real.git_libgit2_init() : -1;
}

int git_diff_options_init(git_diff_options *opts, unsigned int version)
{
        return ready() ? real.git_diff_options_init(opts, version) : -1;
}

int git_patch_from_buffers(git_patch **out, const void *old_buffer, size_t old_len, const char *old_as_path,
                           const void *new_buffer, size_t new_len, const char *new_as_path,
                           const git_diff_options *opts)
{
        if (!ready()) {
                *out = NULL;
                return -1;
        }
        return real.git_patch_from_buffers(out, old_buffer, old_len, old_as_path, new_buffer, new_len,
                                           new_as_path, opts);
}

/* The functions below take a git_patch, which only exists if the library was loaded. */
const git_diff_delta *git_patch_get_delta(const git_patch *patch)
{
        return real.git_patch_get_delta(patch);
}

int git_patch_line_stats(size_t *total_context, size_t *total_additions, size_t *total_deletions,
                         const git_patch *patch)
{
        return real.git_patch_line_stats(total_context, total_additions, total_deletions, patch);
}

void git_patch_free(git_patch *patch)
{
        if (patch)
                real.git_patch_free(patch);
}

size_t git_patch_num_hunks(const git_patch *patch)
{
        return real.git_patch_num_hunks(patch);
}

int git_patch_get_hunk(const git_diff_hunk **out, size_t *lines_in_hunk, git_patch *patch, size_t hunk_idx)
{
        return real.git_patch_get_hunk(out, lines_in_hunk, patch, hunk_idx);
}

int git_patch_get_line_in_hunk(const git_diff_line **out, git_patch *patch, size_t hunk_idx,
                               size_t line_of_hunk)
{
        return real.git_patch_get_line_in_hunk(out, patch, hunk_idx, line_of_hunk);
}
