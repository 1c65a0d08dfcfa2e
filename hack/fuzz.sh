#!/usr/bin/env bash
# Runs every native Go fuzz test (func FuzzXxx(f *testing.F) in a _test.go
# file) for FUZZTIME each. `go test -fuzz` takes one target of one package
# per run, so the targets are found here, and a new fuzzer needs no list.
# Their seed corpora (f.Add and testdata/fuzz/FuzzXxx) run in `make test`.
#
#   FUZZTIME      how long each target runs (default 60s; go's -fuzztime,
#                 so 10000x means that many inputs)
#   FUZZ          a regular expression of the targets to run (default all)
#   FUZZ_PARALLEL fuzzing workers per target (default GOMAXPROCS)
#   FUZZMINIMIZETIME  how long go minimizes a new input (default 10s, go's
#                 is 60s, which a slow target's short run would spend there)
#
# A target that fails keeps its input under testdata/fuzz/<Target>/ of its
# package (go test writes it): fix the code, keep the file as a seed. The
# script runs every target, prints a table (time, executions, result) and
# exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-60s}
FUZZ=${FUZZ:-.}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}
parallel=()
if [[ -n ${FUZZ_PARALLEL:-} ]]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

# "./dir Target" for each fuzz target, sorted.
mapfile -t targets < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go' |
	sed -E 's|^(.*)/[^/]+_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*$|./\1 \2|' |
	awk -v re="$FUZZ" '$2 ~ re' | sort -u)
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "no fuzz targets match FUZZ=$FUZZ" >&2
	exit 1
fi

log=$(mktemp /tmp/strata-fuzz.XXXXXX.log)
trap 'rm -f "$log"' EXIT
rows=()
failed=0
for t in "${targets[@]}"; do
	read -r pkg target <<<"$t"
	echo "=== $target ($pkg), $FUZZTIME"
	start=$(date +%s)
	status=ok
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "${parallel[@]}" "$pkg" 2>&1 | tee "$log" || status=FAILED
	secs=$(($(date +%s) - start))
	# go test's last progress line: "fuzz: elapsed: 1m0s, execs: 123 (2/sec), ..."
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
	[[ $status == ok ]] || failed=$((failed + 1))
	rows+=("$(printf '%-26s %-40s %6s s %12s  %s' "$target" "$pkg" "$secs" "${execs:-?}" "$status")")
done

printf '\n%-26s %-40s %8s %12s  %s\n' target package wall executions result
printf '%s\n' "${rows[@]}"
if [[ $failed -gt 0 ]]; then
	echo "$failed fuzz target(s) failed: their inputs are under testdata/fuzz/ of their packages" >&2
	exit 1
fi
