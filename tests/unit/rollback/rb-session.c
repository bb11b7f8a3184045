/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rb-session - test tool for the rollback end-to-end tests: performs a list of operations on ROOT while
 * recording them in the store at HOME the way fs/ does (model.c), ends the session, prints its id.
 *
 *   rb-session HOME ROOT OP...      OP is one of
 *     write:PATH:DATA  append:PATH:DATA  poke:PATH:OFFSET:DATA (block-level write into a big file)
 *     rm:PATH  mkdir:PATH  rmdir:PATH  mv:FROM:TO  ln:FROM:TO  symlink:TARGET:PATH  chmod:PATH:OCTAL
 *     owner:PID (leave the session running, owned by PID)  crashed (owner gone, no post-images)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

static char *field(char **s)
{
        char *f = *s, *c = f ? strchr(f, ':') : NULL;
        if (c) {
                *c = 0;
                *s = c + 1;
        } else
                *s = NULL;
        return f;
}

int main(int argc, char **argv)
{
        nono_store *st;
        struct model m;
        bool running = false, crashed = false;
        char p[8192], q[8192];

        if (argc < 3) {
                fprintf(stderr, "usage: rb-session HOME ROOT OP...\n");
                return 2;
        }
        if (nono_store_open(argv[1], 0, &st) < 0) {
                fprintf(stderr, "rb-session: %s\n", nono_store_errmsg());
                return 1;
        }
        pid_t owner = 0;
        for (int i = 3; i < argc; i++) {
                if (!strncmp(argv[i], "owner:", 6))
                        owner = atoi(argv[i] + 6), running = true;
                crashed |= !strcmp(argv[i], "crashed");
        }
        model_begin_owner(&m, st, argv[2], running ? owner : crashed ? dead_pid() : getpid());
        for (int i = 3; i < argc; i++) {
                char *s = strdup(argv[i]), *rest = s, *op = field(&rest), *a = field(&rest), *b = rest;
                if (a)
                        snprintf(p, sizeof p, "%s/%s", argv[2], a);
                if (b)
                        snprintf(q, sizeof q, "%s/%s", argv[2], b);
                int fd, r = 0;
                if (!strcmp(op, "write") || !strcmp(op, "append")) {
                        model_touch(&m, a);
                        fd = open(p, O_WRONLY | O_CREAT | (op[0] == 'w' ? O_TRUNC : O_APPEND), 0644);
                        r = fd < 0 || write(fd, b, strlen(b)) < 0;
                        close(fd);
                } else if (!strcmp(op, "poke")) {
                        char *off = field(&b);
                        model_touch_blocks(&m, a, strtoull(off, NULL, 10), strlen(b));
                        fd = open(p, O_WRONLY);
                        r = fd < 0 || pwrite(fd, b, strlen(b), strtoull(off, NULL, 10)) < 0;
                        close(fd);
                } else if (!strcmp(op, "rm")) {
                        model_touch(&m, a);
                        r = unlink(p);
                } else if (!strcmp(op, "mkdir")) {
                        model_touch(&m, a);
                        r = mkdir(p, 0755);
                } else if (!strcmp(op, "rmdir")) {
                        model_touch(&m, a);
                        r = rmdir(p);
                } else if (!strcmp(op, "mv") || !strcmp(op, "ln")) {
                        model_touch(&m, a);
                        model_touch(&m, b);
                        r = op[0] == 'm' ? rename(p, q) : link(p, q);
                } else if (!strcmp(op, "symlink")) {
                        model_touch(&m, b);
                        r = symlink(a, q);
                } else if (!strcmp(op, "chmod")) {
                        model_touch(&m, a);
                        r = chmod(p, strtoul(b, NULL, 8));
                } else if (strcmp(op, "owner") && strcmp(op, "crashed")) {
                        fprintf(stderr, "rb-session: unknown op %s\n", op);
                        return 2;
                }
                if (r) {
                        perror(argv[i]);
                        return 1;
                }
                free(s);
        }
        if (!running)
                model_end(&m, crashed);
        printf("%s\n", m.sid);
        model_free(&m);
        nono_store_close(st);
        return 0;
}
