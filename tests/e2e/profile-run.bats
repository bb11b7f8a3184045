#!/usr/bin/env bats
# Each built-in profile running a typical command of its ecosystem inside `nono run`, and the user's path
# init -> edit -> validate -> run. These need the sandbox (issue 4): until `nono run` is part of the build
# they skip with "nono run not built".
load helpers

setup() {
        common_setup
        "$NONO" --help 2>/dev/null | grep -qE '^  run ' || skip "nono run not built"
        export HOME="$T/home"
        mkdir -p "$HOME" "$T/proj"
        cd "$T/proj"
        export PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/go/bin
        git init -q .
        echo hello >README
        git add README
        git -c user.name=t -c user.email=t@example.com commit -qm init
}
teardown() { common_teardown; }

@test "run default: the project is read-write, git status works, \$HOME is not writable" {
        run "$NONO" run --profile default -- sh -c 'echo made >out.txt && git status --short'
        [ "$status" -eq 0 ]
        [[ "$output" == *"?? out.txt"* ]]
        [ "$(cat out.txt)" = made ]
        run "$NONO" run --profile default -- sh -c 'echo x >"$HOME/outside"'
        [ "$status" -ne 0 ]
        [ ! -e "$HOME/outside" ]
}

@test "run python-dev: python3 -c and git status" {
        command -v python3 >/dev/null || skip "python3 not installed"
        run "$NONO" run --profile python-dev -- python3 -c 'print(6 * 7)'
        [ "$status" -eq 0 ]
        [[ "$output" == *42* ]]
        run "$NONO" run --profile python-dev -- git status --short
        [ "$status" -eq 0 ]
}

@test "run node-dev: node -e" {
        command -v node >/dev/null || skip "node not installed"
        run "$NONO" run --profile node-dev -- node -e 'console.log(6 * 7)'
        [ "$status" -eq 0 ]
        [[ "$output" == *42* ]]
}

