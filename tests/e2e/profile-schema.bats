#!/usr/bin/env bats
# profiles/schema.json against the real world: it is a valid draft 2020-12 schema, every built-in profile
# validates against it with python3-jsonschema AND with nono's own checker, and broken profiles are
# rejected by both (so the C checker and the published schema cannot drift apart).
load helpers

setup() {
        common_setup
        export HOME="$T/home"
        mkdir -p "$HOME"
        PROFILES="$BATS_TEST_DIRNAME/../../profiles"
        PY=/usr/bin/python3 # Debian's python3-jsonschema; a python3 earlier on PATH may lack it
        $PY -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed (tools/setup installs it)"
}
teardown() { common_teardown; }

# schema_check FILE...: exit 0 if every file validates against profiles/schema.json
schema_check() {
        $PY - "$PROFILES/schema.json" "$@" <<'PYEOF'
import json, sys
from jsonschema import Draft202012Validator
v = Draft202012Validator(json.load(open(sys.argv[1])))
bad = 0
for f in sys.argv[2:]:
    for e in v.iter_errors(json.load(open(f))):
        print(f"{f}: {'/' + '/'.join(map(str, e.absolute_path))}: {e.message}")
        bad = 1
sys.exit(bad)
PYEOF
}

@test "schema.json is a valid JSON Schema draft 2020-12 and documents every property" {
        $PY - "$PROFILES/schema.json" <<'PYEOF'
import json, sys
from jsonschema import Draft202012Validator
s = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(s)
assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
def walk(node, path):
    for k, v in node.get("properties", {}).items():
        if k not in ("$comment",) and "description" not in v and "$ref" not in v:
            raise SystemExit(f"{path}/{k} has no description")
        walk(v, f"{path}/{k}")
walk(s, "")
PYEOF
}

@test "every built-in profile validates against schema.json (python3-jsonschema)" {
        run schema_check "$PROFILES"/{default,python-dev,node-dev,rust-dev,go-dev,claude-code,codex}.json
        echo "$output"
        [ "$status" -eq 0 ]
}

@test "every built-in profile validates with nono profile validate, from its file too" {
        for p in default python-dev node-dev rust-dev go-dev claude-code codex; do
                run "$NONO" profile validate "$PROFILES/$p.json"
                [ "$status" -eq 0 ] || { echo "$output"; false; }
        done
}

@test "the built-ins embedded in nono are the files in profiles/" {
        for p in default python-dev node-dev rust-dev go-dev claude-code codex; do
                run "$NONO" profile show "$p" --json
                [ "$status" -eq 0 ]
                [[ "$output" == *"\"file\":	\"<built-in>/$p.json\""* ]]
        done
        run "$NONO" profile list
        [ "$(echo "$output" | grep -c built-in)" -eq "$(ls "$PROFILES"/*.json | grep -vc -e schema.json -e deny-groups.json)" ]
}

@test "every deny group path is a valid profile pattern" {
        $PY - "$PROFILES/schema.json" "$PROFILES/deny-groups.json" <<'PYEOF'
import json, re, sys
s = json.load(open(sys.argv[1]))
pat = re.compile(s["$defs"]["pattern"]["pattern"])
g = json.load(open(sys.argv[2]))
for name in ("credentials", "keychains", "browser_data", "shell_history", "shell_configs"):
    assert g[name]["access"] in ("readwrite", "write"), name
    assert g[name]["paths"], name
    for p in g[name]["paths"]:
        assert pat.search(p), (name, p)
assert g["shell_configs"]["access"] == "write"
for must in ("$HOME/.ssh", "$HOME/.gnupg", "$HOME/.aws", "$HOME/.kube", "$HOME/.docker/config.json",
             "$HOME/.netrc", "$HOME/.git-credentials", "$HOME/.npmrc", "$HOME/.pypirc", "$HOME/.azure",
             "$HOME/.config/gcloud", "$HOME/.cargo/credentials*"):
    assert must in g["credentials"]["paths"], must
for must in ("$HOME/.bashrc", "$HOME/.profile", "$HOME/.zshrc"):
    assert must in g["shell_configs"]["paths"], must
PYEOF
}

