#!/usr/bin/env bats
# nono profile list|show|init|validate|schema as a user drives them: output, exit status, and every class
# of error that validate must report with file:line:column and JSON pointer.
load helpers

setup() {
        common_setup
        export HOME="$T/home"
        mkdir -p "$HOME" "$T/proj"
        cd "$T/proj"
        P="$XDG_CONFIG_HOME/nono/profiles"
}
teardown() { common_teardown; }

user_profile() { # NAME TEXT
        mkdir -p "$P"
        printf '%s\n' "$2" >"$P/$1.json"
}

@test "profile list shows every built-in with its source and description" {
        run "$NONO" profile list
        [ "$status" -eq 0 ]
        for p in default python-dev node-dev rust-dev go-dev claude-code codex; do
                [[ "$output" == *"$p "*"built-in"* ]] || { echo "missing $p"; false; }
        done
        [[ "$output" == *"claude-code"*"Claude Code"* ]]
}

@test "profile list --json has name, source, file and description, and includes user profiles" {
        user_profile mine '{"description": "my own"}'
        run "$NONO" profile list --json
        [ "$status" -eq 0 ]
        echo "$output" | python3 -c '
import json, sys
v = {p["name"]: p for p in json.load(sys.stdin)}
assert v["default"]["source"] == "built-in", v["default"]
assert v["mine"]["source"] == "user" and v["mine"]["description"] == "my own", v["mine"]
assert v["mine"]["file"].endswith("/nono/profiles/mine.json")
assert set(v["codex"]) == {"name", "source", "file", "description", "overrides_builtin"}'
}

@test "profile show prints the resolved profile with variables expanded and the deny groups" {
        run "$NONO" profile show rust-dev
        [ "$status" -eq 0 ]
        [[ "$output" == *"profile rust-dev (built-in"* ]]
        [[ "$output" == *"extends        default"* ]]
        [[ "$output" == *"$HOME/.rustup"* ]]
        [[ "$output" == *"$HOME/.ssh"*"credentials"* ]]
        [[ "$output" == *"$HOME/.bashrc"*"shell_configs"* ]]
        [[ "$output" != *'$HOME'* ]]
}

@test "profile show --json is the merged profile: extends, unions, variables" {
        run "$NONO" profile show claude-code --json
        [ "$status" -eq 0 ]
        echo "$output" | HOME="$HOME" python3 -c '
import json, os, sys
p = json.load(sys.stdin)
h = os.environ["HOME"]
assert p["name"] == "claude-code" and p["source"] == "built-in"
assert p["extends"] == ["default", "node-dev", "python-dev"], p["extends"]
fs = p["filesystem"]
assert h + "/.claude" in fs["allow"] and h + "/.claude.json" in fs["allow"]
assert h + "/.npm" in fs["allow"] and os.environ["XDG_CACHE_HOME"] + "/pip" in fs["allow"]
assert "/usr" in fs["system"] and fs["workdir"] == "readwrite"
assert {"path": h + "/.ssh", "access": "readwrite", "group": "credentials"} in fs["deny"]
assert "api.anthropic.com" in p["network"]["allow_domain"] and "pypi.org" in p["network"]["allow_domain"]
assert p["network"]["block"] is True'
}

@test "profile show of an unknown profile fails and says where user profiles live" {
        run "$NONO" profile show nope
        [ "$status" -eq 1 ]
        [[ "$output" == *'no profile "nope"'*"$P"* ]]
}

@test "profile schema prints the embedded JSON schema, identical to profiles/schema.json" {
        run "$NONO" profile schema
        [ "$status" -eq 0 ]
        diff <("$NONO" profile schema) "$BATS_TEST_DIRNAME/../../profiles/schema.json"
        [[ "$output" == *'"$schema": "https://json-schema.org/draft/2020-12/schema"'* ]]
}

@test "profile init writes a skeleton that validates, with \$comment help and empty lists" {
        run "$NONO" profile init myproj --extends python-dev
        [ "$status" -eq 0 ]
        [[ "$output" == *"wrote $P/myproj.json"* ]]
        python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
assert p["extends"] == "python-dev" and p["name"] == "myproj"
assert p["description"] and "$comment" in p and "$comment" in p["filesystem"]
assert p["filesystem"]["allow"] == [] and p["network"]["allow_domain"] == []' "$P/myproj.json"
        run "$NONO" profile validate myproj
        [ "$status" -eq 0 ]
        [[ "$output" == *"profile myproj is valid"* ]]
        run "$NONO" profile list
        [[ "$output" == *"myproj"*"user"* ]]
}

