#!/usr/bin/env bash
# Requests/s and latency through gatehouse against bare Caddy reverse_proxy
# (and oauth2-proxy, when OAUTH2_PROXY_BIN names its binary), interleaved in
# one run on loopback. See bench/README.md.
#
#   bench/run.sh [seconds-per-run] [rounds] [connections]     (default 2 25 32)
#
# Environment: OAUTH2_PROXY_BIN (adds oauth2-proxy with its Redis session
# store), WRK_THREADS (default 1), PROFILE=<prefix> (CPU profiles
# <prefix>.<name> of the process serving each configuration, every
# round's merged, and <prefix>.<name>.requests, the requests they saw),
# CONFIGS="warm bwarm" (only these configurations and their bare ones; the
# names: bare bareid warm nocache bbare bwarm o2p), SEED=<n> (the random
# order of the rounds, to repeat a run),
# KEEP=1 (keep the work directory with every log and wrk output).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-2}; rounds=${2:-25}; conns=${3:-32}
threads=${WRK_THREADS:-1}
[ "$rounds" -ge 1 ] && [ "$dur" -ge 1 ] && [ "$conns" -ge 1 ] || { echo "usage: bench/run.sh [seconds] [rounds] [conns]" >&2; exit 2; }

if ! command -v wrk >/dev/null; then
	echo "installing wrk" >&2
	{ apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; } >/dev/null 2>&1 ||
		{ echo "needs wrk (apt-get install -y wrk)" >&2; exit 1; }
fi
for c in curl redis-server redis-cli go awk; do
	command -v $c >/dev/null || { echo "needs $c" >&2; exit 1; }
done
if [ -n "${OAUTH2_PROXY_BIN:-}" ] && [ ! -x "$OAUTH2_PROXY_BIN" ]; then
	echo "OAUTH2_PROXY_BIN=$OAUTH2_PROXY_BIN is not an executable" >&2; exit 1
fi

work=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
die() { echo "bench: $*" >&2; for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -15 "$f" >&2; }; done; exit 1; }

