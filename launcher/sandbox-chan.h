/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-chan.h - the child -> parent channel: a SOCK_SEQPACKET socketpair over which the sandbox child
 * (inside its namespaces) hands file descriptors that only it can create to the nono parent (outside):
 * a /dev/fuse fd it mounted, the agent's seccomp notification fd, a listening socket inside the network
 * namespace. Each message is a request: the child waits for the parent's reply before it goes on, so for
 * example no path under a FUSE mount is touched before the parent serves it.
 */
#pragma once

#include <stdint.h>

enum nono_chan_kind {
        /* 1 was NONO_CHAN_FUSE_OPTIONS: init makes the mount options itself (sandbox-fuse.c) */
        NONO_CHAN_FUSE_FD = 2, /* fd = mounted /dev/fuse for root `index`; reply: status (0 = serving) */
        NONO_CHAN_SECCOMP_NOTIFY = 3, /* fd = the agent's seccomp listener; reply: status */
        NONO_CHAN_PROXY_LISTENER = 4, /* fd = a TCP socket listening on 127.0.0.1:arg inside the netns */
        NONO_CHAN_EXEC = 5,           /* no fd: the agent calls execve now; arg = Landlock ABI in force */
};

#define NONO_CHAN_DATA_MAX 1024

struct nono_chan_msg {
        uint32_t kind; /* enum nono_chan_kind */
        uint32_t index;
        int32_t arg, arg2;
        int32_t status; /* replies: 0 or a negative errno */
        uint32_t len;   /* bytes used in data (NUL included for strings) */
        char data[NONO_CHAN_DATA_MAX];
};

/* fd < 0: no fd attached. Returns 0 or a negative errno. */
int nono_chan_send(int sock, const struct nono_chan_msg *m, int fd);
/* *fd gets the attached fd (O_CLOEXEC) or -1. Returns 1 on a message, 0 on EOF, or a negative errno. */
int nono_chan_recv(int sock, struct nono_chan_msg *m, int *fd);
/* Child side: sends and waits for the reply; returns the reply's status (or a transport error). */
int nono_chan_call(int sock, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply);

/* Parent side: handles one request and fills the reply (status and data). fd is owned by the handler.
 * Return < 0 to abort the session (the child is killed). */
typedef int (*nono_chan_handler)(void *userdata, const struct nono_chan_msg *m, int fd,
                                 struct nono_chan_msg *reply);
