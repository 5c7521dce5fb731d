#!/bin/sh
# The benchmark in one command: sudo ./bench/run.sh [--quick] [options of python3 -m bench]
set -eu
cd "$(dirname "$(readlink -f "$0")")/.."
[ -x .venv/bin/python ] && default=.venv/bin/python || default=python3  # the tools ./build.sh deps installs
exec "${PYTHON:-$default}" -m bench "$@"
