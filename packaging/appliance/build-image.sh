#!/usr/bin/env bash
# The blockgate appliance: a disk image that boots (EXTLINUX, Debian's kernel) into Debian
# with blockgate's .deb installed and its service enabled, networking by DHCP, the serial
# console on ttyS0 and the QEMU guest agent. Cached by its inputs.
#   build-image.sh CACHE_DIR BLOCKGATE.deb [SIZE_MIB]     prints the .qcow2's path
# Boot it:  qemu-system-x86_64 -m 1024 -drive file=IMAGE,if=virtio -nic user,hostfwd=...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

cache=${1:?usage: build-image.sh CACHE_DIR BLOCKGATE.deb [SIZE_MIB]}
deb=${2:?usage: build-image.sh CACHE_DIR BLOCKGATE.deb [SIZE_MIB]}
size_mib=${3:-2048}
[[ -f $deb ]] || die "$deb: no such file"
base=$("$here/build-base.sh" "$cache")
overlay=$( (cd "$here/rootfs" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16)
key=$(content_key "$here/build-image.sh" "$here/make-disk.sh" "$overlay" "$(basename "$base")" "$(sha256sum <"$deb")" "$size_mib")
out=$cache/appliance-$key.qcow2

build() {
  [[ -s $out ]] && return
  say "building the appliance image into $out"
  local root
  root=$(mktemp -d "${TMPDIR:-/tmp}/blockgate-appliance.XXXXXX")
  trap 'remove_tree "$root"' RETURN
  cp -a "$base/." "$root/"
  cp "$deb" "$root/tmp/blockgate.deb"
  # In a mount namespace of its own, so /proc and /dev vanish with it whatever happens.
  unshare --mount --fork sh -ec '
    root=$1
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    chroot "$root" dpkg -i /tmp/blockgate.deb
    chroot "$root" systemctl enable systemd-networkd.service blockgate.service
  ' sh "$root" >&2
  rm "$root/tmp/blockgate.deb"
  cp -r "$here/rootfs/." "$root/"
  : >"$root/etc/machine-id"   # a new one at first boot
  "$here/make-disk.sh" "$root" "$out.tmp" "$size_mib" 'rw quiet' >&2
  mv "$out.tmp" "$out"
  local old
  for old in "$cache"/appliance-*.qcow2; do [[ $old == "$out" ]] || rm -f "$old"; done
}

with_lock "$cache/appliance.lock" build
echo "$out"
