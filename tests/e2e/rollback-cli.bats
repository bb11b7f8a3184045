#!/usr/bin/env bats
# nono rollback list|show|restore|mount|verify|cleanup, driven on sessions recorded by rb-session (the
# records fs/ writes, made without FUSE), so the commands are tested on their own.
load helpers

setup() {
        common_setup
        RBS="$(dirname "$NONO")/../tests/unit/rollback/rb-session"
        GEN="$BATS_TEST_DIRNAME/helpers/rollback-gen.py"
        [ -x "$RBS" ] || skip "rb-session is not built"
        W="$T/w"
        mkdir -p "$W/d" "$NONO_HOME"
        printf 'line1\nline2\nline3\n' >"$W/a.txt"
        printf 'bin\0ary' >"$W/b.bin"
        echo keep >"$W/d/k"
        ln -s a.txt "$W/l"
        touch -d @1600000000 "$W/a.txt" "$W/b.bin" "$W/d/k" "$W/d" "$W"
        touch -h -d @1600000000 "$W/l"
}
teardown() { grep -qs " $T/" /proc/self/mounts && fusermount3 -u "$T/mnt" 2>/dev/null; common_teardown; }

session() { "$RBS" "$NONO_HOME" "$W" "$@"; }
standard() {
        session "write:a.txt:line1
CHANGED
line3
" "write:b.bin:x" "write:new.txt:hello
" rm:d/k chmod:a.txt:600 mv:l:l2 "$@"
}
dump() { python3 "$GEN" dump "$1"; }
# Waits for the mount's "mounted at" line on the fifo $T/ready (kept open on fd 5 for later messages).
wait_mounted() {
        exec 5<"$T/ready"
        local line
        while read -r line <&5; do [[ "$line" == *"mounted at"* ]] && return 0; done
        return 1
}

@test "rollback list shows a finished session with its counts; --json has the fields" {
        sid=$(standard)
        run "$NONO" rollback list
        [ "$status" -eq 0 ]
        [[ "$output" == *"$sid"*"finished"*" 1 "*" 3 "*" 1 "* ]]
        run "$NONO" rollback list --json
        [ "$status" -eq 0 ]
        echo "$output" | python3 -c '
import json, sys
s = json.load(sys.stdin)[-1]
assert s["state"] == "finished" and s["kind"] == "run", s
assert (s["created"], s["modified"], s["deleted"]) == (1, 3, 1), s
for k in ("id", "start_ns", "end_ns", "command", "preimage_bytes"): assert k in s, k
# times are exact integers in nanoseconds, not doubles rounded to 1.79e+18
assert type(s["start_ns"]) is int and type(s["end_ns"]) is int and s["end_ns"] >= s["start_ns"] > 10**18, s'
        [[ "$output" != *e+18* ]]
}

@test "rollback show --diff reads like git diff, without color when not on a tty" {
        sid=$(standard)
        run "$NONO" rollback show "$sid" --diff
        [ "$status" -eq 0 ]
        [[ "$output" == *"diff --git a/a.txt b/a.txt"*"old mode 100644"*"new mode 100600"*"--- a/a.txt"*"+++ b/a.txt"*"@@ -1,3 +1,3 @@"*" line1"*"-line2"*"+CHANGED"* ]]
        [[ "$output" == *"Binary files a/b.bin and b/b.bin differ"* ]]
        [[ "$output" == *"diff --git a/d/k b/d/k"*"deleted file mode 100644"*"+++ /dev/null"*"-keep"* ]]
        [[ "$output" == *"diff --git a/new.txt b/new.txt"*"new file mode 100644"*"--- /dev/null"*"+hello"* ]]
        [[ "$output" == *"rename from l"*"rename to l2"* ]]
        [[ "$output" != *$'\033['* ]]
}

@test "rollback show colors on a tty and respects NO_COLOR" {
        command -v script >/dev/null || skip "script(1) is not installed"
        sid=$(standard)
        run script -qec "'$NONO' rollback show $sid --diff" /dev/null
        [[ "$output" == *$'\033[32m+CHANGED'* ]]
        run env NO_COLOR=1 script -qec "'$NONO' rollback show $sid --diff" /dev/null
        [[ "$output" != *$'\033['* ]]
}

