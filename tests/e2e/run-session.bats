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

teardown() { common_teardown; }

wait_file() {
        for _ in $(seq 400); do [ -e "$1" ] && return 0; sleep 0.025; done
        return 1
}

@test "session: recorded as running before the agent runs, finished with its status after" {
        mkfifo "$W/go"
        "$NONO" run --rollback -- sh -c 'echo > started; read x < go; exit 3' &
        pid=$!
        wait_file "$W/started"
        run "$NONO_SESSIONS"
        [ "$status" -eq 0 ]
        [ "${#lines[@]}" -eq 1 ]
        read -r id state code rb argv0 rest <<<"${lines[0]}"
        [ "$state" = running ]
        [ "$rb" = 1 ]
        [ "$argv0" = sh ]
        echo go >"$W/go"
        st=0; wait "$pid" || st=$?
        [ "$st" -eq 3 ]
        run "$NONO_SESSIONS"
        [ "${lines[0]}" = "$id finished 3 1 sh -c echo > started; read x < go; exit 3" ]
}

@test "session: a nono killed with SIGKILL leaves a listed (crashed) session" {
        mkfifo "$W/go"
        "$NONO" run -- sh -c 'echo > started; read x < go' &
        pid=$!
        wait_file "$W/started"
        kill -9 "$pid"
        wait "$pid" || true
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
