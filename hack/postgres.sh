#!/usr/bin/env bash
# Runs a throwaway PostgreSQL server for tests and CI.
#
#   hack/postgres.sh start DIR   initdb in DIR (once), start the server on
#                                127.0.0.1 on a free port with its unix socket
#                                in DIR, create database strata_test, and print
#                                its DSN (also written to DIR/dsn).
#   hack/postgres.sh stop DIR    stop it; harmless when it is not running.
#
# The server binaries come from Debian's postgresql package: installed with
# apt-get when missing and running as root. initdb refuses to run as root, so
# as root the server runs as the postgres user. The server is tuned for tests
# (no fsync, trust authentication on loopback): never use it for real data.
set -euo pipefail

DB=strata_test

die() {
	echo "postgres.sh: $*" >&2
	exit 1
}

usage() {
	die "usage: $0 start|stop DIR"
}

# bindir prints the newest /usr/lib/postgresql/*/bin holding pg_ctl, or nothing.
bindir() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x $d/pg_ctl && -x $d/initdb ]]; then
			echo "$d"
			return
		fi
	done
}

ensure_bindir() {
	BIN=$(bindir)
	if [[ -n $BIN ]]; then
		return
	fi
	if [[ $(id -u) -ne 0 ]]; then
		die "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; install them (sudo apt-get install -y postgresql) or run as root"
	fi
	echo "postgres.sh: installing PostgreSQL with apt-get" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 postgresql >&2
	BIN=$(bindir)
	[[ -n $BIN ]] || die "apt-get installed postgresql but no server binaries appeared in /usr/lib/postgresql/*/bin"
}

# as_owner runs a command as the user that owns the server: postgres when we
# are root (initdb and postgres refuse root), ourselves otherwise.
as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		if command -v runuser >/dev/null; then
			runuser -u postgres -- "$@"
		else
			su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	else
		"$@"
	fi
}

owner() {
	if [[ $(id -u) -eq 0 ]]; then echo postgres; else id -un; fi
}

running() {
	[[ -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

# port_free reports whether nothing listens on 127.0.0.1:$1.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	ensure_bindir
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	DATA=$DIR/data
	# The socket path (DIR/.s.PGSQL.PORT) must fit in sockaddr_un.
	((${#DIR} <= 90)) || die "DIR is too long for a unix socket path (${#DIR} > 90 characters): $DIR"

	if [[ $(id -u) -eq 0 ]]; then
		if ! id postgres >/dev/null 2>&1; then
			useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
		fi
		chown -R postgres: "$DIR"
		as_owner test -w "$DIR" -a -x "$DIR" ||
			die "user postgres cannot write $DIR (is a parent directory private?); use a DIR under /tmp"
	fi

	if running; then
		[[ -s $DIR/dsn ]] || die "a server runs in $DIR but $DIR/dsn is missing; run '$0 stop $DIR' first"
		cat "$DIR/dsn"
		return
	fi

	if [[ ! -f $DATA/PG_VERSION ]]; then
		rm -rf "$DATA"
		# C collation: ORDER BY on text sorts bytewise, as in SQLite.
		as_owner "$BIN/initdb" -D "$DATA" --auth=trust --encoding=UTF8 --locale=C >"$DIR/initdb.log" 2>&1 ||
			{ cat "$DIR/initdb.log" >&2; die "initdb failed"; }
	fi

	local port="" try
	for try in $(seq 1 20); do
		port=$((20000 + RANDOM % 40000))
		port_free "$port" || continue
		if as_owner "$BIN/pg_ctl" start -D "$DATA" -w -t 60 -l "$DIR/postgres.log" \
			-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$DIR' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			>/dev/null; then
			break
		fi
		port=""
		# A lost race for the port shows in the log; anything else is fatal.
		grep -q "could not bind\|Address already in use" "$DIR/postgres.log" 2>/dev/null ||
			{ tail -n 20 "$DIR/postgres.log" >&2 || true; die "pg_ctl start failed"; }
	done
	[[ -n $port ]] || die "found no free port to start PostgreSQL on"

	# pg_ctl -w waits for startup; wait for TCP connections too.
	local i
	for i in $(seq 1 100); do
		if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
		((i < 100)) || die "PostgreSQL did not accept connections on 127.0.0.1:$port"
		sleep 0.1
	done

	local user
	user=$(owner)
	if [[ -z $(as_owner "$BIN/psql" -h "$DIR" -p "$port" -U "$user" -d postgres -tAXc "SELECT 1 FROM pg_database WHERE datname = '$DB'") ]]; then
		as_owner "$BIN/psql" -h "$DIR" -p "$port" -U "$user" -d postgres -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB" >&2
	fi

	local dsn="postgres://$user@127.0.0.1:$port/$DB?sslmode=disable"
	echo "$dsn" >"$DIR/dsn"
	echo "$dsn"
}

stop() {
	[[ -d $DIR ]] || return 0
	DATA=$(cd "$DIR" && pwd)/data
	BIN=$(bindir)
	[[ -n $BIN ]] || return 0
	if running; then
		as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
	fi
	rm -f "$DIR/dsn"
}

[[ $# -eq 2 ]] || usage
DIR=$2
case $1 in
start) start ;;
stop) stop ;;
*) usage ;;
esac
