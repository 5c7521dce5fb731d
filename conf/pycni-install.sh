#!/bin/sh
# Install pycni's plugins into a CNI plugin directory, with no moment at which a runtime could
# execute a half-written file.
#
#   ./pycni-install.sh [DEST]                 from an unpacked release: the bundle beside this script
#   pycni-install.sh --bundle DIR [DEST]      from a build (./build.sh install: --bundle dist/pycni)
#
# DEST defaults to /opt/cni/bin. The bundle is copied under a temporary name and renamed into
# DEST/.pycni-<hash of its files>; then each name the bundle serves (`pycni --plugins`, and
# `pycni` itself) is switched to it by renaming a new symlink over the old name. Files of other
# plugins are never touched. The bundle the names pointed to before stays, since a call may still
# be running from it; older bundles and leftovers of an interrupted install are removed.
# The bundle is run once first: on a node it cannot run on (a glibc older than the build
# machine's), nothing is switched. A running warm process (pycni-warm.service) is restarted
# afterwards, since it serves calls of its own bundle only; until it is up again calls run cold.
# Plain POSIX sh and coreutils: a node has no Python to rely on.
set -eu
export LC_ALL=C

die() { echo "pycni-install: $*" >&2; exit 1; }
usage() { echo "usage: $0 [--bundle DIR] [DEST]" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
bundle=""
if [ "${1:-}" = "--bundle" ]; then
  [ $# -ge 2 ] || usage
  bundle=$2
  shift 2
fi
[ $# -le 1 ] || usage
dest=${1:-/opt/cni/bin}

if [ -z "$bundle" ]; then
  target=$(readlink "$here/pycni") || die "no bundle beside $0 (expected the link pycni -> .pycni-<id>/pycni)"
  bundle=$here/${target%/pycni}
fi
bundle=$(cd "$bundle" && pwd) || die "no bundle directory $bundle"
[ -x "$bundle/pycni" ] || die "$bundle/pycni is not an executable bundle"
version=$("$bundle/pycni" --version 2>&1) || die "the bundle does not run on this machine: $version"
names="$("$bundle/pycni" --plugins) pycni"

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
id=$(cd "$bundle" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)

previous=""
for name in $names; do
  if [ -L "$dest/$name" ] && [ -z "$previous" ]; then
    previous=$(readlink "$dest/$name")
    previous=${previous%%/*}
  fi
done

if [ ! -d "$dest/.pycni-$id" ]; then
  tmp=$(mktemp -d "$dest/.pycni-tmp.XXXXXX")
  cp -a "$bundle/." "$tmp/"
  chmod 755 "$tmp"
  mv -T "$tmp" "$dest/.pycni-$id"
fi
for name in $names; do
  ln -sfn ".pycni-$id/pycni" "$dest/.$name.pycni-new"
  mv -Tf "$dest/.$name.pycni-new" "$dest/$name"
done
for old in "$dest"/.pycni-*; do
  [ -e "$old" ] || continue
  case "${old##*/}" in
    ".pycni-$id" | "$previous") ;;
    *) rm -rf "$old" ;;
  esac
done
echo "installed $(echo $names) into $dest: $version (bundle .pycni-$id)"
# Calls in flight finish in their children (the unit's KillMode=process); new ones run cold until
# the new bundle's warm process answers.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet pycni-warm.service 2>/dev/null; then
  if systemctl restart pycni-warm.service; then
    echo "restarted pycni-warm.service: the warm process now serves the new bundle"
  else
    echo "pycni-install: could not restart pycni-warm.service; calls run cold until it serves again" >&2
  fi
fi
