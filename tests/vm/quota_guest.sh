#!/bin/sh
# Runs as root inside the throwaway virtme-ng guest (Debian's kernel, which has the ext4
# and xfs quota formats this host's kernel lacks). vng passes no environment and runs
# this under the guest's default PATH, so everything is addressed by full path.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
for module in loop ext4 quota_v2 xfs; do
    modprobe "$module" 2>/dev/null || true
done
exec "$repo/.venv/bin/python" "$here/quota_check.py" "$repo"
