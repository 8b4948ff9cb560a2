#!/usr/bin/env bash
# What `npm test` runs: make sure the machine has what the tests drive (real NBD/iSCSI
# clients, nbdkit, qemu, fio, FUSE and loop devices), build, then run every tap test.
#   npm test                       everything
#   npm test -- test/config        only some files or directories (passed to tap)
#   bash test/run.sh --deps-only   install/check the Debian packages and devices, nothing else
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 packages the tests use, and what for.
DEBIAN_PACKAGES=(
  nbdkit            # backends for tests and the benchmark baseline; error/delay filters for faults
  libnbd-bin        # nbdinfo, nbdcopy, nbdfuse
  python3-libnbd    # nbdsh
  qemu-utils        # qemu-img, qemu-io, qemu-nbd (nbd:// clients, benchmark baseline)
  qemu-block-extra  # iscsi:// for qemu
  fio               # its nbd engine, in tests and the benchmark
  libaio1           # the file backend sends buffered writes to the thread pool in batches (io_submit)
  fuse3             # nbdfuse mounts an export as a file
  e2fsprogs         # mkfs.ext4 on an export
  libiscsi-bin      # iscsi-inq, iscsi-ls, iscsi-perf, iscsi-test-cu
  tgt               # tgtd: an iSCSI target to compare with and to use as a backend
  etcd-server       # cluster coordination tests
  iputils-arping    # gratuitous ARP when a failover set's service address moves
  iproute2          # ip netns, veth and bridges for the cluster topology tests
  curl              # asks etcd nodes inside network namespaces for their status
  util-linux        # losetup, mount
  kmod              # modprobe fuse / loop
  openssl           # self-signed certificates for the management API's TLS test
  chromium          # the dashboard test's real browser (driven by playwright-core)
  qemu-system-x86   # boots the test and appliance images (TCG)
  mmdebstrap        # builds the appliance's Debian root file system
  extlinux          # boot loader of the disk images
  syslinux-common   # its MBR code
  fdisk             # sfdisk: partition tables of the disk images
  debhelper         # builds the .deb (packaging/)
  bash-completion   # dh_bash-completion, and the completion test
  lintian           # checks the .deb
  man-db            # man -l: the man page test
  groff-base        # groff: the man page renders without warnings
)

say() { printf '\n==> %s\n' "$*"; }

install_packages() {
  local missing=() p
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    echo "all ${#DEBIAN_PACKAGES[@]} Debian packages present"
    return
  fi
  echo "missing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "Not root, so not installing them. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  # Packages such as tgt and etcd-server would start their daemons on install (and take
  # ports 3260 and 2379): forbid service starts while apt runs, as container images do.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local status=0
  { apt-get update -q && apt-get install -y -q "${missing[@]}"; } || status=$?
  if ((added_policy)); then rm -f "$policy"; fi
  if ((status != 0)); then
    echo "apt-get failed (status $status)" >&2
    exit "$status"
  fi
}

# The filesystem test mounts an export: nbdfuse needs /dev/fuse, mount -o loop a loop device.
prepare_devices() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "not root: leaving /dev/fuse and loop devices as they are"
    return
  fi
  if command -v modprobe >/dev/null; then
    modprobe fuse 2>/dev/null || true
    modprobe loop 2>/dev/null || true
  fi
  [[ -e /dev/fuse ]] || mknod -m 0666 /dev/fuse c 10 229 || echo "warning: cannot create /dev/fuse" >&2
  [[ -e /dev/loop-control ]] || mknod -m 0660 /dev/loop-control c 10 237 || echo "warning: cannot create /dev/loop-control" >&2
  local i
  for i in 0 1 2 3 4 5 6 7; do
    [[ -e /dev/loop$i ]] || mknod -m 0660 "/dev/loop$i" b 7 "$i" || echo "warning: cannot create /dev/loop$i" >&2
  done
  echo "/dev/fuse: $([[ -c /dev/fuse ]] && echo present || echo MISSING)," \
    "loop devices: $(ls /dev/loop[0-9]* 2>/dev/null | wc -l)"
}

say "Debian packages"
install_packages
say "Devices for FUSE and loop mounts"
prepare_devices
if [[ ${1:-} == --deps-only ]]; then exit 0; fi

say "Build (tsc -p .)"
npx tsc -p .
echo "built into dist/"

# tap's TypeScript loader strips types without checking them: a test or helper that names
# something it never imported only fails when that line runs. Check the tests as strictly
# as the code they test.
say "Type-check the tests (tsc -p tsconfig.test.json)"
npx tsc -p tsconfig.test.json
echo "tests type-check"

say "Tests (tap)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
npx tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# tap's summary is `# { total: N, pass: P, fail: F, ... }`; print it as the plain line CI reads.
summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1 || true)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")
echo
echo "tap: ${pass:-0} passed, ${fail:-0} failed${skip:+, $skip skipped}"
if [[ -z $summary ]]; then
  echo "tap printed no summary: treating the run as failed" >&2
  ((status != 0)) || status=1
fi
exit "$status"
