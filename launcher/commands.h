/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h - every command's entry point; main.c builds its table from NONO_COMMANDS. */
#pragma once

#include "launcher/run.h"

/* Each entry: {name, one-line summary (NULL: hidden), entry point}, */
#define NONO_COMMANDS {"run", "run a command in the sandbox", nono_cmd_run},
