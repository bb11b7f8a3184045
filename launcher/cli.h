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

/* Adds an exact integer to a JSON object (cJSON numbers are doubles: nanosecond times would lose digits and
 * print as 1.79e+18). o is a cJSON *. */
void nono_json_add_i64(void *o, const char *name, long long v);

/* True when stdout is a terminal and NO_COLOR is unset. */
bool nono_color(FILE *f);
