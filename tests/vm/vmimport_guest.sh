#!/bin/sh
# Runs as root inside the throwaway virtme-ng guest, whose Debian kernel has what this
# host's lacks: partition-table parsing, device-mapper and nbd. Usage: PYTHON REPO.
set -u
for module in loop ext4 dm_mod nbd; do
    modprobe "$module" 2>/dev/null || true
done
exec "$1" "$2/tests/vm/vmimport_check.py" "$2"
