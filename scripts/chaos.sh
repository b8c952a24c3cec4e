#!/usr/bin/env bash
# Runs the long chaos suite (TestChaos in cmd/campaignd with
# CAMPAIGND_CHAOS=long: 20,000 recipients, 10 minutes of kill -9s of ticks,
# daemon and plugin, SIGTERMs and overlapping ticks against a real SMTP
# sink) and writes its figures as the "## Chaos suite" section of a
# Markdown file (default BENCHMARKS.md), replacing that section and keeping
# the rest of the file as it is.
#
#   CAMPAIGND_BIN_DIR=bin ./scripts/chaos.sh [OUT.md]        (make chaos)
#
# Overrides: GO, CAMPAIGND_CHAOS_DURATION (default 10m), CAMPAIGND_CHAOS_SEED,
# CHAOS_TIMEOUT (go test -timeout, default 60m).
set -uo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_init chaos.sh chaos "${1:-}"
report=$work/section.md
started=$(date +%s)

echo "==> CAMPAIGND_CHAOS=long go test -run '^TestChaos\$' -timeout ${CHAOS_TIMEOUT:-60m} ./cmd/campaignd/" >&2
CAMPAIGND_CHAOS=long CAMPAIGND_CHAOS_REPORT=$report CAMPAIGND_REPORT_COMMIT="$(commit_label)" \
	"$GO" test -count=1 -run '^TestChaos$' -timeout "${CHAOS_TIMEOUT:-60m}" -v ./cmd/campaignd/ 2>&1 | tee "$work/log" >&2
status=${PIPESTATUS[0]}
elapsed=$(($(date +%s) - started))

if [ ! -s "$report" ]; then
	echo "chaos.sh: the test wrote no report (exit $status); $out left as it was" >&2
	exit 1
fi

merge_report "$report" "$out" "## Chaos suite" || exit 1
echo "chaos.sh: wrote the Chaos suite section of $out (test exit $status, ${elapsed}s)" >&2
exit "$status"
