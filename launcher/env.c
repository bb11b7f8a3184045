/* SPDX-License-Identifier: Apache-2.0 */
/*
 * env.c - environment scrubbing.
 *
 * What it stops: the agent, or a file it wrote in an earlier session, getting code run by the dynamic linker
 * or a shell at start-up through variables the user happened to have set (LD_PRELOAD/LD_LIBRARY_PATH/
 * LD_AUDIT, glibc's GCONV_PATH and GLIBC_TUNABLES, bash's BASH_ENV/ENV/PROMPT_COMMAND/PS4/SHELLOPTS and
 * exported BASH_FUNC_* functions), and interpreter start-up hooks (PYTHONSTARTUP, PERL5OPT, NODE_OPTIONS
 * --require are kept: they are ordinary development settings, and a profile may deny them).
 * What it does not stop: secrets in the environment (API tokens) reaching the agent; that is the profile's
 * env deny list. The filter is by name only; values are passed through untouched.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/env.h"
#include "launcher/policy.h"

static const char *const dangerous[] = {
    "LD_*",       "BASH_ENV",       "ENV",      "PROMPT_COMMAND", "PROMPT_COMMAND*", "BASH_FUNC_*",
    "SHELLOPTS",  "BASHOPTS",       "PS4",      "GLOBIGNORE",     "CDPATH",          "IFS",
    "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_*", "HOSTALIASES",    "RES_OPTIONS",     "LOCALDOMAIN",
    "NLSPATH",    "TMPDIR",         NULL,
};

static bool match_any(char *const *patterns, const char *name)
{
        for (size_t i = 0; patterns && patterns[i]; i++)
                if (fnmatch(patterns[i], name, 0) == 0)
                        return true;
        return false;
}

bool nono_env_dangerous(const char *name)
{
        return match_any((char *const *)dangerous, name);
}

static int push(char ***v, size_t *n, const char *s)
{
        char **nv = realloc(*v, (*n + 2) * sizeof(char *));

        if (!nv)
                return -1;
        *v = nv;
        nv[*n] = strdup(s);
        if (!nv[*n])
                return -1;
        nv[++*n] = NULL;
        return 0;
}

char **nono_env_build(char *const *envp, const struct nono_policy *p)
{
        char **out = calloc(1, sizeof(char *));
        size_t n = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; envp && envp[i]; i++) {
                const char *eq = strchr(envp[i], '=');
                char name[256];
                size_t len = eq ? (size_t)(eq - envp[i]) : strlen(envp[i]);

                if (!eq || len == 0 || len >= sizeof(name))
                        continue;
                memcpy(name, envp[i], len);
                name[len] = '\0';
                if (nono_env_dangerous(name))
                        continue;
                if (p && p->env_allow && p->env_allow[0] && !match_any(p->env_allow, name))
                        continue;
                if (p && match_any(p->env_deny, name))
                        continue;
                if (push(&out, &n, envp[i]) < 0)
                        goto oom;
        }
        /* /tmp is private inside: point temporary files there, whatever the host's TMPDIR was. */
        if (push(&out, &n, "TMPDIR=/tmp") < 0)
                goto oom;
        if (p && p->workdir) { /* the agent starts in the workdir: PWD says so (shells trust it) */
                char *pwd = NULL;
                for (size_t j = 0; j < n; j++)
                        if (!strncmp(out[j], "PWD=", 4)) {
                                free(out[j]);
                                memmove(&out[j], &out[j + 1], (n - j) * sizeof(char *));
                                n--;
                                break;
                        }
                if (asprintf(&pwd, "PWD=%s", p->workdir) < 0 || push(&out, &n, pwd) < 0) {
                        free(pwd);
                        goto oom;
                }
                free(pwd);
        }
        for (size_t i = 0; p && p->env_set && p->env_set[i]; i++) {
                const char *eq = strchr(p->env_set[i], '=');
                size_t len = eq ? (size_t)(eq - p->env_set[i]) + 1 : 0;
                for (size_t j = 0; eq && j < n; j++)
                        if (!strncmp(out[j], p->env_set[i], len)) {
                                free(out[j]);
                                memmove(&out[j], &out[j + 1], (n - j) * sizeof(char *));
                                n--;
                                break;
                        }
                if (eq && push(&out, &n, p->env_set[i]) < 0)
                        goto oom;
        }
        return out;
oom:
        nono_env_free(out);
        return NULL;
}

void nono_env_free(char **env)
{
        for (size_t i = 0; env && env[i]; i++)
                free(env[i]);
        free(env);
}
