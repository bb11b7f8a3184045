#!/usr/bin/env bats
# nono __fs-mount: the hidden test command that serves a directory through fs/ (as `nono run` does).
load helpers
setup() {
        common_setup
        mkdir -p "$T/root" "$T/mnt"
        echo original >"$T/root/file"
}
teardown() {
        [ -n "${FSPID:-}" ] && kill "$FSPID" 2>/dev/null && wait "$FSPID" 2>/dev/null
        fusermount3 -u -q -z "$T/mnt" 2>/dev/null || true
        common_teardown
}

# fs_mount ARGS...: starts `nono __fs-mount ARGS... ROOT MNT` and waits (on a pipe) until it serves.
fs_mount() {
        mkfifo "$T/ready"
        "$NONO" __fs-mount "$@" "$T/root" "$T/mnt" >"$T/ready" 2>"$T/stderr" &
        FSPID=$!
        read -r line <"$T/ready"
        [[ "$line" == ready* ]]
}

@test "__fs-mount serves the root and stops cleanly on SIGTERM" {
        fs_mount --no-record
        [ "$(cat "$T/mnt/file")" = original ]
        echo changed >"$T/mnt/file"
        mkdir "$T/mnt/dir"
        [ "$(cat "$T/root/file")" = changed ]
        [ -d "$T/root/dir" ]
        kill -TERM "$FSPID"
        wait "$FSPID"
        FSPID=
        ! mountpoint -q "$T/mnt"
}

@test "__fs-mount ends when unmounted with fusermount3 -u" {
        fs_mount --no-record
        ls "$T/mnt" >/dev/null
        fusermount3 -u "$T/mnt" || umount "$T/mnt"
        wait "$FSPID"
        FSPID=
}

@test "__fs-mount --read-only refuses writes with EROFS" {
        fs_mount --no-record --read-only
        run sh -c "echo x >'$T/mnt/file'"
        [ "$status" -ne 0 ]
        [[ "$output" == *"Read-only file system"* ]]
        [ "$(cat "$T/root/file")" = original ]
}

@test "__fs-mount --deny hides and protects matching paths" {
        echo SECRET=1 >"$T/root/.env"
        mkdir -p "$T/root/.git/hooks"
        fs_mount --no-record --deny .env:r --deny '.git/hooks/**:w'
        run cat "$T/mnt/.env"
        [ "$status" -ne 0 ]
        [[ "$output" == *"Permission denied"* ]]
        run sh -c "echo evil >'$T/mnt/.git/hooks/pre-commit'"
        [ "$status" -ne 0 ]
        [ ! -e "$T/root/.git/hooks/pre-commit" ]
}

@test "__fs-mount rejects a bad --deny and a missing root with a clear message" {
        run "$NONO" __fs-mount --deny nocolon "$T/root" "$T/mnt"
        [ "$status" -ne 0 ]
        [[ "$output" == *"PATTERN:r"* ]]
        run "$NONO" __fs-mount --no-record "$T/missing" "$T/mnt"
        [ "$status" -ne 0 ]
        [[ "$output" == *"missing"* ]]
}

@test "__fs-mount records into a new session and --rollback keeps pre-images" {
        fs_mount --rollback
        [[ "$line" =~ ^ready\ [0-9A-Z]{13}$ ]]
        echo changed >"$T/mnt/file"
        rm "$T/mnt/file"
        ls -a "$T/mnt" >"$T/listing"
        ! grep -q nono-stash "$T/listing"
        kill -TERM "$FSPID"
        wait "$FSPID"
        FSPID=
        [ ! -e "$T/root/file" ]
        [ -d "$NONO_HOME/store" ]
}
