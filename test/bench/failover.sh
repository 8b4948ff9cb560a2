#!/usr/bin/env bash
# Failover benchmark: kill -9 of the Primary → first client write (file-lock arbiter and
# etcd), rolling-restart pause, clustered vs standalone throughput. Prints a Markdown table
# and writes test/bench/results/failover.md. Options: --kills N (10) --rounds N (3) --seconds S (5) --only throughput
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p . >/dev/null || echo "failover bench: tsc reported errors" >&2
exec node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs test/bench/failover.ts "$@"
