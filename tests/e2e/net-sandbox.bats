#!/usr/bin/env bats
# The network as the agent sees it under `nono run`: only the proxy is reachable, and it enforces
# --allow-domain. Local servers on the host's 127.0.0.1 stand in for the internet; inside, the agent has its
# own loopback, so the only way out is the proxy, which resolves "localhost" on the host side.
load helpers

PY=/usr/bin/python3
SERVER="$BATS_TEST_DIRNAME/net-server.py"

setup() {
        common_setup
        PIDS=()
        if ! "$NONO" run --help >/dev/null 2>&1; then
                skip "nono run is not built in this tree"
        fi
        if ! "$NONO" run --help 2>&1 | grep -q -- --allow-domain; then
                skip "nono run does not support --allow-domain yet"
        fi
        mkdir -p "$T/www" "$T/work"
        echo "hello from the origin" >"$T/www/hello.txt"
        mkfifo "$T/srv.ready"
        "$PY" "$SERVER" "$T/www" >"$T/srv.ready" 2>"$T/srv.err" &
        PIDS+=($!)
        read -r SPORT <"$T/srv.ready"
        [ -n "$SPORT" ]
        run "$NONO" run --allow-domain localhost -- /bin/sh -c 'echo "$http_proxy"'
        if [ "$status" -ne 0 ] || [ -z "$output" ]; then
                skip "nono run does not start the --allow-domain proxy yet (no http_proxy inside): $output"
        fi
}

teardown() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        common_teardown
}

@test "net-sandbox: the agent's environment points at the proxy" {
        run "$NONO" run --allow-domain localhost -- /usr/bin/env
        [ "$status" -eq 0 ]
        [[ "$output" == *"http_proxy=http://127.0.0.1:"* ]]
        [[ "$output" == *"HTTPS_PROXY=http://127.0.0.1:"* ]]
        [[ "$output" == *"ALL_PROXY=http://127.0.0.1:"* ]]
        [[ "$output" == *"NO_PROXY=localhost,127.0.0.1,::1"* ]]
}

@test "net-sandbox: an allowed name is reachable through the proxy with curl and python" {
        # NO_PROXY covers localhost, so the test names the proxy explicitly for this one host
        run "$NONO" run --allow-domain localhost -- /usr/bin/curl -sS --fail --noproxy '' \
                "http://localhost:$SPORT/hello.txt"
        [ "$status" -eq 0 ]
        [[ "$output" == *"hello from the origin"* ]]
        run "$NONO" run --allow-domain localhost -- /usr/bin/env no_proxy= NO_PROXY= "$PY" -c \
                'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
                "http://localhost:$SPORT/hello.txt"
        [ "$status" -eq 0 ]
        [[ "$output" == *"hello from the origin"* ]]
}

@test "net-sandbox: git clones over http through the proxy" {
        git init -q --bare "$T/www/repo.git"
        git init -q "$T/src"
        echo content >"$T/src/file"
        git -C "$T/src" add file
        git -C "$T/src" -c user.name=t -c user.email=t@t commit -qm first
        git -C "$T/src" push -q "$T/www/repo.git" HEAD:refs/heads/main
        git -C "$T/www/repo.git" symbolic-ref HEAD refs/heads/main
        git -C "$T/www/repo.git" update-server-info
        run "$NONO" run --allow "$T/work" --allow-domain localhost -- /usr/bin/env no_proxy= NO_PROXY= \
                /usr/bin/git clone -q "http://localhost:$SPORT/repo.git" "$T/work/clone"
        [ "$status" -eq 0 ]
        [ "$(cat "$T/work/clone/file")" = content ]
}

@test "net-sandbox: a name that is not allowed gets 403 from the proxy" {
        run "$NONO" run --allow-domain example.invalid -- /usr/bin/curl -sS -i --noproxy '' \
                "http://localhost:$SPORT/hello.txt"
        [[ "$output" == *"403 Forbidden"* ]]
        [[ "$output" == *"X-Nono-Deny-Reason: localhost is not in the allow list"* ]]
        [[ "$output" != *"hello from the origin"* ]]
}

