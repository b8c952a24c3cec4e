#!/usr/bin/env bash
# Quick start: run one whole campaign end to end on the embedded default
# (a SQLite file and the outbox plugin, which writes .eml files), no mail
# server needed. Usage: scripts/demo.sh BIN_DIR
set -euo pipefail
bin=${1:?usage: demo.sh BIN_DIR}
dir=${DEMO_DIR:-$(pwd)/demo}
rm -rf "$dir" && mkdir -p "$dir"
cd "$dir"
c() { "$bin/campaignd" --db "$dir/campaignd.db" "$@"; }

cat > recipients.csv <<'CSV'
email,name,city
ada@example.com,Ada Lovelace,London
grace@example.org,Grace Hopper,Arlington
alan@example.net,Alan Turing,Wilmslow
katherine@example.com,Katherine Johnson,Hampton
edsger@example.org,Edsger Dijkstra,Nuenen
not-an-address,Nobody,Nowhere
ada@EXAMPLE.com,Ada again,London
CSV
cat > body.txt <<'TXT'
Hello {{.Name}},

The {{.Campaign.Name}} newsletter has news from {{.Attr.city}}.
TXT

echo "== create the database (other commands refuse to run without one)"
c init
echo "== create a campaign (sender: the built-in outbox)"
id=$(c --json campaign create --name "Demo" --sender outbox --from "Demo <demo@example.com>" \
	--subject 'News for {{.Name}}' --text-file body.txt | sed -n 's/.*"id": \([0-9]*\).*/\1/p' | head -1)
echo "campaign $id"
echo "== import recipients (one invalid address, one duplicate: reported, not fatal)"
c recipients import "$id" recipients.csv
echo "== activate and execute (queues; sends nothing)"
c campaign activate "$id"
c campaign execute "$id"
echo "== tick until COMPLETED (cron would run: campaignd tick)"
for i in $(seq 1 20); do
	c tick -v
	status=$(c --json campaign show "$id" | sed -n 's/.*"status": "\([A-Z]*\)".*/\1/p' | head -1)
	[ "$status" = COMPLETED ] && break
done
echo "== stats"
c campaign show "$id"
echo "== history"
c executions "$id"
c ticks
echo "== the messages, as .eml files:"
ls -1 "$dir/outbox"
echo "--- first message ---"
head -n 20 "$(ls -1 "$dir"/outbox/*.eml | head -1)"
