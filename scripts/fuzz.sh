#!/usr/bin/env bash
# fuzz.sh — run every Go fuzz target in the module for a short time each.
#
#   scripts/fuzz.sh            every target, FUZZTIME (default 5s) each
#   scripts/fuzz.sh Import     only targets whose name matches the regexp
#   FUZZTIME=1m scripts/fuzz.sh
#
# Targets are found by looking for `func FuzzXxx(` in *_test.go files. Each
# runs as `go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime $FUZZTIME ./pkg`.
# A failing input is written by go test to the package's
# testdata/fuzz/FuzzXxx/ directory (commit it: it becomes a regression
# seed that plain `go test` runs). Every target runs even after a failure;
# the script exits 1 if any failed, listing them.
#
# cmd/campaignd's TestMain builds the binaries unless CAMPAIGND_BIN_DIR
# names prebuilt ones; fuzzing re-runs TestMain in every worker process, so
# the script builds campaignd once and points CAMPAIGND_BIN_DIR at it when
# it is not set.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
filter=${1:-.}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pkg<TAB>target lines, sorted, unique.
grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]+\(' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]+)\($|\1\t\2|; s|^\./[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]+)\($|.\t\1|' |
	grep -Ev '(^|/)(vendor|testdata)/' | sort -u >"$tmp/targets"

if [ ! -s "$tmp/targets" ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

if [ -z "${CAMPAIGND_BIN_DIR:-}" ] && grep -q '^cmd/campaignd	' "$tmp/targets"; then
	mkdir -p "$tmp/bin"
	"$GO" build -o "$tmp/bin/campaignd" ./cmd/campaignd
	export CAMPAIGND_BIN_DIR="$tmp/bin"
fi

failed=()
ran=0
while IFS=$'\t' read -r pkg target; do
	if ! [[ $target =~ $filter ]]; then
		continue
	fi
	ran=$((ran + 1))
	echo "=== $target (./$pkg, $FUZZTIME)"
	if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "./$pkg" </dev/null; then
		failed+=("$target (./$pkg)")
	fi
done <"$tmp/targets"

if [ "$ran" -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matches $filter" >&2
	exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz.sh: ${#failed[@]} of $ran fuzz targets failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz.sh: all $ran fuzz targets passed ($FUZZTIME each)"
