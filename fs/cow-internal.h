/* SPDX-License-Identifier: Apache-2.0 */
/* cow-internal.h - shared by cow.c (capture) and cow-post.c (stash ingest, post-images); internal to fs/. */
#pragma once

#include "fs/cow.h"

/* What fs/ knows, for this session, about one object of the real tree (keyed by dev/ino at session time). */
struct obj {
        dev_t dev;
        ino_t ino;
        uint64_t node;    /* 0: no node (created in the session) */
        bool created;     /* created in this session: nothing to restore, nor below it */
        char *start;      /* its path at session start; NULL: unknown or created */
        uint32_t type;    /* enum nono_ftype */
        uint64_t size;    /* size at session start */
        bool safe;        /* every original byte is in the store or in a stash copy: capture nothing more */
        bool stashed;     /* a stash entry exists for its node */
        bool hlinked;     /* a multiply-linked file: STASH/h<node> is a name of its inode (cow-stash.c) */
        bool reached;     /* a post-image found it at a recorded path */
        bool multi;       /* a file that had several names when captured */
        uint8_t *chunks;  /* bitmap of captured chunks (files) */
        struct obj *next; /* hash chain */
};

struct ingest {
        uint64_t node;
        struct ingest *next;
};

struct nono_cow {
        pthread_mutex_t lock; /* every field; held across one hook (the hooks are serialised) */
        struct obj **tab;
        struct obj *graveyard; /* objects whose inode number was reused */
        size_t tab_size, count;
        uint64_t next_node;
        char **paths; /* start paths that have a pre record, for the post-images */
        size_t n_paths, cap_paths;
        void *path_set; /* hsearch-like set of the above (see cow.c) */
        int stash_fd;   /* -1 until the first stash */
        bool stash_in_root;
        /* background ingest of stash entries */
        pthread_t ingest_thread;
        pthread_cond_t ingest_wake, ingest_idle;
        struct ingest *queue;
        bool ingest_stop, ingest_busy;
        uint64_t killpoint, points; /* test hook, see cow.c */
        bool dirty;                 /* records queued that the next change depends on */
        size_t n_multi;             /* captured objects with multi set */
        /* inodes that have a STASH/h<node> name, so that the agent is shown their link count without it
         * (cow_hide_stash_links); own lock: asked on every getattr of a multiply-linked file, while c->lock
         * may be held across a durable store sync */
        pthread_mutex_t hl_lock;
        struct hl_key {
                dev_t dev;
                ino_t ino;
        } * hl;
        size_t n_hl, cap_hl;
        _Atomic size_t hl_count;
        bool finished; /* cow_finish ran: the store is not used any more */
};

struct obj *obj_find(struct nono_cow *c, dev_t dev, ino_t ino);
int stash_name(uint64_t node, char *buf, size_t len);
/* Links the inode of vfd (O_PATH) into the stash as <node>, durably. */
int stash_link(struct nono_fs *fs, struct obj *o, int vfd);
/* Copies the whole file x into the stash as <node> (reflink when possible), durably; marks o safe. */
int stash_copy(struct nono_fs *fs, struct obj *o, struct fsino *x);
/* Links a multiply-linked file's inode (vfd, O_PATH) into the stash as h<node>, durably; best effort. */
void stash_hlink(struct nono_fs *fs, struct obj *o, int vfd);
/* Removes h<node> again (the inode is reachable through a recorded path at the session end). */
void stash_hunlink(struct nono_fs *fs, struct obj *o);
/* At the session end: removes the stash directory when nothing is left in it for restore. */
void stash_remove_if_empty(struct nono_fs *fs);
int ingest_start(struct nono_fs *fs);
void ingest_stop(struct nono_fs *fs);
void ingest_queue(struct nono_fs *fs, uint64_t node);
int write_post_images(struct nono_fs *fs);
bool cow_path_known(struct nono_cow *c, const char *path); /* has a path record */
