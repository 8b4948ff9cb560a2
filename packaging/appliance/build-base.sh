#!/usr/bin/env bash
# The appliance's base system: Debian minbase plus packages.txt (kernel, initramfs, systemd,
# qemu-guest-agent, qemu-img), as a directory tree. Cached: it is named by a hash of the
# package list, this script and the mirrors, so it is built once per machine per change.
#   build-base.sh CACHE_DIR      prints the tree's path (builds it if missing)
# Callers copy what they need out of it and never change it.
# The downloaded .debs are kept in CACHE_DIR/debs, so a rebuild downloads only what changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

cache=${1:?usage: build-base.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
suite=$(debian_suite)
mapfile -t sources < <(debian_sources "$suite")
packages=$(sed 's/#.*//' "$here/packages.txt" | xargs | tr ' ' ',')
key=$(content_key "$here/build-base.sh" "$here/packages.txt" "$suite" "${sources[@]}")
out=$cache/base-$suite-$key

build() {
  [[ -d $out ]] && return
  command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
  say "building the appliance base system ($suite: minbase + $packages) into $out"
  mkdir -p "$cache/debs"
  local tmp=$out.tmp.$$ old
  for old in "$out".tmp.*; do remove_tree "$old"; done
  trap 'remove_tree "$tmp"' EXIT
  # Documentation and translations are left out: the appliance has no use for them.
  mmdebstrap --mode=root --format=directory --variant=minbase --include="$packages" \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in $cache/debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $cache/debs" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    "$suite" "$tmp" "${sources[@]}" >&2
  mv "$tmp" "$out"
  trap - EXIT
  # Older bases are of no further use once this one exists.
  for old in "$cache"/base-"$suite"-*; do [[ $old == "$out" ]] || remove_tree "$old"; done
}

with_lock "$cache/base.lock" build
echo "$out"
