#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Random trees, random agent operations and exact tree dumps for the rollback end-to-end tests.

  rollback-gen.py tree DIR SEED        make a random tree (files small and > 64 KiB, dirs, symlinks, fifos,
                                       hard links unless ROLLBACK_GEN_HARDLINKS=0 (=2: the other name
                                       in a random directory), xattrs, fixed times)
  rollback-gen.py ops DIR SEED [N] [--progress FIFO]
                                       the agent: N random operations (writes, appends, truncates, small writes
                                       into big files, creates, unlinks, mkdir/rmdir, renames over files and
                                       directories, exchange, hard links, symlinks, chmod, utimes, xattrs);
                                       with --progress, writes one line per operation to FIFO
  rollback-gen.py dump DIR             canonical dump: type, mode, size, sha256, link target, xattrs, times,
                                       link count and hard-link group of every entry
"""
import ctypes
import hashlib
import os
import random
import stat
import sys

RENAME_EXCHANGE = 2
libc = ctypes.CDLL(None, use_errno=True)


def exchange(a, b):
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(-100, a.encode(), -100, b.encode(), RENAME_EXCHANGE) == 0


def walk(root):
    out = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for n in sorted(dns + fns):
            if n.startswith('..nono-stash.') or n.startswith('.nono-'):
                continue
            out.append(os.path.relpath(os.path.join(dp, n), root))
    return out


def tree(d, seed):
    r = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    dirs = ['']
    for i in range(r.randint(10, 30)):
        parent = r.choice(dirs)
        p = os.path.join(d, parent, 'e%d' % i)
        k = r.random()
        if k < 0.2:
            os.mkdir(p, 0o755)
            dirs.append(os.path.join(parent, 'e%d' % i))
        elif k < 0.3:
            os.symlink(r.choice(['e0', '../e1', '/etc/hostname', 'missing']), p)
        elif k < 0.35:
            os.mkfifo(p, 0o640)
        else:
            size = r.choice([0, 10, 300, 5000, 70000, 200000]) if r.random() < 0.3 else r.randint(0, 400)
            with open(p, 'wb') as f:
                f.write(r.randbytes(size))
            os.chmod(p, r.choice([0o644, 0o600, 0o755, 0o640]))
            if r.random() < 0.3:
                try:
                    os.setxattr(p, 'user.t', b'v%d' % i)
                except OSError:
                    pass
            links = os.environ.get('ROLLBACK_GEN_HARDLINKS', '1')
            if r.random() < 0.1 and links == '1':
                os.link(p, p + 'h')
            elif r.random() < 0.15 and links == '2':  # the other name in a random directory
                os.link(p, os.path.join(d, r.choice(dirs), 'e%dh' % i))
    t = 1500000000
    for i, rel in enumerate(walk(d)):
        os.utime(os.path.join(d, rel), ns=(t + i * 10**9 + 7, t + i * 10**9 + 11), follow_symlinks=False)
    for rel in [x for x in walk(d) if os.path.isdir(os.path.join(d, x)) and not os.path.islink(os.path.join(d, x))] + ['']:
        os.utime(os.path.join(d, rel), ns=(t + 3, t + 5))


def ops(d, seed, n, progress=None):
    r = random.Random(seed * 7919 + 1)
    fifo = open(progress, 'w') if progress else None
    ctr = [0]

    def entries(kind=None):
        out = []
        for rel in walk(d):
            p = os.path.join(d, rel)
            try:
                m = os.lstat(p).st_mode
            except OSError:
                continue
            if kind is None or (kind == 'f' and stat.S_ISREG(m)) or (kind == 'd' and stat.S_ISDIR(m)):
                out.append(p)
        return out

    def fresh():
        ds = entries('d') + [d]
        ctr[0] += 1
        return os.path.join(r.choice(ds), 'g%d_%d' % (seed, ctr[0]))

    for i in range(n):
        try:
            k = r.randrange(15)
            fs, ds = entries('f'), entries('d')
            if k <= 1 and fs:      # small write anywhere, often into a big file
                p = r.choice(fs)
                size = os.path.getsize(p)
                with open(p, 'r+b') as f:
                    f.seek(r.randint(0, max(size, 1) - 1) if size else 0)
                    f.write(r.randbytes(r.randint(1, 100)))
            elif k == 2 and fs:    # append
                with open(r.choice(fs), 'ab') as f:
                    f.write(b'appended\n')
            elif k == 3 and fs:    # truncate
                p = r.choice(fs)
                os.truncate(p, r.randint(0, os.path.getsize(p) + 10))
            elif k == 4:           # create
                with open(fresh(), 'wb') as f:
                    f.write(r.randbytes(r.randint(0, 3000)))
            elif k == 5:           # unlink
                xs = [x for x in entries() if not os.path.isdir(x) or os.path.islink(x)]
                if xs:
                    os.unlink(r.choice(xs))
            elif k == 6:           # mkdir / rmdir
                if r.random() < 0.6:
                    os.mkdir(fresh())
                elif ds:
                    os.rmdir(r.choice(ds))
            elif k == 7 and fs:    # rename a file, maybe over another
                a = r.choice(fs)
                os.rename(a, r.choice(fs) if r.random() < 0.5 else fresh())
            elif k == 8 and ds:    # rename a directory, maybe over an empty one
                a = r.choice(ds)
                b = fresh()
                if not b.startswith(a + '/'):
                    os.rename(a, b)
            elif k == 9 and len(fs) > 1:
                a, b = r.sample(fs, 2)
                exchange(a, b)
            elif k == 10 and fs:
                os.link(r.choice(fs), fresh())
            elif k == 11:
                os.symlink(r.choice(['x', '../y', '/etc/passwd']), fresh())
            elif k == 12:
                xs = [x for x in entries() if not os.path.islink(x)]
                if xs:
                    p = r.choice(xs)
                    os.chmod(p, (0o700 if os.path.isdir(p) else 0o600) | r.choice([0, 0o44, 0o55]))
            elif k == 13:
                xs = entries()
                if xs:
                    os.utime(r.choice(xs), ns=(r.randint(0, 10**18), r.randint(0, 10**18)), follow_symlinks=False)
            elif k == 14 and fs:
                p = r.choice(fs)
                if r.random() < 0.5:
                    os.setxattr(p, 'user.n', r.randbytes(5))
                else:
                    os.removexattr(p, 'user.t')
        except OSError:
            pass  # the kernel said no (ENOTEMPTY, EISDIR...): that is a valid operation too
        if fifo:
            fifo.write('%d\n' % i)
            fifo.flush()


def dump(d):
    links = {}
    out = []
    for rel in [''] + walk(d):
        p = os.path.join(d, rel)
        st = os.lstat(p)
        line = '%s type=%o mode=%04o size=%d mtime=%d' % (rel or '.', stat.S_IFMT(st.st_mode),
                                                            stat.S_IMODE(st.st_mode),
                                                            st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                                                            st.st_mtime_ns)
        if os.getuid() == 0:
            line += ' owner=%d:%d' % (st.st_uid, st.st_gid)
        if stat.S_ISREG(st.st_mode):
            with open(p, 'rb') as f:
                line += ' sha=' + hashlib.sha256(f.read()).hexdigest()[:16]
            line += ' nlink=%d' % st.st_nlink
            if st.st_nlink > 1:
                line += ' group=' + links.setdefault(st.st_ino, rel)
        elif stat.S_ISLNK(st.st_mode):
            line += ' target=' + os.readlink(p)
        if not stat.S_ISLNK(st.st_mode):
            try:
                for x in sorted(os.listxattr(p)):
                    line += ' %s=%s' % (x, os.getxattr(p, x).hex())
            except OSError:
                pass
        out.append(line)
    print('\n'.join(out))


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'tree':
        tree(sys.argv[2], int(sys.argv[3]))
    elif cmd == 'ops':
        n = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4].isdigit() else 30
        prog = sys.argv[sys.argv.index('--progress') + 1] if '--progress' in sys.argv else None
        ops(sys.argv[2], int(sys.argv[3]), n, prog)
    elif cmd == 'dump':
        dump(sys.argv[2])
    else:
        sys.exit(__doc__)