@test "profile init refuses to overwrite without --force, and overwrites with it" {
        "$NONO" profile init mine
        echo '{"description": "edited"}' >"$P/mine.json"
        run "$NONO" profile init mine --extends node-dev
        [ "$status" -eq 1 ]
        [[ "$output" == *"already exists"*"--force"* ]]
        grep -q edited "$P/mine.json"
        run "$NONO" profile init mine --extends node-dev --force
        [ "$status" -eq 0 ]
        grep -q '"extends":.*"node-dev"' "$P/mine.json"
        [ -z "$(ls "$P" | grep -v '^mine.json$')" ] # no temporary file left behind
}

@test "profile init refuses a built-in's name, a bad name and a missing base" {
        run "$NONO" profile init default
        [ "$status" -eq 1 ]
        [[ "$output" == *"is a built-in profile"* ]]
        run "$NONO" profile init "Bad/Name"
        [ "$status" -eq 1 ]
        [[ "$output" == *"not a valid name"* ]]
        run "$NONO" profile init x --extends no-such-base
        [ "$status" -eq 1 ]
        [[ "$output" == *'no profile "no-such-base"'* ]]
        [ ! -e "$P/x.json" ]
}

@test "validate: every built-in is valid (exit 0)" {
        for p in default python-dev node-dev rust-dev go-dev claude-code codex; do
                run "$NONO" profile validate "$p"
                [ "$status" -eq 0 ] || { echo "$output"; false; }
                [[ "$output" == *"profile $p is valid"* ]]
        done
}

@test "validate: unknown key, with file, line, column and pointer" {
        printf '{\n  "description": "x",\n  "filesystem": {\n    "alow": []\n  }\n}\n' >"$T/p.json"
        run "$NONO" profile validate "$T/p.json"
        [ "$status" -eq 1 ]
        [[ "$output" == *"$T/p.json:4:5: error: unknown key \"alow\""*"(at /filesystem/alow)"* ]]
        [[ "$output" == *"profile $T/p.json is invalid: 1 error"* ]]
}

@test "validate: wrong types" {
        printf '{"network": {"block": "yes", "allow_domain": "pypi.org"},\n "extends": 7}\n' >"$T/p.json"
        run "$NONO" profile validate "$T/p.json"
        [ "$status" -eq 1 ]
        [[ "$output" == *"p.json:1:23: error: wrong type: expected true or false, found a string (at /network/block)"* ]]
        [[ "$output" == *"p.json:1:46: error: wrong type: expected a list, found a string (at /network/allow_domain)"* ]]
        [[ "$output" == *"p.json:2:13: error: wrong type: expected a list, found a number (at /extends)"* ]]
}

@test "validate: JSON syntax errors have a position" {
        printf '{\n  "description": "x"\n  "extends": "default"\n}\n' >"$T/p.json"
        run "$NONO" profile validate "$T/p.json"
        [ "$status" -eq 1 ]
        [[ "$output" == *"p.json:3:3: error: invalid JSON: expected ',' or '}' after the member"* ]]
}

@test "validate: extends cycles name the chain" {
        user_profile a '{"extends": "b"}'
        user_profile b '{"extends": ["default", "a"]}'
        run "$NONO" profile validate a
        [ "$status" -eq 1 ]
        [[ "$output" == *"$P/b.json:1:25: error: extends cycle: a -> b -> a"*"(at /extends/1)"* ]]
}

@test "validate: a missing base" {
        user_profile c '{"extends": ["python-dev", "pythn-dev"]}'
        run "$NONO" profile validate c
        [ "$status" -eq 1 ]
        [[ "$output" == *"$P/c.json:1:28: error: extends \"pythn-dev\": no such profile"*"(at /extends/1)"* ]]
}

