#!/bin/sh
# The benchmark in one command: sudo ./bench/run.sh [--quick] [options of python3 -m bench]
set -eu
cd "$(dirname "$(readlink -f "$0")")/.."
exec "${PYTHON:-python3}" -m bench "$@"
