#!/usr/bin/env bash
# Benchmark blockgate against nbdkit, qemu-nbd and tgtd, and blockgate's mirror and remote
# hop against a single device / direct access (about 7 minutes with the defaults).
#   npm run bench                         build if needed, then run everything
#   bash test/bench/run.sh --seconds 2 --only mirror,remote
# Options (or BENCH_* environment variables):
#   --only nbd,mirror,remote,iscsi   sections (nbd = memory,file; each may be named alone)
#   --seconds S (5)   per measurement, after --ramp S (1) for fio
#   --size 512MiB     of every device      --no-prefill (BENCH_PREFILL=0)
#   --workloads ID,…  (ids in lib/fio.mjs and lib/iscsi-tools.mjs)
#   --output FILE     (default test/bench/results/latest.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in fio nbdkit qemu-nbd qemu-img tgtd tgtadm iscsi-perf iscsi-readcapacity16; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (bash test/run.sh --deps-only installs it)" >&2; exit 1; }
done
# Build when the CLI is missing or older than any source file.
if [[ ! -f dist/gateway/cli.js ]] || [[ -n "$(find gateway fabric failover -name '*.ts' -newer dist/gateway/cli.js -print -quit)" ]]; then
  echo "bench: building (npx tsc -p .)" >&2
  npx tsc -p . || echo "bench: tsc reported errors (the build above still emitted JavaScript)" >&2
fi
exec node test/bench/bench.mjs "$@"
