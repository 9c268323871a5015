#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the Debian binary packages of bips into dist/ with Debian's own
# tooling (dpkg-buildpackage, debhelper's meson build system; debian/).
#
#   ./tools/package.sh           # build, or say dist/ is up to date
#   ./tools/package.sh --force   # build even if dist/ is up to date
#
# Installs missing build dependencies with apt (as root, or through sudo).
# Builds in a copy of the tree in a temporary folder, so build/ and the
# other build folders are never touched, without the test suites
# (DEB_BUILD_OPTIONS=nocheck: tests/run.sh runs them) and without -dbgsym
# packages unless BIPS_PACKAGE_DBGSYM=1. Idempotent: dist/ then holds
# exactly this tree's packages (.deb, .buildinfo, .changes) and
# package-build.log; a second run with an unchanged tree builds nothing.
# BIPS_KEEP_PACKAGE_BUILD=1 keeps the temporary folder.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dist="$root/dist"
force=0
for arg in "$@"; do
  case "$arg" in
  --force) force=1 ;;
  -h | --help)
    sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "package.sh: unknown argument '$arg' (see --help)" >&2
    exit 2
    ;;
  esac
done

log() { echo "package.sh: $*"; }
list_debs() {
  local f
  for f in "$dist"/*.deb; do
    echo "  dist/${f##*/}"
  done
}
die() {
  echo "package.sh: error: $*" >&2
  exit 1
}

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  sudo=(no_root)
fi
no_root() {
  echo "package.sh: installing build dependencies needs root or sudo: $*" >&2
  return 1
}
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  log "installing missing Debian packages: $*"
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >/tmp/bips-package-apt.log 2>&1; then
    "${sudo[@]}" apt-get update -q >>/tmp/bips-package-apt.log 2>&1 || true
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >>/tmp/bips-package-apt.log 2>&1 ||
      die "apt-get install failed; see /tmp/bips-package-apt.log"
  fi
}

# The tools that read debian/ and build, then what debian/control asks for.
missing=()
for p in dpkg-dev build-essential; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) || apt_install "${missing[@]}"
cd "$root"
if ! unmet=$(dpkg-checkbuilddeps debian/control 2>&1); then
  log "${unmet#dpkg-checkbuilddeps: error: }"
  log "installing the build dependencies of debian/control"
  if ! "${sudo[@]}" apt-get build-dep -y -q --no-install-recommends "$root" >/tmp/bips-package-apt.log 2>&1; then
    "${sudo[@]}" apt-get update -q >>/tmp/bips-package-apt.log 2>&1 || true
    "${sudo[@]}" apt-get build-dep -y -q --no-install-recommends "$root" >>/tmp/bips-package-apt.log 2>&1 ||
      die "apt-get build-dep failed; see /tmp/bips-package-apt.log"
  fi
  dpkg-checkbuilddeps debian/control || die "build dependencies still unmet"
fi

# The package version must be the project's.
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
project_version=$(meson introspect --projectinfo meson.build 2>/dev/null |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[[ "$version" == "$project_version" ]] ||
  die "debian/changelog says $version but meson.build says $project_version: add a debian/changelog entry for $project_version"

# The tree as git sees it (tracked and new files, not what .gitignore
# names: build folders, dist/, caches), or everything but those folders
# outside a git checkout.
work=$(mktemp -d "${TMPDIR:-/tmp}/bips-package.XXXXXX")
cleanup() {
  if [[ "${BIPS_KEEP_PACKAGE_BUILD:-0}" == 1 ]]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
src="$work/bips-$version"
mkdir -p "$src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [[ -e "$root/$f" || -L "$root/$f" ]]; then # not deleted
        printf '%s\0' "$f"
      fi
    done |
    tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -
else
  tar -C "$root" --exclude=./build --exclude='./build-*' --exclude=./dist --exclude=./.git \
    --exclude=__pycache__ --exclude='*.pyc' -cf - . | tar -C "$src" -xf -
fi

# Skip the build when dist/ already holds the packages of this very tree.
hash=$( (cd "$src" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . &&
  echo "dbgsym=${BIPS_PACKAGE_DBGSYM:-0} options=${DEB_BUILD_OPTIONS:-}") | sha256sum | cut -d' ' -f1)
# The stamp holds the hash, then the files built from that tree.
stamp="$dist/.source-sha256"
up_to_date() {
  local line first=1
  [[ -f "$stamp" ]] || return 1
  while IFS= read -r line; do
    if ((first)); then
      [[ "$line" == "$hash" ]] || return 1
      first=0
    else
      [[ -f "$dist/$line" ]] || return 1
    fi
  done <"$stamp"
  ((first == 0))
}
if ((force == 0)) && up_to_date; then
  log "dist/ is up to date with the tree (bips $version; --force rebuilds):"
  list_debs
  exit 0
fi

# The build sees none of a developer shell's paths into build/ (meson
# devenv), which would otherwise reach the introspection scanner.
build_options="nocheck ${DEB_BUILD_OPTIONS:-}"
[[ "${BIPS_PACKAGE_DBGSYM:-0}" == 1 ]] || build_options="noddebs $build_options"
log "building bips $version in $src (DEB_BUILD_OPTIONS=${build_options% })"
start=$SECONDS
buildlog="$work/package-build.log"
if ! (cd "$src" &&
  env -u LD_LIBRARY_PATH -u GI_TYPELIB_PATH -u GST_PLUGIN_PATH -u GST_PLUGIN_PATH_1_0 \
    -u GST_REGISTRY -u PYTHONPATH -u PKG_CONFIG_PATH -u BIPS_DIR \
    DEB_BUILD_OPTIONS="$build_options" LC_ALL=C.UTF-8 \
    dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$buildlog" 2>&1; then
  mkdir -p "$dist"
  cp "$buildlog" "$dist/package-build.log"
  tail -n 40 "$buildlog" >&2
  die "dpkg-buildpackage failed after $((SECONDS - start)) s; whole log: dist/package-build.log"
fi

# Replace what an earlier run left in dist/.
mkdir -p "$dist"
rm -f "$dist"/*.deb "$dist"/*.ddeb "$dist"/*.buildinfo "$dist"/*.changes "$stamp"
shopt -s nullglob
outputs=("$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes)
shopt -u nullglob
((${#outputs[@]})) || die "dpkg-buildpackage made no packages; see dist/package-build.log"
mv "${outputs[@]}" "$dist/"
cp "$buildlog" "$dist/package-build.log"
{
  echo "$hash"
  for f in "${outputs[@]}"; do
    echo "${f##*/}"
  done
} >"$stamp"

log "built in $((SECONDS - start)) s into dist/:"
list_debs