@test "rollback show lists changes, --stat counts them, PATH limits them, --json is stable" {
        sid=$(standard)
        run "$NONO" rollback show "$sid"
        [[ "$output" == *$'M\ta.txt'*$'D\td/k'* ]]
        [[ "$output" == *$'A\tnew.txt'* ]]
        run "$NONO" rollback show "$sid" --stat
        [[ "$output" == *"a.txt"*"| 2 +-"* ]]
        [[ "$output" == *"5 files changed, 2 insertions(+), 2 deletions(-)"* ]]
        run "$NONO" rollback show "$sid" --diff "$W/d"
        [[ "$output" == *"d/k"* ]]
        [[ "$output" != *"a.txt"* ]]
        run "$NONO" rollback show "$sid" --json
        echo "$output" | python3 -c '
import json, sys
j = json.load(sys.stdin)
kinds = sorted(c["change"] for c in j["changes"])
assert kinds == ["created", "deleted", "modified", "modified", "renamed"], kinds
a = [c for c in j["changes"] if c["path"] == "a.txt"][0]
assert a["before"]["mode"] == "0644" and a["after"]["mode"] == "0600", a'
}

@test "rollback restore --dry-run changes nothing; restore is exact and itself undoable" {
        before=$(dump "$W")
        sid=$(standard)
        after=$(dump "$W")
        run "$NONO" rollback restore "$sid" --dry-run
        [ "$status" -eq 0 ]
        [[ "$output" == *"remove"*"new.txt"* ]]
        [ "$(dump "$W")" = "$after" ]
        run "$NONO" rollback restore "$sid"
        [ "$status" -eq 0 ]
        [ "$(dump "$W")" = "$before" ]
        rid=$(echo "$output" | sed -n 's/^this restore is session \([0-9A-Z]*\):.*/\1/p')
        [ -n "$rid" ]
        run "$NONO" rollback list --json
        echo "$output" | python3 -c "
import json, sys
s = {x['id']: x for x in json.load(sys.stdin)}
assert s['$sid']['state'] == 'restored' and s['$rid']['kind'] == 'restore' and s['$rid']['parent'] == '$sid'"
        run "$NONO" rollback restore "$rid"
        [ "$status" -eq 0 ]
        [ "$(dump "$W" | grep -v '^\. ')" = "$(echo "$after" | grep -v '^\. ')" ]
}

@test "rollback restore stops on a conflict, lists it, and --force overrides" {
        before=$(dump "$W")
        sid=$(standard)
        echo "the user kept working" >"$W/a.txt"
        kept=$(dump "$W")
        run "$NONO" rollback restore "$sid"
        [ "$status" -eq 1 ]
        [[ "$output" == *"conflict: $W/a.txt"* ]]
        [[ "$output" == *"--force"* ]]
        [ "$(dump "$W")" = "$kept" ]
        run "$NONO" rollback restore "$sid" --force
        [ "$status" -eq 0 ]
        [ "$(dump "$W")" = "$before" ]
}

@test "rollback restore PATH restores only that path" {
        sid=$(standard)
        run "$NONO" rollback restore "$sid" "$W/d"
        [ "$status" -eq 0 ]
        [ "$(cat "$W/d/k")" = keep ]
        [ "$(cat "$W/new.txt")" = hello ]
        grep -q CHANGED "$W/a.txt"
        run "$NONO" rollback restore "$sid" "$T/elsewhere"
        [ "$status" -eq 1 ]
        [[ "$output" == *"not inside any root"* ]]
}

@test "rollback restore refuses a running session; a crashed one is listed as crashed and restorable" {
        sid=$(session "write:a.txt:agent" "owner:$$")
        run "$NONO" rollback restore "$sid"
        [ "$status" -eq 1 ]
        [[ "$output" == *"still running"* ]]
        printf 'line1\nline2\nline3\n' >"$W/a.txt"
        touch -d @1600000000 "$W/a.txt"
        before=$(dump "$W")
        sid=$(session "write:a.txt:agent" "write:n:new" crashed)
        run "$NONO" rollback list
        [[ "$output" == *"$sid"*"crashed"* ]]
        run "$NONO" rollback restore "$sid"
        [ "$status" -eq 0 ]
        [ "$(dump "$W" | grep -v '^\. ')" = "$(echo "$before" | grep -v '^\. ')" ]
}

