#!/usr/bin/env bash
# Side-by-side write benchmark: a 3-node Wharf hub cluster and a 3-member
# etcd cluster on loopback, data on the same disk, driven by the same load
# generator (apibench) with 1 and 64 clients. Runs are interleaved and
# repeated (ROUNDS, default 3); medians are printed as a markdown table,
# with each system's CPU per write (its three processes', and the load
# generator's): on a saturated machine the rates follow those sums.
# Needs: bin/wharf (make build) and etcd (apt-get install etcd-server).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
WHARF=$ROOT/bin/wharf
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
command -v etcd >/dev/null || { echo "etcd not found: apt-get install -y etcd-server" >&2; exit 1; }
[ -x "$WHARF" ] || { echo "$WHARF missing: make build" >&2; exit 1; }

work=$(mktemp -d /var/tmp/wharf-bench.XXXXXX)
pids=()
wharf_pids=()
etcd_pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/apibench" .

# Wharf: 3 hub nodes.
export WHARF_CLUSTER_KEY=$("$WHARF" keygen)
for i in 1 2 3; do
	"$WHARF" hub --node-name hub$i --data-dir "$work/hub$i" --bootstrap-expect 3 \
		--join 127.0.0.1:11483 --http-addr 127.0.0.1:1${i}480 --quic-addr 127.0.0.1:1${i}481 \
		--raft-addr 127.0.0.1:1${i}482 --gossip-addr 127.0.0.1:1${i}483 --log-level warn \
		2>"$work/hub$i.log" &
	pids+=($!)
	wharf_pids+=($!)
done
# etcd: 3 members.
cluster="e1=http://127.0.0.1:12380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380"
for i in 1 2 3; do
	etcd --name e$i --data-dir "$work/etcd$i" \
		--listen-client-urls http://127.0.0.1:${i}2379 --advertise-client-urls http://127.0.0.1:${i}2379 \
		--listen-peer-urls http://127.0.0.1:${i}2380 --initial-advertise-peer-urls http://127.0.0.1:${i}2380 \
		--initial-cluster "$cluster" --initial-cluster-state new --log-level error \
		2>"$work/etcd$i.log" &
	pids+=($!)
	etcd_pids+=($!)
done

token=""
for _ in $(seq 1 100); do
	if out=$(curl -sf -X POST http://127.0.0.1:11480/v1/bootstrap 2>/dev/null); then
		token=$(printf '%s' "$out" | grep -o '"token":"[^"]*"' | cut -d'"' -f4)
		break
	fi
	sleep 0.2
done
[ -n "$token" ] || { echo "wharf did not come up; logs in $work" >&2; tail -20 "$work"/hub*.log >&2; exit 1; }
curl -sf -H "Authorization: Bearer $token" -d '{"name":"bench"}' http://127.0.0.1:11480/v1/tenants >/dev/null
for _ in $(seq 1 50); do etcdctl --endpoints 127.0.0.1:12379 endpoint health >/dev/null 2>&1 && break; sleep 0.2; done

wharf_eps=http://127.0.0.1:11480,http://127.0.0.1:12480,http://127.0.0.1:13480
etcd_eps=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379
results=$work/results.jsonl
for r in $(seq 1 "$ROUNDS"); do
	for c in 1 64; do
		"$work/apibench" -target wharf -addrs "$wharf_eps" -token "$token" -clients $c -duration "$DURATION" \
			-pids "$(IFS=,; echo "${wharf_pids[*]}")" | tee -a "$results"
		"$work/apibench" -target etcd -addrs "$etcd_eps" -clients $c -duration "$DURATION" \
			-pids "$(IFS=,; echo "${etcd_pids[*]}")" | tee -a "$results"
	done
done
"$work/apibench" -summarize "$results"
