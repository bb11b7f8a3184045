#!/usr/bin/env bats
# The session record of `nono run` in the store: there from before the agent starts, finished with the
# agent's exit status after.
load helpers
bats_require_minimum_version 1.5.0

: "${NONO_SESSIONS:=$BATS_TEST_DIRNAME/../../build/tests/unit/launcher/nono-sessions}"

setup() {
        common_setup
        run_setup
        [ -x "$NONO_SESSIONS" ] || skip "store/ is not built in"
}

# A test that fails while its agent still waits for a signal must not leave it running: bats would wait for
# its output forever.
teardown() {
        [ -z "${bg:-}" ] || kill -KILL "$bg" 2>/dev/null || true
        common_teardown
}

wait_file() {
        for _ in $(seq 400); do [ -e "$1" ] && return 0; sleep 0.025; done
        return 1
}

@test "session: recorded as running before the agent runs, finished with its status after" {
        # The agent waits for SIGUSR1, forwarded by nono (no fifo or file: under fs/ a fifo is local to the
        # FUSE mount, and what the host creates meanwhile need not be visible inside).
        "$NONO" run --rollback -- sh -c 'trap "exit 3" USR1; echo > started; while :; do sleep 0.02; done' &
        pid=$! bg=$!
        wait_file "$W/started"
        run "$NONO_SESSIONS"
        [ "$status" -eq 0 ]
        [ "${#lines[@]}" -eq 1 ]
        read -r id state code rb argv0 rest <<<"${lines[0]}"
        [ "$state" = running ]
        [ "$rb" = 1 ]
        [ "$argv0" = sh ]
        kill -USR1 "$pid"
        st=0; wait "$pid" || st=$?
        bg=
        [ "$st" -eq 3 ]
        run "$NONO_SESSIONS"
        [ "${lines[0]}" = "$id finished 3 1 sh -c trap \"exit 3\" USR1; echo > started; while :; do sleep 0.02; done" ]
}

@test "session: a nono killed with SIGKILL leaves a listed (crashed) session" {
        "$NONO" run -- sh -c 'echo > started; while :; do sleep 1; done' &
        pid=$! bg=$!
        wait_file "$W/started"
        kill -9 "$pid"
        wait "$pid" || true
        bg=
        run "$NONO_SESSIONS"
        [ "$status" -eq 0 ]
        [[ "${lines[0]}" == *" crashed "* ]]
}

@test "session: a setup failure before the agent starts records nothing misleading" {
        run -127 "$NONO" run -- no-such-command-xyz
        run "$NONO_SESSIONS"
        [ "$status" -eq 0 ] || [[ "$output" == *"store"* ]]
        [[ "$output" != *running* ]]
}

@test "root: the agent's granted directory is read ahead megabytes at a time, not FUSE's 128 KiB" {
        is_root || skip "only root may widen a mount's readahead (sysfs)"
        [ -w /sys/class/bdi ] || skip "/sys is read-only here"
        # written whole, then renamed: the test must not read the file between its creation and its content
        "$NONO" run -- sh -c 'stat -c %Hd:%Ld . > dev.t && mv dev.t dev; trap "exit 0" USR1; while :; do sleep 0.02; done' &
        pid=$! bg=$!
        wait_file "$W/dev"
        dev=$(cat "$W/dev")
        [[ "$dev" == 0:* ]] # the FUSE mount, not the backing disk
        [ "$(cat "/sys/class/bdi/$dev/read_ahead_kb")" -ge 1024 ] # two of the largest reads (the default: 128)
        kill -USR1 "$pid"
        wait "$pid"
        bg=
}
