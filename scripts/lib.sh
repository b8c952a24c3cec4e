# lib.sh — what bench.sh, chaos.sh and load.sh share: their start, and how
# each puts its own sections into BENCHMARKS.md without touching the others'.
# Source it from a script run with `set -uo pipefail`.

# report_init NAME TARGET [OUT.md]: go to the repository root and set GO,
# root, out (absolute; default BENCHMARKS.md) and work (a temporary
# directory removed on exit). Exits 2 unless CAMPAIGND_BIN_DIR holds the
# built campaignd (`make TARGET` sets it), which it makes absolute and
# exports.
report_init() {
	local name=$1 target=$2
	out=${3:-BENCHMARKS.md}
	GO=${GO:-go}
	cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
	root=$PWD
	case $out in /*) ;; *) out=$root/$out ;; esac
	if [ -z "${CAMPAIGND_BIN_DIR:-}" ] || [ ! -x "$CAMPAIGND_BIN_DIR/campaignd" ]; then
		echo "$name: set CAMPAIGND_BIN_DIR to a directory with the built campaignd and plugins (make $target does)" >&2
		exit 2
	fi
	CAMPAIGND_BIN_DIR=$(cd "$CAMPAIGND_BIN_DIR" && pwd)
	export CAMPAIGND_BIN_DIR
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
}

# commit_label: the short commit, noting uncommitted changes to tracked files.
commit_label() {
	local c
	c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then c="$c (with uncommitted changes)"; fi
	echo "$c"
}

# merge_report NEW FILE TITLE...: write NEW's text into FILE. The TITLEs
# ("## ..." lines) and NEW's own section titles are the sections the caller
# owns: each is replaced by NEW's section of that title where it stands (or
# dropped when NEW has none), NEW's other sections are appended, and every
# section the caller does not own stays as it is. Text before NEW's first
# "## " line, when there is any, replaces FILE's (the title and machine
# table); otherwise FILE's stays ("# Benchmarks" for a new file).
merge_report() {
	local new=$1 file=$2
	shift 2
	[ -s "$new" ] || { echo "merge_report: $new is empty" >&2; return 1; }
	[ -s "$file" ] || printf '# Benchmarks\n\n' >"$file"
	awk -v owned="$(printf '%s\n' "$@")" '
		# addsec appends a section, a blank line after the one before it.
		function addsec(text) { if (out != "" && out !~ /\n\n$/) out = out "\n"; out = out text }
		FNR == NR {
			if (/^## /) { t = $0; norder[++nn] = t }
			if (t == "") npre = npre $0 "\n"; else nsec[t] = nsec[t] $0 "\n"
			next
		}
		{
			if (/^## /) { f = $0; forder[++fn] = f }
			if (f == "") fpre = fpre $0 "\n"; else fsec[f] = fsec[f] $0 "\n"
		}
		END {
			split(owned, o, "\n")
			for (i in o) if (o[i] != "") own[o[i]] = 1
			for (i = 1; i <= nn; i++) own[norder[i]] = 1
			out = npre ~ /[^[:space:]]/ ? npre : fpre
			for (i = 1; i <= fn; i++) {
				t = forder[i]
				if (!(t in own)) addsec(fsec[t])
				else if ((t in nsec) && !(t in done)) { addsec(nsec[t]); done[t] = 1 }
			}
			for (i = 1; i <= nn; i++) {
				t = norder[i]
				if (!(t in done)) { addsec(nsec[t]); done[t] = 1 }
			}
			sub(/\n+$/, "\n", out)
			printf "%s", out
		}
	' "$new" "$file" >"$file.tmp" && mv "$file.tmp" "$file"
}
