#!/usr/bin/env bash
# Fetches Debian's unmodified i386 Linux kernel (the 686 flavour: i686, no PAE) and
# busybox-static with apt, and builds the initramfs images that popek's Linux tests boot.
#
# Usage: guests/linux/assets.sh [DIR]
#   DIR  where the assets go (default: $POPEK_LINUX_ASSETS, else target/linux-assets)
#
# Leaves in DIR:
#   vmlinuz        the kernel (bzImage) of the package linux-image-686 depends on today
#   version        its release string, as `uname -r` prints it (e.g. 6.1.0-57-686)
#   initrd-boot.gz an initramfs whose /init runs init-boot (prints, then `reboot -f`)
#   initrd-shell.gz an initramfs whose /init runs init-shell (a busybox shell on the console)
# and prints DIR. A second run finds them and downloads nothing.
#
# Needs apt-get and dpkg-deb; i386 packages need the i386 architecture in dpkg (added
# here when running as root, as `dpkg --add-architecture i386 && apt-get update` would),
# and cpio (installed here when missing, as root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-${POPEK_LINUX_ASSETS:-$root/target/linux-assets}}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [ -s "$dir/vmlinuz" ] && [ -s "$dir/version" ] && [ -s "$dir/initrd-boot.gz" ] && [ -s "$dir/initrd-shell.gz" ] \
    && [ "$dir/initrd-boot.gz" -nt "$here/init-boot" ] && [ "$dir/initrd-shell.gz" -nt "$here/init-shell" ]; then
    echo "$dir"
    exit 0
fi

fail() { echo "assets: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else fail "needs root to run: $*"; fi; }
command -v apt-get >/dev/null || fail "apt-get is missing (a Debian or Ubuntu host is needed)"
if ! dpkg --print-foreign-architectures | grep -qx i386 && [ "$(dpkg --print-architecture)" != i386 ]; then
    as_root dpkg --add-architecture i386
    # A mirror caught mid-sync fails one index or another: what it did fetch is checked below.
    as_root apt-get update -qq >/dev/null 2>&1 || true
fi
if ! command -v cpio >/dev/null; then
    as_root apt-get install -y -qq cpio >/dev/null
fi

work="$(mktemp -d)"
chmod 755 "$work" # apt-get download drops to the _apt user
trap 'rm -rf "$work"' EXIT
cd "$work"
# The kernel package the 686 metapackage points at (an exact name, so the version is known).
kpkg="$(apt-cache depends linux-image-686:i386 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$kpkg" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    kpkg="$(apt-cache depends linux-image-686:i386 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
[ -n "$kpkg" ] || fail "apt knows no linux-image-686:i386 (is Debian's i386 archive in the sources?)"
apt-get download -qq "$kpkg" busybox-static:i386 >/dev/null || fail "apt-get download $kpkg busybox-static:i386 failed"
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox
version="$(basename "$(ls kernel/boot/vmlinuz-*)")"
version="${version#vmlinuz-}"

# One initramfs per init script: busybox, its applet links made by /init itself.
mkinitrd() {
    local init="$1" out="$2" tree="$work/tree-$(basename "$1")"
    mkdir -p "$tree/bin" "$tree/proc" "$tree/sys" "$tree/dev" "$tree/tmp"
    cp busybox/bin/busybox "$tree/bin/busybox"
    cp "$init" "$tree/init"
    chmod 755 "$tree/init" "$tree/bin/busybox"
    (cd "$tree" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -9n) >"$out.tmp"
    mv "$out.tmp" "$out"
}
mkinitrd "$here/init-boot" "$dir/initrd-boot.gz"
mkinitrd "$here/init-shell" "$dir/initrd-shell.gz"
cp "kernel/boot/vmlinuz-$version" "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
echo "$version" >"$dir/version"
echo "$dir"
