#!/usr/bin/env bash
# Benchmark blockgate against nbdkit, qemu-nbd and tgtd on equal backing, and blockgate's
# mirror and remote hop against a single device / direct access (about 20 minutes with the
# defaults on 2 CPUs).
#   npm run bench                              build if needed, then run everything
#   npm run bench -- --only file-shm,remote --seconds 2
# Options (or BENCH_* environment variables):
#   --only ID,…  --skip ID,…   comparisons: memory, file-shm, file-root, mirror, remote, iscsi, iscsi-digests,
#                              rss-nbd, rss-iscsi, rss-sparse; groups: nbd, file, rss, iscsi (both iSCSI ones)
#   --seconds S (3)  per measurement, after --ramp S (0.5) for fio; --rounds N (3)
#   --size 512MiB    of every device      --no-prefill (BENCH_PREFILL=0)
#   --workloads ID,… (ids in lib/fio.mjs and lib/iscsi-tools.mjs)
#   --server-cpu N (0) --client-cpu N (1) --no-pin   where servers and clients run (taskset)
#   --root-dir DIR (/var/tmp)  where the root-file-system files go
#   --output FILE    (default test/bench/results/latest.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in fio nbdkit qemu-nbd qemu-img tgtd tgtadm iscsi-perf iscsi-readcapacity16 taskset; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (bash test/run.sh --deps-only installs it)" >&2; exit 1; }
done
# Build when the CLI is missing or older than any source file.
if [[ ! -f dist/gateway/cli.js ]] || [[ -n "$(find gateway fabric failover -name '*.ts' -newer dist/gateway/cli.js -print -quit)" ]]; then
  echo "bench: building (npx tsc -p .)" >&2
  npx tsc -p . || echo "bench: tsc reported errors (the build above still emitted JavaScript)" >&2
fi
exec node test/bench/bench.mjs "$@"
