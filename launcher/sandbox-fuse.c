/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-fuse.c - the FUSE provider, child side: inside its user+mount namespace the sandbox's init opens
 * /dev/fuse, makes fs/'s mount options (nono_fs_mount_options_early), mounts the
 * FUSE filesystem at the grant's own path, and hands the fd to the parent, which serves it with fs/ from a
 * directory fd opened before the sandbox existed. init waits for the parent's "serving" reply before it
 * goes on, since any lookup under the mount (a mask under a granted parent) needs the server.
 *
 * The mount is not read-only even for --read grants: fs/ refuses the writes itself so that each refusal is
 * recorded as a violation (Landlock refuses them too).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs/fs.h"
#include "launcher/sandbox-util.h"
#include "launcher/sandbox.h"

static int fuse_child_mount(const struct nono_grant *g, unsigned index, const char *src, const char *target,
                            int chan, char *err, size_t errlen)
{
        _cleanup_close_ int fd = open("/oldroot/dev/fuse", O_RDWR | O_CLOEXEC);
        struct nono_chan_msg m, reply;
        char opts[256];
        int r;

        if (fd < 0) {
                snprintf(err, errlen,
                         "cannot open /dev/fuse: %s (load the fuse module; /dev/fuse must be 0666 "
                         "for ordinary users)",
                         strerror(errno));
                return -errno;
        }
        /* fs/'s options, made here: the ids in them are read in this (init's) user namespace, where nono's
         * own ids map to themselves; asking the parent for them cost a round trip per root */
        if ((r = nono_fs_mount_options_early(fd, g->is_file, opts, sizeof(opts))) < 0) {
                snprintf(err, errlen, "no FUSE mount options for %s: %s", g->path, strerror(-r));
                return r;
        }
        nono_trace("fuse: options");
        if (mount("nono", target, "fuse.nono", MS_NOSUID | MS_NODEV, opts) < 0) {
                snprintf(err, errlen, "cannot mount FUSE on %s: %s", g->path, strerror(errno));
                return -errno;
        }
        nono_trace("fuse: mounted");
        /* the mount's device (asked without a request: nobody serves it yet), so that the parent can widen
         * its readahead window (nono_fs_tune_readahead) */
        dev_t dev = nono_fs_mount_dev(target);
        m = (struct nono_chan_msg){.kind = NONO_CHAN_FUSE_FD,
                                   .index = index,
                                   .arg = (int32_t)minor(dev),
                                   .arg2 = (int32_t)major(dev)};
        if ((r = nono_chan_call(chan, &m, fd, &reply)) < 0) {
                snprintf(err, errlen, "nono could not serve %s: %s", g->path, strerror(-r));
                return r;
        }
        (void)src;
        return 0;
}

const struct nono_root_provider nono_provider_fuse = {.name = "fuse", .child_mount = fuse_child_mount};
