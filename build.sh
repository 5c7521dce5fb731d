#!/usr/bin/env bash
# pycni: build the plugin executables, install them, run the demo or the tests.
#
#   ./build.sh                 build dist/pycni (one PyInstaller onedir bundle) and dist/bin/<type> links
#   ./build.sh onefile [TYPE]  build dist/onefile/<type>, one self-contained file per plugin
#   ./build.sh install [DIR]   install into DIR (default /opt/cni/bin), atomically, keeping other plugins
#   ./build.sh release         dist/pycni-<version>-linux-<arch>.tgz and .sha256, for carrying to nodes
#   ./build.sh deps [LEVEL]    install what LEVEL needs: build, demo or test (the default)
#   ./build.sh launcher OUT MODULE [NAMES]  compile conf/launcher.c as OUT (no deps; bench/floor.py uses it)
#   ./build.sh options         print the onedir bundle's PyInstaller options, NUL-separated (bench/floor.py)
#   ./build.sh demo            build, then run the demo: pods on cbr0 from conf/examples (root)
#   ./build.sh typecheck       mypy over the sources, as configured in pyproject.toml ([tool.mypy])
#   ./build.sh test [ARGS]     deps + typecheck + build + the whole test suite (root); ARGS go to pytest
#
# Every command first installs what it needs and is missing, saying what and why: Debian
# packages with apt (as root), Python tools into the project's own .venv (made from $PYTHON,
# default python3), never into the system Python.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

PYTHON=${PYTHON:-python3}              # the interpreter the build environment is made from
VENV=${PYCNI_VENV:-$PWD/.venv}          # build and test tools live here, never in the system Python
PY=$VENV/bin/python

# Modules kept out of the bundle. Each costs start-up on every plugin call: _hashlib loads
# libcrypto (hashlib falls back to the built-in sha512), bz2/lzma load their libraries through
# shutil, and ctypes is imported by PyInstaller's own start-up when bundled (setns has its C module).
# `inspect` stays in (grpc, for the operator command, imports it through asyncio), but the
# PyInstaller run-time hooks that would import it (and pkgutil, multiprocessing) at every start are
# replaced by the no-op ones of conf/pyinstaller-hooks/. grpc_tools only generates the stubs at build time;
# numpy is an optional import of protobuf.
# tests/bundle/test_startup.py keeps the plugins from importing any of them, and grpc.
EXCLUDES=(tkinter unittest pydoc dataclasses _hashlib _bz2 _lzma ctypes grpc_tools setuptools pkg_resources numpy)
# Only the operator command (`pycni status`, `pycni gc`) speaks CRI; single-file plugins leave it out.
OPERATOR_ONLY=(grpc google.protobuf cni.cri cni.ops inspect asyncio)
HOOKS=(--additional-hooks-dir "$PWD/conf/pyinstaller-hooks")
# Modules as loose .pyc files instead of a compressed archive (no archive to open per call), compiled
# with -OO (no docstrings, no asserts: nothing relies on them).
FAST=(--debug noarchive --optimize 2)

# Debian packages by purpose, each "package:why". `build` is what making the bundle needs,
# `demo` what the demo runs, `test` the rest of what the suite runs.
APT_BUILD=(
  "gcc:C compiler for the bundle's launcher and its small setns module"
  "libc6-dev:C library headers for them"
)
APT_DEBIAN_PYTHON=(  # only when building with Debian's own python3
  "python3-venv:the build environment (.venv); Debian's python3 refuses pip installs"
  "python3-dev:Python.h for the launcher and the setns module, and the shared libpython the bundle carries"
)
APT_DEMO=(
  "iproute2:ip, bridge and tc, with which the demo shows what the plugins made"
)
APT_TEST=(
  "iptables:the ipMasq rules' iptables backend"
  "nftables:the nftables backend and the spoof check"
  "kmod:modprobe, for the guest kernel's modules"
  "procps:ps and sysctl in the end-to-end checks"
  "containernetworking-plugins:the reference Go plugins, run side by side with ours"
  "golang-go:Go 1.19, to build the cnitool test driver (offline, GOPATH mode)"
  "golang-github-appc-cni-dev:libcni's sources, which that driver is built on"
  "containerd:the runtime of the kind-node end-to-end tests"
  "runc:containerd's container runtime"
  "busybox-static:the test image's only binary, and the VLAN guest's init"
  "time:GNU time, through which the benchmark reads each plugin's peak memory"
  "strace:shows which files a plugin call of the bundle opens (the start-up test)"
  "qemu-system-x86:boots a Debian kernel for the VLAN tests when this kernel lacks VLAN filtering"
  "debootstrap:makes the fresh Debian 12 roots on which the demo and the release are tested"
)

