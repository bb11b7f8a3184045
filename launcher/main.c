/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the nono binary: dispatches `nono COMMAND ...` to the command modules. Logic lives in the
 * libraries (store/, fs/, launcher's modules); this file only parses the first word.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/cli.h"
#include "launcher/commands.h"

static const struct nono_command commands[] = {NONO_COMMANDS{NULL, NULL, NULL}};

static void usage(FILE *f)
{
        fputs("nono - a sandbox for AI coding agents\n\n"
              "usage: nono COMMAND [ARGS...]\n\n"
              "commands:\n",
              f);
        for (size_t i = 0; commands[i].name; i++)
                if (commands[i].summary)
                        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fputs("\n  nono --version        print the version\n"
              "  nono COMMAND --help   help on one command\n",
              f);
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
                printf("nono %s\n", NONO_VERSION);
                return 0;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; commands[i].name; i++)
                if (!strcmp(argv[1], commands[i].name))
                        return commands[i].main(argc - 1, argv + 1);
        nono_err("unknown command '%s' (see nono --help)", argv[1]);
        return 2;
}
