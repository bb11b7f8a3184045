/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h - every command's entry point; main.c builds its table from NONO_COMMANDS. */
#pragma once

/* Each entry: {name, one-line summary (NULL: hidden), entry point}, */
int cmd_fsmount(int argc, char **argv);

#define NONO_COMMANDS \
        {"__fs-mount", NULL, cmd_fsmount},
