"""The host facts the spec needs, from the same probe `richc doctor` reports.

Importing and running the probe costs ~25 ms, paid on every start otherwise. The facts it
gives the spec (cgroup layout, namespaces, AppArmor) cannot change without a reboot, so
they are cached under the run directory keyed by the kernel's boot id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

from richc import __version__
from richc.spec import HostFacts


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def probe_facts(root: str = "/") -> HostFacts:
    from richc.limits import read_host
    from richc.probe import host_features

    features = host_features(root)
    version = features.cgroup_version or 1
    return HostFacts(
        cgroup_version=version,
        apparmor=features.apparmor,
        cgroup_namespace=features.use_cgroup_ns,
        cpu_count=features.cpu_count,
        cgroup_mount=features.lxc_cgroup_mount,
        # BFQ's weight file where BFQ is there, else CFQ's (v1) or iocost's (v2): a file
        # the kernel lacks makes LXC abort the start.
        io_weight_file=read_host(version, Path(root)).io_weight_file,
    )


def host_facts(run_dir: Path | None = None) -> HostFacts:
    """The host's facts, from the boot's cache in *run_dir* when there is one."""
    if run_dir is None:
        return probe_facts()
    cache = run_dir / "hostfacts.json"
    # An upgraded richc may decide differently: the probe's own files are part of the key.
    here = Path(__file__).parent
    sources = [*(here / "probe").glob("*.py"), here / "hostfacts.py", here / "limits.py"]
    stamp = max((f.stat().st_mtime_ns for f in sources), default=0)
    key = {"boot_id": _boot_id(), "richc": __version__, "probe": stamp}
    with contextlib.suppress(OSError, ValueError, TypeError):
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return HostFacts(**data["facts"])
    facts = probe_facts()
    if key["boot_id"]:
        from richc.store import write_atomic

        with contextlib.suppress(OSError):
            write_atomic(cache, json.dumps({"key": key, "facts": dataclasses.asdict(facts)}))
    return facts
