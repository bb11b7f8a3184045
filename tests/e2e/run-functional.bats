#!/usr/bin/env bats
# nono run as a user sees it: exit statuses, signals, terminals, errors, --dry-run, and real tools working on
# their granted project (sh, git, make, python3, node).
load helpers
bats_require_minimum_version 1.5.0

setup() {
        common_setup
        run_setup
}

teardown() { common_teardown; }

wait_file() {
        for _ in $(seq 400); do [ -e "$1" ] && return 0; sleep 0.025; done
        return 1
}

@test "run: the agent's exit status is nono's" {
        run "$NONO" run -- sh -c 'exit 42'
        [ "$status" -eq 42 ]
        run "$NONO" run -- true
        [ "$status" -eq 0 ]
}

# Every user but 65534: in the new user namespace, before its map is written, getuid() says the overflow id
# (65534), and nono mapped that instead of the user's own id, so that only uid 65534 (and root) could run it.
@test "run: an ordinary user (uid 4242, not the overflow id) runs an agent as itself" {
        is_root || skip "needs root to become uid 4242"
        chown -R 4242:4242 "$T"
        chmod 0755 "$T"
        run setpriv --reuid=4242 --regid=4242 --clear-groups -- env HOME="$T" \
                "$NONO" run -- sh -c 'id -u; id -g; echo made > made'
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = 4242 ]
        [ "${lines[1]}" = 4242 ]
        [ "$(stat -c %u:%g "$W/made")" = 4242:4242 ]
}

@test "run: an agent killed by signal N gives 128+N" {
        run "$NONO" run -- sh -c 'kill -TERM $$'
        [ "$status" -eq 143 ]
        run "$NONO" run -- sh -c 'kill -KILL $$'
        [ "$status" -eq 137 ]
}

@test "run: SIGTERM and SIGINT sent to nono reach the agent" {
        for sig in TERM INT; do
                rm -f ready
                "$NONO" run -- /usr/bin/python3 -c "
import signal, sys
signal.signal(signal.SIG$sig, lambda *a: sys.exit(7))
open('ready', 'w').close()
signal.pause()
" &
                pid=$!
                wait_file "$W/ready"
                kill -$sig "$pid"
                st=0; wait "$pid" || st=$?
                [ "$st" -eq 7 ]
        done
}

@test "run: pipes work for non-interactive use" {
        run sh -c "printf 'hello\nworld\n' | '$NONO' run -- sort -r"
        [ "$status" -eq 0 ]
        [ "$output" = "$(printf 'world\nhello')" ]
}

@test "run: an interactive program gets a working terminal" {
        run /usr/bin/python3 - "$NONO" <<'PY'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "run", "--", "sh", "-c",
             "test -t 0 && test -t 1 && echo TTY-OK; stty size; stty -echo && echo STTY-OK; read line; echo got:$line"])
import fcntl, struct, termios
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
out = b""
sent = False
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    out += data
    if b"STTY-OK" in out and not sent:
        os.write(fd, b"typed\n"); sent = True
os.waitpid(pid, 0)
print(out.decode(errors="replace"))
PY
        [[ "$output" == *TTY-OK* ]]
        [[ "$output" == *"33 101"* ]]
        [[ "$output" == *"got:typed"* ]]
}

@test "run: a command that does not exist is a clear error" {
        run -127 "$NONO" run -- no-such-command-xyz
        [ "$status" -eq 127 ]
        [[ "$output" == *"no-such-command-xyz: command not found"* ]]
}

@test "run: a granted path that does not exist is a clear error" {
        run "$NONO" run --allow "$T/missing" -- true
        [ "$status" -eq 1 ]
        [[ "$output" == *"$T/missing"*"does not exist: create it or remove --allow $T/missing"* ]]
}

@test "run: the same path granted read-write and read-only is refused" {
        mkdir "$T/both"
        run "$NONO" run --allow "$T/both" --read "$T/both" -- true
        [ "$status" -eq 1 ]
        [[ "$output" == *"both --allow and --read"* ]]
}

@test "run: --dry-run prints the resolved policy and starts nothing" {
        mkdir "$T/ro"
        run "$NONO" run --dry-run --read "$T/ro" -- sh -c 'touch should-not-exist'
        [ "$status" -eq 0 ]
        [ ! -e should-not-exist ]
        [[ "$output" == *"rwx  $W"* ]]
        [[ "$output" =~ "  r"x?" "+"$T/ro"$'\n' ]] # read (and, with the profiles' default, exec)
        [[ "$output" == *"/usr (system)"* ]]
        [[ "$output" == *".ssh [credentials]"* ]]
        [[ "$output" == *"$NONO_HOME [nono state]"* ]]
        [[ "$output" == *"network:  none"* ]]
}

@test "run: --dry-run --json is valid JSON with the policy" {
        run "$NONO" run --dry-run --json --allow "$O" -- make test
        [ "$status" -eq 0 ]
        echo "$output" | /usr/bin/python3 -c "
import json, sys
d = json.load(sys.stdin)
p = d['policy']
grants = {g['path']: g for g in p['grants']}
assert grants['$W']['access'] == ['read', 'write', 'exec'], grants
assert grants['$O']['access'] == ['read', 'write', 'exec']
assert grants['/usr']['system'] and grants['/usr']['access'] == ['read', 'exec']
assert any(x['pattern'].endswith('/.ssh') and x['group'] == 'credentials' for x in p['denies'])
assert p['network']['block'] is True
assert d['command'] == ['make', 'test']
assert '$NONO_HOME' in d['state_masked']
"
}

