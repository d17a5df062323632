# shellcheck shell=bash
# bench/tls.sh — the TLS interception area of bench/run.sh (--only tls),
# sourced by run.sh: aupguard intercepting and splicing, squid with
# ssl-bump, e2guardian with its MITM on, all fetching the same HTTPS origin
# (bench/cmd/origin -https, its own CA) through bench/cmd/tlsload.
#
# The origin listens on 127.0.0.43:443 (its own loopback address, so
# nothing else on the machine holds the port): e2guardian 5.3 intercepts
# only CONNECTs to port 443, and every peer is measured the same way.
#
# Names, all 127.0.0.43 through each peer's hosts override:
#   www.facebook.com            intercepted by aupguard's built-in policy (a
#                               learner's connection to a social host)
#   tls.bench.example           spliced by aupguard; the name squid and
#                               e2guardian are measured with (they bump all)
#   m<i>-r<round>.facebook.com  first visits, intercepted (a leaf minted each)
#   m<i>-r<round>.mint.bench.example  first visits, spliced: the same path
#                               without minting, so the difference between
#                               the two is what minting adds

TLS_ADDR=127.0.0.43
TLS_HOST=www.facebook.com
TLS_SPLICE_HOST=tls.bench.example
TLS_MINT_DOMAIN=facebook.com
TLS_SPLICE_MINT_DOMAIN=mint.bench.example
# First-visit clients, and names made per round for each of the two name
# sets (each is visited once; the run says so if they run out). A few
# hundred first visits a second at most on this machine need under 5000
# for a 13 s window; more only slow squid's start (it reads its hosts_file
# at a few thousand names a second).
TLS_MINT_CONNS=${TLS_MINT_CONNS:-2}
TLS_MINT_NAMES=${TLS_MINT_NAMES:-5000}

# squid_bumps: is the installed squid built with OpenSSL (ssl-bump)?
# Debian's package squid is not; squid-openssl is.
squid_bumps() {
	have squid && [[ -x /usr/lib/squid/security_file_certgen ]] && squid -v 2>&1 | grep -q -- --with-openssl
}

# make_ca DIR CN: an ECDSA P-256 CA (DIR/ca.crt, DIR/ca.key) and a spare
# P-256 key (DIR/leaf.key) for peers that sign every leaf over one key.
# The same kind of key as aupguard's CA and leaves, so no peer pays for
# RSA where another does not.
make_ca() {
	local d=$1 cn=$2
	mkdir -p "$d"
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
	openssl req -new -x509 -key "$d/ca.key" -out "$d/ca.crt" -days 30 -subj "/O=aupguard bench/CN=$cn" \
		-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/leaf.key" 2>/dev/null
	chmod 644 "$d/ca.crt"
}

