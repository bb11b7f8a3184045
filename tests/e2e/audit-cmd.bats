#!/usr/bin/env bats
# nono audit list|show|verify on sessions built through the store and supervisor API by nono-audit-fixture
# (the same calls `nono run` makes), so the commands are tested before and independently of `nono run`.
load helpers
: "${FIXTURE:=$BATS_TEST_DIRNAME/../../build/tests/unit/audit/nono-audit-fixture}"

setup() {
        common_setup
        [ -x "$FIXTURE" ] || skip "nono-audit-fixture is not built (meson without cmocka?)"
}
teardown() { common_teardown; }

make_session() { ID=$("$FIXTURE" make); [ -n "$ID" ]; }

@test "audit list shows a session with its counts" {
        make_session
        run "$NONO" audit list
        [ "$status" -eq 0 ]
        [[ "${lines[0]}" == ID*START*DURATION*EXIT*READS*WRITES*EXECS*NET*VIOL*COMMAND ]]
        line=$(printf '%s\n' "${lines[@]}" | grep "^$ID")
        read -r id day time dur ex reads writes execs net viol cmd <<<"$line"
        [ "$ex" = 2 ]
        [ "$reads" = 1 ]
        [ "$writes" = 1 ]
        [ "$execs" = 1 ]
        [ "$net" = 2 ]
        [ "$viol" = 2 ]
        [[ "$cmd" == "agent --task fix the build" ]]
}

@test "audit list --json: one object per line with the documented fields" {
        make_session
        make_session
        run "$NONO" audit list --json
        [ "$status" -eq 0 ]
        [ "${#lines[@]}" -eq 2 ]
        echo "${lines[1]}" | jq -e --arg id "$ID" '.id == $id and .state == "finished" and .exit_status == 2
            and .reads == 1 and .writes == 1 and .execs == 1 and .net == 2 and .violations == 2
            and .sealed == true and (.duration_ms | type) == "number" and (.start | test("Z$"))
            and .command == ["agent", "--task", "fix the build"] and .events == 9'
}

@test "audit list filters by --command and --since" {
        make_session
        run "$NONO" audit list --json --command agent
        [ "${#lines[@]}" -eq 1 ]
        run "$NONO" audit list --json --command nosuchtool
        [ "$status" -eq 0 ]
        [ -z "$output" ]
        run "$NONO" audit list --json --since 1h
        [ "${#lines[@]}" -eq 1 ]
        run "$NONO" audit list --json --since 2999-01-01
        [ "$status" -eq 0 ]
        [ -z "$output" ]
        run "$NONO" audit list --since yesterdayish
        [ "$status" -ne 0 ]
        [[ "$output" == *"--since 'yesterdayish'"*"30m, 2h, 7d"* ]]
}

@test "audit list on a fresh home prints only the header" {
        run "$NONO" audit list
        [ "$status" -eq 0 ]
        [ "${#lines[@]}" -eq 1 ]
}

@test "audit show prints the timeline and tags violations DENIED when not a terminal" {
        make_session
        run "$NONO" audit show "$ID"
        [ "$status" -eq 0 ]
        [[ "$output" == *"session $ID"*"command agent --task fix the build"* ]]
        echo "$output" | grep -E ' read +ok +/tmp/project/src/main.c \(120 B read'
        echo "$output" | grep -E ' write +ok +/tmp/project/src/main.c'
        echo "$output" | grep -E ' rename +ok +/tmp/project/a.tmp -> /tmp/project/a.txt'
        echo "$output" | grep -E ' read +DENIED EACCES +/tmp/project/.env'
        echo "$output" | grep -E ' exec +- +/usr/bin/make -j2'
        echo "$output" | grep -E ' connect +- +93.184.216.34:443'
        echo "$output" | grep -E ' connect +DENIED ENETUNREACH +10.0.0.1:22'
        [[ "$output" != *$'\e['* ]]
}

