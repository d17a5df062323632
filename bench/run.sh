#!/usr/bin/env bash
# bench/run.sh — aupguard measured next to the tools training providers
# filter with today, on this machine, against the same local origins, under
# the same load, in one run. See docs/benchmarks.md.
#
#   bench/run.sh                     # everything (installs the peers with apt-get)
#   bench/run.sh --only proxy        # proxy | dns | engine | tls
#   bench/run.sh --only tls          # HTTPS interception: aupguard vs squid ssl-bump and e2guardian MITM
#   bench/run.sh --smoke             # a few seconds: aupguard and bare goproxy only, Go tools only
#
# Options:
#   --duration S     measured seconds per test (default 10; smoke 2)
#   --warmup S       warm-up seconds before each test (default 3; smoke 1)
#   --conns N        concurrent connections/clients (default 50)
#   --rounds N       measure every test N times, peers interleaved; the report shows the median (default 3; smoke 1)
#   --dir DIR        work directory (default /tmp/aupguard-bench); results.jsonl and report.md end up here
#   --no-install     do not apt-get install missing peers (they are skipped, saying so)
#   --no-wait-idle   do not wait for the 1-minute load average to drop below 1.5 before each area
#   --peers A,B      measure only these peers (aupguard, bare-goproxy, squid, squid+squidguard,
#                    e2guardian, bare-miekgdns, unbound, dnsmasq; tls: aupguard, aupguard-spliced,
#                    bare-goproxy-mitm, squid-bump, e2guardian-mitm)
#   AUPGUARD_BIN=F   (environment) measure the aupguard binary F instead of building this tree
#   --profile        run aupguard as bench/cmd/profserve and save a CPU and an allocation
#                    profile of each of its measured windows in DIR/profiles
#
# Everything listens on loopback only (127.0.0.1; the TLS area's origin on
# 127.0.0.43:443, so it needs root). Every process started here is stopped
# on exit (trap EXIT); the /etc/hosts lines added for e2guardian are
# removed again.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The public lists kept for tests and benchmarks, read as a lists mirror:
# no benchmark fetches a publisher's URL.
DATA=$(cd "$ROOT/../shared/data" 2>/dev/null && pwd) || { echo "bench: ../shared/data not found beside the repository" >&2; exit 2; }
BENCH=$ROOT/bench
SMOKE=0
ONLY=all
DURATION=
WARMUP=
CONNS=50
ROUNDS=
DIR=/tmp/aupguard-bench
INSTALL=1
WAIT_IDLE=1
PROFILE=0
PEERS=

while (($#)); do
	case $1 in
	--smoke) SMOKE=1 ;;
	--only) ONLY=${2:?--only needs proxy, dns, engine or tls}; shift ;;
	--duration) DURATION=${2:?}; shift ;;
	--warmup) WARMUP=${2:?}; shift ;;
	--conns) CONNS=${2:?}; shift ;;
	--rounds) ROUNDS=${2:?}; shift ;;
	--dir) DIR=${2:?}; shift ;;
	--no-install) INSTALL=0 ;;
	--no-wait-idle) WAIT_IDLE=0 ;;
	--profile) PROFILE=1 ;;
	--peers) PEERS=${2:?}; shift ;;
	-h | --help) sed -n '2,29p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case $ONLY in all | proxy | dns | engine | tls) ;; *) echo "run.sh: --only takes proxy, dns, engine or tls" >&2; exit 2 ;; esac
if ((SMOKE)); then
	DURATION=${DURATION:-2}
	WARMUP=${WARMUP:-1}
	ROUNDS=${ROUNDS:-1}
	INSTALL=0
	WAIT_IDLE=0
	[[ $ONLY == all ]] && ONLY=proxy
else
	DURATION=${DURATION:-10}
	WARMUP=${WARMUP:-3}
	ROUNDS=${ROUNDS:-3}
fi

BIN=$DIR/bin
GEN=$DIR/gen
LOGS=$DIR/logs
RUN=$DIR/run
RESULTS=$DIR/results.jsonl
REPORT=$DIR/report.md
META=$DIR/meta.md
PROFILES=$DIR/profiles
rm -rf "$LOGS" "$RUN" "$PROFILES"
mkdir -p "$BIN" "$GEN" "$LOGS" "$RUN"
((PROFILE)) && mkdir -p "$PROFILES"
chmod 755 "$DIR" "$GEN" "$RUN"
: >"$RESULTS"

# want PEER: is this peer selected (--peers)?
want() { [[ -z $PEERS || ",$PEERS," == *",$1,"* ]]; }

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- cleanup

PIDS=()
HOSTS_MARK="# aupguard-bench"
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		stop_wait "$pid"
	done
	if grep -q "$HOSTS_MARK" /etc/hosts 2>/dev/null; then
		# Rewritten in place: /etc/hosts may be a bind mount that cannot be
		# replaced by rename.
		grep -v "$HOSTS_MARK" /etc/hosts >"$RUN/hosts.restore" && cat "$RUN/hosts.restore" >/etc/hosts
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# hosts_line ADDR NAME adds "ADDR NAME" to /etc/hosts, marked so that
# cleanup removes it, unless it is there already.
hosts_line() {
	grep -q "^$1 $2 $HOSTS_MARK\$" /etc/hosts || printf '%s %s %s\n' "$1" "$2" "$HOSTS_MARK" >>/etc/hosts
}

