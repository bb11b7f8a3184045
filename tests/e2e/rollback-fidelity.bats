#!/usr/bin/env bats
# Fidelity and crash tests of the whole pipeline: a random tree, a random agent (helpers/rollback-gen.py)
# working through fs/ with pre-images on, `nono rollback restore`, then an exact comparison with the dump
# taken before (content, type, mode, times, xattrs, link targets, link counts, hard-link groups).
#
# The agent runs under `nono run --rollback` when that works on this machine, else through the hidden
# `nono __fs-mount --rollback` (the same fs/ and store/ without the sandbox). Seeds: NONO_TEST_SEEDS
# (default 10 here, each a full mount/agent/restore cycle; the engine's own randomized unit test runs 100).
load helpers

setup() {
        common_setup
        GEN="$BATS_TEST_DIRNAME/helpers/rollback-gen.py"
        [ -w /dev/fuse ] || skip "/dev/fuse is not usable here"
        command -v fusermount3 >/dev/null || skip "fusermount3 is not installed"
        "$NONO" __fs-mount 2>&1 | grep -q "usage: nono __fs-mount" || skip "nono __fs-mount is not built"
        mkdir -p "$NONO_HOME"
        cp "$GEN" "$T/gen.py"
}
teardown() {
        [ -n "${MNT:-}" ] && grep -qs " $MNT " /proc/self/mounts && fusermount3 -u "$MNT"
        common_teardown
}

dump() { python3 "$GEN" dump "$1"; }
seeds() { echo "${NONO_TEST_SEEDS:-10}"; }

