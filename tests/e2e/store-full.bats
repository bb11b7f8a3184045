#!/usr/bin/env bats
# A --rollback session whose store fills up: the change that cannot get its pre-image is refused (the file
# is untouched), the user is told what to do, the session stays listed, a restore that has no room for its
# undo refuses cleanly, and smaller changes still work and restore. The store is put on a 3 MiB tmpfs, which needs root (as uid 65534 these tests skip).
load helpers
bats_require_minimum_version 1.5.0

setup() {
        common_setup
        run_setup
        is_root || skip "mounting a small tmpfs for the store needs root"
        mkdir -p "$NONO_HOME"
        mount -t tmpfs -o size=3m,mode=0700 tmpfs "$NONO_HOME"
        head -c $((8 << 20)) /dev/urandom >"$W/big"
        echo small >"$W/s"
        sum=$(sha256sum "$W/big")
}

teardown() {
        is_root && umount "$NONO_HOME" 2>/dev/null
        common_teardown
}

@test "store full: a truncate whose pre-image does not fit is refused, the file is intact, the fix is named" {
        run "$NONO" run --rollback -- sh -c ': > big'
        [ "$status" -ne 0 ]
        [[ "$output" == *"disk is full"* ]]
        [[ "$output" == *"nono rollback cleanup"* ]]
        [[ "$output" == *"No space left on device"* ]] # what the agent itself was told
        [ "$(sha256sum "$W/big")" = "$sum" ]
        # the session is there, finished; restoring it needs room for its own undo: refused the same way,
        # changing nothing and leaving no half-made restore session behind
        # the session is listed: finished, or "crashed" when not even its end record fitted in what the refused
        # pre-image left (its chunks captured before the disk filled stay with it; how much room is left varies)
        run "$NONO" rollback list --json
        [ "$status" -eq 0 ]
        id=$(python3 -c 'import json,sys; s=json.load(sys.stdin); assert len(s)==1 and s[0]["state"] in ("finished", "crashed"), s; print(s[0]["id"])' <<<"$output")
        run "$NONO" rollback restore "$id"
        [ "$status" -eq 1 ]
        [[ "$output" == *"nothing was changed"*"disk is full"*"nono rollback cleanup"* ]]
        [ "$(sha256sum "$W/big")" = "$sum" ]
        run "$NONO" rollback list --json
        python3 -c 'import json,sys; s=json.load(sys.stdin); assert len(s)==1, s' <<<"$output"
}

@test "store full: after a refused change, a new session records and restores a small change, or refuses it naming the fix: nothing is lost either way" {
        run "$NONO" run --rollback -- sh -c ': > big'
        [ "$status" -ne 0 ]
        # What is left of the store is what the refused pre-image did not use, which varies: the chunks it
        # captured before the disk filled stay with its session (the newest, which retention keeps). A
        # cleanup frees what nothing references at once (no session is running).
        run "$NONO" rollback cleanup
        [ "$status" -eq 0 ]
        [[ "$output" == *"removed 0 session(s), kept 1"* ]]
        run "$NONO" run --rollback -- sh -c 'echo more >> s'
        if [ "$status" -eq 0 ]; then
                [ "$(cat "$W/s")" = "$(printf 'small\nmore')" ]
                id=$("$NONO" rollback list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
                run "$NONO" rollback restore "$id"
                [ "$status" -eq 0 ]
                [ "$(cat "$W/s")" = small ]
        else
                [[ "$output" == *"disk is full"*"nono rollback cleanup"* ]]
                [ "$(cat "$W/s")" = small ] # refused before the change
        fi
        [ "$(sha256sum "$W/big")" = "$sum" ]
}
