#!/usr/bin/env bash
set -u
before=$1 after=$2 rounds=$3 out=$4 start=$5
mkdir -p "$out"; cd /work/main; ulimit -n "$(ulimit -Hn)"
key=ab-key-0123456789abcdef; port=18091; client=$before
runone() { local label=$1 bin=$2 name=$3; shift 3
  "$bin" serve --addr 127.0.0.1:$port --api-key $key --config bench/server.json 2>>"$out/server-$label.log" &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  echo "== $label $name r$r (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$client" bench --server http://127.0.0.1:$port --api-key $key --server-pid $pid "$@" > "$out/$label-$name-r$r.md" 2>/dev/null
  kill $pid; wait $pid 2>/dev/null; }
for r in $(seq $start $((start+rounds-1))); do
  order="before after"; [ $((r % 2)) -eq 0 ] && order="after before"
  for label in $order; do bin=$before; [ $label = after ] && bin=$after
    runone $label $bin idle-ws idle --transports ws; runone $label $bin idle-sse idle --transports sse
  done
done; echo done
