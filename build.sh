#!/usr/bin/env bash
# pycni: build the plugin executables, install them, run the demo or the tests.
#
#   ./build.sh                 build dist/pycni (one PyInstaller onedir bundle) and dist/bin/<type> links
#   ./build.sh onefile [TYPE]  build dist/onefile/<type>, one self-contained file per plugin
#   ./build.sh install [DIR]   install into DIR (default /opt/cni/bin), atomically, keeping other plugins
#   ./build.sh deps            install what building and testing need (Debian packages, Python packages)
#   ./build.sh demo            build, then run the demo: pods on cbr0 from conf/examples (root)
#   ./build.sh test [ARGS]     deps + build + the whole test suite (root); ARGS go to pytest
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

TYPES=(bridge host-local bandwidth loopback)
PYTHON=${PYTHON:-python3}

# Modules kept out of the bundle. Each costs start-up on every plugin call: `inspect` brings a
# PyInstaller run-time hook that imports it at start (~25 ms), _hashlib loads libcrypto
# (hashlib falls back to the built-in sha512), bz2/lzma load their libraries through shutil,
# and ctypes is imported by PyInstaller's own start-up when bundled (setns has its C module).
# tests/test_startup.py keeps the plugins from importing any of them.
EXCLUDES=(tkinter unittest pydoc inspect dataclasses _hashlib _bz2 _lzma ctypes)
# Modules as loose .pyc files instead of a compressed archive (~3 ms less per call), compiled
# with -OO (no docstrings, no asserts: nothing relies on them).
FAST=(--debug noarchive --optimize 2)

apt_packages=(
  iproute2 iptables nftables kmod procps
  gcc libc6-dev python3-dev          # the bundle's small setns C module
  containernetworking-plugins        # the reference plugins, for side-by-side tests and benchmarks
  golang-go golang-github-appc-cni-dev  # our cnitool test driver over libcni
  containerd runc busybox-static     # the kind-node end-to-end tests
  time                               # GNU time: the bench reads each plugin's own peak RSS through it
  qemu-system-x86                    # tests/vm: the VLAN tests in a guest kernel (with busybox-static)
)

deps() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    local missing=()
    for p in "${apt_packages[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
  fi
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "pyinstaller>=6" "pytest>=7" "jsonschema>=4.18" "ruff>=0.5" "matplotlib>=3.6" "grpcio>=1.50" "grpcio-tools>=1.50"
}

# setns(2) as a C module: Python 3.11 has no os.setns, and ctypes costs ~2.5 ms per call.
build_setns() {
  local inc suffix
  inc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  suffix=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  if ! command -v "${CC:-cc}" >/dev/null || [ ! -f "$inc/Python.h" ]; then
    echo "build.sh: building needs a C compiler and $inc/Python.h (Debian: gcc libc6-dev python3-dev;" \
      "./build.sh deps installs them)" >&2
    exit 1
  fi
  ${CC:-cc} -O2 -Wall -Werror -shared -fPIC -I"$inc" cni/net/_setns.c -o "cni/net/_setns$suffix"
}

build() {
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  build_setns
  "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN --onedir --name pycni "${FAST[@]}" \
    --distpath dist --workpath "$work/build" --specpath "$work" \
    --paths "$PWD" --collect-submodules cni --collect-submodules ipam \
    --hidden-import json --add-data "$PWD/conf/schemas:conf/schemas" \
    "${EXCLUDES[@]/#/--exclude-module=}" \
    cni/__main__.py
  rm -rf dist/bin && mkdir -p dist/bin
  for t in "${TYPES[@]}"; do ln -s ../pycni/pycni "dist/bin/$t"; done
  echo "built dist/pycni; plugins in dist/bin: ${TYPES[*]}"
}

onefile() {
  local work t types=("$@")
  build_setns
  [ ${#types[@]} -gt 0 ] || types=("${TYPES[@]}")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  mkdir -p dist/onefile
  for t in "${types[@]}"; do
    printf 'import sys\nfrom cni.__main__ import entry\nsys.exit(entry(["%s"] + sys.argv[1:]))\n' "$t" \
      > "$work/$t.py"
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN --onefile --name "$t" \
      --distpath dist/onefile --workpath "$work/build" --specpath "$work" \
      --paths "$PWD" --collect-submodules cni --collect-submodules ipam --hidden-import json \
      --add-data "$PWD/conf/schemas:conf/schemas" "${EXCLUDES[@]/#/--exclude-module=}" "$work/$t.py"
  done
  echo "built dist/onefile: ${types[*]}"
}

# Install without a window in which a runtime could execute a half-written file: the bundle is
# copied under a temporary name and renamed into place, then each plugin name is switched to it
# by renaming a new symlink over the old name. Files of other plugins are never touched. The
# bundle the names pointed to before stays (a call may still be running from it); older ones and
# leftovers of interrupted installs go.
install_to() {
  local dest=${1:-/opt/cni/bin} id tmp t previous=""
  [ -x dist/pycni/pycni ] || build
  mkdir -p "$dest"
  id=$(cd dist/pycni && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
  for t in "${TYPES[@]}"; do
    if [ -L "$dest/$t" ] && [ -z "$previous" ]; then
      previous=$(readlink "$dest/$t"); previous=${previous%%/*}
    fi
  done
  if [ ! -d "$dest/.pycni-$id" ]; then
    tmp=$(mktemp -d "$dest/.pycni-tmp.XXXXXX")
    cp -a dist/pycni/. "$tmp/"
    chmod 755 "$tmp"
    mv -T "$tmp" "$dest/.pycni-$id"
  fi
  for t in "${TYPES[@]}"; do
    ln -sfn ".pycni-$id/pycni" "$dest/.$t.pycni-new"
    mv -Tf "$dest/.$t.pycni-new" "$dest/$t"
  done
  for d in "$dest"/.pycni-*; do
    [ -e "$d" ] || continue
    case "${d##*/}" in ".pycni-$id" | "$previous") ;; *) rm -rf "$d" ;; esac
  done
  echo "installed ${TYPES[*]} into $dest (bundle .pycni-$id)"
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
  build) build ;;
  onefile) onefile "$@" ;;
  install) install_to "$@" ;;
  deps) deps ;;
  demo) build && exec "$PYTHON" -m demo "$@" ;;
  test)
    deps
    build
    PYCNI_BIN="$PWD/dist/bin" exec "$PYTHON" -m pytest "$@"
    ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