# stop_wait waits up to 15 s for pid to exit after TERM, then kills it.
stop_wait() {
	local pid=$1 i
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# start NAME CMD... runs CMD in the background, logging to logs/NAME.log;
# the PID is in $LAST_PID and is stopped on exit.
start() {
	local name=$1
	shift
	"$@" >"$LOGS/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# stop PID stops one process started with start.
stop() {
	local pid=$1 p
	kill -TERM "$pid" 2>/dev/null || true
	stop_wait "$pid"
	local keep=()
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------- machine

load1() { cut -d' ' -f1 /proc/loadavg; }

# wait_idle waits (every 30 s, up to 20 min) for the 1-minute load average
# to drop below 1.5: other people's work on a shared machine skews peers
# measured one after another.
wait_idle() {
	((WAIT_IDLE)) || return 0
	local i
	for ((i = 0; i < 40; i++)); do
		if awk -v l="$(load1)" 'BEGIN { exit !(l < 1.5) }'; then
			log "load average $(load1): measuring"
			return 0
		fi
		log "load average $(load1) >= 1.5: waiting 30 s ($((i + 1))/40)"
		sleep 30
	done
	log "load average still $(load1) after 20 min: measuring anyway (recorded with each row)"
}

write_meta() {
	{
		echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
		echo "- os: $(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "- go: $(go version | cut -d' ' -f3-)"
		echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "- settings: --duration $DURATION --warmup $WARMUP --conns $CONNS --rounds $ROUNDS$( ((SMOKE)) && echo ' --smoke'); dnsperf -c $DNS_CLIENTS -q $DNS_OUTSTANDING -T $DNS_THREADS"
		local v
		for t in squid e2guardian squidGuard unbound dnsmasq wrk dnsperf; do
			have "$t" || continue
			case $t in
			# Some print their version with a non-zero status.
			squid) v=$(squid -v 2>&1 | head -1) || true ;;
			e2guardian) v=$(e2guardian -v 2>&1 | head -1) || true ;;
			squidGuard) v=$(squidGuard -v 2>&1 | head -1) || true ;;
			unbound) v=$(unbound -V 2>&1 | head -1) || true ;;
			dnsmasq) v=$(dnsmasq -v 2>&1 | head -1) || true ;;
			wrk) v=$(wrk -v 2>&1 | head -1) || true ;;
			dnsperf) v=$(dnsperf -h 2>&1 | grep -m1 Version) || true ;;
			esac
			echo "- $t: $v"
		done
	} >"$META"
}

# ---------------------------------------------------------------- install

