#!/usr/bin/env bash
# Install everything, then do richc's main job: create and start a rich container, and show
# that a real init runs as PID 1 inside it. The container stays up; remove it with
#   .venv/bin/richc rm --force demo && .venv/bin/richc network rm richc0
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
richc=.venv/bin/richc
name=${1:-demo}

if $richc inspect "$name" >/dev/null 2>&1; then
    $richc rm --force "$name"
fi
set -x
port=${DEMO_PORT:-8080}
# On the default managed network (richc0, made on first use), with a port published.
$richc create "$name" --from busybox --memory 256M --env GREETING=hello --publish "$port:80"
$richc start "$name"
$richc list
$richc exec "$name" -- ps
$richc exec "$name" -- sh -c '. /etc/profile; echo "$GREETING from $(hostname), PID 1 is $(cat /proc/1/comm)"'
$richc exec "$name" -- grep MemTotal /proc/meminfo
$richc exec "$name" -- ip -4 addr show eth0
$richc exec "$name" -- sh -c 'mkdir -p /www && echo "served by $(hostname)" > /www/index.html && httpd -p 80 -h /www'
$richc port "$name"
{ set +x; } 2>/dev/null
sleep 0.3
echo "+ curl http://127.0.0.1:$port/"
python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/', timeout=5).read().decode())"
echo
echo "The container $name is running. Try:  $richc exec $name -- sh"
echo "Stop and remove it with:              $richc rm --force $name && $richc network rm richc0"