@test "rollback restore killed at every step completes when run again" {
        before=$(dump "$W")
        for k in $(seq 0 100); do
                rm -rf "$W" "$NONO_HOME"
                mkdir -p "$W/d" "$NONO_HOME"
                printf 'line1\nline2\nline3\n' >"$W/a.txt"
                printf 'bin\0ary' >"$W/b.bin"
                echo keep >"$W/d/k"
                ln -s a.txt "$W/l"
                touch -d @1600000000 "$W/a.txt" "$W/b.bin" "$W/d/k" "$W/d" "$W"
                touch -h -d @1600000000 "$W/l"
                sid=$(standard mv:d:d2)
                run env NONO_TEST_RESTORE_KILL_AFTER=$k "$NONO" rollback restore "$sid"
                if [ "$status" -eq 0 ]; then break; fi
                [ "$status" -eq 137 ]
                run "$NONO" rollback restore "$sid"
                [ "$status" -eq 0 ]
                [[ "$output" == *"completing the interrupted restore"* ]]
                [ "$(dump "$W")" = "$before" ] || { echo "killed after $k steps"; diff <(echo "$before") <(dump "$W"); false; }
        done
        [ "$k" -gt 5 ]
        [ "$(dump "$W")" = "$before" ]
}

@test "rollback verify checks every object against its SHA-256" {
        sid=$(standard)
        run "$NONO" rollback verify "$sid"
        [ "$status" -eq 0 ]
        [[ "$output" == *"ok (3 objects"* ]]
        run "$NONO" rollback verify NOSUCHID
        [ "$status" -eq 1 ]
}

@test "rollback cleanup --keep removes old sessions, never breaks a kept one, --dry-run removes nothing" {
        before=$(dump "$W")
        old=$(session "write:a.txt:same content in both")
        printf 'line1\nline2\nline3\n' >"$W/a.txt"
        touch -d @1600000000 "$W/a.txt"
        kept=$(session "write:a.txt:same content in both")
        run "$NONO" rollback cleanup --keep 1 --dry-run
        [ "$status" -eq 0 ]
        [[ "$output" == *"would remove $old"* ]]
        "$NONO" rollback list | grep -q "$old"
        run "$NONO" rollback cleanup --keep 1
        [ "$status" -eq 0 ]
        [[ "$output" == *"removed 1 session(s), kept 1"* ]]
        ! "$NONO" rollback list | grep -q "$old"
        run "$NONO" rollback verify "$kept"
        [ "$status" -eq 0 ]
        run "$NONO" rollback restore "$kept"
        [ "$status" -eq 0 ]
        [ "$(cat "$W/a.txt")" = "$(printf 'line1\nline2\nline3')" ]
}

@test "rollback cleanup reads the retention config and rejects a bad one by name" {
        session "write:a.txt:x" >/dev/null
        mkdir -p "$XDG_CONFIG_HOME/nono"
        echo '{"rollback": {"keep": "ten"}}' >"$XDG_CONFIG_HOME/nono/config.json"
        run "$NONO" rollback cleanup
        [ "$status" -eq 1 ]
        [[ "$output" == *"config.json: rollback.keep must be a number"* ]]
        echo '{"rollback": {"keep": 0, "max_bytes": null}}' >"$XDG_CONFIG_HOME/nono/config.json"
        run "$NONO" rollback cleanup
        [ "$status" -eq 0 ]
        [[ "$output" == *"removed 0 session(s), kept 1"* ]] # the newest session is always kept
}

