#!/usr/bin/env bats
# The --allow-domain proxy on its own (`nono __proxy`), driven by real clients (curl, git, python urllib)
# against local HTTP servers on 127.0.0.1 that stand in for the internet. Host names are resolved by the
# proxy from a hosts file the test writes (the proxy's resolver only; clients never resolve them).
load helpers

PY=/usr/bin/python3
SERVER="$BATS_TEST_DIRNAME/net-server.py"

setup() {
        common_setup
        PIDS=()
        mkdir -p "$T/www"
        echo "hello from the origin" >"$T/www/hello.txt"
        printf '127.0.0.1 allowed.test other.test a.wild.test b.c.wild.test wild.test badwild.test\n' >"$T/hosts"
        printf '169.254.169.254 meta.test\n' >>"$T/hosts"
        mkfifo "$T/srv.ready"
        "$PY" "$SERVER" "$T/www" >"$T/srv.ready" 2>"$T/srv.err" &
        PIDS+=($!)
        read -r SPORT <"$T/srv.ready"
        [ -n "$SPORT" ]
}

teardown() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        common_teardown
}

# start_proxy RULE...: starts `nono __proxy` with the hosts file and the given --allow-domain rules; sets PPORT.
start_proxy() {
        local args=()
        for r in "$@"; do args+=(--allow-domain "$r"); done
        rm -f "$T/px.ready" && mkfifo "$T/px.ready"
        "$NONO" __proxy --listen 127.0.0.1:0 --port-file - --events "$T/events" --hosts-file "$T/hosts" \
                "${args[@]}" >"$T/px.ready" 2>"$T/px.err" &
        PIDS+=($!)
        PXPID=$!
        read -r PPORT <"$T/px.ready" || true
        [ -n "$PPORT" ] || { cat "$T/px.err"; return 1; }
        PROXY="http://127.0.0.1:$PPORT"
}

@test "net: an allowed name is served through the proxy (plain HTTP and CONNECT) and audited" {
        start_proxy allowed.test
        run curl -sS --fail -x "$PROXY" "http://allowed.test:$SPORT/hello.txt"
        [ "$status" -eq 0 ]
        [ "$output" = "hello from the origin" ]
        run curl -sS --fail -p -x "$PROXY" "http://allowed.test:$SPORT/hello.txt"
        [ "$status" -eq 0 ]
        [ "$output" = "hello from the origin" ]
        kill -TERM "$PXPID"; wait "$PXPID"
        run cat "$T/events"
        [[ "${lines[0]}" == "allowed.test:$SPORT GET resolved=127.0.0.1 allow up="*" down="* ]]
        [[ "${lines[1]}" == "allowed.test:$SPORT CONNECT resolved=127.0.0.1 allow up="*" down="* ]]
        [ "${#lines[@]}" -eq 2 ]
}

@test "net: a name not in the allow list gets 403 with the reason, and a deny event" {
        start_proxy allowed.test
        run curl -sS -i -x "$PROXY" "http://other.test:$SPORT/hello.txt"
        [ "$status" -eq 0 ]
        [[ "${lines[0]}" == "HTTP/1.1 403 Forbidden"* ]]
        [[ "$output" == *"X-Nono-Deny-Reason: other.test is not in the allow list: add --allow-domain other.test"* ]]
        [[ "$output" != *"hello from the origin"* ]]
        run curl -sS -p -x "$PROXY" "http://other.test:$SPORT/hello.txt"
        [ "$status" -ne 0 ]
        [[ "$output" == *"403"* ]]
        kill -TERM "$PXPID"; wait "$PXPID"
        run grep -c "^other.test:$SPORT .* deny up=0 down=0 reason=other.test is not in the allow list" "$T/events"
        [ "$output" = 2 ]
}

@test "net: responses say Connection: close, so clients never reuse a proxied connection (POST twice)" {
        start_proxy allowed.test
        run curl -sS -v --fail -x "$PROXY" -d one "http://allowed.test:$SPORT/a" --next -x "$PROXY" -d two "http://allowed.test:$SPORT/b"
        [ "$status" -eq 0 ]
        [[ "$output" == *"< Connection: close"* ]]
        [[ "$output" != *"Connection died"* ]]
        [ "$(grep -c '^3 ' <<<"$output")" -eq 2 ]
}

@test "net: python urllib uses the proxy from the environment" {
        start_proxy allowed.test
        run env http_proxy="$PROXY" no_proxy= "$PY" -c '
import sys, urllib.request, urllib.error
print(urllib.request.urlopen(sys.argv[1]).read().decode().strip())
try:
    urllib.request.urlopen(sys.argv[2])
except urllib.error.HTTPError as e:
    print(e.code, e.headers["X-Nono-Deny-Reason"])
' "http://allowed.test:$SPORT/hello.txt" "http://other.test:$SPORT/hello.txt"
        [ "$status" -eq 0 ]
        [ "${lines[0]}" = "hello from the origin" ]
        [[ "${lines[1]}" == "403 other.test is not in the allow list"* ]]
}

