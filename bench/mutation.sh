#!/usr/bin/env bash
# Mutation testing of the security-critical packages with gremlins
# (github.com/go-gremlins/gremlins): each covered mutant (a flipped
# condition, a changed boundary, an arithmetic swap…) is built and the
# package's tests run against it; a mutant the tests do not fail LIVED.
# Efficacy = killed / (killed + lived). docs/testing.md records the scores.
#
#   bench/mutation.sh                 # every target below, one after another
#   bench/mutation.sh verdict proxy   # only these targets
#
# Environment: GREMLINS (binary; installed with go install when missing),
# MUTATION_OUT (results directory, default bench/out/mutation),
# MUTATION_TIMEOUT_COEFFICIENT (default 10: a mutant's test run may take
# that many times the clean run before it counts as TIMED OUT, which is a
# kill), MUTATION_WORKERS (default 1: gremlins is CPU heavy, and so are
# the proxy's and the spool's tests), MUTATION_EXCLUDE (replaces a target's
# file exclusion regexp, to score fewer or more files), MUTATION_FLAGS
# (more gremlins flags, such as the mutators off by default:
# "--invert-logical --invert-assignments --invert-loopctrl
# --remove-self-assignments --invert-bitwise --invert-bwassign").
set -euo pipefail
cd "$(dirname "$0")/.."

GREMLINS_VERSION=v0.6.0
gremlins=${GREMLINS:-}
if [ -z "$gremlins" ]; then
	gremlins=$(command -v gremlins || true)
fi
if [ -z "$gremlins" ]; then
	gremlins="$(go env GOPATH)/bin/gremlins"
	if [ ! -x "$gremlins" ]; then
		echo "installing gremlins $GREMLINS_VERSION" >&2
		go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION"
	fi
fi

out=${MUTATION_OUT:-bench/out/mutation}
coef=${MUTATION_TIMEOUT_COEFFICIENT:-10}
workers=${MUTATION_WORKERS:-1}
mkdir -p "$out"

# target name → package directory and the files left out (gremlins -E,
# regexps on the file name within the package): only the security and
# data-loss paths are scored.
declare -A dir exclude
dir[verdict]=./verdict
exclude[verdict]=''
dir[identity]=./identity
exclude[identity]=''
# The proxy's gate (http.go: a request or response decision and its
# fail-closed use), dial checks (dial.go) and CONNECT (connect.go). Each
# proxy mutant costs a build and the whole proxy suite (about a minute).
dir[proxy]=./proxy
exclude[proxy]='^(blockpage|config|decide|local|quiet_[a-z]+|server|track)\.go$'
# The DNS filter's policy path: the policy link, the fast path and the
# blocked answers.
dir[dnsfilter]=./dnsfilter
exclude[dnsfilter]='^(cache|chain|config|dnsfilter|eventmaker|handler|listen|resolver_cache|resolver_clientnet|resolver_hosts|resolver_ratelimit|resolver_rfc8482|resolver_safesearch|resolver_special|resolver_upstream|reuseport_[a-z]+|safesearch_table|server|stats|udp|wire|wirecache)\.go$'
# The events spool and its delivery.
dir[events]=./events
exclude[events]='^(alerts|build|config|encode|event|id|lock_[a-z]+|metrics)\.go$'

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	targets=(verdict identity proxy dnsfilter events)
fi

summary=()
for t in "${targets[@]}"; do
	if [ -z "${dir[$t]:-}" ]; then
		echo "unknown target $t (known: ${!dir[*]})" >&2
		exit 2
	fi
	args=(unleash --workers "$workers" --test-cpu 1 --timeout-coefficient "$coef" -o "$out/$t.json")
	# shellcheck disable=SC2206 # flags split on white space on purpose
	args+=(${MUTATION_FLAGS:-})
	ex=${MUTATION_EXCLUDE-${exclude[$t]}}
	if [ -n "$ex" ]; then
		args+=(-E "$ex")
	fi
	echo "== $t: $gremlins ${args[*]} ${dir[$t]}"
	start=$(date +%s)
	"$gremlins" "${args[@]}" "${dir[$t]}" | tee "$out/$t.txt"
	secs=$(($(date +%s) - start))
	line=$(grep -E 'Test efficacy|Killed:' "$out/$t.txt" | tr -s ' \n' ' ')
	summary+=("$t (${secs}s): $line")
done

echo
echo "== mutation scores ($(date -u +%Y-%m-%dT%H:%MZ), gremlins $("$gremlins" --version 2>/dev/null | head -1))"
for s in "${summary[@]}"; do
	echo "$s"
done
echo "lived mutants: grep LIVED $out/<target>.txt"