# tls_names: per round, the first-visit names (intercepted and spliced),
# and one hosts file with every name the area uses, for aupguard's
# hosts_file and squid's hosts_file.
tls_names() {
	local t=$RUN/tls r
	mkdir -p "$t"
	printf '127.0.0.1 %s\n%s %s %s\n' "$ORIGIN_HOST" "$TLS_ADDR" "$TLS_HOST" "$TLS_SPLICE_HOST" >"$t/hosts"
	for ((r = 1; r <= ROUNDS; r++)); do
		awk -v n="$TLS_MINT_NAMES" -v r="$r" -v d="$TLS_MINT_DOMAIN" 'BEGIN { for (i = 1; i <= n; i++) printf "m%d-r%d.%s\n", i, r, d }' >"$t/mint-r$r.txt"
		awk -v n="$TLS_MINT_NAMES" -v r="$r" -v d="$TLS_SPLICE_MINT_DOMAIN" 'BEGIN { for (i = 1; i <= n; i++) printf "m%d-r%d.%s\n", i, r, d }' >"$t/splice-mint-r$r.txt"
		awk -v a="$TLS_ADDR" '{ print a " " $0 }' "$t/mint-r$r.txt" "$t/splice-mint-r$r.txt" >>"$t/hosts"
	done
	chmod 644 "$t"/*
}

# start_tls_origin: bench/cmd/origin serving HTTPS on $TLS_ADDR:443 with
# a certificate (from its own CA, written to $RUN/tls/ca.crt) for every
# name above.
start_tls_origin() {
	start tls-origin "$BIN/origin" -http "$TLS_ADDR:$P_TLSORIGIN" -https "$TLS_ADDR:443" -tls-dir "$RUN/tls" \
		-tls-names "$TLS_HOST,$TLS_SPLICE_HOST,*.$TLS_MINT_DOMAIN,*.$TLS_SPLICE_MINT_DOMAIN"
	TLS_ORIGIN_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 20s "$TLS_ADDR:443"
}

# start_aupguard_tls: the proxy area's configuration, plus the names above
# (hosts_file), the origin's CA as an upstream CA, and an interception CA
# made with `aupguard ca init` (data_dir/ca). The built-in policy decides:
# a loopback client is a learner, whose connections to social hosts are
# intercepted and all others spliced. The 100k block list loses its
# facebook.com names (1.6k of them, facebook.com itself among them), which
# would block the intercepted host outright.
start_aupguard_tls() {
	rm -rf "$RUN/aupguard-data"
	grep -v -E '(^|\.)facebook\.com$' "$GEN/block-100k.txt" >"$RUN/tls/block.txt" || true
	aupguard_config "$RUN/aupguard.yaml" "$RUN/tls/block.txt"
	sed -i "/^  allow_destinations:/a\\  upstream_ca_file: $RUN/tls/ca.crt" "$RUN/aupguard.yaml"
	echo "hosts_file: $RUN/tls/hosts" >>"$RUN/aupguard.yaml"
	"$BIN/aupguard" ca init --config "$RUN/aupguard.yaml" >"$LOGS/aupguard-ca.log" 2>&1 || return 1
	start aupguard $(aupguard_cmd)
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 120s "127.0.0.1:$P_AG" &&
		"$BIN/benchtool" wait -timeout 30s "127.0.0.1:$P_AGADMIN"
}

# start_bare_mitm: bench/cmd/bareproxy intercepting every CONNECT with
# goproxy's own MITM (leaves cached per host), the origin's CA trusted
# upstream: the ceiling of interception on aupguard's proxy stack, with no
# policy, identity or events.
start_bare_mitm() {
	local d=$RUN/bare-goproxy-mitm
	rm -rf "$d"
	make_ca "$d/ca" "bare goproxy bench CA"
	start bare-goproxy-mitm "$BIN/bareproxy" -listen "127.0.0.1:$P_BARE" \
		-hosts "$TLS_SPLICE_HOST=$TLS_ADDR,*.$TLS_MINT_DOMAIN=$TLS_ADDR" \
		-mitm-cert "$d/ca/ca.crt" -mitm-key "$d/ca/ca.key" -upstream-ca "$RUN/tls/ca.crt"
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 20s "127.0.0.1:$P_BARE"
}

# start_squid_bump: the proxy area's squid with ssl-bump on every CONNECT
# (`ssl_bump bump all`), leaves made by its certificate generator
# (security_file_certgen, Debian's sslcrtd_program, default children) over
# its ECDSA CA and kept in its memory cache, the origin's CA trusted for
# upstream connections (tls_outgoing_options cafile=).
start_squid_bump() {
	local d=$RUN/squid-bump
	rm -rf "$d"
	mkdir -p "$d"
	make_ca "$d/ca" "squid bench CA"
	/usr/lib/squid/security_file_certgen -c -s "$d/ssl_db" -M 16MB >"$LOGS/squid-bump-ssldb.log" 2>&1 || return 1
	squid_config "$d/squid.conf" "$P_SQUIDBUMP" "sslcrtd_program /usr/lib/squid/security_file_certgen -s $d/ssl_db -M 16MB
ssl_bump bump all
tls_outgoing_options cafile=$RUN/tls/ca.crt"
	sed -i \
		-e "s#^http_port .*#http_port 127.0.0.1:$P_SQUIDBUMP ssl-bump tls-cert=$d/ca/ca.crt tls-key=$d/ca/ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=16MB#" \
		-e "s#^hosts_file .*#hosts_file $RUN/tls/hosts#" \
		"$d/squid.conf"
	chown -R proxy:proxy "$d"
	start squid-bump squid -N -f "$d/squid.conf"
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 120s "127.0.0.1:$P_SQUIDBUMP"
}

# start_e2guardian_mitm: the proxy area's e2guardian (packaged content
# filtering, the 100k list) with enablessl and sslmitm on: leaves signed by
# its ECDSA CA over one leaf key (certprivatekeypath) and kept in
# generatedcertpath, upstream certificates checked (mitmcheckcert, on by
# default) against a directory holding the origin's CA.
start_e2guardian_mitm() {
	local d=$RUN/e2guardian-mitm
	e2guardian_config "$d" "$P_E2GMITM"
	make_ca "$d/ca" "e2guardian bench CA"
	mkdir -p "$d/ca/generated" "$d/upstream"
	cp "$RUN/tls/ca.crt" "$d/upstream/origin.pem"
	openssl rehash "$d/upstream" >/dev/null 2>&1 || return 1
	local conf=$d/etc/e2guardian.conf
	sed -i \
		-e "s#^enablessl =.*#enablessl = on#" \
		-e "s#^cacertificatepath =.*#cacertificatepath = '$d/ca/ca.crt'#" \
		-e "s#^caprivatekeypath =.*#caprivatekeypath = '$d/ca/ca.key'#" \
		-e "s#^certprivatekeypath =.*#certprivatekeypath = '$d/ca/leaf.key'#" \
		-e "s#^generatedcertpath =.*#generatedcertpath = '$d/ca/generated/'#" \
		-e "s#^transparenthttpsport =.*#transparenthttpsport = $P_E2GTHTTPS#" \
		"$conf"
	# Its leaves are valid from generatedcertstart (default: a fixed day in
	# 2014) for ten years unless told otherwise.
	local now
	now=$(date +%s)
	{
		echo "sslcertificatepath = '$d/upstream/'"
		echo "generatedcertstart = $((now - 3600))"
		echo "generatedcertend = $((now + 30 * 86400))"
	} >>"$conf"
	sed -i -e "s#^sslmitm =.*#sslmitm = on#" "$d/etc/e2guardianf1.conf"
	grep -q '^sslmitm = on' "$d/etc/e2guardianf1.conf" || return 1
	chown -R e2guardian "$d" 2>/dev/null || true
	# e2guardian resolves with the system resolver only: the one name it is
	# measured with goes into /etc/hosts for the run (removed on exit). The
	# first-visit names would be tens of thousands of lines there, read by
	# every program on the machine, so e2guardian is not in that test.
	hosts_line "$TLS_ADDR" "$TLS_SPLICE_HOST"
	start e2guardian-mitm e2guardian -N -c "$conf"
	PEER_PID=$LAST_PID
	"$BIN/benchtool" wait -timeout 120s "127.0.0.1:$P_E2GMITM"
}

# What each TLS peer is asked for and trusts: the host of the 1 KiB tests,
# the CA the client verifies against (the peer's when it intercepts, the
# origin's when it splices), and the first-visit names' file prefix.
declare -A TLS_HOSTOF TLS_CAOF TLS_NAMESOF

# check_tls PEER: the 1 KiB page comes through with the certificate the
# peer should present (curl trusts only the CA given), so a peer that does
# not intercept where it should (or the reverse) is not measured.
check_tls() {
	local peer=$1 got
	got=$(curl -sS -m 20 -x "http://127.0.0.1:${PEER_PORT[$peer]}" --cacert "${TLS_CAOF[$peer]}" -o /dev/null -w '%{http_code} %{size_download}' \
		"https://${TLS_HOSTOF[$peer]}/1k" 2>"$RUN/check-tls.err") || true
	if [[ $got != "200 1024" ]]; then
		echo "https://${TLS_HOSTOF[$peer]}/1k through $peer trusting only ${TLS_CAOF[$peer]#"$RUN"/}: want '200 1024', got '$got' ($(head -1 "$RUN/check-tls.err"))"
		return 1
	fi
}

# measure_tls PEER TEST ROUND: tlsload's warm-up and window for one test:
# tls-keepalive-1k, tls-newconn or tls-first-visit.
measure_tls() {
	local peer=$1 test=$2 round=$3 out c0 c args=()
	local port=${PEER_PORT[$peer]} pid=${PEER_PIDS[$peer]}
	out=$LOGS/$test-${peer//+/-}-r$round.txt
	case $test in
	tls-keepalive-1k) args=(-mode keepalive -c "$CONNS" -url "https://${TLS_HOSTOF[$peer]}/1k") ;;
	tls-newconn) args=(-mode newconn -c "$CONNS" -url "https://${TLS_HOSTOF[$peer]}/1k") ;;
	tls-first-visit) args=(-mode mint -c "$TLS_MINT_CONNS" -url "https://first-visit/1k" -names "$RUN/tls/${TLS_NAMESOF[$peer]}-r$round.txt") ;;
	esac
	# The first-visit test's warm-up is in the same run (it must not
	# spend the round's names twice); the others warm up separately.
	if [[ $test != tls-first-visit ]]; then
		"$BIN/tlsload" -proxy "127.0.0.1:$port" -ca "${TLS_CAOF[$peer]}" "${args[@]}" -warmup 0s -d "${WARMUP}s" >/dev/null 2>&1 || true
	fi
	prof_begin "$peer" "$test-r$round"
	c0=$(cpu "$pid")
	if [[ $test == tls-first-visit ]]; then
		"$BIN/tlsload" -proxy "127.0.0.1:$port" -ca "${TLS_CAOF[$peer]}" "${args[@]}" -warmup "${WARMUP}s" -d "${DURATION}s" >"$out" 2>&1 || true
	else
		"$BIN/tlsload" -proxy "127.0.0.1:$port" -ca "${TLS_CAOF[$peer]}" "${args[@]}" -warmup 0s -d "${DURATION}s" >"$out" 2>&1 || true
	fi
	c=$(cpu_since "$c0" "$pid")
	prof_end "$peer" "$test-r$round"
	record json tls "$test" "$peer" -round "$round" -rss "$(rss "$pid")" -cpu "$c" -window "$DURATION" <"$out" ||
		fail_peer tls "$test" "$peer" "tlsload failed: $(tail -1 "$out")"
}

# area_tls: every TLS peer up at once, then each test in rounds with the
# peers interleaved (rotated as in the other areas). aupguard and
# aupguard-spliced are one process, asked for different names.
area_tls() {
	AREA=tls FIRST_TEST=tls-keepalive-1k
	UP=()
	tls_names
	if ! start_tls_origin >>"$LOGS/run.log" 2>&1; then
		fail_peer tls tls-keepalive-1k aupguard "the HTTPS origin did not start on $TLS_ADDR:443 (see logs/tls-origin.log)"
		return 0
	fi
	local ag_ca=$RUN/aupguard-data/ca/ca.crt origin_ca=$RUN/tls/ca.crt
	TLS_HOSTOF=([aupguard]=$TLS_HOST [aupguard-spliced]=$TLS_SPLICE_HOST [bare-goproxy-mitm]=$TLS_SPLICE_HOST [squid-bump]=$TLS_SPLICE_HOST [e2guardian-mitm]=$TLS_SPLICE_HOST)
	TLS_CAOF=([aupguard]=$ag_ca [aupguard-spliced]=$origin_ca [bare-goproxy-mitm]=$RUN/bare-goproxy-mitm/ca/ca.crt [squid-bump]=$RUN/squid-bump/ca/ca.crt [e2guardian-mitm]=$RUN/e2guardian-mitm/ca/ca.crt)
	TLS_NAMESOF=([aupguard]=mint [aupguard-spliced]=splice-mint [bare-goproxy-mitm]=mint [squid-bump]=mint)
	unset 'PEER_PIDS[aupguard]' 'PEER_PIDS[bare-goproxy-mitm]' 'PEER_PIDS[squid-bump]' 'PEER_PIDS[e2guardian-mitm]'
	if want aupguard || want aupguard-spliced; then
		local only=$PEERS
		PEERS=
		bring_up aupguard "$P_AG" start_aupguard_tls
		PEERS=$only
		if [[ " ${UP[*]} " == *" aupguard "* ]]; then
			want aupguard || UP=()
			want aupguard-spliced && UP+=(aupguard-spliced)
			PEER_PORT[aupguard-spliced]=$P_AG
			PEER_PIDS[aupguard-spliced]=${PEER_PIDS[aupguard]}
		fi
	fi
	bring_up bare-goproxy-mitm "$P_BARE" start_bare_mitm
	if squid_bumps; then
		bring_up squid-bump "$P_SQUIDBUMP" start_squid_bump
	else
		want squid-bump && fail_peer tls tls-keepalive-1k squid-bump "squid with ssl-bump is not installed (Debian package squid-openssl)"
	fi
	if have e2guardian && have openssl; then
		bring_up e2guardian-mitm "$P_E2GMITM" start_e2guardian_mitm
	else
		want e2guardian-mitm && fail_peer tls tls-keepalive-1k e2guardian-mitm "e2guardian or openssl is not installed"
	fi
	local peer why checked=()
	for peer in "${UP[@]}"; do
		if why=$(check_tls "$peer"); then
			checked+=("$peer")
		else
			fail_peer tls tls-keepalive-1k "$peer" "$why"
		fi
	done
	# aupguard's process serves aupguard-spliced too: it stays up while
	# either passed, and only the peers that passed are measured.
	UP=("${checked[@]}")
	wait_idle
	log "== tls: ${UP[*]}; $ROUNDS round(s)"
	local round test
	for ((round = 1; round <= ROUNDS; round++)); do
		for test in tls-keepalive-1k tls-newconn tls-first-visit; do
			for peer in $(rotated "$round"); do
				[[ $test == tls-first-visit && -z ${TLS_NAMESOF[$peer]:-} ]] && continue
				log "tls round $round: $test $peer"
				measure_tls "$peer" "$test" "$round"
			done
		done
	done
	local pids=() p
	for peer in aupguard bare-goproxy-mitm squid-bump e2guardian-mitm; do
		[[ -n ${PEER_PIDS[$peer]:-} ]] && pids+=("${PEER_PIDS[$peer]}")
	done
	for p in "${pids[@]}"; do stop "$p"; done
	stop "$TLS_ORIGIN_PID"
	UP=()
}