@test "net: git clones over http through the proxy, and not from a host that is not granted" {
        git init -q --bare "$T/www/repo.git"
        git init -q "$T/src"
        echo content >"$T/src/file"
        git -C "$T/src" add file
        git -C "$T/src" -c user.name=t -c user.email=t@t commit -qm first
        git -C "$T/src" push -q "$T/www/repo.git" HEAD:refs/heads/main
        git -C "$T/www/repo.git" symbolic-ref HEAD refs/heads/main
        git -C "$T/www/repo.git" update-server-info
        start_proxy allowed.test
        run env http_proxy="$PROXY" no_proxy= GIT_CONFIG_NOSYSTEM=1 git clone -q "http://allowed.test:$SPORT/repo.git" "$T/clone"
        [ "$status" -eq 0 ]
        [ "$(cat "$T/clone/file")" = content ]
        run env http_proxy="$PROXY" no_proxy= GIT_CONFIG_NOSYSTEM=1 git clone -q "http://other.test:$SPORT/repo.git" "$T/clone2"
        [ "$status" -ne 0 ]
        [[ "$output" == *"403"* ]]
}

@test "net: request bodies are forwarded exactly (Content-Length and chunked)" {
        start_proxy allowed.test
        head -c 3000000 /dev/urandom >"$T/body"
        want="$(stat -c %s "$T/body") $(sha256sum "$T/body" | cut -d' ' -f1)"
        run curl -sS --fail -x "$PROXY" --data-binary @"$T/body" "http://allowed.test:$SPORT/post"
        [ "$status" -eq 0 ]
        [ "$output" = "$want" ]
        run curl -sS --fail -x "$PROXY" -H "Transfer-Encoding: chunked" --data-binary @"$T/body" \
                "http://allowed.test:$SPORT/post"
        [ "$status" -eq 0 ]
        [ "$output" = "$want" ]
}

@test "net: a 20 MB download arrives intact through plain HTTP and through CONNECT" {
        head -c 20000000 /dev/urandom >"$T/www/big"
        start_proxy allowed.test
        curl -sS --fail -x "$PROXY" -o "$T/got1" "http://allowed.test:$SPORT/big"
        cmp "$T/www/big" "$T/got1"
        curl -sS --fail -p -x "$PROXY" -o "$T/got2" "http://allowed.test:$SPORT/big"
        cmp "$T/www/big" "$T/got2"
        kill -TERM "$PXPID"; wait "$PXPID"
        run grep -c "allow up=[0-9]* down=200002[0-9][0-9]$" "$T/events"
        [ "$output" = 2 ]
}

@test "net: 60 parallel transfers (GET, CONNECT, POST) all arrive intact and are all audited" {
        head -c 1000000 /dev/urandom >"$T/www/m"
        want="1000000 $(sha256sum "$T/www/m" | cut -d' ' -f1)"
        start_proxy allowed.test
        local jobs=()
        for i in $(seq 1 20); do
                curl -sS --fail -x "$PROXY" -o "$T/g$i" "http://allowed.test:$SPORT/m" &
                jobs+=($!)
                curl -sS --fail -p -x "$PROXY" -o "$T/c$i" "http://allowed.test:$SPORT/m" &
                jobs+=($!)
                curl -sS --fail -x "$PROXY" --data-binary @"$T/www/m" -o "$T/p$i" "http://allowed.test:$SPORT/post" &
                jobs+=($!)
        done
        for j in "${jobs[@]}"; do wait "$j"; done
        for i in $(seq 1 20); do
                cmp "$T/www/m" "$T/g$i"
                cmp "$T/www/m" "$T/c$i"
                [ "$(cat "$T/p$i")" = "$want" ]
        done
        kill -TERM "$PXPID"; wait "$PXPID"
        [ "$(grep -c ' allow up=' "$T/events")" -eq 60 ]
        [ "$(grep -c ' reason=' "$T/events")" -eq 0 ]
}

@test "net: a wildcard grants subdomains only, and not their private addresses" {
        start_proxy '*.wild.test'
        for h in wild.test badwild.test; do
                run curl -sS -i -x "$PROXY" "http://$h:$SPORT/hello.txt"
                [[ "${lines[0]}" == "HTTP/1.1 403 Forbidden"* ]]
                [[ "$output" == *"X-Nono-Deny-Reason: $h is not in the allow list"* ]]
        done
        # a.wild.test matches, but it resolves to loopback, which a wildcard does not grant
        run curl -sS -i -x "$PROXY" "http://a.wild.test:$SPORT/hello.txt"
        [[ "${lines[0]}" == "HTTP/1.1 403 Forbidden"* ]]
        [[ "$output" == *"X-Nono-Deny-Reason: a.wild.test resolves to 127.0.0.1, a loopback address"* ]]
}

