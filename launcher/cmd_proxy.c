/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_proxy.c - `nono __proxy`: the --allow-domain proxy on its own, for tests and tools/bench-net (hidden
 * from --help). `nono run` does not use this command: it runs the same library in its own process.
 *
 *   nono __proxy --listen 127.0.0.1:0 [--port-file F] [--events F] [--hosts-file F] --allow-domain H...
 *
 * --port-file F (or '-' for stdout) gets the port once connections are accepted.
 * Serves until SIGTERM or SIGINT, then ends every connection and exits 0. Each attempt is one line of
 * --events (default stderr): the audit detail "host:port METHOD resolved=ADDR allow|deny|error up=N down=N
 * [reason=...]".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/cli.h"
#include "launcher/commands.h"
#include "launcher/proxy.h"

static void usage(FILE *f)
{
        fputs(
            "usage: nono __proxy --listen ADDR:PORT [--port-file FILE] [--events FILE] [--hosts-file FILE]\n"
            "                    --allow-domain HOST...\n"
            "Runs the --allow-domain filtering proxy standalone (tests, benchmarks). PORT 0 picks a free "
            "port;\n"
            "--port-file receives it once the proxy accepts connections ('-': stdout).\n",
            f);
}

static void on_event(const struct nono_proxy_event *ev, void *userdata)
{
        int fd = *(int *)userdata;

        dprintf(fd, "%s\n", ev->detail);
}

static int parse_listen(char *s, char **addr, uint16_t *port)
{
        char *colon = strrchr(s, ':'), *end;
        unsigned long p;

        if (!colon)
                return -EINVAL;
        *colon = 0;
        p = strtoul(colon + 1, &end, 10);
        if (*end || end == colon + 1 || p > 65535)
                return -EINVAL;
        if (s[0] == '[' && colon[-1] == ']') {
                colon[-1] = 0;
                s++;
        }
        *addr = s;
        *port = (uint16_t)p;
        return 0;
}

/* "-" prints the port on stdout (a test reads it from a pipe and so waits for readiness, not for a clock). */
static int write_port_file(const char *path, uint16_t port)
{
        char tmp[4096];
        FILE *f;

        if (!strcmp(path, "-")) {
                printf("%u\n", port);
                return fflush(stdout) == 0 ? 0 : -errno;
        }

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        fprintf(f, "%u\n", port);
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                return -errno;
        return 0;
}

int nono_cmd_proxy(int argc, char **argv)
{
        static const struct option opts[] = {
            {"listen", required_argument, NULL, 'l'},
            {"allow-domain", required_argument, NULL, 'a'},
            {"hosts-file", required_argument, NULL, 'H'},
            {"port-file", required_argument, NULL, 'p'},
            {"events", required_argument, NULL, 'e'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char **allow = calloc((size_t)argc + 1, sizeof(char *));
        size_t n_allow = 0;
        char *listen = NULL, *addr = NULL, *err = NULL;
        const char *hosts = NULL, *port_file = NULL, *events = NULL;
        uint16_t port = 0;
        int c, ev_fd = STDERR_FILENO, fd, ret, sig;
        nono_proxy *p = NULL;
        sigset_t set;

        if (!allow)
                return nono_err("out of memory");
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'l':
                        listen = optarg;
                        break;
                case 'a':
                        allow[n_allow++] = optarg;
                        break;
                case 'H':
                        hosts = optarg;
                        break;
                case 'p':
                        port_file = optarg;
                        break;
                case 'e':
                        events = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        free(allow);
                        return 0;
                default:
                        usage(stderr);
                        free(allow);
                        return 2;
                }
        }
        if (!listen || optind != argc || parse_listen(listen, &addr, &port) < 0) {
                usage(stderr);
                free(allow);
                return 2;
        }
        if (events) {
                ev_fd = open(events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (ev_fd < 0) {
                        nono_err("cannot open %s: %s", events, strerror(errno));
                        free(allow);
                        return 1;
                }
        }
        struct nono_proxy_config cfg = {
            .allow = allow, .hosts_file = hosts, .on_event = on_event, .userdata = &ev_fd};
        ret = nono_proxy_new(&cfg, &p, &err);
        free(allow);
        if (ret < 0) {
                nono_err("%s", err ? err : strerror(-ret));
                free(err);
                return 1;
        }
        fd = nono_proxy_listen(addr, port, &port);
        if (fd < 0) {
                nono_proxy_free(p);
                return nono_err("cannot listen on %s:%u: %s (pick another address or port)", addr, port,
                                strerror(-fd));
        }
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((ret = nono_proxy_add_listener(p, fd)) < 0 || (ret = nono_proxy_start(p)) < 0 ||
            (port_file && (ret = write_port_file(port_file, port)) < 0)) {
                nono_proxy_free(p);
                return nono_err("cannot start the proxy: %s", strerror(-ret));
        }
        fprintf(stderr, "nono: proxy listening on %s:%u\n", addr, port);
        while (sigwait(&set, &sig) != 0)
                ;
        nono_proxy_free(p);
        if (events)
                close(ev_fd);
        return 0;
}
