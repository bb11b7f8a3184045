/* SPDX-License-Identifier: Apache-2.0 */
/*
 * env.h - the agent's environment: the user's environment minus the variables that make a trusted program
 * run code chosen by whoever controls a file or a variable (LD_PRELOAD, BASH_ENV, exported bash functions,
 * ...), filtered by the policy's env allow/deny lists, plus the policy's env set.
 */
#pragma once

#include <stdbool.h>

struct nono_policy;

/* True when the variable NAME (without "=value") is one nono always removes. */
bool nono_env_dangerous(const char *name);

/* Builds the agent's environment from envp (NULL-terminated "KEY=VALUE"); returns a malloc'd,
 * NULL-terminated vector of malloc'd strings, or NULL on ENOMEM. */
char **nono_env_build(char *const *envp, const struct nono_policy *p);
void nono_env_free(char **env);
