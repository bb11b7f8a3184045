#!/usr/bin/env bats
# Automatic retention after `nono run --rollback`: the limits in config.json apply at the end of each
# session, old sessions go, and the newest one is always kept and restorable.
load helpers

setup() {
        common_setup
        run_setup
        echo v0 >"$W/f"
}
teardown() { common_teardown; }

rollback_ids() { "$NONO" rollback list --json | python3 -c '
import json, sys
text = sys.stdin.read().strip()
data = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l]
print(" ".join(s["id"] for s in data))'; }

@test "retention: keep=1 in config.json leaves only the newest rollback session, which still restores" {
        mkdir -p "$XDG_CONFIG_HOME/nono"
        echo '{"rollback": {"keep": 1}}' >"$XDG_CONFIG_HOME/nono/config.json"
        run "$NONO" run --rollback -- sh -c 'echo v1 > f'
        [ "$status" -eq 0 ]
        first=$(rollback_ids)
        [ -n "$first" ]
        run "$NONO" run --rollback -- sh -c 'echo v2 > f'
        [ "$status" -eq 0 ]
        ids=$(rollback_ids)
        [ "$(echo "$ids" | wc -w)" -eq 1 ]
        [ "$ids" != "$first" ]
        run "$NONO" rollback restore "$ids"
        [ "$status" -eq 0 ]
        [ "$(cat "$W/f")" = v1 ]
}

@test "retention: a malformed config.json is named and the session is kept" {
        mkdir -p "$XDG_CONFIG_HOME/nono"
        echo '{"rollback": {"keep": "many"}' >"$XDG_CONFIG_HOME/nono/config.json"
        run "$NONO" run --rollback -- sh -c 'echo v1 > f'
        [ "$status" -eq 0 ]
        [[ "$output" == *"config.json"* ]]
        [ -n "$(rollback_ids)" ]
}
