#!/bin/sh
# Benchmarks the ufs2 FUSE mount against go-fuse's loopback example
# filesystem (as shipped, with FUSE passthrough, and with passthrough off)
# on the same backing disk and prints ufs2's ratios to both.
#
#   sudo bench/run.sh [bench flags]      e.g. -size 1073741824 -files 10000
#
# Builds ufs2, go-fuse's example/loopback (the version in go.mod) and
# bench/loopback into a temporary directory, then runs bench/bench.go.
# Flags: see "go run -tags ufs2bench ./bench -h". The backing directory
# defaults to $TMPDIR (set TMPDIR or -dir to bench another disk).
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/ufs2" ./cmd/ufs2
go build -o "$bin/loopback" github.com/hanwen/go-fuse/v2/example/loopback
go build -tags ufs2bench -o "$bin/loopback-nopt" ./bench/loopback
go build -tags ufs2bench -o "$bin/bench" ./bench
"$bin/bench" -ufs2 "$bin/ufs2" -loopback "$bin/loopback" -loopback-nopt "$bin/loopback-nopt" "$@"
