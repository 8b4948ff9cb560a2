#!/usr/bin/env bash
# Benchmark blockgate against nbdkit and qemu-nbd with fio's nbd engine (about 4-5 minutes).
#   npm run bench                         build, then run everything
#   bash test/bench/run.sh --runtime 5 --ramp 1 --only memory --workloads randread-4k-qd1
# Options (or BENCH_* environment variables): --runtime S (10), --ramp S (2), --size 512MiB,
# --no-prefill (BENCH_PREFILL=0), --only memory,file, --workloads ID,...,
# --output FILE (default test/bench/results/latest.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in fio nbdkit qemu-nbd; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (bash test/run.sh --deps-only installs it)" >&2; exit 1; }
done
if [[ ! -f dist/gateway/cli.js ]]; then
  echo "bench: building (npx tsc -p .)" >&2
  npx tsc -p .
fi
exec node test/bench/bench.mjs "$@"