# Debian packages the tests unpack but must not install, each "package:why". They are downloaded
# into DEB_CACHE (tests/e2e/ociimage.py looks there), so the tests run offline afterwards.
DEB_CACHE=/var/cache/pycni-debs
DEB_TEST=(
  "busybox:the dynamic busybox of critest's images (busybox-static fails critest's MaskedPaths spec); it conflicts with busybox-static, so it is only unpacked"
)

say() { echo "build.sh: $*" >&2; }

uses_debian_python() {
  [ "$("$PYTHON" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" = /usr ]
}

# Install the Debian packages of the given "package:why" lists that are missing, saying why first.
apt_need() {
  local entry pkg missing=()
  for entry in "$@"; do
    pkg=${entry%%:*}
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" && continue
    missing+=("$pkg")
    say "  $pkg: ${entry#*:}"
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Download the .deb of the given "package:why" lists into DEB_CACHE when it holds none of them.
deb_need() {
  local entry pkg
  for entry in "$@"; do
    pkg=${entry%%:*}
    compgen -G "$DEB_CACHE/${pkg}_*.deb" >/dev/null && continue
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      say "missing $DEB_CACHE/${pkg}_*.deb (${entry#*:}): run ./build.sh deps test as root"
      exit 1
    fi
    say "downloading the Debian package $pkg into $DEB_CACHE: ${entry#*:}"
    mkdir -p "$DEB_CACHE"
    (cd "$DEB_CACHE" && apt-get download -qq "$pkg" 2>/dev/null) || {
      apt-get update -qq
      (cd "$DEB_CACHE" && apt-get download -qq "$pkg")
    }
  done
}

# The requirements of pyproject.toml's optional-dependency groups that .venv does not satisfy.
pip_missing() {
  "$PY" - "$@" <<'PYEOF'
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version

from pip._vendor.packaging.requirements import Requirement

with open("pyproject.toml", "rb") as f:
    groups = tomllib.load(f)["project"]["optional-dependencies"]
for group in sys.argv[1:]:
    for spec in groups[group]:
        req = Requirement(spec)
        try:
            ok = req.specifier.contains(version(req.name), prereleases=True)
        except PackageNotFoundError:
            ok = False
        if not ok:
            print(spec)
PYEOF
}

# What building (and, with `test`, testing) needs: Debian packages, then .venv with the
# pyproject.toml groups. Each step says what it installs and why; what is present is left alone.
deps() {
  local level=${1:-test} lists=(build) entries=("${APT_BUILD[@]}") missing
  if uses_debian_python; then entries+=("${APT_DEBIAN_PYTHON[@]}"); fi
  [ "$level" = build ] || entries+=("${APT_DEMO[@]}")
  if [ "$level" = test ]; then
    entries+=("${APT_TEST[@]}")
    lists+=(test bench)
  fi
  apt_need "${entries[@]}"
  if [ "$level" = test ]; then deb_need "${DEB_TEST[@]}"; fi
  if [ ! -x "$PY" ]; then
    say "making the build environment $VENV from $PYTHON ($("$PYTHON" --version 2>&1))"
    "$PYTHON" -m venv "$VENV"
  fi
  mapfile -t missing < <(pip_missing "${lists[@]}")
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing into $VENV (${lists[*]} tools from pyproject.toml): ${missing[*]}"
    "$PY" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
  fi
}

# setns(2) as a C module: Python 3.11 has no os.setns, and importing ctypes would cost every call.
build_setns() {
  local inc suffix
  inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  suffix=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  ${CC:-cc} -O2 -Wall -Werror -shared -fPIC -I"$inc" cni/net/_setns.c -o "cni/net/_setns$suffix"
}

# The bundle's executable: conf/launcher.c embedding the interpreter PyInstaller collected, in
# place of PyInstaller's bootloader (no second exec, no bootstrap imports per call).
# OUT is the executable inside a onedir bundle (beside its _internal), MODULE the module whose
# entry(sys.argv) it runs, NAMES the names started through which it goes straight to Python,
# FREEZE what conf/freeze.py freezes into it with all they import (default: MODULE).
# The launcher is linked against libc alone: a warm call never maps libpython, and a cold one
# dlopen()s the bundle's (conf/pyapi.h; its soname, INSTSONAME, is passed here). The search path
# is an old-style DT_RPATH, which serves the libraries libpython and the extension modules need
# (Debian's libpython needs libexpat, absent from a minimal node): a DT_RUNPATH would not.
build_launcher() {
  local out=$1 module=$2 names=${3:-} inc soname frozen
  shift $(($# < 3 ? $# : 3))
  read -r inc soname < <("$PY" -c 'import sysconfig as s
print(s.get_paths()["include"], s.get_config_var("INSTSONAME"))')
  frozen=$(mktemp --suffix=.h)
  "$PY" conf/freeze.py "$(dirname "$out")/_internal" "$frozen" "${@:-$module}"
  ${CC:-cc} -O2 -Wall -Werror -I"$inc" -DPYCNI_MODULE="\"$module\"" -DPYCNI_FAST_NAMES="\"$names\"" \
    -DPYCNI_BUILD_ID="\"$(build_id "$(dirname "$out")/_internal" "$frozen")\"" \
    -DPYCNI_FROZEN="\"$frozen\"" -DPYCNI_LIBPYTHON="\"$soname\"" conf/launcher.c -o "$out.new" \
    -Wl,--disable-new-dtags,-rpath,'$ORIGIN/_internal'
  rm -f "$frozen"
  mv -f "$out.new" "$out"
}

# mypy with pyproject.toml's [tool.mypy] (which files, what has no types); any error fails the caller.
typecheck() {
  say "type check (mypy)"
  "$PY" -m mypy
}

# The bundle's build id, compiled into its launcher: a hash of the interpreter, the modules
# (frozen and loose) and the launcher's source. A warm process (cni/warm) serves only callers
# whose launcher carries its own id, so a call never runs on code of another build.
build_id() {
  local internal=$1 frozen=$2
  { (cd "$internal" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    sha256sum "$frozen" conf/launcher.c conf/warm.h conf/pyapi.h conf/prefault.h | cut -d' ' -f1; } | sha256sum | cut -c1-16
}

# The CRI stubs the operator command imports, generated from cni/cri/api.proto (git-ignored).
build_stubs() {
  "$PY" -m cni.cri.stubs >/dev/null
}

# The plugin types the registry serves (cni/plugins/__init__.py), and the names the bundle answers
# to: every plugin type, and `pycni` itself.
plugin_types() {
  "$PY" -c 'from cni.plugins import MODULES; print(*sorted(MODULES))'
}

bundle_names() {
  echo "$(plugin_types) pycni"
}

# What every PyInstaller run of ours passes (our hooks, both packages, json, the schemas), and the
# onedir bundle's own options on top. `./build.sh options` prints the latter NUL-separated, so the
# bench builds its empty bundle exactly as the plugins' is built (bench/floor.py).
common_options() {
  printf '%s\0' --noconfirm --log-level WARN "${HOOKS[@]}" --paths "$PWD" \
    --collect-submodules cni --collect-submodules ipam --hidden-import json \
    --add-data "$PWD/conf/schemas:conf/schemas"
}

onedir_options() {
  common_options
  printf '%s\0' --clean --onedir "${FAST[@]}" "${EXCLUDES[@]/#/--exclude-module=}"
}

# PyInstaller with the given options (NUL-separated, on stdin) and then the arguments.
pyinstaller() {
  local options
  mapfile -d '' options
  "$PY" -m PyInstaller "${options[@]}" "$@"
}

build() {
  local work t
  deps build
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  build_setns
  build_stubs
  onedir_options | pyinstaller --name pycni --distpath dist --workpath "$work/build" --specpath "$work" \
    cni/__main__.py
  build_launcher dist/pycni/pycni cni.__main__ "$(plugin_types)" \
    cni ipam ipaddress subprocess --skip cni.cri cni.ops cni.cli
  rm -rf dist/bin && mkdir -p dist/bin
  for t in $(bundle_names); do ln -s ../pycni/pycni "dist/bin/$t"; done
  echo "built dist/pycni ($(dist/pycni/pycni --version)); dist/bin: $(bundle_names)"
}

onefile() {
  local work t types=("$@")
  deps build
  build_setns
  [ ${#types[@]} -gt 0 ] || read -ra types <<<"$(bundle_names)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  mkdir -p dist/onefile
  build_stubs
  for t in "${types[@]}"; do
    local leave_out=("${EXCLUDES[@]}")
    [ "$t" = pycni ] || leave_out+=("${OPERATOR_ONLY[@]}")
    printf 'import sys\nfrom cni.__main__ import entry\nsys.exit(entry(["%s"] + sys.argv[1:]))\n' "$t" \
      > "$work/$t.py"
    common_options | pyinstaller --onefile --name "$t" --distpath dist/onefile --workpath "$work/build" \
      --specpath "$work" "${leave_out[@]/#/--exclude-module=}" "$work/$t.py"
  done
  echo "built dist/onefile: ${types[*]}"
}

install_to() {
  [ -x dist/pycni/pycni ] || build
  sh conf/pycni-install.sh --bundle dist/pycni "$@"
}

# dist/pycni-<version>-linux-<arch>.tgz and its .sha256: laid out like the reference plugins'
# release (`tar -C /opt/cni/bin -xzf` gives working plugins), made by installing into an empty
# directory, plus pycni-install.sh for the atomic install that keeps other plugins.
release() {
  local version arch name stage
  [ -x dist/pycni/pycni ] || build
  version=$("$PY" -c 'from cni.version import VERSION; print(VERSION)')
  case "$(uname -m)" in
    x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; armv7l) arch=arm ;; *) arch=$(uname -m) ;;
  esac
  name=pycni-$version-linux-$arch.tgz
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  sh conf/pycni-install.sh --bundle dist/pycni "$stage" >/dev/null
  install -m 755 conf/pycni-install.sh "$stage/pycni-install.sh"
  chmod 755 "$stage"
  tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$(git log -1 --format=%ct 2>/dev/null || date +%s)" -czf "dist/$name" .
  (cd dist && sha256sum "$name" > "$name.sha256")
  echo "dist/$name ($(du -h "dist/$name" | cut -f1)) and dist/$name.sha256"
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
  build) build ;;
  onefile) onefile "$@" ;;
  install) install_to "$@" ;;
  release) release ;;
  deps) deps "${1:-test}" ;;
  launcher) build_launcher "$@" ;;
  options) onedir_options ;;
  typecheck)
    deps test
    typecheck
    ;;
  demo)
    deps demo
    build
    exec "$PY" -m demo "$@"
    ;;
  test)
    deps test
    typecheck
    build
    PYCNI_BIN="$PWD/dist/bin" exec "$PY" -m pytest "$@"
    ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