# Broken profiles: each must be rejected by the schema and by nono, each for the reason in its name.
broken=(
        'unknown-top-key|{"filesytem": {}}'
        'unknown-nested-key|{"filesystem": {"alow": []}}'
        'block-not-bool|{"network": {"block": "yes"}}'
        'allow-not-list|{"filesystem": {"allow": "/x"}}'
        'allow-item-number|{"filesystem": {"allow": [1]}}'
        'relative-path|{"filesystem": {"read": ["src"]}}'
        'glob-in-grant|{"filesystem": {"read": ["/a/*"]}}'
        'bad-workdir|{"filesystem": {"workdir": "rw"}}'
        'deny-group-false|{"filesystem": {"deny_groups": {"credentials": false}}}'
        'unknown-deny-group|{"filesystem": {"deny_groups": {"passwords": true}}}'
        'deny-no-path|{"filesystem": {"deny": [{"access": "write"}]}}'
        'deny-bad-access|{"filesystem": {"deny": [{"path": "/x", "access": "read"}]}}'
        'bad-domain|{"network": {"allow_domain": ["has space.com"]}}'
        'duplicate-domain|{"network": {"allow_domain": ["a.com", "a.com"]}}'
        'command-relative|{"commands": {"allow": ["bin/git"]}}'
        'env-bad-name|{"environment": {"deny": ["A-B"]}}'
        'env-set-number|{"environment": {"set": {"A": 1}}}'
        'extends-number|{"extends": 3}'
        'name-bad|{"name": "Has Caps"}'
        'override-string|{"override": "yes"}'
        'not-object|[]'
)

@test "broken profiles are rejected by both schema.json and nono profile validate" {
        for b in "${broken[@]}"; do
                name=${b%%|*}
                printf '%s\n' "${b#*|}" >"$T/$name.json"
                if schema_check "$T/$name.json" >/dev/null; then
                        echo "schema.json accepts $name"
                        false
                fi
                run "$NONO" profile validate "$T/$name.json"
                if [ "$status" -ne 1 ] || [[ "$output" != *"$name.json:1:"*"error:"* ]]; then
                        echo "nono accepts $name (or without position): $output"
                        false
                fi
        done
}

@test "a full-featured valid profile is accepted by both" {
        mkdir -p "$HOME/tools"
        cat >"$T/full.json" <<'JSON'
{
  "$schema": "https://nono.dev/schema/profile.json",
  "$comment": "every field once",
  "name": "full",
  "description": "all the features",
  "extends": ["python-dev", "node-dev"],
  "filesystem": {
    "$comment": "x",
    "workdir": "readwrite",
    "allow": ["$WORKDIR/../sibling"],
    "read": ["~/tools"],
    "system": ["/usr/local"],
    "deny": ["$WORKDIR/**/.env", {"path": "$WORKDIR/vendor", "access": "write"}],
    "deny_groups": {"credentials": ["$HOME/.my-token"], "shell_history": true}
  },
  "network": {"block": true, "allow_domain": ["*.example.com", "api.example.org"]},
  "commands": {"allow": [], "deny": ["sudo", "/usr/bin/su"]},
  "environment": {"allow": ["PATH", "LANG", "LC_*"], "deny": ["AWS_*"], "set": {"EDITOR": "true"}},
  "rollback": {"enabled": true, "exclude": ["**/target", "*.log"]},
  "security": {"capability_elevation": false}
}
JSON
        run schema_check "$T/full.json"
        echo "$output"
        [ "$status" -eq 0 ]
        run "$NONO" profile validate "$T/full.json"
        echo "$output"
        [ "$status" -eq 0 ]
}