@test "run: the agent sees its project at its usual path, read-write" {
        echo data >input
        run "$NONO" run -- sh -c 'pwd; cat input; echo out >output; mkdir -p a/b; echo deep >a/b/c; mv output a/; ln -s a/b/c link; cat link'
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = "$W" ]
        [ "${lines[1]}" = data ]
        [ "${lines[2]}" = deep ]
        [ "$(cat "$W/a/output")" = out ]
}

@test "run: --read grants are readable and not writable" {
        mkdir "$T/ro"; echo ro-data >"$T/ro/f"
        run "$NONO" run --read "$T/ro" -- sh -c "cat '$T/ro/f'; echo x > '$T/ro/f'; touch '$T/ro/new'; rm '$T/ro/f'"
        [[ "$output" == *ro-data* ]]
        [ "$(cat "$T/ro/f")" = ro-data ]
        [ ! -e "$T/ro/new" ]
}

@test "run: a single granted file works" {
        echo file-data >"$O/single"
        run "$NONO" run --allow "$O/single" -- sh -c "cat '$O/single'; echo more >> '$O/single'; cat '$O/secret'"
        [[ "$output" == *file-data* ]]
        [[ "$output" != *outside-secret* ]]
        [ "$(tail -n1 "$O/single")" = more ]
}

# A blocking flock on a granted file, while another process holds the lock, is a request fs/ answers only
# when the holder's unlock (another request) has been served: a root served by one thread deadlocks here.
@test "run: a blocking flock on a granted file waits for the holder's unlock" {
        [ "$(uname -m)" = x86_64 ] || skip "waits for syscall 73 (flock) in /proc/PID/syscall: x86_64 numbering"
        echo data >"$O/lockfile"
        # the contender is known to sit in flock() before the holder unlocks: no timing involved
        run timeout -k 5 60 "$NONO" run --allow "$O/lockfile" -- sh -c '
                exec 9<"$1"; flock 9
                flock "$1" echo contender-got-it & c=$!
                while [ "$(cut -d" " -f1 /proc/$c/syscall 2>/dev/null)" != 73 ]; do :; done
                flock -u 9; wait $c; echo done' sh "$O/lockfile"
        [ "$status" -eq 0 ]
        [[ "$output" == *contender-got-it*done* ]]
}

@test "run: /tmp is private and empty" {
        touch /tmp/nono-e2e-host-marker-$$
        run "$NONO" run -- sh -c "ls -A /tmp; echo hi > /tmp/x; cat /tmp/x"
        rm -f /tmp/nono-e2e-host-marker-$$
        [ "$status" -eq 0 ]
        [[ "$output" != *nono-e2e-host-marker* ]]
        [ ! -e /tmp/x ] || [ "$(cat /tmp/x)" != hi ]
}

@test "run: git works on the granted project" {
        command -v git || skip "git not installed"
        run "$NONO" run -- sh -c 'git init -q . && git -c user.email=a@b -c user.name=n commit -q --allow-empty -m one && echo x > f && git add f && git -c user.email=a@b -c user.name=n commit -q -m two && git log --oneline | wc -l && git status --short'
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = 2 ]
        [ -d "$W/.git" ]
}

@test "run: make and sh build inside the project" {
        command -v make || skip "make not installed"
        printf 'all: out.txt\nout.txt: in.txt\n\tcp in.txt out.txt\n\techo built >> out.txt\n' >Makefile
        echo source >in.txt
        run "$NONO" run -- make
        [ "$status" -eq 0 ]
        [ "$(cat out.txt)" = "$(printf 'source\nbuilt')" ]
}

@test "run: python3 runs and writes into the project" {
        run "$NONO" run -- /usr/bin/python3 -c 'import json, os, subprocess; open("p.json", "w").write(json.dumps({"cwd": os.getcwd()})); print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())'
        [ "$status" -eq 0 ]
        [ "$output" = child ]
        [[ "$(cat p.json)" == *"$W"* ]]
}

@test "run: node runs and writes into the project" {
        [ -x /usr/bin/node ] || skip "node not installed"
        run "$NONO" run -- /usr/bin/node -e 'require("fs").writeFileSync("n.txt", "node " + process.version); console.log(require("child_process").execSync("echo spawned").toString().trim())'
        [ "$status" -eq 0 ]
        [ "$output" = spawned ]
        [[ "$(cat n.txt)" == "node v"* ]]
}

@test "run: working inside a denied directory is refused" {
        H="$T/userhome"
        mkdir -p "$H/.ssh"
        cd "$H/.ssh"
        HOME="$H" run "$NONO" run -- true
        [ "$status" -eq 1 ]
        [[ "$output" == *"$H/.ssh"*"which the policy denies (credentials)"* ]]
}

@test "run: --workdir picks the project and the agent starts there" {
        mkdir "$T/proj"
        printf '#!/bin/sh\necho "in $PWD"; pwd; echo made > made\n' >"$T/proj/s.sh"
        chmod +x "$T/proj/s.sh"
        cd "$T"
        run "$NONO" run --workdir "$T/proj" -- ./s.sh
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = "in $T/proj" ]
        [ "${lines[1]}" = "$T/proj" ]
        [ "$(cat "$T/proj/made")" = made ]
}

@test "run: granting / is refused" {
        cd /
        run "$NONO" run -- true
        [ "$status" -eq 1 ]
        [[ "$output" == *"granting / would expose the whole system"* ]]
}

@test "run: the sandbox's processes say what they are (ps, top)" {
        # pid 1 of the agent's pid namespace is nono's init
        run "$NONO" run -- cat /proc/1/comm
        [ "$status" -eq 0 ]
        [ "$output" = "nono-init" ]
}
