#!/bin/sh
# Prints crates/swim-serf/tests/golden.json: Serf's messages as Debian's Go
# Serf 0.9.4 writes them. golden_test.go is compiled into a copy of Serf's
# own package (its types are unexported); needs golang-go and
# golang-github-hashicorp-serf-dev, nothing from the network.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkg="$tmp/src/github.com/hashicorp/serf/serf"
mkdir -p "$pkg"
for f in /usr/share/gocode/src/github.com/hashicorp/serf/serf/*.go; do
  case "$f" in *_test.go) ;; *) cp "$f" "$pkg/" ;; esac
done
cp "$here/golden_test.go" "$pkg/"
cd "$pkg"
GO111MODULE=off GOPATH="$tmp:/usr/share/gocode" GOCACHE="$tmp/cache" \
  go test -count=1 -run TestGolden -v . | sed -n '/^GOLDEN-BEGIN$/,/^GOLDEN-END$/p' | sed '1d;$d'
