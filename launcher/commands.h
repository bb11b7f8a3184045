/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h - every command's entry point; main.c builds its table from NONO_COMMANDS. */
#pragma once

#include "launcher/run.h"

int nono_cmd_profile(int argc, char **argv);
int nono_audit_main(int argc, char **argv);
int nono_cmd_proxy(int argc, char **argv);
int cmd_fsmount(int argc, char **argv);
int nono_cmd_rollback(int argc, char **argv); /* launcher/cmd_rollback.c */

/* Each entry: {name, one-line summary (NULL: hidden), entry point}, */
#define NONO_COMMANDS                                                                                        \
        {"run", "run a command in the sandbox", nono_cmd_run},                                               \
            {"audit", "what the agent did: audit list | show ID | verify ID", nono_audit_main},              \
            {"profile", "list, show, create and check profiles", nono_cmd_profile},                          \
            {"rollback", "list, show, restore, mount, verify and clean up --rollback sessions",              \
             nono_cmd_rollback},                                                                             \
            {"__fs-mount", NULL, cmd_fsmount}, {"__proxy", NULL, nono_cmd_proxy},
