#!/bin/sh
# Regenerates fde9a76.db: a database made by the release at commit fde9a76
# (the last release), for TestUpgradeFromRelease. Run from the repository
# root:
#   git worktree add /tmp/rel fde9a76 && (cd /tmp/rel && make build)
#   cmd/campaignd/testdata/upgrade/generate.sh /tmp/rel/bin
# The fixture is committed: a released schema never changes, so neither
# does it.
set -eu
rel=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $fake 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/smtpfake" "$here/smtpfake"
"$work/smtpfake" > "$work/port" &
fake=$!
while [ ! -s "$work/port" ]; do sleep 0.1; done
cat > "$work/campaignd.toml" <<TOML
database = "$work/campaignd.db"
plugin_dir = "$rel"
log_level = "warn"
[queue]
max_attempts = 5
[senders.out]
plugin = "outbox"
[senders.out.options]
dir = "$work/outbox"
[senders.mail]
plugin = "smtp"
[senders.mail.options]
host = "127.0.0.1"
port = $(cat "$work/port")
tls = "none"
TOML
cd "$work"
cd_() { "$rel/campaignd" --config "$work/campaignd.toml" "$@"; }
create() { cd_ --json campaign create --name "$1" --sender "$2" --from news@example.org --subject 'Hello {{.Name}}' --text 'Hi {{.Name}}' | sed -n 's/^  "id": \([0-9]*\),$/\1/p'; }

cd_ suppress add manual@example.com --reason "asked by phone"
# 1: COMPLETED, every recipient SENT.
c=$(create sent out)
printf 'email,name,city\na@example.com,Ann,Lyon\nb@example.com,Bob,Paris\nc@example.com,Cy,Nice\n' | cd_ recipients import "$c" -
cd_ campaign activate "$c"; cd_ campaign execute "$c"; cd_ tick
# 2: SENDING, with SENT, BOUNCED (and suppressed), FAILED, QUEUED for a retry, and suppressed.
c=$(create mixed mail)
printf 'email,name\nok1@example.com,One\nok2@example.com,Two\nbounce@example.com,Bounce\nreject@example.com,Reject\nlater@example.com,Later\nmanual@example.com,Manual\n' | cd_ recipients import "$c" -
cd_ campaign activate "$c"; cd_ campaign execute "$c"; cd_ tick
# 3: PAUSED with QUEUED recipients.
c=$(create paused out)
cd_ recipients add "$c" p1@example.com --name P1 --attr plan=gold
cd_ recipients add "$c" p2@example.com --name P2
cd_ campaign activate "$c"; cd_ campaign execute "$c"; cd_ campaign pause "$c"
# 4: DRAFT with PENDING recipients.
c=$(create draft out)
cd_ recipients add "$c" d1@example.com --name D1
# 5: CANCELLED.
c=$(create cancelled out)
cd_ recipients add "$c" x1@example.com
cd_ campaign cancel "$c"
cd_ verify -v
cd_ campaign list
"$rel/campaignd" --version >/dev/null 2>&1 || true
cd_ --json campaign stats 2
cp "$work/campaignd.db" "$here/fde9a76.db"
# A closed database has no -wal: the fixture is one file.
ls -l "$here/fde9a76.db"