@test "net-sandbox: a connection that ignores the proxy fails" {
        # the host's server is not on the agent's loopback
        run "$NONO" run --allow-domain localhost -- /usr/bin/curl -sS --noproxy '*' --max-time 10 \
                "http://127.0.0.1:$SPORT/hello.txt"
        [ "$status" -ne 0 ]
        [[ "$output" != *"hello from the origin"* ]]
        # nor is anything else: a public address fails at once, it does not hang
        run "$NONO" run --allow-domain localhost -- "$PY" -c '
import socket
s = socket.socket()
s.settimeout(10)
try:
    s.connect(("192.0.2.1", 80)); print("connected")
except OSError as e:
    print("refused", e.errno)
'
        [[ "$output" == "refused "* ]]
}

@test "net-sandbox: UDP and DNS fail, and fail fast" {
        run timeout 20 "$NONO" run --allow-domain localhost -- "$PY" -c '
import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)); print("sent")
except OSError as e:
    print("udp refused", e.errno)
try:
    socket.getaddrinfo("example.com", 80); print("resolved")
except OSError as e:
    print("dns failed")
'
        [ "$status" -eq 0 ]
        [[ "${lines[0]}" == "udp refused "* ]]
        [ "${lines[1]}" = "dns failed" ]
}

@test "net-sandbox: ICMP fails" {
        run "$NONO" run --allow-domain localhost -- "$PY" -c '
import socket
for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
    try:
        s = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        s.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", ("8.8.8.8", 0)); print("sent")
    except OSError as e:
        print("refused", e.errno)
'
        [[ "${lines[0]}" == "refused "* ]]
        [[ "${lines[1]}" == "refused "* ]]
}

@test "net-sandbox: unix sockets of host services are unreachable (path and abstract)" {
        # a host service's socket lives outside the grants (like /run/docker.sock); an abstract socket
        # belongs to the host's network namespace
        mkdir -p "$T/sock"
        rm -f "$T/unix.ready" && mkfifo "$T/unix.ready"
        "$PY" -c '
import socket, sys
a = socket.socket(socket.AF_UNIX); a.bind(sys.argv[1]); a.listen()
b = socket.socket(socket.AF_UNIX); b.bind("\0" + sys.argv[2]); b.listen()
print("ready", flush=True)
import time
time.sleep(3600)
' "$T/sock/s" "nono-test-$$" >"$T/unix.ready" &
        PIDS+=($!)
        read -r ready <"$T/unix.ready"
        [ "$ready" = ready ]
        run "$NONO" run --allow "$T/work" --allow-domain localhost -- "$PY" -c '
import socket, sys
for name in (sys.argv[1], "\0" + sys.argv[2]):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(name); print("connected")
    except OSError as e:
        print("refused", e.errno)
' "$T/sock/s" "nono-test-$$"
        [[ "${lines[0]}" == "refused "* ]]
        [[ "${lines[1]}" == "refused "* ]]
}

@test "net-sandbox: proxy decisions are audit events, denials flagged" {
        "$NONO" audit list >/dev/null 2>&1 || skip "nono audit is not built in this tree"
        run "$NONO" run --allow-domain localhost -- /usr/bin/curl -sS --noproxy '' \
                "http://localhost:$SPORT/hello.txt" "http://127.0.0.1:$SPORT/hello.txt"
        id=$("$NONO" audit list --json | tail -n 1 | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["id"])')
        run "$NONO" audit show "$id" --type net
        [ "$status" -eq 0 ]
        [[ "$output" == *"localhost:$SPORT GET resolved="*" allow "* ]]
        [[ "$output" == *"127.0.0.1:$SPORT GET resolved=- deny"* ]]
        [[ "$output" == *"DENIED"* ]]
}