@test "audit show --violations and --type filter the timeline" {
        make_session
        run "$NONO" audit show "$ID" --violations --json
        [ "${#lines[@]}" -eq 2 ]
        echo "$output" | jq -se 'all(.violation == true)'
        run "$NONO" audit show "$ID" --type exec --json
        [ "${#lines[@]}" -eq 1 ]
        echo "$output" | jq -e '.type == "exec" and .argv == ["make", "-j2"] and .path == "/usr/bin/make"'
        run "$NONO" audit show "$ID" --type net --json
        [ "${#lines[@]}" -eq 2 ]
        echo "$output" | jq -se '.[0].dest == "93.184.216.34:443" and .[0].family == "inet"'
        run "$NONO" audit show "$ID" --type disk
        [ "$status" -ne 0 ]
        [[ "$output" == *"use file, exec or net"* ]]
}

@test "audit show --json: every line parses and carries the stable fields" {
        make_session
        run "$NONO" audit show "$ID" --json
        [ "$status" -eq 0 ]
        [ "${#lines[@]}" -eq 9 ]
        for l in "${lines[@]}"; do
                echo "$l" | jq -e --arg id "$ID" '.session == $id and (.seq | type) == "number"
                    and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z$")) and (.time_ns | type) == "number"
                    and (.type | IN("file", "exec", "net", "session")) and (.op | type) == "string"
                    and (.pid | type) == "number" and (.ppid | type) == "number" and (.result | type) == "number"
                    and has("errno") and (.violation | type) == "boolean" and (.target | type) == "string"'
        done
        echo "${lines[0]}" | jq -e '.type == "session" and .op == "start" and .detail.argv[0] == "agent"
            and (.detail.landlock_abi | type) == "number" and (.detail.kernel | type) == "string"'
        echo "${lines[8]}" | jq -e '.op == "end" and .detail.exit_status == 2 and .detail.counts.violations == 2'
        echo "${lines[4]}" | jq -e '.errno == "EACCES" and .violation and .root == 0 and .path == ".env"'
}

@test "audit show colours violations red on a terminal, and not with NO_COLOR" {
        make_session
        run script -qec "$NONO audit show $ID" /dev/null
        [ "$status" -eq 0 ]
        echo "$output" | grep -F $'\e[1;31m' | grep -q 'DENIED EACCES'
        run env NO_COLOR=1 script -qec "$NONO audit show $ID" /dev/null
        [[ "$output" != *$'\e['* ]]
        [[ "$output" == *"DENIED EACCES"* ]]
}

@test "audit show and verify name an unknown session and the fix" {
        make_session
        run "$NONO" audit show ZZZZZZ
        [ "$status" -eq 1 ]
        [[ "$output" == *"no session 'ZZZZZZ': see nono audit list"* ]]
        run "$NONO" audit verify ZZZZZZ
        [ "$status" -eq 1 ]
        [[ "$output" == *"no session 'ZZZZZZ'"* ]]
        run "$NONO" audit frob
        [ "$status" -eq 2 ]
        [[ "$output" == *"list, show or verify"* ]]
}

@test "audit verify passes on an untouched session, by id prefix, with --public-key" {
        make_session
        run "$NONO" audit verify "$ID"
        [ "$status" -eq 0 ]
        [[ "$output" == *"session $ID: OK"*"9 events, chain intact, sealed by ed25519:"* ]]
        run "$NONO" audit verify "${ID:0:10}"
        [ "$status" -eq 0 ]
        run "$NONO" audit verify "$ID" --public-key "$XDG_CONFIG_HOME/nono/keys/audit.pub"
        [ "$status" -eq 0 ]
        [[ "$output" == *"the given public key"* ]]
        run "$NONO" audit verify "$ID" --json
        echo "$output" | jq -e '.verdict == "ok" and .events == 9 and .sealed and .signature_ok and .key_trusted
            and .first_bad == null'
        [ "$(stat -c %a "$XDG_CONFIG_HOME/nono/keys")" = 700 ]
        [ "$(stat -c %a "$XDG_CONFIG_HOME/nono/keys/audit.key")" = 600 ]
}