# install_peers installs the peers with apt-get when they are missing.
# Packages whose service would start on install are kept from starting (a
# policy-rc.d that says no, as in container images) so no system squid or
# unbound competes with the measured ones.
install_peers() {
	local want=()
	case $ONLY in all | proxy) want+=(squid:squid squidGuard:squidguard e2guardian:e2guardian wrk:wrk) ;; esac
	case $ONLY in all | dns) want+=(unbound:unbound dnsmasq:dnsmasq dnsperf:dnsperf dig:dnsutils) ;; esac
	# ssl-bump needs Debian's OpenSSL build of squid, which replaces the
	# plain one (it conflicts with package squid); it serves the proxy
	# area the same way.
	case $ONLY in all | tls) want+=(squid-bump:squid-openssl e2guardian:e2guardian openssl:openssl) ;; esac
	local missing=() w
	for w in "${want[@]}"; do
		case ${w%%:*} in
		squid-bump) squid_bumps || missing+=("${w#*:}") ;;
		*) have "${w%%:*}" || missing+=("${w#*:}") ;;
		esac
	done
	# squid-openssl conflicts with squid and serves both areas.
	if [[ " ${missing[*]} " == *" squid-openssl "* ]]; then
		local m keep=()
		for m in "${missing[@]}"; do [[ $m == squid ]] || keep+=("$m"); done
		missing=("${keep[@]}")
	fi
	((${#missing[@]})) || return 0
	if ((!INSTALL)); then
		log "not installing (--no-install or --smoke): ${missing[*]}; those peers are skipped"
		return 0
	fi
	if [[ $(id -u) != 0 ]]; then
		log "not root: cannot install ${missing[*]}; those peers are skipped"
		return 0
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	local pkg avail=()
	for pkg in "${missing[@]}"; do
		# Read the whole answer before matching: with pipefail, grep -q
		# closing the pipe early makes apt-cache die of SIGPIPE and the
		# package look missing.
		if [[ $(apt-cache policy "$pkg" 2>/dev/null) == *"Candidate: "[0-9]* ]]; then
			avail+=("$pkg")
		else
			log "$pkg is not in this machine's package archive; that peer is skipped"
		fi
	done
	((${#avail[@]})) || return 0
	local added_policy=0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		added_policy=1
	fi
	apt-get install -y -qq --no-install-recommends "${avail[@]}" >"$LOGS/apt-install.log" 2>&1 || log "apt-get install failed (see $LOGS/apt-install.log)"
	((added_policy)) && rm -f /usr/sbin/policy-rc.d
	# Services that started anyway (a systemd host ignores policy-rc.d for
	# some units) are stopped: they are not the measured instances.
	if have systemctl && [[ -d /run/systemd/system ]]; then
		systemctl stop squid e2guardian unbound dnsmasq >/dev/null 2>&1 || true
	fi
}

# ---------------------------------------------------------------- build

# build compiles aupguard from this tree (or takes AUPGUARD_BIN, to
# measure another build — an older commit for a before/after) and the
# bench programs.
build() {
	log "building aupguard and the bench tools"
	(cd "$ROOT" && go build -o "$BIN/" ./bench/cmd/...)
	if [[ -n ${AUPGUARD_BIN:-} ]]; then
		cp "$AUPGUARD_BIN" "$BIN/aupguard"
	else
		(cd "$ROOT" && go build -o "$BIN/aupguard" ./cmd/aupguard)
	fi
}

# ---------------------------------------------------------------- ports

# pick_ports gives every listener its own free port, all on 127.0.0.1.
pick_ports() {
	read -r P_ORIGIN P_FIRST P_STREAM P_DNSORIGIN P_AG P_AGDNS P_AGADMIN P_BARE P_SQUID P_SQUIDSG P_E2G P_UNBOUND P_DNSMASQ P_PPROF P_BAREDNS \
		P_TLSORIGIN P_SQUIDBUMP P_E2GMITM P_E2GTHTTPS < <("$BIN/benchtool" ports 19)
}
ORIGIN_HOST=origin.bench.example

# ---------------------------------------------------------------- results

# prof_begin PEER NAME starts a CPU profile of aupguard covering the
# measured window that follows; prof_end saves it and the allocation
# profile. Other peers are not profiled.
PROF_PID=
prof_begin() {
	((PROFILE)) && [[ $1 == aupguard ]] || return 0
	curl -sS -m $((DURATION + 30)) -o "$PROFILES/$2.cpu.pprof" \
		"http://127.0.0.1:$P_PPROF/debug/pprof/profile?seconds=$DURATION" &
	PROF_PID=$!
}
prof_end() {
	((PROFILE)) && [[ $1 == aupguard ]] || return 0
	[[ -n $PROF_PID ]] && { wait "$PROF_PID" || true; }
	PROF_PID=
	curl -sS -m 30 -o "$PROFILES/$2.allocs.pprof" "http://127.0.0.1:$P_PPROF/debug/pprof/allocs" || true
}

# record FORMAT TEST PEER [parse flags...] < tool output
record() {
	local format=$1 area=$2 test=$3 peer=$4
	shift 4
	"$BIN/benchtool" parse -format "$format" -area "$area" -test "$test" -peer "$peer" "$@" >>"$RESULTS"
}

rss() { "$BIN/benchtool" rss "$@"; }
cpu() { "$BIN/benchtool" cpu "$@"; }

# cpu_since C0 PID: CPU seconds PID's tree used since the reading C0.
cpu_since() { awk -v a="$1" -v b="$(cpu "$2")" 'BEGIN { printf "%.2f", b - a }'; }

# fail_peer records that a peer could not be measured, and why (on one
# line: a tool's message may span several).
fail_peer() {
	local area=$1 test=$2 peer=$3 why=${4//$'\n'/ }
	log "$peer: $why"
	printf '{"area":"%s","test":"%s","peer":"%s","errors":1,"note":"not measured: %s"}\n' \
		"$area" "$test" "$peer" "${why//\"/\'}" >>"$RESULTS"
}

# ---------------------------------------------------------------- origins

start_origins() {
	start origin "$BIN/origin" -http "127.0.0.1:$P_ORIGIN" -first "127.0.0.1:$P_FIRST" -stream "127.0.0.1:$P_STREAM"
	"$BIN/benchtool" wait -timeout 20s "127.0.0.1:$P_ORIGIN"
	"$BIN/benchtool" wait -timeout 20s "127.0.0.1:$P_FIRST"
	"$BIN/benchtool" wait -timeout 20s "127.0.0.1:$P_STREAM"
	printf '127.0.0.1 %s\n' "$ORIGIN_HOST" >"$RUN/hosts"
	chmod 644 "$RUN/hosts"
}

# ---------------------------------------------------------------- aupguard

# aupguard_config FILE LIST writes a config: proxy, DNS filter and admin on
# their bench ports, the loopback origin allowed as a destination, the
# bench block list as category gambling (which the built-in policy
# blocks for every group), events on (the default) with DNS repeats folded
# as by default (event_fold_window, written out so the report says what ran),
# the per-client DNS rate limit off (dnsperf is one client sending far
# beyond any device).
# The tunnel origins are not on 443: like squid's "CONNECT to any port"
# below, the policy data gets their ports added to connect_ports (a copy of
# the shipped data.yaml in an admin policy directory).
aupguard_config() {
	local file=$1 list=$2
	mkdir -p "$RUN/aupguard-policy"
	sed "s/^  connect_ports: \[\(.*\)\]$/  connect_ports: [\1, $P_FIRST, $P_STREAM]/" "$ROOT/policies/data.yaml" >"$RUN/aupguard-policy/data.yaml"
	grep -q "connect_ports: \[.*$P_STREAM\]" "$RUN/aupguard-policy/data.yaml" || { echo "bench: cannot add the tunnel ports to connect_ports" >&2; exit 1; }
	cat >"$file" <<EOF
data_dir: $RUN/aupguard-data
policy: {dir: $RUN/aupguard-policy, watch: false}
log: {level: warn}
admin: {listen: "127.0.0.1:$P_AGADMIN"}
proxy:
  listen: "127.0.0.1:$P_AG"
  allow_destinations: [127.0.0.0/8]
identity: {networks: [127.0.0.0/8]}
dns:
  enabled: true
  listen: "127.0.0.1:$P_AGDNS"
  upstreams: ["127.0.0.1:$P_DNSORIGIN"]
  rate_limit: {qps: 0}
  event_fold_window: 5s
hosts: {$ORIGIN_HOST: [127.0.0.1]}
lists:
  mirror: $DATA
  sources:
    - {name: bench-block, category: gambling, format: domains, path: $list}
EOF
}

# aupguard_cmd is the serve command line: the release binary, or with
# --profile the same server with a profiler listener.
aupguard_cmd() {
	if ((PROFILE)); then
		echo "$BIN/profserve -config $RUN/aupguard.yaml -pprof 127.0.0.1:$P_PPROF"
	else
		echo "$BIN/aupguard serve --config $RUN/aupguard.yaml"
	fi
}

start_aupguard() {
	local list=$1
	rm -rf "$RUN/aupguard-data"
	aupguard_config "$RUN/aupguard.yaml" "$list"
	start aupguard $(aupguard_cmd)
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 120s "127.0.0.1:$P_AG" &&
		"$BIN/benchtool" wait -timeout 30s "127.0.0.1:$P_AGADMIN"
}

# ---------------------------------------------------------------- proxy peers

start_bare() {
	start bare-goproxy "$BIN/bareproxy" -listen "127.0.0.1:$P_BARE" -hosts "$ORIGIN_HOST=127.0.0.1"
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 20s "127.0.0.1:$P_BARE"
}

# squid_config FILE PORT [REWRITE] writes a forward-proxy squid: no disk
# cache and no memory cache for responses (aupguard does not cache
# content, and a cache would answer without the origin), no access log
# (aupguard logs only blocks), loopback clients only, CONNECT to any port
# (the tunnel origin is not on 443).
squid_config() {
	local file=$1 port=$2 rewrite=${3:-}
	local d
	d=$(dirname "$file")
	cat >"$file" <<EOF
http_port 127.0.0.1:$port
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
cache deny all
cache_mem 8 MB
access_log none
cache_store_log none
cache_log $d/cache.log
pid_filename $d/squid.pid
coredump_dir $d
hosts_file $RUN/hosts
dns_nameservers 127.0.0.1
shutdown_lifetime 1 seconds
via on
forwarded_for delete
server_persistent_connections on
client_persistent_connections on
EOF
	[[ -n $rewrite ]] && printf '%s\n' "$rewrite" >>"$file"
	chown -R proxy:proxy "$d" 2>/dev/null || true
}

start_squid() {
	local d=$RUN/squid
	mkdir -p "$d"
	squid_config "$d/squid.conf" "$P_SQUID"
	start squid squid -N -f "$d/squid.conf"
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 60s "127.0.0.1:$P_SQUID"
}

# start_squidguard: squid with squidGuard as its URL rewriter, the same
# 100k domain list compiled into squidGuard's Berkeley DB (as squidGuard
# deployments do), blocked URLs redirected (302).
start_squidguard() {
	local d=$RUN/squidguard
	mkdir -p "$d/db/block" "$d/log"
	cp "$GEN/block-100k.txt" "$d/db/block/domains"
	cat >"$d/squidGuard.conf" <<EOF
dbhome $d/db
logdir $d/log
dest block {
	domainlist block/domains
}
acl {
	default {
		pass !block all
		redirect 302:http://blocked.bench.example/?url=%u
	}
}
EOF
	squidGuard -c "$d/squidGuard.conf" -C all >"$LOGS/squidguard-db.log" 2>&1 || true
	# squidGuard needs at most one helper per request in flight: one per
	# client connection keeps squid from queueing on helpers.
	squid_config "$d/squid.conf" "$P_SQUIDSG" "url_rewrite_program /usr/bin/squidGuard -c $d/squidGuard.conf
url_rewrite_children $CONNS startup=$CONNS idle=$CONNS concurrency=0
url_rewrite_bypass off"
	chown -R proxy:proxy "$d"
	start squid+squidguard squid -N -f "$d/squid.conf"
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 60s "127.0.0.1:$P_SQUIDSG"
}

# e2guardian_config DIR PORT: a copy of e2guardian's packaged
# configuration in DIR/etc, listening on PORT, the 100k list added as a
# banned-site list, logging to DIR/log; DIR/etc/e2guardian.conf is the file
# to start it with.
e2guardian_config() {
	local d=$1 port=$2
	rm -rf "$d"
	mkdir -p "$d/log"
	cp -r /etc/e2guardian "$d/etc"
	grep -rl /etc/e2guardian "$d/etc" | xargs sed -i "s#/etc/e2guardian#$d/etc#g"
	cp "$GEN/block-100k.txt" "$d/etc/lists/benchblocklist"
	printf '.Include<%s>\n' "$d/etc/lists/benchblocklist" >>"$d/etc/lists/localbannedsitelist"
	local conf=$d/etc/e2guardian.conf
	sed -i \
		-e "s#^filterip =.*#filterip = 127.0.0.1#" \
		-e "s#^filterports =.*#filterports = $port#" \
		-e "s#^nodaemon =.*#nodaemon = on#" \
		-e "s#^loglevel =.*#loglevel = 1#" \
		"$conf"
	{
		echo "loglocation = '$d/log/access.log'"
		echo "pidfilename = '$d/e2guardian.pid'"
	} >>"$conf"
}

# start_e2guardian: e2guardian's packaged configuration (content filtering
# as shipped: phrase lists, MIME and extension lists, weighted phrases)
# with the same 100k domain list added as a banned-site list, going
# direct (no parent proxy), logging only denied requests.
start_e2guardian() {
	local d=$RUN/e2guardian
	e2guardian_config "$d" "$P_E2G"
	chown -R e2guardian "$d" 2>/dev/null || true
	# e2guardian resolves with the system resolver: the origin's name goes
	# into /etc/hosts for its run (removed on exit).
	hosts_line 127.0.0.1 "$ORIGIN_HOST"
	start e2guardian e2guardian -N -c "$d/etc/e2guardian.conf"
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 120s "127.0.0.1:$P_E2G"
}

# check_proxy PEER PORT: the origin's 1 KiB page comes through intact, and
# (for filtering peers) a listed domain is blocked, so the list is loaded.
check_proxy() {
	local peer=$1 port=$2 got blocked
	got=$(curl -sS -m 10 -x "http://127.0.0.1:$port" -o /dev/null -w '%{http_code} %{size_download}' "http://$ORIGIN_HOST:$P_ORIGIN/1k" 2>&1) || true
	if [[ $got != "200 1024" ]]; then
		echo "allowed page through $peer: want '200 1024', got '$got'"
		return 1
	fi
	case $peer in
	aupguard | squid+squidguard | e2guardian)
		blocked=$(head -1 "$GEN/blocked-sample-100k.txt")
		got=$(curl -sS -m 10 -x "http://127.0.0.1:$port" -o "$RUN/blocked-body" -w '%{http_code}' "http://$blocked/" 2>&1) || true
		case $got in
		403 | 302) ;;
		200) grep -qi 'access.*denied\|e2guardian' "$RUN/blocked-body" || { echo "listed $blocked through $peer: not blocked (200)"; return 1; } ;;
		*) echo "listed $blocked through $peer: want a block (403/302), got '$got'"; return 1 ;;
		esac
		;;
	esac
}

# measure_http PEER PORT PID SIZE ROUND: wrk (or httpload) warm-up, then
# the measured window.
measure_http() {
	local peer=$1 port=$2 pid=$3 size=$4 round=$5 out c0 c
	local target="http://$ORIGIN_HOST:$P_ORIGIN/$size"
	out=$LOGS/http-$size-${peer//+/-}-r$round.txt
	if have wrk; then
		BENCH_TARGET=$target wrk -t2 -c"$CONNS" -d"${WARMUP}s" --timeout 30s -s "$BENCH/wrk-proxy.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
		prof_begin "$peer" "http-$size-r$round"
		c0=$(cpu "$pid")
		BENCH_TARGET=$target wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 30s --latency -s "$BENCH/wrk-proxy.lua" "http://127.0.0.1:$port/" >"$out" 2>&1 || true
		c=$(cpu_since "$c0" "$pid")
		prof_end "$peer" "http-$size-r$round"
		record wrk proxy "http-$size" "$peer" -round "$round" -rss "$(rss "$pid")" -cpu "$c" -window "$DURATION" <"$out" ||
			fail_peer proxy "http-$size" "$peer" "wrk failed: $(tail -1 "$out")"
	else
		"$BIN/httpload" -proxy "127.0.0.1:$port" -url "$target" -c "$CONNS" -warmup 0s -d "${WARMUP}s" >/dev/null 2>&1 || true
		prof_begin "$peer" "http-$size-r$round"
		c0=$(cpu "$pid")
		"$BIN/httpload" -proxy "127.0.0.1:$port" -url "$target" -c "$CONNS" -warmup 0s -d "${DURATION}s" >"$out" 2>&1 || true
		c=$(cpu_since "$c0" "$pid")
		prof_end "$peer" "http-$size-r$round"
		record json proxy "http-$size" "$peer" -round "$round" -rss "$(rss "$pid")" -cpu "$c" -window "$DURATION" -note "httpload (no wrk)" <"$out" ||
			fail_peer proxy "http-$size" "$peer" "httpload failed: $(tail -1 "$out")"
	fi
}

# measure_connect PEER PORT PID ROUND: tunnels set up per second (CONNECT,
# the proxy's 200, the origin's first byte), warm-up then the window.
measure_connect() {
	local peer=$1 port=$2 pid=$3 round=$4 out c0 c
	out=$LOGS/connect-${peer//+/-}-r$round.txt
	"$BIN/connbench" -mode connect -proxy "127.0.0.1:$port" -target "$ORIGIN_HOST:$P_FIRST" -c "$CONNS" -warmup 0s -d "${WARMUP}s" >/dev/null 2>&1 || true
	prof_begin "$peer" "connect-rate-r$round"
	c0=$(cpu "$pid")
	"$BIN/connbench" -mode connect -proxy "127.0.0.1:$port" -target "$ORIGIN_HOST:$P_FIRST" -c "$CONNS" -warmup 0s -d "${DURATION}s" >"$out" 2>&1 || true
	c=$(cpu_since "$c0" "$pid")
	prof_end "$peer" "connect-rate-r$round"
	record json proxy connect-rate "$peer" -round "$round" -rss "$(rss "$pid")" -cpu "$c" -window "$DURATION" <"$out" ||
		fail_peer proxy connect-rate "$peer" "connbench failed: $(tail -1 "$out")"
}

# measure_stream PEER PORT PID ROUND: MB/s through one tunnel.
measure_stream() {
	local peer=$1 port=$2 pid=$3 round=$4 out c0 c
	out=$LOGS/stream-${peer//+/-}-r$round.txt
	"$BIN/connbench" -mode stream -proxy "127.0.0.1:$port" -target "$ORIGIN_HOST:$P_STREAM" -warmup 0s -d "${WARMUP}s" >/dev/null 2>&1 || true
	prof_begin "$peer" "tunnel-stream-r$round"
	c0=$(cpu "$pid")
	"$BIN/connbench" -mode stream -proxy "127.0.0.1:$port" -target "$ORIGIN_HOST:$P_STREAM" -warmup 0s -d "${DURATION}s" >"$out" 2>&1 || true
	c=$(cpu_since "$c0" "$pid")
	prof_end "$peer" "tunnel-stream-r$round"
	record json proxy tunnel-stream "$peer" -round "$round" -rss "$(rss "$pid")" -cpu "$c" -window "$DURATION" <"$out" ||
		fail_peer proxy tunnel-stream "$peer" "connbench failed: $(tail -1 "$out")"
}

# Peers of the running area: names in measuring order, and each one's
# port and PID.
declare -A PEER_PORT PEER_PIDS
UP=()

# bring_up PEER PORT STARTER [ARGS]: starts a peer and keeps it for the
# area if it comes up; a peer that does not start is recorded as such.
bring_up() {
	local peer=$1 port=$2 starter=$3
	shift 3
	want "$peer" || return 0
	log "starting $peer"
	PEER_PID=
	if ! "$starter" "$@" >>"$LOGS/run.log" 2>&1; then
		fail_peer "$AREA" "$FIRST_TEST" "$peer" "did not start (see logs/${peer//+/-}.log)"
		[[ -n $PEER_PID ]] && stop "$PEER_PID"
		return 0
	fi
	UP+=("$peer")
	PEER_PORT[$peer]=$port
	PEER_PIDS[$peer]=$PEER_PID
}

# take_down PEER: stops a peer and drops it from the area.
take_down() {
	local peer=$1 p keep=()
	stop "${PEER_PIDS[$peer]}"
	for p in "${UP[@]}"; do [[ $p == "$peer" ]] || keep+=("$p"); done
	UP=("${keep[@]}")
}

# rotated ROUND: the peers in measuring order for a round. Each round
# starts one peer later, so no peer is always measured first (right after
# a warm-up of the machine) or last.
rotated() {
	local r=$1 n=${#UP[@]} i
	for ((i = 0; i < n; i++)); do
		echo "${UP[$(((i + r) % n))]}"
	done
}

area_proxy() {
	AREA=proxy FIRST_TEST=http-1k
	UP=()
	bring_up aupguard "$P_AG" start_aupguard "$GEN/block-100k.txt"
	bring_up bare-goproxy "$P_BARE" start_bare
	if ((!SMOKE)); then
		if have squid; then
			bring_up squid "$P_SQUID" start_squid
			if have squidGuard; then
				bring_up squid+squidguard "$P_SQUIDSG" start_squidguard
			else
				want squid+squidguard && fail_peer proxy http-1k squid+squidguard "squidGuard is not installed"
			fi
		else
			want squid && fail_peer proxy http-1k squid "squid is not installed"
		fi
		if have e2guardian; then
			bring_up e2guardian "$P_E2G" start_e2guardian
		else
			want e2guardian && fail_peer proxy http-1k e2guardian "e2guardian is not installed"
		fi
	fi
	local peer why
	for peer in "${UP[@]}"; do
		if ! why=$(check_proxy "$peer" "${PEER_PORT[$peer]}"); then
			fail_peer proxy http-1k "$peer" "$why"
			take_down "$peer"
		fi
	done
	wait_idle
	log "== proxy: ${UP[*]}; $ROUNDS round(s)"
	local sizes=(1k 1m) round size
	((SMOKE)) && sizes=(1k)
	for ((round = 1; round <= ROUNDS; round++)); do
		for size in "${sizes[@]}"; do
			for peer in $(rotated "$round"); do
				log "proxy round $round: http-$size $peer"
				measure_http "$peer" "${PEER_PORT[$peer]}" "${PEER_PIDS[$peer]}" "$size" "$round"
			done
		done
		for peer in $(rotated "$round"); do
			log "proxy round $round: connect-rate $peer"
			measure_connect "$peer" "${PEER_PORT[$peer]}" "${PEER_PIDS[$peer]}" "$round"
		done
		for peer in $(rotated "$round"); do
			log "proxy round $round: tunnel-stream $peer"
			measure_stream "$peer" "${PEER_PORT[$peer]}" "${PEER_PIDS[$peer]}" "$round"
		done
	done
	for peer in "${UP[@]}"; do take_down "$peer"; done
}

# ---------------------------------------------------------------- dns peers

start_unbound() {
	local list=$1 d=$RUN/unbound
	mkdir -p "$d"
	cat >"$d/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $P_UNBOUND
	do-ip6: no
	num-threads: $(nproc)
	so-reuseport: yes
	username: ""
	chroot: ""
	directory: "$d"
	pidfile: "$d/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 0
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	module-config: "iterator"
	qname-minimisation: no
	msg-cache-size: 64m
	rrset-cache-size: 128m
	include: "$list"
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@$P_DNSORIGIN
EOF
	start unbound unbound -d -c "$d/unbound.conf"
	PEER_PID=$LAST_PID
}

start_dnsmasq() {
	local list=$1 d=$RUN/dnsmasq
	mkdir -p "$d"
	cat >"$d/dnsmasq.conf" <<EOF
port=$P_DNSMASQ
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
server=127.0.0.1#$P_DNSORIGIN
cache-size=10000
user=root
pid-file=
conf-file=$list
EOF
	start dnsmasq dnsmasq -k -C "$d/dnsmasq.conf"
	PEER_PID=$LAST_PID
}

start_baredns() {
	local list=$1
	start bare-miekgdns "$BIN/baredns" -listen "127.0.0.1:$P_BAREDNS" -upstream "127.0.0.1:$P_DNSORIGIN" -block "$list"
	PEER_PID=$LAST_PID
}

start_aupguard_dns() {
	local list=$1
	rm -rf "$RUN/aupguard-data"
	aupguard_config "$RUN/aupguard.yaml" "$list"
	start aupguard $(aupguard_cmd)
	PEER_PID=$LAST_PID
}

# dns_ready PORT BLOCKED: waits (up to 180 s: a million-name list takes a
# while to load) until the server resolves an allowed name to the origin's
# address and answers a listed name with a block (0.0.0.0 or NXDOMAIN).
dns_ready() {
	local port=$1 blocked=$2 allowed i a b
	allowed=$(head -1 "$GEN/allowed-sample.txt")
	for ((i = 0; i < 1800; i++)); do
		a=$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "$allowed" A 2>/dev/null || true)
		if [[ $a == 192.0.2.10 ]]; then
			b=$(dig +time=1 +tries=1 -p "$port" @127.0.0.1 "$blocked" A 2>/dev/null || true)
			if grep -q 'status: NXDOMAIN' <<<"$b" || grep -qE "IN[[:space:]]+A[[:space:]]+0\.0\.0\.0" <<<"$b"; then
				return 0
			fi
			echo "listed $blocked is not blocked: $(grep -m1 status <<<"$b")"
			return 1
		fi
		sleep 0.1
	done
	echo "no answer for $allowed within 180 s (last: '$a')"
	return 1
}

# dns_list PEER SIZE: the peer's form of the SIZE block list.
dns_list() {
	case $1 in
	aupguard | bare-miekgdns) echo "$GEN/block-$2.txt" ;;
	*) echo "$GEN/$1-block-$2.conf" ;;
	esac
}

# dns_start PEER PORT STARTER SIZE: starts a DNS peer with the SIZE list
# and waits until it answers correctly; the time that took is recorded as
# the peer's "ready" time (list loading included).
declare -A PEER_READY
dns_start() {
	local peer=$1 port=$2 starter=$3 size=$4 t0
	t0=$(date +%s.%N)
	"$starter" "$(dns_list "$peer" "$size")"
	dns_ready "$port" "$(head -1 "$GEN/blocked-sample-$size.txt")" || return 1
	PEER_READY[$peer]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}

# measure_dns PEER KIND SIZE ROUND: dnsperf warm-up, then the window.
measure_dns() {
	local peer=$1 kind=$2 size=$3 round=$4 out q c0 c
	local port=${PEER_PORT[$peer]}
	q=$GEN/queries-allowed.txt
	[[ $kind == blocked ]] && q=$GEN/queries-blocked-$size.txt
	out=$LOGS/dns-$kind-$size-$peer-r$round.txt
	dnsperf -s 127.0.0.1 -p "$port" -d "$q" -l "$WARMUP" -c "$DNS_CLIENTS" -q "$DNS_OUTSTANDING" -T "$DNS_THREADS" >/dev/null 2>&1 || true
	prof_begin "$peer" "dns-$kind-$size-r$round"
	c0=$(cpu "${PEER_PIDS[$peer]}")
	dnsperf -s 127.0.0.1 -p "$port" -d "$q" -l "$DURATION" -c "$DNS_CLIENTS" -q "$DNS_OUTSTANDING" -T "$DNS_THREADS" >"$out" 2>&1 || true
	c=$(cpu_since "$c0" "${PEER_PIDS[$peer]}")
	prof_end "$peer" "dns-$kind-$size-r$round"
	record dnsperf dns "dns-$kind-$size" "$peer" -round "$round" -rss "$(rss "${PEER_PIDS[$peer]}")" -ready "${PEER_READY[$peer]}" -cpu "$c" -window "$DURATION" <"$out" ||
		fail_peer dns "dns-$kind-$size" "$peer" "dnsperf failed: $(tail -1 "$out")"
}

# dnsperf's load: clients (sockets), queries in flight, threads.
DNS_CLIENTS=${DNS_CLIENTS:-8}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-200}
DNS_THREADS=${DNS_THREADS:-1}

area_dns() {
	if ! have dnsperf || ! have dig; then
		fail_peer dns dns-allowed-100k aupguard "dnsperf and dig are needed (apt-get install dnsperf dnsutils)"
		return 0
	fi
	AREA=dns
	start dnsorigin "$BIN/dnsorigin" -listen "127.0.0.1:$P_DNSORIGIN"
	local origin=$LAST_PID size peer kind round q
	sleep 0.5
	for size in 100k 1m; do
		FIRST_TEST=dns-allowed-$size
		UP=()
		bring_up aupguard "$P_AGDNS" dns_start aupguard "$P_AGDNS" start_aupguard_dns "$size"
		bring_up bare-miekgdns "$P_BAREDNS" dns_start bare-miekgdns "$P_BAREDNS" start_baredns "$size"
		for peer in unbound dnsmasq; do
			if have "$peer"; then
				local port=P_${peer^^}
				bring_up "$peer" "${!port}" dns_start "$peer" "${!port}" "start_$peer" "$size"
			else
				want "$peer" && fail_peer dns "dns-allowed-$size" "$peer" "$peer is not installed"
			fi
		done
		# One pass over each query file fills every cache before timing.
		for peer in "${UP[@]}"; do
			for q in "$GEN/queries-allowed.txt" "$GEN/queries-blocked-$size.txt"; do
				dnsperf -s 127.0.0.1 -p "${PEER_PORT[$peer]}" -d "$q" -n 1 -c 4 -q 100 >/dev/null 2>&1 || true
			done
		done
		wait_idle
		log "== dns ($size): ${UP[*]}; $ROUNDS round(s)"
		for ((round = 1; round <= ROUNDS; round++)); do
			for kind in allowed blocked; do
				for peer in $(rotated "$round"); do
					log "dns round $round: $kind-$size $peer"
					measure_dns "$peer" "$kind" "$size" "$round"
				done
			done
		done
		for peer in "${UP[@]}"; do take_down "$peer"; done
	done
	stop "$origin"
}

# ---------------------------------------------------------------- engine

area_engine() {
	wait_idle
	log "== engine (go test benchmarks; minutes)"
	local out=$LOGS/gobench.txt
	(cd "$ROOT" && go test -run '^$' -bench . -benchmem -count 1 -timeout 30m ./verdict/ ./categories/ ./policies/) >"$out" 2>&1 ||
		log "go test -bench reported a failure (see $out); recording what ran"
	record gobench engine - - <"$out" || log "no benchmark results in $out"
}

# ---------------------------------------------------------------- tls

# shellcheck source=bench/tls.sh
. "$BENCH/tls.sh"

# ---------------------------------------------------------------- main

install_peers
write_meta
build
pick_ports
log "generating lists and query files"
"$BIN/benchtool" gen -data "$DATA" -out "$GEN" $( ((SMOKE)) && echo "-sizes 100000") >>"$LOGS/run.log" 2>&1
start_origins
case $ONLY in all | proxy) area_proxy ;; esac
((SMOKE)) || case $ONLY in all | tls) area_tls ;; esac
((SMOKE)) || case $ONLY in all | dns) area_dns ;; esac
((SMOKE)) || case $ONLY in all | engine) area_engine ;; esac

{
	echo "# aupguard benchmark run"
	echo
	cat "$META"
	"$BIN/benchtool" report "$RESULTS"
} >"$REPORT"
cat "$REPORT"
log "report: $REPORT (raw: $RESULTS, logs: $LOGS)"
