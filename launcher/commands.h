/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h - every command's entry point; main.c builds its table from NONO_COMMANDS. */
#pragma once

int nono_audit_main(int argc, char **argv);

/* Each entry: {name, one-line summary (NULL: hidden), entry point}, */
#define NONO_COMMANDS \
        {"audit", "what the agent did: audit list | show ID | verify ID", nono_audit_main},
