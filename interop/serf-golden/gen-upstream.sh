#!/bin/sh
# Prints crates/swim-serf/tests/golden-upstream.json: the vectors of gen.sh
# as upstream Go Serf (v0.10, with go-msgpack v2) writes them.
#
#   gen-upstream.sh SERF_CHECKOUT GO_MSGPACK_CHECKOUT
#
# Upstream needs Go 1.25 and modules that Debian does not package; this
# builds its serf and coordinate packages offline with Debian's Go 1.19 in
# GOPATH mode instead, changing nothing that touches the wire: go-metrics'
# compat import becomes armon/go-metrics, memberlist's MetricLabels (absent
# from Debian's memberlist) is dropped, and four standard-library helpers
# newer than 1.19 (slices.Contains, strings.CutPrefix, max) are shimmed.
# coordinate/phantom.go, a test helper, is left out.
set -eu
serf=$(cd "$1" && pwd)
msgpack=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/src/github.com/hashicorp"
mkdir -p "$root/serf/serf" "$root/serf/coordinate" "$root/go-msgpack/v2"
cp -r "$msgpack/codec" "$root/go-msgpack/v2/"
rm -f "$root"/go-msgpack/v2/codec/*_test.go
for d in serf coordinate; do
  for f in "$serf/$d"/*.go; do
    case "$f" in *_test.go | */phantom.go) ;; *) cp "$f" "$root/serf/$d/" ;; esac
  done
done
cd "$root/serf"
sed -i 's#"github.com/hashicorp/go-metrics/compat"#"github.com/armon/go-metrics"#;
        s#^\(\t\)"github.com/armon/go-metrics"#\1metrics "github.com/armon/go-metrics"#;
        s/^\tconf.MemberlistConfig.MetricLabels = conf.MetricLabels$//;
        s/^\t"slices"$//; s/slices\.Contains(/sliceContains(/g;
        s/strings\.CutPrefix(/cutPrefix(/g' serf/*.go coordinate/*.go
cat >serf/shim_go119.go <<'GO'
package serf

func sliceContains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func max(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}
GO
# Upstream's encodeMessage takes the time-format flag (false: its default).
sed 's/encodeMessage(ty, m)/encodeMessage(ty, m, false)/' "$here/golden_test.go" >serf/golden_test.go
cd serf
GO111MODULE=off GOPATH="$tmp:/usr/share/gocode" GOCACHE="$tmp/cache" \
  go test -count=1 -run TestGolden -v . | sed -n '/^GOLDEN-BEGIN$/,/^GOLDEN-END$/p' | sed '1d;$d'
