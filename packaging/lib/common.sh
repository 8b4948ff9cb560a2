# Shared by the packaging scripts: logging, the Debian mirror apt already uses, and a
# content-addressed cache (an artifact is named by a hash of everything it is built from,
# so a changed input builds a new one and an unchanged one is reused).

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The Debian release the appliance and test images are built from: the host's.
debian_suite() {
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ -n $codename ]] || die "cannot tell the Debian release from /etc/os-release"
  echo "$codename"
}

# One-line sources ("deb URI SUITE main") for the archive and security mirrors apt is
# configured with (deb822 .sources files or sources.list lines), so image builds go where
# the host's apt goes. Falls back to deb.debian.org.
debian_sources() {
  local suite=${1:-$(debian_suite)} archive='' security='' uri
  while read -r uri; do
    case $uri in
      */debian-security*) security=${security:-$uri} ;;
      */debian) archive=${archive:-$uri} ;;
    esac
  done < <(apt_uris)
  archive=${archive:-http://deb.debian.org/debian}
  security=${security:-${archive%/debian}/debian-security}
  echo "deb $archive $suite main"
  echo "deb $archive $suite-updates main"
  echo "deb $security $suite-security main"
}

# Every repository URI in apt's sources, deb822 and one-line formats alike.
apt_uris() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] && sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n'
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -e $f ]] && awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
  done
  return 0
}

# sha256 (first 16 hex digits) of the arguments' contents: files by content, other words as text.
content_key() {
  local a
  for a in "$@"; do
    if [[ -f $a ]]; then printf 'file %s\n' "$(basename "$a")"; cat "$a"; else printf 'text %s\n' "$a"; fi
  done | sha256sum | cut -c1-16
}

# with_lock FILE CMD...: one builder of an artifact at a time (tests run in parallel).
with_lock() {
  local lock=$1; shift
  mkdir -p "$(dirname "$lock")"
  (flock 9; "$@") 9>"$lock"
}

# remove_tree DIR: unmount whatever is still mounted below DIR (a chroot left by a killed
# build), deepest first, then delete it without crossing into other file systems.
remove_tree() {
  local dir=$1 m
  [[ -e $dir ]] || return 0
  dir=$(realpath "$dir")
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "$dir"
}
