#!/usr/bin/env bash
# ab.sh BEFORE AFTER ROUNDS OUT FIRST SCENARIO... (from the repository root): an A/B of two servers with `waterspout
# bench`: what the three scripts that made the tables of this folder (and of
# ../20261207T130100Z-issue22-heldhost-ab) did, in one.
# Each scenario of each round runs against a fresh server of each binary, the order alternating with
# the round (odd: before first); the load generator is BEFORE's bench for both. A SCENARIO is a name
# and its bench arguments, for example
#   ab.sh /tmp/ws-before /tmp/ws-after 2 out 1 'idle-ws idle --transports ws' \
#     'fanout-poll fanout-poll --rates 5000,20000,50000 --step 5s'
# The first run of this folder used idle-ws, idle-sse, idle-poll, fanout, fanout-sse and fanout-poll
# (rounds 1-2); the next ones idle-poll and fanout-poll (rounds 3-6), then idle-ws and idle-sse
# (rounds 3-6). summ.py OUT prints the table of docs/BENCHMARKS.md.
set -u
before=$1 after=$2 rounds=$3 out=$4 first=$5; shift 5
mkdir -p "$out"; ulimit -n "$(ulimit -Hn)"
key=ab-key-0123456789abcdef; port=18090
runone() { local label=$1 bin=$2 name=$3; shift 3
  "$bin" serve --addr 127.0.0.1:$port --api-key $key --config bench/server.json 2>>"$out/server-$label.log" &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  echo "== $label $name r$r (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$before" bench --server http://127.0.0.1:$port --api-key $key --server-pid $pid "$@" > "$out/$label-$name-r$r.md" 2>/dev/null
  kill $pid; wait $pid 2>/dev/null; }
for r in $(seq "$first" $((first + rounds - 1))); do
  order="before after"; [ $((r % 2)) -eq 0 ] && order="after before"
  for label in $order; do bin=$before; [ "$label" = after ] && bin=$after
    for sc in "$@"; do read -r -a words <<<"$sc"; runone "$label" "$bin" "${words[@]}"; done
  done
done
echo done
