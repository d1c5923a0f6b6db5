#!/usr/bin/env bash
# Install everything, then do richc's main job: create and start a rich container, and show
# that a real init runs as PID 1 inside it. The container stays up; remove it with
#   .venv/bin/richc rm --force demo
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
richc=.venv/bin/richc
name=${1:-demo}

if $richc inspect "$name" >/dev/null 2>&1; then
    $richc rm --force "$name"
fi
set -x
$richc create "$name" --from busybox --memory 256M --env GREETING=hello
$richc start "$name"
$richc list
$richc exec "$name" -- ps
$richc exec "$name" -- sh -c '. /etc/profile; echo "$GREETING from $(hostname), PID 1 is $(cat /proc/1/comm)"'
$richc exec "$name" -- grep MemTotal /proc/meminfo
{ set +x; } 2>/dev/null
echo
echo "The container $name is running. Try:  $richc exec $name -- sh"
echo "Stop and remove it with:              $richc rm --force $name"
