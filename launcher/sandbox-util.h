/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-util.h - small helpers shared by the sandbox modules: cleanup attributes for fds and memory, and
 * file helpers that report errors as negative errno values (systemd style).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void nono_freep(void *p)
{
        free(*(void **)p);
}
static inline void nono_closep(int *fd)
{
        if (*fd >= 0) {
                int e = errno;
                close(*fd);
                errno = e;
        }
}
#define _cleanup_free_  _cleanup_(nono_freep)
#define _cleanup_close_ _cleanup_(nono_closep)

/* Returns fd and sets the variable to -1 (ownership transfer out of a _cleanup_close_ variable). */
static inline int nono_take_fd(int *fd)
{
        int r = *fd;
        *fd = -1;
        return r;
}

/* Writes the whole string to path (O_WRONLY|O_CLOEXEC, no O_CREAT). */
int nono_write_file(const char *path, const char *s);
/* mkdir -p with the given mode for created components; existing directories are fine. */
int nono_mkdir_p(const char *path, unsigned mode);
/* Creates an empty file (and its parents) if nothing exists at path. */
int nono_touch_p(const char *path, unsigned mode);
/* True when `path` equals `dir` or lies below it (both absolute, canonical). */
bool nono_path_under(const char *path, const char *dir);

/* Start-cost tracing: with NONO_TRACE_START set, writes "nono-trace PID MONOTONIC_NS WHAT" and
 * "nono-cpu TID THREAD_CPU_NS WHAT" (the calling thread's CPU time) to stderr at each call (tools/bench-run
 * turns these into the breakdown, with the CPU each thread used between its marks). A no-op otherwise;
 * async-signal-safe. */
void nono_trace(const char *what);
