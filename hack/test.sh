#!/usr/bin/env bash
# The tests of `make test`, each kind a timed phase (hack/phase.sh):
#
#   end to end    test/e2e against local datacenters, started first and run in
#                 the background: they wait on clusters more than they compute,
#                 so the other phases use the cores meanwhile. No race
#                 detector: their work happens in other processes.
#   unit and      packages that need no server, and packages whose tests
#   integration   start a real API server (envtest) or use PostgreSQL, in one
#                 go test, with the race detector.
#
# Needs bin/ (make tools build). Starts a throwaway PostgreSQL before the
# end-to-end tests, which use it as the integration tests do, and installs
# Chromium (hack/chromium.sh) for the console's browser tests. Flags:
# GO_TEST_FLAGS (all phases), RACE (unit and integration), E2E_PARALLEL (how
# many end-to-end tests run at once beside the unit and integration tests,
# each with its own datacenter) and E2E_PARALLEL_LATE (how many once those are
# done). The tests' slot gate (test/e2e/slots_test.go) holds them to these: it
# allows E2E_PARALLEL while the file $STRATA_E2E_NARROW exists, which this
# script removes when the integration tests end.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$PWD/bin}
GO_TEST_FLAGS=${GO_TEST_FLAGS:--count=1 -ldflags=-w}
RACE=${RACE:--race}
E2E_PARALLEL=${E2E_PARALLEL:-1}
E2E_PARALLEL_LATE=${E2E_PARALLEL_LATE:-2}
phase=hack/phase.sh

pg=$(mktemp -d /tmp/strata-postgres.XXXXXX)
e2e_log=$(mktemp /tmp/strata-e2e.XXXXXX.log)
STRATA_E2E_NARROW=$(mktemp /tmp/strata-e2e-narrow.XXXXXX)
e2e_pid=
cleanup() {
	if [[ -n $e2e_pid ]]; then
		# Its own process group (setsid): go test and the test binary stop too.
		kill -TERM -- "-$e2e_pid" 2>/dev/null || true
		wait "$e2e_pid" 2>/dev/null || true
	fi
	hack/postgres.sh stop "$pg" >/dev/null || true
	rm -rf "$pg" "$e2e_log" "$STRATA_E2E_NARROW"
}
trap cleanup EXIT

export KUBEBUILDER_ASSETS=$BIN STRATA_BIN_DIR=$BIN
export STRATA_E2E_NARROW E2E_PARALLEL E2E_PARALLEL_LATE
# PostgreSQL first: the end-to-end tests use it too (TestLocalDatacenter's
# broker replicas).
STRATA_TEST_POSTGRES_DSN=$($phase run "PostgreSQL for the tests" hack/postgres.sh start "$pg")
export STRATA_TEST_POSTGRES_DSN
# After PostgreSQL: both may install from Debian's packages, one apt at a time.
STRATA_CHROMIUM=$($phase run "Chromium for the tests" hack/chromium.sh)
export STRATA_CHROMIUM
# -parallel above the number of tests: every test gets past t.Parallel() and
# the gate, not go test, picks which run (the longest first).
# shellcheck disable=SC2016,SC2086 # $0 is the log; GO_TEST_FLAGS is a list of flags.
setsid $phase run "end-to-end tests (beside the others)" bash -c 'exec "${@:1}" >"$0" 2>&1' "$e2e_log" \
	go test $GO_TEST_FLAGS -timeout 40m -v -parallel 64 ./test/e2e &
e2e_pid=$!

# Integration packages: their tests start envtest or use the test databases.
mapfile -t integration < <(git grep -l -E 'testutil\.(StartEnv|StartEnvWithKueue|StartWorkloadEnv|Databases)\(|envtest\.Environment' -- '*_test.go' |
	xargs -n1 dirname | sort -u | sed 's|^|./|')
mapfile -t unit < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' ./... |
	sed "s|^$PWD/|./|" | grep -v -x -F -e ./test/e2e "${integration[@]/#/-e}")

status=0
# One go test for both: it runs two packages at a time with no pause between
# the kinds (the last unit packages no longer run alone), and an integration
# package starts as soon as its binary links, while others still compile.
# shellcheck disable=SC2086
$phase run "unit and integration tests" go test $GO_TEST_FLAGS $RACE -timeout 30m "${unit[@]}" "${integration[@]}" || status=1
# The cores are the end-to-end tests' now: E2E_PARALLEL_LATE of them at once.
rm -f "$STRATA_E2E_NARROW"

e2e_status=0
wait "$e2e_pid" || e2e_status=$?
e2e_pid=
if [[ $e2e_status -ne 0 ]]; then
	echo "--- end-to-end tests failed; their output:"
	cat "$e2e_log"
	status=1
else
	grep -E '^(--- |ok |PASS)' "$e2e_log" | grep -v -E '^    ' || true
fi
$phase e2e "$e2e_log"
exit "$status"
