#!/usr/bin/env bash
# Runs the opt-in load test (TestLoad in cmd/campaignd with CAMPAIGND_LOAD=1:
# a 1,000,000-recipient campaign imported through the running daemon and
# sent to completion by its own scheduler, tick_interval 10ms, through the
# smtp plugin to a lean in-process SMTP server, the daemon's RSS sampled
# every second) and writes its figures as the "## Load" section of a
# Markdown file (default BENCHMARKS.md), replacing that section and keeping
# the rest of the file as it is.
#
#   CAMPAIGND_BIN_DIR=bin ./scripts/load.sh [OUT.md]         (make load)
#
# Overrides: GO, CAMPAIGND_LOAD_RECIPIENTS (default 1000000),
# CAMPAIGND_LOAD_INTERVAL (10ms), CAMPAIGND_LOAD_MAX_RSS_MB (60),
# LOAD_TIMEOUT (go test -timeout, default 90m).
set -uo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_init load.sh load "${1:-}"
report=$work/section.md
started=$(date +%s)

echo "==> CAMPAIGND_LOAD=1 go test -run '^TestLoad\$' -timeout ${LOAD_TIMEOUT:-90m} ./cmd/campaignd/" >&2
CAMPAIGND_LOAD=1 CAMPAIGND_LOAD_REPORT=$report CAMPAIGND_REPORT_COMMIT="$(commit_label)" \
	"$GO" test -count=1 -run '^TestLoad$' -timeout "${LOAD_TIMEOUT:-90m}" -v ./cmd/campaignd/ 2>&1 | tee "$work/log" >&2
status=${PIPESTATUS[0]}
elapsed=$(($(date +%s) - started))

if [ ! -s "$report" ]; then
	echo "load.sh: the test wrote no report (exit $status); $out left as it was" >&2
	exit 1
fi

merge_report "$report" "$out" "## Load" || exit 1
echo "load.sh: wrote the Load section of $out (test exit $status, ${elapsed}s)" >&2
exit "$status"