@test "net: a wildcard works when the address it resolves to is granted" {
        start_proxy '*.wild.test' 127.0.0.1
        for h in a.wild.test b.c.wild.test A.WILD.TEST; do
                run curl -sS --fail -x "$PROXY" "http://$h:$SPORT/hello.txt"
                [ "$status" -eq 0 ]
                [ "$output" = "hello from the origin" ]
        done
        run curl -sS -i -x "$PROXY" "http://wild.test:$SPORT/hello.txt"
        [[ "${lines[0]}" == "HTTP/1.1 403 Forbidden"* ]]
}

@test "net: IP literals pass only when listed" {
        start_proxy allowed.test
        run curl -sS -i -x "$PROXY" "http://127.0.0.1:$SPORT/hello.txt"
        [[ "${lines[0]}" == "HTTP/1.1 403 Forbidden"* ]]
        [[ "$output" == *"127.0.0.1 is not in the allow list"* ]]
        run curl -sS -i -p -x "$PROXY" "http://[::1]:$SPORT/hello.txt"
        [[ "$output" == *"403"* ]]
        # numeric forms that resolvers read as 127.0.0.1 are refused outright
        # (sent raw: curl would normalise the URL itself)
        for h in 2130706433 127.1 0x7f.0.0.1; do
                exec 8<>"/dev/tcp/127.0.0.1/$PPORT"
                printf 'GET http://%s:%s/hello.txt HTTP/1.1\r\n\r\n' "$h" "$SPORT" >&8
                read -r answer <&8
                exec 8<&-
                [[ "$answer" == "HTTP/1.1 400 Bad Request"* ]]
        done
        kill -TERM "$PXPID"; wait "$PXPID"

        start_proxy 127.0.0.1
        run curl -sS --fail -x "$PROXY" "http://127.0.0.1:$SPORT/hello.txt"
        [ "$status" -eq 0 ]
        [ "$output" = "hello from the origin" ]
        run curl -sS --fail -p -x "$PROXY" "http://127.0.0.1:$SPORT/hello.txt"
        [ "$output" = "hello from the origin" ]
}

@test "net: the metadata address is refused even when a granted name resolves to it" {
        start_proxy meta.test allowed.test
        run curl -sS -i -x "$PROXY" "http://meta.test/latest/meta-data/"
        [[ "${lines[0]}" == "HTTP/1.1 403 Forbidden"* ]]
        [[ "$output" == *"X-Nono-Deny-Reason: meta.test resolves to 169.254.169.254, a cloud metadata address: only --allow-domain 169.254.169.254"* ]]
        run curl -sS -i -p -x "$PROXY" "http://meta.test/latest/meta-data/"
        [[ "$output" == *"403"* ]]
        run curl -sS -i -x "$PROXY" "http://169.254.169.254/latest/meta-data/"
        [[ "${lines[0]}" == "HTTP/1.1 403 Forbidden"* ]]
        kill -TERM "$PXPID"; wait "$PXPID"
        run grep -c "deny up=0 down=0 reason=" "$T/events"
        [ "$output" = 3 ]
        run grep -c "resolved=169.254.169.254 deny" "$T/events"
        [ "$output" = 2 ]
}

@test "net: requests that are not proxy requests get a clear 400" {
        start_proxy allowed.test
        run curl -sS -i "$PROXY/hello.txt"
        [[ "${lines[0]}" == "HTTP/1.1 400 Bad Request"* ]]
        [[ "$output" == *"absolute http:// URL or CONNECT"* ]]
        run curl -sS -i -x "$PROXY" "http://allowed.test@other.test:$SPORT/"
        [[ "$output" != *"hello"* ]]
}

@test "net: bad --allow-domain values are refused with the fix" {
        for bad in '*' '*.com' 'http://x.test' 'x.test:443' '127.1'; do
                run "$NONO" __proxy --listen 127.0.0.1:0 --allow-domain "$bad"
                [ "$status" -eq 1 ]
                [[ "$output" == "nono: --allow-domain '$bad'"* ]]
        done
        run "$NONO" __proxy --listen 127.0.0.1:0 --hosts-file "$T/missing" --allow-domain x.test
        [ "$status" -eq 1 ]
        [[ "$output" == *"cannot read hosts file $T/missing"* ]]
}

@test "net: __proxy is hidden from --help" {
        run "$NONO" --help
        [[ "$output" != *"__proxy"* ]]
}