# tamper HOW SEQ EXPECTED-FIRST-BAD WORDS
tampered() {
        make_session
        "$FIXTURE" tamper "$ID" "$1" "$2"
        run "$NONO" audit verify "$ID"
        [ "$status" -eq 1 ]
        [[ "$output" == *"session $ID: TAMPERED"*"$4"* ]]
        run "$NONO" audit verify "$ID" --json
        [ "$status" -eq 1 ]
        echo "$output" | jq -e --argjson fb "$3" '.verdict == "bad" and .first_bad == $fb'
}

@test "audit verify names a modified event" {
        tampered modify 5 5 "event 5 does not match its hash"
}

@test "audit verify names a deleted event" {
        tampered delete 4 4 "event 4 is missing (deleted)"
}

@test "audit verify names reordered events" {
        tampered reorder 6 6 "event 6 does not match its hash"
}

@test "audit verify names an event appended after the seal" {
        tampered append 0 10 "event 10 was added after the session was sealed"
}

@test "audit verify names events cut from the end" {
        tampered truncate 0 9 "events 9 to 9 are missing"
}

@test "audit verify refuses an edited session record" {
        tampered exit 0 null "the seal does not match"
}

@test "audit verify refuses a trail re-sealed with another key" {
        tampered reseal 0 null "not by the trusted key"
}

@test "audit verify refuses a seal by a key other than --public-key" {
        make_session
        other=$T/other
        mkdir -p "$other/nono/keys"
        XDG_CONFIG_HOME=$other "$FIXTURE" make >/dev/null # creates a second key
        run "$NONO" audit verify "$ID" --public-key "$other/nono/keys/audit.pub"
        [ "$status" -eq 1 ]
        [[ "$output" == *"not by the trusted key"* ]]
}

@test "a session cut short by SIGKILL verifies up to its last durable event and says it was not sealed" {
        ID=$("$FIXTURE" crash)
        run "$NONO" audit verify "$ID"
        [ "$status" -eq 3 ]
        [[ "$output" == *"NOT SEALED"*"chain intact over 3 events"*"killed or crashed"* ]]
        run "$NONO" audit list --json
        echo "$output" | jq -e --arg id "$ID" 'select(.id == $id) | .state == "crashed" and .exit_status == null'
}

@test "the supervisor records each exec of a supervised command" {
        run "$FIXTURE" run -- /bin/sh -c '/bin/true one; /bin/true two; exit 3'
        [ "$status" -eq 3 ]
        ID=$(echo "$output" | sed -n 's/^session //p')
        run "$NONO" audit show "$ID" --type exec --json
        [ "${#lines[@]}" -eq 3 ]
        echo "${lines[1]}" | jq -e '.path == "/bin/true" and .argv == ["/bin/true", "one"]'
        echo "${lines[2]}" | jq -e '.argv == ["/bin/true", "two"]'
        run "$NONO" audit verify "$ID"
        [ "$status" -eq 0 ]
        run "$NONO" audit list --json
        echo "$output" | jq -e '.exit_status == 3 and .execs == 3'
}

@test "audit show prints control bytes from the agent escaped, so they cannot repaint the terminal" {
        run "$FIXTURE" run -- /bin/true $'\e[2J\e[Hall clear' $'two\nlines'
        [ "$status" -eq 0 ]
        ID=$(echo "$output" | sed -n 's/^session //p')
        run script -qec "$NONO audit show $ID" /dev/null
        [[ "$output" == *'/bin/true \x1b[2J\x1b[Hall clear two\x0alines'* ]]
        [[ "$output" != *$'\e[2J'* ]]
        run "$NONO" audit show "$ID" --type exec --json
        echo "$output" | jq -e '.argv[1] == "\u001b[2J\u001b[Hall clear" and .argv[2] == "two\nlines"'
}
