#!/usr/bin/env bash
# A/B of the server before and after issue 22: S1 (idle ws/sse/poll), S2, S5, S6.
# Usage: run.sh BEFORE_BIN AFTER_BIN ROUNDS OUTDIR ; the load generator is BEFORE_BIN's bench.
set -u
before=$1 after=$2 rounds=$3 out=$4
mkdir -p "$out"
cd /work/main
ulimit -n "$(ulimit -Hn)"
key=ab-key-0123456789abcdef
port=18090
client=$before
runone() { # label bin name args...
  local label=$1 bin=$2 name=$3; shift 3
  "$bin" serve --addr 127.0.0.1:$port --api-key $key --config bench/server.json 2>>"$out/server-$label.log" &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  echo "== $label $name r$r (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$client" bench --server http://127.0.0.1:$port --api-key $key --server-pid $pid --json "$out/$label-$name-r$r.json" "$@" > "$out/$label-$name-r$r.md" 2>/dev/null
  kill $pid; wait $pid 2>/dev/null
}
for r in $(seq "$rounds"); do
  order="before after"; [ $((r % 2)) -eq 0 ] && order="after before"
  for label in $order; do
    bin=$before; [ $label = after ] && bin=$after
    for tr in ws sse poll; do runone $label $bin idle-$tr idle --transports $tr; done
    for sc in fanout fanout-sse fanout-poll; do runone $label $bin $sc $sc --rates 5000,20000,50000 --step 5s; done
  done
done
echo done
