#!/usr/bin/env bash
# Install everything richc and its tests need on a fresh Debian 12 machine, then richc itself
# into .venv (editable). Safe to re-run: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages. Core: LXC and its headers for the python bindings, lxcfs, runc/crun,
# busybox-static for the busybox source, debootstrap for debian:SUITE, tini (tini-static is
# --init dumb-init's reaper). Quota backends:
# btrfs-progs, xfsprogs, quota, e2fsprogs. systemd for `systemd-analyze verify`,
# libsystemd-dev + pkg-config to build systemd-python. qemu + a Debian kernel for the VM tests.
# python3-venv + python3-dev: Debian's interpreter for .venv, and its headers for the bindings.
# Networking (netctl): nftables for NAT and published ports (nft -j), dnsmasq-base for each
# managed network's DHCP and DNS, iperf3 for bench/bench_net.py's throughput runs.
# gcc + libc6-dev (glibc's static libc.a): the tests build isolation's escape probe static, so
# it runs inside busybox containers, which have no python and no shared glibc.
APT_PACKAGES=(
    python3-venv python3-dev
    lxc lxc-dev lxcfs runc crun busybox-static debootstrap tini
    btrfs-progs xfsprogs quota e2fsprogs
    systemd libsystemd-dev pkg-config
    qemu-system-x86 linux-image-amd64
    tar zstd xz-utils gzip rsync util-linux iproute2 procps
    # managed networks (issue 16): nftables for NAT and ports, dnsmasq for DHCP and DNS;
    # iperf3 for bench/bench_net.py
    nftables dnsmasq-base iperf3
    # isolation (issue 17): gcc and glibc's static library build the escape probe; uidmap
    # (shadow's setuid newuidmap), which the lxc package recommends and most hosts have:
    # with it LXC maps ids through newuidmap, and richc must grant root each range
    gcc libc6-dev uidmap
    # vmimport (issue 18): qemu-img/qemu-nbd read VM disk images; sfdisk/sgdisk/parted make
    # the test images; cryptsetup-bin makes the LUKS test image; lvm2 lists (and, with
    # device-mapper, activates) a guest's volume groups; sshd/ssh/rsync for the live-host
    # tests, which run sshd in a network namespace.
    qemu-utils fdisk gdisk parted cryptsetup-bin lvm2 openssh-server openssh-client
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo ">>> apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The python environment, on Debian's own interpreter unless PYTHON names another. Every richc
# command pays interpreter start-up and imports, and Debian builds CPython with PGO and LTO:
# a pyenv default build (shared, unoptimised) ran `richc exec` ~20% slower and created
# dataclasses at half the speed. Never a pyenv shim (150-300 ms per call).
PYTHON=${PYTHON:-/usr/bin/python3}
# A .venv made from another interpreter (an older install.sh) is made again.
want_home=$("$PYTHON" -c 'import os, sys; print(os.path.dirname(os.path.realpath(sys.executable)))')
have_home=$(sed -n 's/^home = //p' .venv/pyvenv.cfg 2>/dev/null || true)
if [ -x .venv/bin/python ] && [ "$(realpath -m "${have_home:-/nonexistent}")" != "$want_home" ]; then
    echo ">>> .venv was made from ${have_home:-an unknown python}; making it again from $PYTHON" >&2
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    echo ">>> creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import richc, lxc, systemd.journal, pytest, mypy, virtme_ng" 2>/dev/null \
    || [ pyproject.toml -nt .venv/.richc-installed ]; then
    echo ">>> pip install -e .[lxc,journal,dev] virtme-ng" >&2
    .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/pip install -q --disable-pip-version-check -e ".[lxc,journal,dev]" virtme-ng
    touch .venv/.richc-installed
fi
echo ">>> richc installed: $(readlink -f .venv/bin/richc)" >&2
