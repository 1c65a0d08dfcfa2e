#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the console's browser
# tests, installing Debian's chromium package with apt-get when it is
# missing and we run as root (as hack/postgres.sh installs PostgreSQL).
#
#   hack/chromium.sh    print the browser's path ($STRATA_CHROMIUM, or
#                       chromium on PATH), installing it first if needed
set -euo pipefail

die() {
	echo "chromium.sh: $*" >&2
	exit 1
}

find_browser() {
	if [[ -n ${STRATA_CHROMIUM:-} && -x $STRATA_CHROMIUM ]]; then
		echo "$STRATA_CHROMIUM"
		return
	fi
	command -v chromium 2>/dev/null || true
}

browser=$(find_browser)
if [[ -z $browser ]]; then
	if [[ $(id -u) -ne 0 ]]; then
		die "Chromium not found (set STRATA_CHROMIUM or install it: sudo apt-get install -y chromium)"
	fi
	echo "chromium.sh: installing Chromium with apt-get" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium >&2
	browser=$(find_browser)
	[[ -n $browser ]] || die "apt-get installed chromium but no chromium is on PATH"
fi
echo "$browser"
