#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs every test suite:
#   fast dataplane models gpu sched e2e fuzz
# then the fast, dataplane and sched suites and the e2e churn case (suite leak) again in an
# AddressSanitizer/UBSan build.
# Usage: scripts/test.sh [--suite NAME]... [--no-sanitize] [--build DIR]
# Tests that need something absent (GPU, root, a namespace) are reported as skipped.
# The last line is "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

build=${SHOAL_BUILD:-build}
suites=()
sanitize=1
while [ $# -gt 0 ]; do
	case "$1" in
	--suite) suites+=("$2"); shift 2 ;;
	--no-sanitize) sanitize=0; shift ;;
	--build) build=$2; shift 2 ;;
	-h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[ ${#suites[@]} -gt 0 ] || suites=(fast dataplane models gpu sched e2e fuzz)

if [ "$(id -u)" -eq 0 ]; then
	scripts/setup.sh
else
	scripts/setup.sh --check || { echo "test.sh: run 'sudo scripts/setup.sh' first" >&2; exit 1; }
fi

# the model zoo (cached outside the repository; offline after the first run) for the
# whole-model checks of the models suite
case " ${suites[*]} " in
*" models "*|*" gpu "*) scripts/fetch-models.sh ;;
esac

werror=false
[ -n "${CI:-}" ] && werror=true

configure() { # DIR [meson options...]
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" -Dwerror=$werror "$@" >/dev/null
	else
		meson setup "$dir" -Dwerror=$werror "$@" >"$dir.setup.log" 2>&1 || {
			cat "$dir.setup.log" >&2; exit 1; }
		rm -f "$dir.setup.log"
	fi
}

total_pass=0 total_fail=0 total_skip=0
run_suites() { # DIR SUITE...
	local dir=$1; shift
	local args=()
	for s in "$@"; do args+=(--suite "$s"); done
	local rc=0
	meson test -C "$dir" --print-errorlogs --num-processes 2 "${args[@]}" || rc=$?
	# count from meson's machine-readable log
	read -r p f s < <(/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
	)
	total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
	echo "test.sh: $dir [$*]: $p passed, $f failed, $s skipped"
	return 0
}

echo "test.sh: building $build"
configure "$build"
ninja -C "$build"
run_suites "$build" "${suites[@]}"

if [ $sanitize -eq 1 ]; then
	san_suites=()
	for s in "${suites[@]}"; do case "$s" in fast|sched|dataplane) san_suites+=("$s") ;; esac; done
	# the e2e churn case (200 clients join and leave) again in the sanitizer build: no leak
	case " ${suites[*]} " in *" e2e "*) san_suites+=(leak) ;; esac
	if [ ${#san_suites[@]} -gt 0 ]; then
		echo "test.sh: building $build-asan (AddressSanitizer + UBSan)"
		configure "$build-asan" -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=disabled
		ninja -C "$build-asan"
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_suites "$build-asan" "${san_suites[@]}"
	fi
fi

echo "${total_pass} passed, ${total_fail} failed, ${total_skip} skipped"
[ "$total_fail" -eq 0 ]
