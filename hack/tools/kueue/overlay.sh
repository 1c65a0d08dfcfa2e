#!/usr/bin/env bash
# Writes a `go build -overlay` into OUT (main.go and overlay.json) that adds
# to this module a package ./cmd/kueue, Kueue's cmd/kueue/main.go (go does
# not overlay files of the module cache) with one change is that the metrics server's certificate
# directory, hard-coded to /etc/kueue/metrics/certs when internalCertManagement
# is off (a path a container mounts), is read from $KUEUE_METRICS_CERT_DIR
# when that is set, so that `strata up` runs Kueue as a plain process with a
# certificate of its home. Without the variable Kueue behaves as released.
# Kueue's source is not copied into this repository: the overlay is made from
# the module at build time, and the build fails if the line is not there.
#
#   hack/tools/kueue/overlay.sh KUEUE_MODULE_DIR OUT
set -euo pipefail
src=$1/cmd/kueue/main.go out=$2
line='metricsCertPath := "/etc/kueue/metrics/certs"'
if [[ $(grep -cF "$line" "$src") != 1 ]]; then
	echo "$0: $src does not set the metrics certificate path once as expected ($line); update the overlay for this Kueue version" >&2
	exit 1
fi
mkdir -p "$out"
sed 's|metricsCertPath := "/etc/kueue/metrics/certs"|metricsCertPath := func() string { if d := os.Getenv("KUEUE_METRICS_CERT_DIR"); d != "" { return d }; return "/etc/kueue/metrics/certs" }()|' \
	"$src" >"$out/main.go"
"$(go env GOROOT)/bin/gofmt" -w "$out/main.go"
printf '{"Replace": {"%s": "%s"}}\n' "$(cd "$(dirname "$0")" && pwd)/cmd/kueue/main.go" "$out/main.go" >"$out/overlay.json"
