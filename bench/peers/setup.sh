#!/usr/bin/env bash
# Install the peers bench/bench_peers.py measures richc against, from Debian's own archive:
# LXD 5.0 (`lxd`, `lxd-client`) and Podman 4.3 (`podman`). Kept out of scripts/install.sh:
# the test suite never needs them. Safe to re-run.
#
# Nothing here starts a daemon: bench_peers.py starts lxd (and initialises it with
# `lxd init --auto` on a dir storage pool under its own temp directory) for the run, and
# stops it by pid at the end. Podman is daemonless.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! dpkg-query -W -f='${Status}' lxd podman 2>/dev/null | grep -c "install ok installed" | grep -q 2; then
    apt-get -o DPkg::Lock::Timeout=900 update
    # --no-install-recommends: lxd recommends qemu and the lxc templates, podman recommends
    # buildah and slirp; the benchmark needs neither (rootful, local images, no network).
    apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends \
        lxd lxd-client podman uidmap
fi
lxd --version
podman --version
