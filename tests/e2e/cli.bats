#!/usr/bin/env bats
load helpers
setup() { common_setup; }
teardown() { common_teardown; }

@test "nono --version prints the version" {
        run "$NONO" --version
        [ "$status" -eq 0 ]
        [[ "$output" =~ ^nono\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "nono --help lists the commands" {
        run "$NONO" --help
        [ "$status" -eq 0 ]
        [[ "$output" == *"usage: nono COMMAND"* ]]
}

@test "an unknown command is an error that points at --help" {
        run "$NONO" frobnicate
        [ "$status" -eq 2 ]
        [[ "$output" == *"unknown command 'frobnicate'"*"nono --help"* ]]
}