# port VAR: a free loopback port, distinct from the ones already taken,
# below the kernel's ephemeral range (where listeners on port 0 and
# outgoing connections take theirs).
taken=" "
eph=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$eph" -gt 12000 ] || eph=32768
port() {
	local p
	while :; do
		p=$((10000 + RANDOM % (eph - 10000)))
		[[ $taken == *" $p "* ]] && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		taken+="$p "
		printf -v "$1" %d "$p"
		return
	done
}
# wait_for CMD...: retry for up to 30 s (a loaded machine starts slowly).
wait_for() { for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
randhex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

echo "building gatehouse" >&2
go build -o "$work/gatehouse" ./cmd/gatehouse

port rp
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
rcli() { redis-cli -p "$rp" "$@"; }
wait_for rcli ping || die "redis-server did not start"
# cputicks: CPU time (user + system, in clock ticks) of every server
# process so far: Redis, both demos (which also hold the upstream and the
# bare reverse_proxy) and oauth2-proxy.
cputicks() { local p t=0 v; for p in "${pids[@]}"; do v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null) && t=$((t + v)); done; echo "$t"; }
hz=$(getconf CLK_TCK)
# snapshot FILE: calls so far by command, not counting INFO itself; prints
# their sum.
snapshot() { rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" {sub(/^cmdstat_/, "", $1); print $1, $3}' >"$1"; awk '{s += $2} END {print s + 0}' "$1"; }

# Two demos on one Redis and one secret (two instances of one deployment):
# A with the default cache_ttl (5s), B with cache_ttl 0 (no cache), so
# that every request of B reads Redis.
secret=$(randhex 32)
port siteA; port idpA; port adminA; port siteB; port idpB; port adminB; port up; port bare; port op
o2secret=$(randhex 16)
GATEHOUSE_SECRET=$secret "$work/gatehouse" demo --listen "127.0.0.1:$siteA" --idp-listen "127.0.0.1:$idpA" \
	--admin "127.0.0.1:$adminA" --redis "redis://127.0.0.1:$rp/0" \
	--client "oauth2-proxy,$o2secret,http://127.0.0.1:$op/oauth2/callback" >"$work/demo-a.log" 2>&1 &
pids+=($!)
GATEHOUSE_SECRET=$secret "$work/gatehouse" demo --listen "127.0.0.1:$siteB" --idp-listen "127.0.0.1:$idpB" \
	--admin "127.0.0.1:$adminB" --redis "redis://127.0.0.1:$rp/0" --cache-ttl 0 >"$work/demo-b.log" 2>&1 &
pids+=($!)
wait_for curl -sf -o /dev/null "http://127.0.0.1:$adminA/config/" || die "demo A did not start"
wait_for curl -sf -o /dev/null "http://127.0.0.1:$adminB/config/" || die "demo B did not start"

# One small upstream (a static "ok"), a bare reverse_proxy to it, and both
# demos' gatehouse routes pointed at it instead of the sample app.
api() { curl -sf -X "$2" -H 'Content-Type: application/json' "http://127.0.0.1:$1$3" ${4:+-d "$4"} >/dev/null || die "admin API $2 $3 failed"; }
# /.echo answers with the identity headers it got, so that the bench can
# send bare exactly what gatehouse forwards for bob (bare-id below).
echo_body='{http.request.header.X-Forwarded-User}\n{http.request.header.X-Forwarded-Email}\n{http.request.header.X-Forwarded-Preferred-Username}\n{http.request.header.X-Forwarded-Groups}'
api "$adminA" POST /config/apps/http/servers/upstream "{\"listen\":[\"127.0.0.1:$up\"],\"automatic_https\":{\"disable\":true},\"routes\":[{\"match\":[{\"path\":[\"/.echo\"]}],\"handle\":[{\"handler\":\"static_response\",\"body\":\"$echo_body\"}]},{\"handle\":[{\"handler\":\"static_response\",\"body\":\"ok\"}]}]}"
api "$adminA" POST /config/apps/http/servers/bare "{\"listen\":[\"127.0.0.1:$bare\"],\"automatic_https\":{\"disable\":true},\"routes\":[{\"handle\":[{\"handler\":\"reverse_proxy\",\"upstreams\":[{\"dial\":\"127.0.0.1:$up\"}]}]}]}"
api "$adminA" PATCH /config/apps/http/servers/demo/routes/0/handle/1/upstreams/0/dial "\"127.0.0.1:$up\""
api "$adminB" PATCH /config/apps/http/servers/demo/routes/0/handle/1/upstreams/0/dial "\"127.0.0.1:$up\""
wait_for curl -sf -o /dev/null "http://127.0.0.1:$bare/" || die "bare reverse_proxy does not answer"

if [ -n "${OAUTH2_PROXY_BIN:-}" ]; then
	"$OAUTH2_PROXY_BIN" --http-address "127.0.0.1:$op" --upstream "http://127.0.0.1:$up/" \
		--provider oidc --oidc-issuer-url "http://localhost:$idpA" --client-id oauth2-proxy --client-secret "$o2secret" \
		--redirect-url "http://127.0.0.1:$op/oauth2/callback" --scope "openid email profile" \
		--code-challenge-method S256 --email-domain '*' --skip-provider-button \
		--cookie-secret "$(randhex 16)" --cookie-secure=false \
		--session-store-type redis --redis-connection-url "redis://127.0.0.1:$rp/1" \
		--request-logging=false >"$work/oauth2-proxy.log" 2>&1 &
	pids+=($!)
	wait_for curl -sf -o /dev/null "http://127.0.0.1:$op/ping" || die "oauth2-proxy did not start"
fi

# signin START IDP NAME: follows START to the development provider, signs
# in as bob through its form, follows the redirects back, and prints the
# value of the cookie NAME.
signin() {
	local jar="$work/jar.$3" loc form id
	loc=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' -H 'Accept: text/html' "$1")
	[ -n "$loc" ] || die "$1 did not redirect to the provider"
	form=$(curl -s -L -c "$jar" -b "$jar" -H 'Accept: text/html' "$loc")
	id=$(grep -o 'name="id" value="[^"]*"' <<<"$form" | sed 's/.*value="//;s/"$//')
	[ -n "$id" ] || die "no login form at $loc"
	curl -s -L -o /dev/null -c "$jar" -b "$jar" -H 'Accept: text/html' -H "Origin: $2" \
		--data-urlencode "id=$id" -d username=bob -d password=demo "$2/login"
	awk -v n="$3" '$6 == n {print $7}' "$jar" | tail -1
}
# check URL HEADER: the signed-in request must reach the upstream.
check() {
	local body
	body=$(curl -s -H "$2" "$1")
	[ "$body" = ok ] || die "signed-in request to $1 did not reach the upstream: ${body:0:200}"
}

cA=$(signin "http://localhost:$siteA/" "http://localhost:$idpA" gatehouse)
[ -n "$cA" ] || die "sign-in through demo A failed"
cB=$(signin "http://localhost:$siteB/" "http://localhost:$idpB" gatehouse)
[ -n "$cB" ] || die "sign-in through demo B failed"
check "http://127.0.0.1:$siteA/" "Cookie: gatehouse=$cA"
check "http://127.0.0.1:$siteB/" "Cookie: gatehouse=$cB"

# The identity headers gatehouse forwards for bob, as the upstream got them.
mapfile -t ident < <(curl -s -H "Cookie: gatehouse=$cA" "http://127.0.0.1:$siteA/.echo")
[ -n "${ident[0]:-}" ] || die "no identity headers reached the upstream"
names=(bare bareid warm nocache bbare bwarm)
declare -A url hdr label base
# hdr: the request headers wrk sends, one a line.
url[bare]="http://127.0.0.1:$bare/"; hdr[bare]="X-Bench: bare"; label[bare]="bare reverse_proxy"
url[bareid]="http://127.0.0.1:$bare/"; label[bareid]="bare, same identity headers"
hdr[bareid]=$(printf 'X-Forwarded-User: %s\nX-Forwarded-Email: %s\nX-Forwarded-Preferred-Username: %s\nX-Forwarded-Groups: %s' "${ident[0]}" "${ident[1]:-}" "${ident[2]:-}" "${ident[3]:-}")
url[warm]="http://127.0.0.1:$siteA/"; hdr[warm]="Cookie: gatehouse=$cA"; label[warm]="gatehouse, warm cache"
url[nocache]="http://127.0.0.1:$siteB/"; hdr[nocache]="Cookie: gatehouse=$cB"; label[nocache]="gatehouse, cache_ttl 0"
# The same two with what a browser sends on a navigation (Chromium's
# headers, and an app cookie of the site besides gatehouse's): wrk's bare
# request has one header, which makes every header gatehouse adds look
# dear (a request past 8 headers also outgrows Go's small-map size, on
# the way out and again in the upstream).
browser=$(printf '%s\n' \
	'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' \
	'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8' \
	'Accept-Language: en-US,en;q=0.9' 'Accept-Encoding: gzip, deflate, br, zstd' \
	'Sec-Ch-Ua: "Chromium";v="131", "Not_A Brand";v="24"' 'Sec-Ch-Ua-Mobile: ?0' 'Sec-Ch-Ua-Platform: "Linux"' \
	'Sec-Fetch-Dest: document' 'Sec-Fetch-Mode: navigate' 'Sec-Fetch-Site: same-origin' 'Sec-Fetch-User: ?1' \
	'Upgrade-Insecure-Requests: 1')
appcookie="app_session=$(randhex 16); theme=dark"
url[bbare]="http://127.0.0.1:$bare/"; label[bbare]="bare, browser request"; base[bbare]=bbare
hdr[bbare]="$browser
Referer: http://127.0.0.1:$bare/
Cookie: $appcookie"
url[bwarm]="http://127.0.0.1:$siteA/"; label[bwarm]="gatehouse, browser request"; base[bwarm]=bbare
hdr[bwarm]="$browser
Referer: http://127.0.0.1:$siteA/
Cookie: $appcookie; gatehouse=$cA"
if [ -n "${OAUTH2_PROXY_BIN:-}" ]; then
	cO=$(signin "http://127.0.0.1:$op/oauth2/start?rd=%2F" "http://localhost:$idpA" _oauth2_proxy)
	[ -n "$cO" ] || die "sign-in through oauth2-proxy failed"
	check "http://127.0.0.1:$op/" "Cookie: _oauth2_proxy=$cO"
	names+=(o2p)
	url[o2p]="http://127.0.0.1:$op/"; hdr[o2p]="Cookie: _oauth2_proxy=$cO"; label[o2p]="oauth2-proxy, Redis sessions"
fi
# CONFIGS narrows the run to some configurations (and the bare ones they
# are compared with): more rounds of fewer, for a tighter interval.
if [ -n "${CONFIGS:-}" ]; then
	declare -A want
	for n in $CONFIGS; do
		[ -n "${url[$n]:-}" ] || die "CONFIGS: no configuration $n (there are: ${names[*]})"
		want[$n]=1; want[${base[$n]:-bare}]=1
	done
	sel=()
	for n in "${names[@]}"; do [ -n "${want[$n]:-}" ] && sel+=("$n"); done
	names=("${sel[@]}")
fi

# run NAME SECONDS OUT: wrk with latency percentiles.
run() {
	local h=() line
	while IFS= read -r line; do h+=(-H "$line"); done <<<"${hdr[$1]}"
	wrk -t"$threads" -c"$conns" -d"${2}s" --latency "${h[@]}" "${url[$1]}" >"$3" 2>&1 || die "wrk failed: $(cat "$3")"
}
# parse OUT: "rps p50_ms p99_ms requests bad" from wrk's output.
parse() {
	awk '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
		/^ +50% / {p50 = ms($2)} /^ +99% / {p99 = ms($2)}
		/requests in/ {n = $1} /Requests\/sec/ {rps = $2}
		/Non-2xx/ {bad += $NF} /Socket errors/ {gsub(/,/, ""); bad += $4 + $6 + $8 + $10}
		END {printf "%s %s %s %s %d\n", rps, p50, p99, n, bad}' "$1"
}

echo "warming up" >&2
for n in "${names[@]}"; do run "$n" 1 "$work/warmup.$n"; done

res="$work/results"
: >"$res"; : >"$work/bycmd"
echo "measuring: ${#names[@]} configurations × $rounds rounds × ${dur}s, $conns connections, $threads wrk thread(s)" >&2
# SEED makes the order of a run repeatable; it is printed with the table.
seed=${SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
RANDOM=$seed
for r in $(seq "$rounds"); do
	# A new random order each round, so that neither drift on a shared
	# machine nor what a heavy run leaves behind (a GC tail, a busy
	# Redis) always falls on the same configuration: a rotation would
	# have bare always follow the heaviest.
	order=("${names[@]}")
	for ((i = ${#order[@]} - 1; i > 0; i--)); do
		j=$((RANDOM % (i + 1))); t=${order[i]}; order[i]=${order[j]}; order[j]=$t
	done
	for n in "${order[@]}"; do
		prof=
		if [ -n "${PROFILE:-}" ] && [ "$n" != o2p ] && [ "$n" != bareid ]; then
			# The process that serves n: B for cache_ttl 0, else A.
			pa=$adminA; [ "$n" = nocache ] && pa=$adminB
			curl -s -o "$work/prof.$n.$r" "http://127.0.0.1:$pa/debug/pprof/profile?seconds=$dur" &
			prof=$!
		fi
		before=$(snapshot "$work/cmds.before"); c0=$(cputicks)
		run "$n" "$dur" "$work/wrk.$r.$n"
		c1=$(cputicks); after=$(snapshot "$work/cmds.after")
		# Per-command deltas, for the breakdown under the table.
		awk -v n="$n" 'NR == FNR {b[$1] = $2; next} $2 > b[$1] {print n, $1, $2 - b[$1]}' "$work/cmds.before" "$work/cmds.after" >>"$work/bycmd"
		[ -n "$prof" ] && wait "$prof"
		read -r rps p50 p99 reqs bad < <(parse "$work/wrk.$r.$n")
		[ "$bad" = 0 ] || die "$n round $r: $bad non-2xx responses or socket errors: $(cat "$work/wrk.$r.$n")"
		cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
		echo "$r $n $rps $p50 $p99 $reqs $((after - before)) $cpu" >>"$res"
		printf '  round %d  %-30s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %6.1f µs/req  redis %d\n' "$r" "${label[$n]}" "$rps" "$p50" "$p99" "$cpu" "$((after - before))" >&2
	done
done

if [ -n "${PROFILE:-}" ]; then
	# Every round's profile of a configuration, merged: drift between
	# rounds then weighs on all configurations alike.
	for n in "${names[@]}"; do
		ls "$work"/prof."$n".* >/dev/null 2>&1 || continue
		go tool pprof -proto "$work"/prof."$n".* >"$PROFILE.$n" 2>/dev/null || echo "bench: merging the profiles of $n failed" >&2
		awk -v n="$n" '$2 == n {s += $6} END {print s}' "$res" >"$PROFILE.$n.requests"
	done
fi

echo
printf '%s s × %s rounds in random order (SEED=%s), %s connections, %s wrk thread(s), %s\n' "$dur" "$rounds" "$seed" "$conns" "$threads" "$(nproc) cores, $(uname -sr)"
labels=$(for n in "${names[@]}"; do printf '%s=%s;' "$n" "${label[$n]}"; done)
# The bare configuration each one is compared with: its own request shape.
bases=$(for n in "${names[@]}"; do printf '%s=%s;' "$n" "${base[$n]:-bare}"; done)
# Scripts (EVALSHA and kin) per configuration: each is one round trip, and
# commandstats also counts every command a script runs.
awk '$2 ~ /^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/ {s[$1] += $3} END {for (n in s) print "script", n, s[n]}' "$work/bycmd" >"$work/scripts"
awk -v order="${names[*]}" -v labels="$labels" -v bases="$bases" '
	# sorted(a, m, b): b[1..m] is a[1..m] in ascending order.
	function sorted(a, m, b,    i, j, t) {
		for (i = 1; i <= m; i++) b[i] = a[i]
		for (i = 2; i <= m; i++) for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
	}
	function median(a, m,    b) {
		sorted(a, m, b)
		return (m % 2) ? b[(m + 1) / 2] : (b[m / 2] + b[m / 2 + 1]) / 2
	}
	# ci(a, m): a 95 % confidence interval for the median of a[1..m],
	# distribution-free: the k-th smallest to the k-th largest, k the
	# largest with P(B < k) <= 2.5 % for B ~ Binomial(m, 1/2) (for 25
	# rounds the 8th to the 18th, 95.7 %). "-" under 6 rounds.
	function ci(a, m, f,    i, b, k, c, p) {
		c = 0; p = 0.5 ^ m; k = 0
		for (i = 0; i <= m; i++) { c += p; if (c > 0.025) break; k = i + 1; p = p * (m - i) / (i + 1) }
		if (k == 0) return "-"
		sorted(a, m, b)
		return sprintf(f "–" f, b[k], b[m + 1 - k])
	}
	function min(a, m,    i, v) { v = a[1]; for (i = 2; i <= m; i++) if (a[i] < v) v = a[i]; return v }
	function max(a, m,    i, v) { v = a[1]; for (i = 2; i <= m; i++) if (a[i] > v) v = a[i]; return v }
	$1 == "script" { scripts[$2] = $3; next }
	{ rps[$2, $1] = $3; p50[$2, $1] = $4; p99[$2, $1] = $5; reqs[$2] += $6; cmds[$2] += $7; cpu[$2, $1] = $8; if ($1 > R) R = $1 }
	END {
		split(labels, l, ";"); for (i in l) { split(l[i], kv, "="); lab[kv[1]] = kv[2] }
		split(bases, l, ";"); for (i in l) { split(l[i], kv, "="); bs[kv[1]] = kv[2] }
		k = split(order, names, " ")
		printf "| %-30s | %-28s | %7s | %7s | %-22s | %-37s | %13s | %16s | %12s | %-21s |\n", "configuration", "requests/s median (min–max)", "p50 ms", "p99 ms", "p99 − bare [95 % CI]", "ratio to bare [95 % CI] (min–max)", "Redis cmd/req", "of which scripts", "CPU µs/req", "CPU to bare (min–max)"
		printf "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------------------", "------------------------------", "--------:", "--------:", "------------------------", "---------------------------------------", "--------------:", "-----------------:", "-------------:", "-----------------------"
		for (x = 1; x <= k; x++) {
			n = names[x]
			for (r = 1; r <= R; r++) {
				a[r] = rps[n, r]; b50[r] = p50[n, r]; b99[r] = p99[n, r]
				ra[r] = rps[n, r] / rps[bs[n], r]; d99[r] = p99[n, r] - p99[bs[n], r]
				cu[r] = cpu[n, r]; cr[r] = cpu[n, r] / cpu[bs[n], r]
			}
			spread = sprintf("%.0f (%.0f–%.0f)", median(a, R), min(a, R), max(a, R))
			ratio = sprintf("%.3f [%s] (%.3f–%.3f)", median(ra, R), ci(ra, R, "%.3f"), min(ra, R), max(ra, R))
			dp99 = sprintf("%+.2f [%s]", median(d99, R), ci(d99, R, "%+.2f"))
			cratio = sprintf("%.3f (%.3f–%.3f)", median(cr, R), min(cr, R), max(cr, R))
			printf "| %-30s | %-28s | %7.2f | %7.2f | %-22s | %-37s | %13.4f | %16.4f | %12.1f | %-21s |\n", lab[n], spread, median(b50, R), median(b99, R), dp99, ratio, cmds[n] / reqs[n], scripts[n] / reqs[n], median(cu, R), cratio
		}
		if (("warm", 1) in rps && ("bareid", 1) in rps) {
			for (r = 1; r <= R; r++) { ra[r] = rps["warm", r] / rps["bareid", r]; d99[r] = p99["warm", r] - p99["bareid", r]; cr[r] = cpu["warm", r] / cpu["bareid", r] }
			printf "\n%s against %s: %.3f [%s] (%.3f–%.3f), p99 %+.2f ms [%s], CPU %.3f (%.3f–%.3f)\n", lab["warm"], lab["bareid"], median(ra, R), ci(ra, R, "%.3f"), min(ra, R), max(ra, R), median(d99, R), ci(d99, R, "%+.2f"), median(cr, R), min(cr, R), max(cr, R)
		}
		print ""
		print "p50 and p99: medians over rounds; p99 − bare and the ratio: medians of per-round differences and ratios,"
		print "[95 % CI] of that median from the rounds (order statistics, no assumption on their distribution);"
		print "the browser-request rows are compared with bare, browser request, the others with bare reverse_proxy;"
		print "Redis cmd/req: INFO commandstats calls during the configuration'"'"'s runs / its requests; commandstats"
		print "counts a script (EVALSHA, one round trip) and also each command it runs. CPU µs/req: user and"
		print "system time of every server process (Redis, both demos with the upstream, oauth2-proxy) during a"
		print "run / its requests, median over rounds (wrk not counted); the upstream is in the same process as bare,"
		print "so it counts for all."
	}' "$work/scripts" "$res"

# Which commands, per request, each configuration made.
awk -v order="${names[*]}" -v labels="$labels" '
	NR == FNR {reqs[$2] += $6; next}
	{c[$1, $2] += $3; cmds[$1] = cmds[$1] " " $2}
	END {
		split(labels, l, ";"); for (i in l) { split(l[i], kv, "="); lab[kv[1]] = kv[2] }
		k = split(order, names, " ")
		print "Redis commands per request, by command:"
		for (x = 1; x <= k; x++) {
			n = names[x]; line = ""; delete seen
			m = split(cmds[n], cs, " ")
			for (i = 1; i <= m; i++) if (!(cs[i] in seen)) { seen[cs[i]] = 1; line = line sprintf(" %s %.4f", cs[i], c[n, cs[i]] / reqs[n]) }
			printf "  %-30s%s\n", lab[n] ":", (line == "" ? " none" : line)
		}
	}' "$res" "$work/bycmd"
