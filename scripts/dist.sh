#!/usr/bin/env bash
# Release build: a versioned tarball of campaignd, the three first-party
# plugins, the example config, the systemd units and the README, with
# SHA-256 checksums. Usage: scripts/dist.sh [OUT_DIR]   (default: dist)
#
#   OUT_DIR/campaignd-VERSION-OS-ARCH.tar.gz
#   OUT_DIR/campaignd-VERSION-OS-ARCH.tar.gz.sha256   (sha256sum -c checks it)
#   inside, campaignd-VERSION-OS-ARCH/SHA256SUMS: every file in the tarball,
#   the plugins' lines being what [senders.NAME] sha256 takes.
#
# CAMPAIGND_BIN_DIR set: package the binaries already there (`make dist`
# passes bin/, which `make build` stamped); VERSION and the platform are then
# read from that campaignd itself, so the name always matches the binary.
# Unset: build them here with VERSION (default: git describe) and COMMIT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
plugins="smtp outbox sendgrid"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# jsonField FIELD: the string value of FIELD in the JSON on stdin.
jsonField() { sed -n "s/^ *\"$1\": *\"\\([^\"]*\\)\".*/\\1/p"; }

if [ -n "${CAMPAIGND_BIN_DIR:-}" ]; then
	bin=$(cd "$CAMPAIGND_BIN_DIR" && pwd)
	info=$("$bin/campaignd" version --json)
	version=$(jsonField version <<<"$info")
	platform=$(jsonField platform <<<"$info")
else
	version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
	commit=${COMMIT:-$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)}
	platform="$(go env GOOS)/$(go env GOARCH)"
	bin=$stage/bin
	(cd "$root" && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
		-o "$bin/campaignd" ./cmd/campaignd)
	for p in $plugins; do
		(cd "$root" && CGO_ENABLED=1 go build -trimpath -ldflags '-s -w' -o "$bin/campaignd-sender-$p" "./plugins/$p")
	done
fi
case $version in
"" | *[!A-Za-z0-9._+-]*) echo "dist: version \"$version\" cannot name a file" >&2; exit 1 ;;
esac
name=campaignd-$version-${platform/\//-}
dir=$stage/$name
mkdir -p "$dir/deploy"
install -m 0755 "$bin/campaignd" "$dir/"
for p in $plugins; do
	install -m 0755 "$bin/campaignd-sender-$p" "$dir/"
done
install -m 0644 "$root/campaignd.toml.example" "$root/README.md" "$dir/"
install -m 0644 "$root"/deploy/*.service "$root"/deploy/*.timer "$root"/deploy/campaignd.toml \
	"$root"/deploy/campaignd.env.example "$dir/deploy/"
(cd "$dir" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)

# Reproducible: sorted names, no owners, one timestamp (the commit's).
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
	-C "$stage" -cf - "$name" | gzip -n > "$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
