#!/usr/bin/env bash
# The boot test's disk: a distribution kernel and initramfs (from the appliance base, built
# from Debian packages) and a tiny ext4 root whose init is busybox running boot-init.sh,
# with EXTLINUX as boot loader. Cached by its inputs.
#   build-boot-disk.sh CACHE_DIR     prints DISK.qcow2 (its root's token is in DISK.token)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
packaging=$(cd "$here/../../../packaging" && pwd)
. "$packaging/lib/common.sh"

cache=${1:?usage: build-boot-disk.sh CACHE_DIR}
base=$("$packaging/appliance/build-base.sh" "$cache")
key=$(content_key "$here/build-boot-disk.sh" "$here/boot-init.sh" "$packaging/appliance/make-disk.sh" "$(basename "$base")")
out=$cache/boot-disk-$key.qcow2

build() {
  [[ -s $out ]] && return
  say "building the boot test disk into $out"
  local root
  root=$(mktemp -d "${TMPDIR:-/tmp}/blockgate-bootroot.XXXXXX")
  trap 'rm -rf "$root"' RETURN
  mkdir -p "$root"/{bin,sbin,etc,boot,dev,proc,sys,run,tmp}
  cp "$base"/boot/vmlinuz-* "$base"/boot/initrd.img-* "$root/boot/"
  cp -P "$base/vmlinuz" "$base/initrd.img" "$root/"
  cp "$base/bin/busybox" "$root/bin/busybox"
  install -m 0755 "$here/boot-init.sh" "$root/sbin/init"
  local token
  token=root-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token" >"$root/etc/blockgate-token"
  "$packaging/appliance/make-disk.sh" "$root" "$out.tmp" 128 'rw quiet' >&2
  echo "$token" >"$out.token"
  mv "$out.tmp" "$out"
  local old
  for old in "$cache"/boot-disk-*.qcow2; do [[ $old == "$out" ]] || rm -f "$old" "$old.token"; done
}

with_lock "$cache/boot-disk.lock" build
echo "$out"
