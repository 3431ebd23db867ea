#!/bin/bash
set -u
cd /tmp/batchredis
redis-server --port 16399 --bind 127.0.0.1 --save '' --appendonly no > redis.log 2>&1 &
RPID=$!
sleep 1
./waterspout serve --addr 127.0.0.1:18090 --api-key benchkey-0123456789 --config /work/wt/batch/bench/server.json --broker redis --redis-url redis://127.0.0.1:16399/0 2> ws.log &
WSPID=$!
sleep 2
echo "pids ws=$WSPID redis=$RPID"; uptime; date -u
r0=$(awk '{print $14+$15}' /proc/$RPID/stat)
./waterspout bench publish --server http://127.0.0.1:18090 --api-key benchkey-0123456789 --server-pid $WSPID --rounds 2 --json redis.json 2>progress.log > redis.md
r1=$(awk '{print $14+$15}' /proc/$RPID/stat)
echo "redis cpu ticks over the run: $((r1-r0))"
cat progress.log
kill $WSPID; wait $WSPID
kill $RPID; wait $RPID
