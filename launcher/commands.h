/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h - every command's entry point; main.c builds its table from NONO_COMMANDS. */
#pragma once

int nono_cmd_rollback(int argc, char **argv); /* launcher/cmd_rollback.c */

/* Each entry: {name, one-line summary (NULL: hidden), entry point}, */
#define NONO_COMMANDS \
        {"rollback", "list, show, restore, mount, verify and clean up --rollback sessions", nono_cmd_rollback},