# Serves $1 through fs/ with pre-images at $T/mnt; sets SID and FSPID; waits for "ready".
mount_fs() {
        MNT="$T/mnt"
        mkdir -p "$MNT"
        rm -f "$T/ready"
        mkfifo "$T/ready"
        "$NONO" __fs-mount --rollback "$1" "$MNT" >"$T/ready" 2>"$T/fs.err" &
        FSPID=$!
        local line
        read -r line <"$T/ready"
        [[ "$line" == "ready "* ]] || { cat "$T/fs.err"; return 1; }
        SID=${line#ready }
}

unmount_fs() {
        fusermount3 -u "$MNT"
        wait "$FSPID"
}

# Trees with hard links made before the session whose other name is in a random directory, often one the
# session never records (ROLLBACK_GEN_HARDLINKS=2; fs/ keeps such an inode reachable, see the tests
# below; main before that failed at seed 24 of 30). Every seed runs; the failing ones are listed at the end
# (one run finds them all).
@test "fidelity: random agent sessions through fs/ restore exactly (NONO_TEST_SEEDS seeds)" {
        local failed=""
        for seed in $(seq 1 "$(seeds)"); do
                W="$T/w$seed"
                ROLLBACK_GEN_HARDLINKS=${ROLLBACK_GEN_HARDLINKS:-2} python3 "$GEN" tree "$W" "$seed"
                before=$(dump "$W")
                mount_fs "$W"
                python3 "$T/gen.py" ops "$MNT" "$seed" 40
                unmount_fs
                run "$NONO" rollback restore "$SID"
                if [ "$status" -ne 0 ] || [ "$(dump "$W")" != "$before" ]; then
                        echo "seed $seed failed (session $SID): $output"
                        diff <(echo "$before") <(dump "$W") || true
                        failed="$failed $seed"
                fi
                rm -rf "$W"
        done
        [ -z "$failed" ] || { echo "failing seeds:$failed"; false; }
}

# fs/ records every other name of a multiply-linked file that it finds in the directory it reached the file
# through and in the directories the session recorded, before the first change: restore brings them back as
# one inode with the start content.
@test "fidelity: a file with two names, written through one that is then removed" {
        W="$T/w"
        mkdir -p "$W"
        echo original >"$W/a"
        ln "$W/a" "$W/b"
        before=$(dump "$W")
        mount_fs "$W"
        echo changed >"$MNT/b"
        rm "$MNT/b"
        [ "$(cat "$W/a")" = changed ]
        unmount_fs
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

@test "fidelity: a file with names in two directories, written through one that is then removed" {
        W="$T/w"
        mkdir -p "$W/d1" "$W/d2"
        echo original >"$W/d1/a"
        ln "$W/d1/a" "$W/d2/b"
        before=$(dump "$W")
        mount_fs "$W"
        touch "$MNT/d2/new" # d2 gets a node: a recorded directory
        echo changed >>"$MNT/d1/a"
        rm "$MNT/d1/a"
        [ "$(cat "$W/d2/b")" = "$(printf 'original\nchanged')" ]
        unmount_fs
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

# A name in a directory the session never recorded (d2/b): fs/ cannot find it, so it links the inode into
# its stash (h<node>) at the first change; restore writes the start content into that inode and links the
# recorded name to it again. Three ways an agent changes such a file: in place, in place then removing the
# name, and an editor's save (a new file renamed over the name).
@test "fidelity: a hard link in a directory the session never recorded gets the start content back" {
        for how in inplace remove replace; do
                W="$T/w-$how"
                mkdir -p "$W/d1" "$W/d2"
                echo original >"$W/d1/a"
                ln "$W/d1/a" "$W/d2/b"
                before=$(dump "$W")
                mount_fs "$W"
                echo changed >>"$MNT/d1/a"
                case $how in
                remove) rm "$MNT/d1/a" ;;
                replace)
                        echo saved >"$MNT/d1/.a.swp"
                        mv "$MNT/d1/.a.swp" "$MNT/d1/a"
                        ;;
                esac
                unmount_fs
                [ "$(cat "$W/d2/b")" = "$(printf 'original\nchanged')" ]
                # fs/ keeps its stash name only when no recorded path leads to the inode any more
                local kept
                kept=$(find "$T" -maxdepth 2 -path "$T/..nono-stash.$SID.*/h*" | wc -l)
                if [ "$how" = inplace ]; then
                        [ "$kept" -eq 0 ] && [ "$(stat -c %h "$W/d2/b")" -eq 2 ] # d1/a, d2/b
                        # nothing left for restore: fs/ removed its stash directory
                        [ -z "$(find "$T" -maxdepth 1 -name "..nono-stash.$SID.*")" ]
                else
                        [ "$kept" -eq 1 ] && [ "$(stat -c %h "$W/d2/b")" -eq 2 ] # d2/b, the stash name
                fi
                run "$NONO" rollback restore "$SID"
                [ "$status" -eq 0 ] || { echo "$how: $output"; false; }
                [[ "$output" != *"note:"* ]] || { echo "$how: $output"; false; }
                [ "$(cat "$W/d2/b")" = original ]
                [ "$W/d1/a" -ef "$W/d2/b" ]
                [ "$(stat -c %h "$W/d2/b")" -eq 2 ]
                [ -z "$(find "$T" -maxdepth 1 -name "..nono-stash.$SID.*")" ]
                diff <(echo "$before") <(dump "$W") || { echo "$how"; false; }
                # undoing the restore gives the unrecorded name the agent's content again
                rid=$(echo "$output" | sed -n 's/^this restore is session \([0-9A-Z]*\):.*/\1/p')
                run "$NONO" rollback restore "$rid"
                [ "$status" -eq 0 ] || { echo "$how undo: $output"; false; }
                [ "$(cat "$W/d2/b")" = "$(printf 'original\nchanged')" ] || { echo "$how undo"; false; }
                case $how in
                inplace) [ "$W/d1/a" -ef "$W/d2/b" ] ;;
                remove) [ ! -e "$W/d1/a" ] ;;
                replace) [ "$(cat "$W/d1/a")" = saved ] ;;
                esac
        done
}