@test "validate: a deny group cannot be removed, neither by false nor by granting inside it" {
        printf '{"filesystem": {\n  "deny_groups": {"credentials": false},\n  "read": ["~/.ssh/config"]}}\n' >"$T/p.json"
        run "$NONO" profile validate "$T/p.json"
        [ "$status" -eq 1 ]
        [[ "$output" == *"p.json:2:34: error: deny group \"credentials\" cannot be removed"*"(at /filesystem/deny_groups/credentials)"* ]]
        printf '{"filesystem": {\n  "allow": ["$HOME/.zshrc"]}}\n' >"$T/q.json"
        run "$NONO" profile validate "$T/q.json"
        [ "$status" -eq 1 ]
        [[ "$output" == *"q.json:2:13: error: \"$HOME/.zshrc\" lies inside deny group \"shell_configs\""*"(at /filesystem/allow/0)"* ]]
}

@test "validate: a read-only path also granted write" {
        mkdir -p "$HOME/shared"
        user_profile base '{"filesystem": {"read": ["$HOME/shared"]}}'
        user_profile top '{"extends": "base",
  "filesystem": {"allow": ["~/shared/"]}}'
        run "$NONO" profile validate top
        [ "$status" -eq 1 ]
        [[ "$output" == *"$P/top.json:2:28: error: \"$HOME/shared\" is read-only (filesystem.read at $P/base.json:1:26) and also granted write here"*"(at /filesystem/allow/0)"* ]]
}

@test "validate: paths that do not exist are warnings, exit 0" {
        mkdir -p "$HOME/exists"
        user_profile w '{"filesystem": {"allow": ["$HOME/exists", "$HOME/missing"]}}'
        run "$NONO" profile validate w
        [ "$status" -eq 0 ]
        [[ "$output" == *"$P/w.json:1:43: warning: \"$HOME/missing\" does not exist"*"(at /filesystem/allow/1)"* ]]
        [[ "$output" != *"$HOME/exists\" does not exist"* ]]
        [[ "$output" == *"profile w is valid (1 warning)"* ]]
}

@test "validate: a user profile may not shadow a built-in unless it says override" {
        user_profile default '{"description": "mine"}'
        run "$NONO" profile validate default
        [ "$status" -eq 1 ]
        [[ "$output" == *"$P/default.json:1:1: error: user profile \"default\" has the name of a built-in profile: add \"override\": true"* ]]
        run "$NONO" profile list
        [[ "$output" == *"default"*"user"*"shadows the built-in"* ]]
        user_profile default '{"override": true, "extends": "default", "description": "mine"}'
        run "$NONO" profile validate default
        [ "$status" -eq 0 ]
        run "$NONO" profile show default --json
        [[ "$output" == *'"source":	"user"'* ]]
        [[ "$output" == *'"description":	"mine"'* ]]
}

@test "validate --json reports every diagnostic with file, line, column and pointer" {
        printf '{"filesytem": {},\n "network": {"block": 1}}\n' >"$T/p.json"
        run "$NONO" profile validate "$T/p.json" --json
        [ "$status" -eq 1 ]
        echo "$output" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["valid"] is False and r["errors"] == 2 and r["warnings"] == 0, r
d = {x["pointer"]: x for x in r["diagnostics"]}
assert d["/filesytem"]["line"] == 1 and d["/filesytem"]["column"] == 2
assert d["/network/block"]["line"] == 2 and d["/network/block"]["column"] == 23
assert all(x["severity"] == "error" and x["file"].endswith("p.json") for x in r["diagnostics"])'
        run "$NONO" profile validate default --json
        [ "$status" -eq 0 ]
        [[ "$output" == *'"valid":	true'* ]]
}

@test "profile with no or a wrong subcommand is a usage error" {
        run "$NONO" profile
        [ "$status" -eq 2 ]
        [[ "$output" == *"usage: nono profile list"* ]]
        run "$NONO" profile frob
        [ "$status" -eq 2 ]
        [[ "$output" == *"unknown subcommand 'frob'"* ]]
        run "$NONO" profile show
        [ "$status" -eq 2 ]
}

@test "validate: a profile that does not exist, by name or by file, exits 1 and says so" {
        run "$NONO" profile validate nope
        [ "$status" -eq 1 ]
        [[ "$output" == *'no profile "nope"'*"profile nope not found"* ]]
        run "$NONO" profile validate "$T/missing.json"
        [ "$status" -eq 1 ]
        [[ "$output" == *"no profile file $T/missing.json"* ]]
}
