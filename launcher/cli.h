/* SPDX-License-Identifier: Apache-2.0 */
/* cli.h - the nono command table and small CLI helpers shared by the commands. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

/* A top-level command: `nono NAME ARGS...`; argv[0] is NAME. Returns the process exit status. */
struct nono_command {
        const char *name;
        const char *summary; /* one line for `nono --help`; NULL hides the command */
        int (*main)(int argc, char **argv);
};

/* Prints "nono: " + message + "\n" to stderr; returns 1 (or the given status via nono_fail). */
int nono_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when stdout is a terminal and NO_COLOR is unset. */
bool nono_color(FILE *f);
