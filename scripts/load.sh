#!/usr/bin/env bash
# Load test: requests/s through gatehouse + reverse_proxy against bare
# reverse_proxy, in the same run, on loopback (SPEC target: ratio ≥ 0.90).
#
# It starts `gatehouse demo` on spare ports, adds through Caddy's admin API
# a trivial upstream (static "ok") and a bare reverse_proxy server to it,
# points the demo's gatehouse route at the same upstream, signs in as bob
# with curl, and runs wrk against both servers in alternating rounds.
#
#   scripts/load.sh [seconds-per-round] [rounds] [connections]
#
# Needs wrk and curl (apt-get install -y wrk curl).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10}; rounds=${2:-3}; conns=${3:-32}
site=127.0.0.1:18080; idp=127.0.0.1:18081; bare=127.0.0.1:18082; up=127.0.0.1:18083; admin=127.0.0.1:18019
for c in wrk curl; do command -v $c >/dev/null || { echo "needs $c (apt-get install -y $c)"; exit 1; }; done

bin=$(mktemp -d)/gatehouse
go build -o "$bin" ./cmd/gatehouse
work=$(mktemp -d)
"$bin" demo --listen "$site" --idp-listen "$idp" >"$work/demo.log" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null; wait $demo 2>/dev/null; rm -rf "$work" "$(dirname "$bin")"' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "http://localhost:2019/config/" && break; sleep 0.1; done

api() { curl -sf -X "$1" -H 'Content-Type: application/json' "http://localhost:2019$2" ${3:+-d "$3"}; }
api POST /config/apps/http/servers/upstream "{\"listen\":[\"$up\"],\"automatic_https\":{\"disable\":true},\"routes\":[{\"handle\":[{\"handler\":\"static_response\",\"body\":\"ok\"}]}]}"
api POST /config/apps/http/servers/bare "{\"listen\":[\"$bare\"],\"automatic_https\":{\"disable\":true},\"routes\":[{\"handle\":[{\"handler\":\"reverse_proxy\",\"upstreams\":[{\"dial\":\"$up\"}]}]}]}"
api PATCH /config/apps/http/servers/demo/routes/0/handle/1/upstreams/0/dial "\"$up\""
sleep 0.5

# Sign in as bob through the development provider's form.
jar="$work/jar"
loc=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' -H 'Accept: text/html' "http://localhost:${site##*:}/")
form=$(curl -s -L -c "$jar" -b "$jar" "$loc")
id=$(grep -o 'name="id" value="[^"]*"' <<<"$form" | sed 's/.*value="//;s/"$//')
curl -s -L -o /dev/null -c "$jar" -b "$jar" -H 'Accept: text/html' -H "Origin: http://localhost:${idp##*:}" \
	--data-urlencode "id=$id" -d username=bob -d password=demo "http://localhost:${idp##*:}/login"
cookie=$(awk '$6=="gatehouse"{print $7}' "$jar")
[ -n "$cookie" ] || { echo "sign-in failed"; cat "$work/demo.log" | tail -20; exit 1; }
check=$(curl -s -H "Cookie: gatehouse=$cookie" "http://localhost:${site##*:}/")
[ "$check" = "ok" ] || { echo "signed-in request did not reach the upstream: $check"; exit 1; }

rps() { wrk -t1 -c"$conns" -d"${dur}s" "$@" | awk '/Requests\/sec/{print $2}'; }
bare_run() { rps "http://$bare/"; }
gh_run() { rps -H "Cookie: gatehouse=$cookie" "http://$site/"; }
echo "round  bare_rps  gatehouse_rps  ratio"
tb=0; tg=0; ratios=()
for r in $(seq "$rounds"); do
	# Alternate which goes first, so drift on a shared machine favours
	# neither.
	if [ $((r % 2)) -eq 1 ]; then b=$(bare_run); g=$(gh_run); else g=$(gh_run); b=$(bare_run); fi
	ratio=$(echo "$g / $b" | bc -l)
	ratios+=("$ratio")
	printf '%5d  %8.0f  %13.0f  %.3f\n' "$r" "$b" "$g" "$ratio"
	tb=$(echo "$tb + $b" | bc -l); tg=$(echo "$tg + $g" | bc -l)
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
printf 'mean   %8.0f  %13.0f  %.3f (median of rounds %.3f)\n' "$(echo "$tb / $rounds" | bc -l)" "$(echo "$tg / $rounds" | bc -l)" "$(echo "$tg / $tb" | bc -l)" "$median"
echo "store reads/writes are visible in: go run ./cmd/gatehouse events --since 5m"