# A session that is removed without being restored takes fs/'s stash name of such an inode with it.
@test "fidelity: removing a session removes fs/'s stash names of its multiply-linked files" {
        W="$T/w"
        mkdir -p "$W/d1" "$W/d2"
        echo original >"$W/d1/a"
        ln "$W/d1/a" "$W/d2/b"
        mount_fs "$W"
        echo changed >>"$MNT/d1/a"
        rm "$MNT/d1/a"
        unmount_fs
        first=$SID
        [ "$(stat -c %h "$W/d2/b")" -eq 2 ]
        mount_fs "$W"
        echo more >>"$MNT/d2/b"
        unmount_fs
        run "$NONO" rollback cleanup --keep 1
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        [[ "$output" == *"removed $first"* ]] || { echo "$output"; false; }
        [ -z "$(find "$T" -maxdepth 1 -name "..nono-stash.$first.*")" ]
        [ "$(stat -c %h "$W/d2/b")" -eq 1 ]
}

# When fs/ could not keep the inode (here: its stash name removed by hand), restore makes the recorded name
# anew and says that the other name is no longer a link of it, rather than leaving the user to discover it.
@test "fidelity: a hard link restore could not reach is reported, not silently split" {
        W="$T/w"
        mkdir -p "$W/d1" "$W/d2"
        echo original >"$W/d1/a"
        ln "$W/d1/a" "$W/d2/b"
        mount_fs "$W"
        echo changed >>"$MNT/d1/a"
        rm "$MNT/d1/a"
        unmount_fs
        rm -f "$T"/..nono-stash."$SID".*/h*
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        [[ "$output" == *"note: $W/d1/a had 2 names (hard links) at the session start and the session recorded 1"* ]] || { echo "$output"; false; }
        [[ "$output" == *"1 other name(s)"*"ln -f"* ]]
        [ "$(cat "$W/d1/a")" = original ]
}

