#!/usr/bin/env bash
# The tests of `make test`, each kind a timed phase (hack/phase.sh):
#
#   end to end    test/e2e against local datacenters, started first and run in
#                 the background: they wait on clusters more than they compute,
#                 so the other phases use the cores meanwhile. No race
#                 detector: their work happens in other processes.
#   unit          packages that need no server, with the race detector.
#   integration   packages whose tests start a real API server (envtest) or
#                 use PostgreSQL, with the race detector.
#
# Needs bin/ (make tools build). Starts a throwaway PostgreSQL before the
# end-to-end tests, which use it as the integration tests do. Flags:
# GO_TEST_FLAGS (all phases), RACE (unit and integration), E2E_PARALLEL (how
# many end-to-end tests run at once, each with its own datacenter).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$PWD/bin}
GO_TEST_FLAGS=${GO_TEST_FLAGS:--count=1 -ldflags=-w}
RACE=${RACE:--race}
E2E_PARALLEL=${E2E_PARALLEL:-1}
phase=hack/phase.sh

pg=$(mktemp -d /tmp/strata-postgres.XXXXXX)
e2e_log=$(mktemp /tmp/strata-e2e.XXXXXX.log)
e2e_pid=
cleanup() {
	if [[ -n $e2e_pid ]]; then
		# Its own process group (setsid): go test and the test binary stop too.
		kill -TERM -- "-$e2e_pid" 2>/dev/null || true
		wait "$e2e_pid" 2>/dev/null || true
	fi
	hack/postgres.sh stop "$pg" >/dev/null || true
	rm -rf "$pg" "$e2e_log"
}
trap cleanup EXIT

export KUBEBUILDER_ASSETS=$BIN STRATA_BIN_DIR=$BIN
# PostgreSQL first: the end-to-end tests use it too (TestLocalDatacenter's
# broker replicas).
STRATA_TEST_POSTGRES_DSN=$($phase run "PostgreSQL for the tests" hack/postgres.sh start "$pg")
export STRATA_TEST_POSTGRES_DSN
# shellcheck disable=SC2016,SC2086 # $0 is the log; GO_TEST_FLAGS is a list of flags.
setsid $phase run "end-to-end tests (beside the others)" bash -c 'exec "${@:1}" >"$0" 2>&1' "$e2e_log" \
	go test $GO_TEST_FLAGS -timeout 40m -v -parallel "$E2E_PARALLEL" ./test/e2e &
e2e_pid=$!

# Integration packages: their tests start envtest or use the test databases.
mapfile -t integration < <(git grep -l -E 'testutil\.(StartEnv|StartEnvWithKueue|StartWorkloadEnv|Databases)\(|envtest\.Environment' -- '*_test.go' |
	xargs -n1 dirname | sort -u | sed 's|^|./|')
mapfile -t unit < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' ./... |
	sed "s|^$PWD/|./|" | grep -v -x -F -e ./test/e2e "${integration[@]/#/-e}")

status=0
# shellcheck disable=SC2086
$phase run "unit tests" go test $GO_TEST_FLAGS $RACE -timeout 20m "${unit[@]}" || status=1
# shellcheck disable=SC2086
$phase run "integration tests" go test $GO_TEST_FLAGS $RACE -timeout 30m "${integration[@]}" || status=1

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
