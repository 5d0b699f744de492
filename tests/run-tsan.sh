#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds modelfs with ThreadSanitizer in a separate build directory and runs
# the concurrency tests there (the registry's, the API's response cache and
# server, the in-process mount, and the daemon's signal/reload/stop paths in
# the service test, where the first race aborts the daemon); any data race
# report fails the run.
#
#   tests/run-tsan.sh [BUILD_DIR]   (relative to the source root; default build-tsan)
#
# TSan needs its shadow memory at fixed addresses. With a high ASLR entropy
# (vm.mmap_rnd_bits > 28) it aborts with "unexpected memory mapping"; the test
# is then re-run once with address randomisation turned off for it alone.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build-tsan}
case $build in /*) ;; *) build=$root/$build ;; esac

# The system's libfuse, not the 3.17 that ./dev builds for the other build
# directories (MODELFS_TSAN_LIBFUSE=dev to use that one): ThreadSanitizer
# cannot see the ordering the kernel gives between a reply and the next
# request (a LOOKUP's reply before the OPEN that uses its inode), only
# libfuse's per-request lock, and with 3.17 that lock is taken after the
# reply goes out often enough that TSan reports every handler that reads
# what an earlier request wrote (fs_open reading an inode fs_lookup made),
# and a TSan report in the in-process mount test deadlocks it (the dying
# process is its own FUSE server). On Debian 12 this compiles passthrough
# out of the TSan build. Empty: the system's.
if [[ ${MODELFS_TSAN_LIBFUSE:-system} == dev ]]; then
	pc=$("$root/dev" libfuse) || pc=
else
	pc=$(MODELFS_LIBFUSE=system "$root/dev" libfuse) || pc=
fi
pcopt=-Dpkg_config_path="$pc"
[[ -n $pc ]] || pcopt=-Dpkg_config_path=[]
if [[ -d $build ]]; then
	# Again each time: the options stay right and new test files are picked up.
	meson setup --reconfigure "$build" "$root" -Db_sanitize=thread -Db_lundef=false "$pcopt" >/dev/null
else
	CC=${CC:-gcc} meson setup "$build" "$root" -Db_sanitize=thread -Db_lundef=false "$pcopt"
fi
ninja -C "$build"

# halt_on_error: the first race fails the test; second_deadlock_stack: full
# lock-order reports. suppressions: none; a race here is a bug to fix.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"

log=$build/meson-logs/testlog.txt
run() {
	meson test -C "$build" registry/concurrency api/cache api/server fs/mount service \
		--print-errorlogs "$@"
}

if run; then
	status=0
elif grep -q "unexpected memory mapping" "$log"; then
	echo "run-tsan: TSan could not map its shadow memory; retrying without ASLR" >&2
	status=0
	run --wrapper "setarch $(uname -m) -R" || status=$?
else
	status=1
fi
if grep -q "WARNING: ThreadSanitizer" "$log"; then
	echo "run-tsan: ThreadSanitizer reported problems (see $log)" >&2
	status=1
fi
exit "$status"
