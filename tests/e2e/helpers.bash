# Shared setup for the end-to-end tests. Each test gets its own temporary directory and nono home, so tests
# never see each other's state nor the user's.
: "${NONO:=$BATS_TEST_DIRNAME/../../build/launcher/nono}"

common_setup() {
        T=$(mktemp -d "${TMPDIR:-/tmp}/nono-e2e.XXXXXX")
        export NONO_HOME="$T/home/nono"
        export XDG_CONFIG_HOME="$T/home/config"
        export XDG_DATA_HOME="$T/home/data"
        export XDG_CACHE_HOME="$T/home/cache"
        unset NO_COLOR
}

common_teardown() {
        [ -n "${T:-}" ] && { chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"; }
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---- nono run (run-*.bats) ----
: "${NONO_ESCAPE:=$BATS_TEST_DIRNAME/../../build/tests/unit/launcher/nono-escape}"
# run_setup: a workdir W (granted by default: it is the cwd), a directory O outside every grant with a
# secret in it, the syscall probe copied into W, and cd W.
run_setup() {
        W="$T/work"; O="$T/outside"
        mkdir -p "$W" "$O"
        echo "outside-secret" >"$O/secret"
        cp "$NONO_ESCAPE" "$W/esc"
        cd "$W"
}