@test "rollback mount shows the tree as it was before, and --after as the session left it, read-only" {
        [ -w /dev/fuse ] || skip "/dev/fuse is not usable here"
        command -v fusermount3 >/dev/null || skip "fusermount3 is not installed"
        sid=$(standard)
        mkdir "$T/mnt"
        mkfifo "$T/ready"
        "$NONO" rollback mount "$sid" "$T/mnt" 2>"$T/ready" &
        wait_mounted
        [ "$(cat "$T/mnt/a.txt")" = "$(printf 'line1\nline2\nline3')" ]
        [ "$(cat "$T/mnt/d/k")" = keep ]
        [ "$(readlink "$T/mnt/l")" = a.txt ]
        [ ! -e "$T/mnt/new.txt" ]
        [ "$(stat -c %a "$T/mnt/a.txt")" = 644 ]
        ! touch "$T/mnt/x" 2>/dev/null
        fusermount3 -u "$T/mnt"
        wait
        "$NONO" rollback mount "$sid" "$T/mnt" --after 2>"$T/ready" &
        wait_mounted
        grep -q CHANGED "$T/mnt/a.txt"
        [ "$(cat "$T/mnt/new.txt")" = hello ]
        [ ! -e "$T/mnt/d/k" ]
        fusermount3 -u "$T/mnt"
        wait
}

@test "rollback mount reports a file it cannot reproduce instead of showing wrong bytes" {
        [ -w /dev/fuse ] || skip "/dev/fuse is not usable here"
        command -v fusermount3 >/dev/null || skip "fusermount3 is not installed"
        head -c 300000 /dev/urandom >"$W/big"
        sid=$(session "poke:big:70000:XYZ")
        echo "the user replaced it" >"$W/big" # only the changed block was kept: the rest is gone
        mkdir "$T/mnt"
        mkfifo "$T/ready"
        "$NONO" rollback mount "$sid" "$T/mnt" 2>"$T/ready" &
        wait_mounted
        run cat "$T/mnt/big"
        [ "$status" -ne 0 ]
        [[ "$output" == *"Input/output error"* ]]
        read -r msg <&5
        [[ "$msg" == *"big: only its changed blocks were kept"* ]]
        fusermount3 -u "$T/mnt"
        wait
}

@test "a second restore or cleanup while one holds the store's rollback lock is refused, changing nothing" {
        command -v flock >/dev/null || skip "flock(1) is not installed"
        before=$(dump "$W")
        sid=$(standard)
        after=$(dump "$W")
        lock="$NONO_HOME/store/rollback.lock"
        # flock(1) holds the lock the way a running restore does; nono, started under it, must refuse
        run flock -x "$lock" "$NONO" rollback restore "$sid"
        [ "$status" -eq 1 ]
        [[ "$output" == *"another nono"*"is restoring or cleaning up sessions in this store: let it finish"* ]]
        [ "$(dump "$W")" = "$after" ]
        run "$NONO" rollback list --json
        python3 -c 'import json,sys; s=json.load(sys.stdin); assert len(s)==1 and s[0]["state"]=="finished", s' <<<"$output"
        run flock -x "$lock" "$NONO" rollback cleanup --keep 0
        [ "$status" -eq 1 ]
        [[ "$output" == *"another nono"*"let it finish"* ]]
        # a dry run reads only and is not blocked
        run flock -x "$lock" "$NONO" rollback restore "$sid" --dry-run
        [ "$status" -eq 0 ]
        # once the lock is free, the same restore works
        run "$NONO" rollback restore "$sid"
        [ "$status" -eq 0 ]
        [ "$(dump "$W" | grep -v '^\. ')" = "$(echo "$before" | grep -v '^\. ')" ]
}

@test "two restores of one session started together: one restores, the other is refused or finds nothing to do" {
        before=$(dump "$W")
        sid=$(standard)
        "$NONO" rollback restore "$sid" >"$T/a" 2>&1 &
        a=$!
        "$NONO" rollback restore "$sid" >"$T/b" 2>&1 &
        b=$!
        sa=0; wait "$a" || sa=$?
        sb=0; wait "$b" || sb=$?
        cat "$T/a" "$T/b"
        [ $((sa == 0 ? 1 : 0)) -eq 1 ] || [ "$sb" -eq 0 ]
        [ "$(dump "$W" | grep -v '^\. ')" = "$(echo "$before" | grep -v '^\. ')" ]
        # never a half-made restore session left behind
        run "$NONO" rollback list --json
        python3 -c 'import json,sys; s=json.load(sys.stdin); assert all(x["state"] != "crashed" for x in s), s' <<<"$output"
}