@test "run rust-dev: cargo --version" {
        c=$(command -v cargo || true)
        [ -n "$c" ] || c=$(ls /root/.cargo/bin/cargo 2>/dev/null || true)
        [ -n "$c" ] && [ -x "$c" ] || skip "cargo not installed (or not readable by uid $(id -u))"
        case "$c" in
        */.cargo/bin/cargo) h=${c%/.cargo/bin/cargo} ;; # rustup install: rust-dev grants ~/.cargo and ~/.rustup
        /usr/*) h=$HOME ;;
        *) skip "cargo at $c is outside what rust-dev grants" ;;
        esac
        run env HOME="$h" PATH="$(dirname "$c"):$PATH" "$NONO" run --profile rust-dev -- cargo --version
        [ "$status" -eq 0 ]
        [[ "$output" == *"cargo "* ]]
}

@test "run go-dev: go version" {
        command -v go >/dev/null || skip "go not installed"
        run "$NONO" run --profile go-dev -- go version
        [ "$status" -eq 0 ]
        [[ "$output" == *"go version go"* ]]
}

@test "run claude-code: ~/.claude and ~/.claude.json writable, ~/.ssh masked, node and git work" {
        mkdir -p "$HOME/.claude" "$HOME/.ssh"
        echo '{}' >"$HOME/.claude.json"
        echo SECRET >"$HOME/.ssh/id_rsa"
        run "$NONO" run --profile claude-code -- sh -c \
                'echo s >"$HOME/.claude/probe" && echo "{\"a\":1}" >"$HOME/.claude.json" && git status --short'
        [ "$status" -eq 0 ]
        [ "$(cat "$HOME/.claude/probe")" = s ]
        grep -q '"a":1' "$HOME/.claude.json"
        # masked even when a parent directory is granted
        run "$NONO" run --profile claude-code --allow "$HOME" -- cat "$HOME/.ssh/id_rsa"
        [ "$status" -ne 0 ]
        [[ "$output" != *SECRET* ]]
        if command -v node >/dev/null; then
                run "$NONO" run --profile claude-code -- node -e 'console.log("n" + 1)'
                [ "$status" -eq 0 ]
                [[ "$output" == *n1* ]]
        fi
}

@test "run codex: ~/.codex writable, credentials masked, python and git work" {
        mkdir -p "$HOME/.codex" "$HOME/.aws"
        echo KEY >"$HOME/.aws/credentials"
        run "$NONO" run --profile codex -- sh -c 'echo c >"$HOME/.codex/probe" && git status --short'
        [ "$status" -eq 0 ]
        [ "$(cat "$HOME/.codex/probe")" = c ]
        run "$NONO" run --profile codex --allow "$HOME" -- cat "$HOME/.aws/credentials"
        [ "$status" -ne 0 ]
        [[ "$output" != *KEY* ]]
        run "$NONO" run --profile codex -- python3 -c 'print("p" + "y")'
        [ "$status" -eq 0 ]
        [[ "$output" == *py* ]]
}

@test "shell configs stay read-only even when \$HOME is granted" {
        echo 'original' >"$HOME/.bashrc"
        run "$NONO" run --profile default --allow "$HOME" -- sh -c 'cat "$HOME/.bashrc"; echo evil >>"$HOME/.bashrc"'
        [[ "$output" == *original* ]]
        [ "$(cat "$HOME/.bashrc")" = original ]
}

@test "flags add to the profile: --read grants a directory the profile does not" {
        mkdir -p "$T/extra"
        echo data >"$T/extra/f"
        run "$NONO" run --profile default -- cat "$T/extra/f"
        [ "$status" -ne 0 ]
        run "$NONO" run --profile default --read "$T/extra" -- cat "$T/extra/f"
        [ "$status" -eq 0 ]
        [[ "$output" == *data* ]]
}

@test "dry run shows the resolved profile" {
        run "$NONO" run --profile claude-code --dry-run --json -- true
        [ "$status" -eq 0 ]
        [[ "$output" == *'"profile":"claude-code"'* || "$output" == *'"profile": "claude-code"'* ]]
        [[ "$output" == *api.anthropic.com* ]]
}

@test "init -> edit -> validate -> run, as a user does it" {
        mkdir -p "$HOME/docs"
        echo "the docs" >"$HOME/docs/readme"
        echo "top secret" >secret.txt
        run "$NONO" profile init myproj --extends default
        [ "$status" -eq 0 ]
        f="$XDG_CONFIG_HOME/nono/profiles/myproj.json"
        python3 - "$f" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["description"] = "my project"
p["filesystem"]["read"].append("$HOME/docs")
p["filesystem"]["deny"].append("$WORKDIR/secret.txt")
json.dump(p, open(sys.argv[1], "w"), indent=2)
PYEOF
        run "$NONO" profile validate myproj
        [ "$status" -eq 0 ]
        run "$NONO" run --profile myproj -- cat "$HOME/docs/readme"
        [ "$status" -eq 0 ]
        [[ "$output" == *"the docs"* ]]
        run "$NONO" run --profile myproj -- sh -c 'echo x >>"$HOME/docs/readme"'
        [ "$status" -ne 0 ]
        [ "$(cat "$HOME/docs/readme")" = "the docs" ]
        run "$NONO" run --profile myproj -- cat secret.txt
        [ "$status" -ne 0 ]
        [[ "$output" != *"top secret"* ]]
}

@test "run with an invalid profile fails before starting, with the error's position" {
        mkdir -p "$XDG_CONFIG_HOME/nono/profiles"
        printf '{\n  "network": {"block": "no"}\n}\n' >"$XDG_CONFIG_HOME/nono/profiles/broken.json"
        run "$NONO" run --profile broken -- sh -c 'echo started >started'
        [ "$status" -ne 0 ]
        [[ "$output" == *"broken.json:2:24"*"/network/block"* ]]
        [ ! -e started ]
}
