#!/usr/bin/env bash
# Turn a root file system tree into a disk image that boots by itself: an MBR partition
# table with one bootable ext4 partition, EXTLINUX (syslinux) as the boot loader, and the
# tree's /vmlinuz and /initrd.img (the links Debian's kernel packages keep to the newest
# kernel, so an upgrade inside the image needs no boot loader change) as kernel and initramfs.
#   make-disk.sh ROOT_DIR OUT.qcow2 SIZE_MIB 'KERNEL ARGUMENTS'
# root=UUID=… and console=ttyS0 are added to the kernel arguments. Needs root (a loop mount
# for extlinux), mke2fs, sfdisk, extlinux and qemu-img.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

root=${1:?usage: make-disk.sh ROOT_DIR OUT.qcow2 SIZE_MIB 'KERNEL ARGUMENTS'}
out=${2:?}
size_mib=${3:?}
cmdline=${4:-}
mbr=/usr/lib/syslinux/mbr/mbr.bin
for tool in mke2fs sfdisk extlinux qemu-img; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install e2fsprogs fdisk extlinux syslinux-common qemu-utils)"
done
[[ -r $mbr ]] || die "$mbr is missing (apt-get install syslinux-common)"

for link in vmlinuz initrd.img; do
  [[ -f $root/$link ]] || die "$root/$link is missing (a link to the kernel or initramfs in /boot)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/blockgate-disk.XXXXXX")
mnt=$work/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT

uuid=$(cat /proc/sys/kernel/random/uuid)
mkdir -p "$root/boot/syslinux"
cat >"$root/boot/syslinux/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=$uuid console=ttyS0,115200 $cmdline
CFG

raw=$work/disk.raw
truncate -s "${size_mib}M" "$raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw"
# syslinux reads ext4 without the 64bit and metadata_csum_seed features.
mke2fs -q -t ext4 -b 4096 -O ^64bit,^metadata_csum_seed -L root -U "$uuid" -E offset=$((2048 * 512)) -d "$root" "$raw" "$((size_mib - 1))M"
mkdir "$mnt"
mount -o loop,offset=$((2048 * 512)) "$raw" "$mnt"
# syslinux follows extent trees of depth 0 only: at most 4 extents per file, which 4 KiB
# blocks give files of this size (1 KiB blocks, mke2fs's choice for small file systems, split them).
for f in "$mnt"/boot/vmlinuz-* "$mnt"/boot/initrd.img-*; do
  extents=$(filefrag "$f" | sed -n 's/.*: \([0-9]*\) extents\{0,1\} found/\1/p')
  ((extents <= 4)) || die "$f has $extents extents: syslinux cannot read it"
done
extlinux --install "$mnt/boot/syslinux" >&2
umount "$mnt"
dd if="$mbr" of="$raw" bs=440 count=1 conv=notrunc status=none
qemu-img convert -q -O qcow2 "$raw" "$out"
