#!/bin/busybox sh
# PID 1 of the boot test's guest, run by the Debian initramfs once it has mounted the root
# file system (from the blockgate export the VM boots from). It reports on the serial console
# the token stored in that file system and the one the test wrote into the disk's gap
# sector just before booting, then powers off.
# The initramfs has moved /proc, /sys and /dev onto this root already.
PATH=/bin
root=$(busybox awk '$2 == "/" && $1 != "rootfs" { print $1 }' /proc/mounts)
token=$(busybox cat /etc/blockgate-token)
live=$(busybox dd if=/dev/vda bs=512 skip=64 count=1 2>/dev/null | busybox tr -dc 'a-z0-9-')
busybox echo "BLOCKGATE-BOOT-OK root=$root token=$token live=$live" >/dev/console
busybox sync
busybox poweroff -f
