#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a fuzz target with libFuzzer for a while (needs clang and
# libclang-rt-14-dev), on a copy of its corpus; inputs worth keeping go in
# tests/fuzz/corpus/<name>/, which every normal test run replays.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET]   (default 60 seconds; targets: api, http)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build-fuzz
secs=${1:-60}
target=${2:-api}

if [[ ! -f $build/build.ninja ]]; then
	# Coverage for libFuzzer in every library, not only the target file.
	CC=clang meson setup "$build" "$root" -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$build" "tests/fuzz_$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root"/tests/fuzz/corpus/"$target"/* "$work"/
"$build"/tests/fuzz_"$target" -max_total_time="$secs" -max_len=4096 "$work"