# Regression (fidelity seed 126 with NONO_TEST_SEEDS=200): an untracked directory below a moved one gets its
# times back although, when the restore is planned, it is at the moved directory's live path.
@test "fidelity: an untracked directory inside a renamed directory keeps its times" {
        W="$T/w"
        mkdir -p "$W/e3/e4/e6"
        echo x >"$W/e3/e4/e6/e14"
        touch -d @1500000000 "$W/e3/e4/e6/e14" "$W/e3/e4/e6" "$W/e3/e4" "$W/e3"
        before=$(dump "$W")
        mount_fs "$W"
        echo y >>"$MNT/e3/e4/e6/e14"
        mv "$MNT/e3/e4/e6/e14" "$MNT/e3/e4/e6/e15"
        mv "$MNT/e3" "$MNT/g7"
        unmount_fs
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

# Regression (fidelity seed 10): a directory moved into another moved directory, whose parent is then
# renamed. The post-images at the record paths no longer lead to the live inodes; fs/ must locate them at
# their current paths, or their untouched entries are lost on restore.
@test "fidelity: directories moved into a directory that is then renamed keep their untouched entries" {
        W="$T/w"
        mkdir -p "$W/A/B" "$W/C" "$W/D"
        echo keep >"$W/A/B/keep"
        echo c1 >"$W/C/c1"
        before=$(dump "$W")
        mount_fs "$W"
        mv "$MNT/C" "$MNT/A/newc"
        mv "$MNT/A/B" "$MNT/A/newc/b"
        mv "$MNT/A" "$MNT/D/a2"
        [ "$(cat "$MNT/D/a2/newc/b/keep")" = keep ]
        unmount_fs
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

@test "crash: nono killed during the session, then restore: exact" {
        local failed=""
        for seed in $(seq 1 $(( ($(seeds) + 3) / 4 ))); do
                W="$T/w$seed"
                ROLLBACK_GEN_HARDLINKS=${ROLLBACK_GEN_HARDLINKS:-2} python3 "$GEN" tree "$W" "$seed"
                before=$(dump "$W")
                mount_fs "$W"
                mkfifo "$T/progress$seed"
                python3 "$T/gen.py" ops "$MNT" "$seed" 40 --progress "$T/progress$seed" &
                agent=$!
                # kill nono after a seed-chosen number of operations: an event, not a clock
                n=$(( seed * 7 % 40 ))
                exec 6<"$T/progress$seed"
                for i in $(seq 0 "$n"); do read -r _ <&6 || break; done
                kill -9 "$FSPID"
                wait "$FSPID" || true
                exec 6<&-
                wait "$agent" || true # its next access fails with ENOTCONN
                fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
                run "$NONO" rollback list
                [[ "$output" == *"$SID"*"crashed"* ]]
                run "$NONO" rollback restore "$SID"
                if [ "$status" -ne 0 ] || [ "$(dump "$W")" != "$before" ]; then
                        echo "seed $seed (killed after $n operations) failed: $output"
                        diff <(echo "$before") <(dump "$W") || true
                        failed="$failed $seed"
                fi
                rm -rf "$W"
        done
        [ -z "$failed" ] || { echo "failing seeds:$failed"; false; }
}

# Regression (crash seed 4 with NONO_TEST_SEEDS=40): fs/ records no names inside a directory the session
# created; after a crash there is no end state to tell them from later work, and restore must not refuse.
@test "crash: names inside a directory the session created are removed by restore, not conflicts" {
        W="$T/w"
        mkdir -p "$W/keep"
        echo a >"$W/keep/a"
        before=$(dump "$W")
        mount_fs "$W"
        mkdir "$MNT/new" "$MNT/new/sub"
        echo x >"$MNT/new/sub/f"
        ln -s ../y "$MNT/new/l"
        echo changed >"$MNT/keep/a"
        kill -9 "$FSPID"
        wait "$FSPID" || true
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

# Regression (crash seed 8 with NONO_TEST_SEEDS=32): a crashed session's interim post-image names a moved
# directory at its target's *start* path (e6/e15/g5: the parent e6/e15 had itself been moved to g3).
# Restore must find it through the live location of that parent, or e6's untouched entries are lost.
@test "crash: a directory moved into a directory that had been moved keeps its untouched entries" {
        W="$T/w"
        mkdir -p "$W/e6/e15"
        echo untouched >"$W/e6/e10"
        echo other >"$W/e6/e15/x"
        before=$(dump "$W")
        mount_fs "$W"
        mv "$MNT/e6" "$MNT/g1"
        mv "$MNT/g1/e15" "$MNT/g3"
        mv "$MNT/g1" "$MNT/g3/g5"
        [ "$(cat "$MNT/g3/g5/e10")" = untouched ]
        kill -9 "$FSPID"
        wait "$FSPID" || true
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

# Regression (crash seed 9 with NONO_TEST_SEEDS=200): a recorded directory that only moved with its parent
# has no post-image; a crashed session's last creation inside it may have no record of its own. Restore
# must find the directory through its parent's live location and remove what was not there at the start.
@test "crash: a file created in a directory that moved with its parent is removed" {
        W="$T/w"
        mkdir -p "$W/e4/e5/e18" "$W/e6"
        echo keep >"$W/e4/e5/e18/keep"
        before=$(dump "$W")
        mount_fs "$W"
        echo a >"$MNT/e4/e5/e18/new1"
        mv "$MNT/e4" "$MNT/g2"
        mv "$MNT/g2/e5" "$MNT/e6/g6"
        echo b >"$MNT/e6/g6/e18/new2"
        kill -9 "$FSPID"
        wait "$FSPID" || true
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

# Regression (crash seed 33 with NONO_TEST_SEEDS=200): a directory moved into a directory the session had
# created (and then moved) has no record of where it went; restore finds it there by its names, or its
# untouched entries are lost.
@test "crash: a directory moved into a directory the session created keeps its untouched entries" {
        W="$T/w"
        mkdir -p "$W/e8/e10" "$W/e2"
        echo keep >"$W/e8/e14"
        echo deep >"$W/e8/e10/e22"
        echo other >"$W/e2/x"
        before=$(dump "$W")
        mount_fs "$W"
        mkdir "$MNT/e8/e10/g2"
        mv "$MNT/e8/e10/g2" "$MNT/e2/g4"
        mv "$MNT/e8" "$MNT/e2/g4/g5"
        [ "$(cat "$MNT/e2/g4/g5/e14")" = keep ]
        kill -9 "$FSPID"
        wait "$FSPID" || true
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
        run "$NONO" rollback restore "$SID"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        diff <(echo "$before") <(dump "$W")
}

@test "crash: a restore killed at every step of a real session completes when run again" {
        seed=3
        W="$T/w"
        python3 "$GEN" tree "$W" "$seed"
        before=$(dump "$W")
        mount_fs "$W"
        python3 "$T/gen.py" ops "$MNT" "$seed" 25
        unmount_fs
        cp -a "$W" "$T/after-session"
        cp -a "$NONO_HOME" "$T/home-after-session"
        for k in $(seq 0 7 400); do # every 7th step: a spread of points in every phase, in bounded time
                run env NONO_TEST_RESTORE_KILL_AFTER=$k "$NONO" rollback restore "$SID"
                if [ "$status" -eq 0 ]; then break; fi
                [ "$status" -eq 137 ]
                run "$NONO" rollback restore "$SID"
                [ "$status" -eq 0 ] || { echo "killed after $k steps: $output"; false; }
                [ "$(dump "$W")" = "$before" ] || { echo "killed after $k steps"; diff <(echo "$before") <(dump "$W"); false; }
                rm -rf "$W" "$NONO_HOME"
                cp -a "$T/after-session" "$W"
                cp -a "$T/home-after-session" "$NONO_HOME"
        done
        [ "$(dump "$W")" = "$before" ]
}

@test "fidelity under nono run --rollback: a random agent in the sandbox, restored exactly (NONO_TEST_SEEDS, default 100)" {
        local failed=""
        for seed in $(seq 1 "${NONO_TEST_SEEDS:-100}"); do
                W="$T/w$seed"
                ROLLBACK_GEN_HARDLINKS=${ROLLBACK_GEN_HARDLINKS:-2} python3 "$GEN" tree "$W" "$seed"
                before=$(dump "$W")
                cd "$W"
                run timeout 60 "$NONO" run --rollback --read "$T" -- python3 "$T/gen.py" ops "$W" "$seed" 30
                [ "$status" -ne 124 ] || skip "nono run --rollback did not finish within 60 s on this build"
                if [ "$status" -ne 0 ]; then
                        echo "seed $seed: the agent failed ($status): $output"
                        failed="$failed $seed"
                        cd "$T"
                        continue
                fi
                sid=$("$NONO" rollback list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
                cd "$T"
                run "$NONO" rollback restore "$sid"
                if [ "$status" -ne 0 ] || [ "$(dump "$W")" != "$before" ]; then
                        echo "seed $seed failed (session $sid): $output"
                        diff <(echo "$before") <(dump "$W") || true
                        failed="$failed $seed"
                fi
                rm -rf "$W"
        done
        [ -z "$failed" ] || { echo "failing seeds:$failed"; false; }
}

# Regression (fidelity seed 91 under nono run, 100 seeds): a file's other name lives in a directory that
# had no record when the file was first changed, and that directory is renamed later: restore took the
# other name for the first one moved, and left one name instead of two.
@test "fidelity: a hard link's other name in a directory renamed after the file changed comes back" {
        W="$T/w"
        mkdir -p "$W/e2" "$W/g"
        echo hello >"$W/e4"
        ln "$W/e4" "$W/e2/e4h"
        echo other >"$W/e2/o"
        before=$(dump "$W")
        cd "$W"
        run "$NONO" run --rollback -- sh -c 'rm e4; mv e2 g/y; echo more >> g/y/e4h'
        [ "$status" -eq 0 ]
        sid=$("$NONO" rollback list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
        cd "$T"
        run "$NONO" rollback restore "$sid"
        [ "$status" -eq 0 ]
        [ "$(dump "$W")" = "$before" ]
        [ "$(stat -c %i "$W/e4")" = "$(stat -c %i "$W/e2/e4h")" ]
}
