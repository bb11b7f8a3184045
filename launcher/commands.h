/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h - every command's entry point; main.c builds its table from NONO_COMMANDS. */
#pragma once

/* Each entry: {name, one-line summary (NULL: hidden), entry point}, */
int nono_cmd_profile(int argc, char **argv);
int nono_cmd_proxy(int argc, char **argv);

#define NONO_COMMANDS                                                                                        \
        {"profile", "list, show, create and check profiles", nono_cmd_profile},                              \
            {"__proxy", NULL, nono_cmd_proxy},
