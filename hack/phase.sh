#!/usr/bin/env bash
# Times the phases of the build, so CI says where its minutes go.
#
#   hack/phase.sh run NAME CMD [ARG...]   run CMD as the phase NAME; print
#                                         "phase NAME: N s" when it ends and
#                                         exit with CMD's status
#   hack/phase.sh e2e LOG                 record each end-to-end test of a
#                                         `go test -v` log as a phase
#   hack/phase.sh table [TOTAL_SECONDS]   print the recorded phases as a table
#
# Phases are recorded in $STRATA_PHASES (one "name<TAB>seconds<TAB>result"
# line each) when it is set; .ci/run sets it and prints the table at its end.
set -euo pipefail

record() {
	printf '%-44s %7s s  %s\n' "phase $1:" "$2" "$3" >&2
	if [[ -n ${STRATA_PHASES:-} ]]; then
		printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$STRATA_PHASES"
	fi
}

case ${1:-} in
run)
	[[ $# -ge 3 ]] || { echo "usage: $0 run NAME CMD [ARG...]" >&2; exit 2; }
	name=$2
	shift 2
	start=$(date +%s.%N)
	status=0
	"$@" || status=$?
	secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	if [[ $status -eq 0 ]]; then result=ok; else result="FAILED (exit $status)"; fi
	record "$name" "$secs" "$result"
	exit "$status"
	;;
e2e)
	[[ $# -eq 2 ]] || { echo "usage: $0 e2e LOG" >&2; exit 2; }
	# Top-level tests only: "--- PASS: TestApps (68.21s)".
	grep -E '^--- (PASS|FAIL|SKIP): Test[^ ]* \([0-9.]+s\)' "$2" |
		sed -E 's/^--- ([A-Z]+): ([^ ]+) \(([0-9.]+)s\)/\2 \3 \1/' |
		while read -r test secs result; do
			if [[ $result == PASS ]]; then result=ok; fi
			record "  e2e $test" "$secs" "$result"
		done
	;;
table)
	[[ -n ${STRATA_PHASES:-} && -s ${STRATA_PHASES:-} ]] || exit 0
	echo
	echo "Where the time went:"
	printf '  %-44s %9s  %s\n' "phase" "seconds" "result"
	while IFS=$'\t' read -r name secs result; do
		printf '  %-44s %9s  %s\n' "$name" "$secs" "$result"
	done <"$STRATA_PHASES"
	if [[ -n ${2:-} ]]; then
		printf '  %-44s %9s\n' "total (wall)" "$2"
	fi
	;;
*)
	echo "usage: $0 run|e2e|table ..." >&2
	exit 2
	;;
esac
