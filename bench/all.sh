#!/bin/sh
# Every benchmark, one after the other: `bench/all.sh` (as root, after scripts/install.sh).
# Each prints richc's medians next to the raw tool it wraps, measured in the same run.
# Arguments are passed to every script (e.g. `bench/all.sh --rounds 3`).
set -eu
cd "$(dirname "$0")/.."
python=.venv/bin/python
for bench in lifecycle security hooks stats runc lxcfs quota rootfs netctl vmimport net; do
    echo "### bench/bench_$bench.py"
    "$python" "bench/bench_$bench.py" "$@"
    echo
done
