"""The escape probe: a static C program run inside a container that tries what a root
wanting out would try, and prints a JSON report (see probe/escape_probe.c for each move
and why none of them writes anything).

The host builds it once (:func:`build_probe`, ``gcc -static``: busybox containers have no
Python and no shared glibc), copies it into the container, runs it there, and reads the
output with :func:`parse_report`. :data:`MUST_BE_DENIED` lists the probes a secured
container must refuse; :meth:`ProbeReport.escapes` the ones that got through.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from isolation.errors import IsolationError, StrPath, ToolFailed

SOURCE = "escape_probe.c"
GLIBC_STATIC = Path("/usr/lib/x86_64-linux-gnu/libc.a")

RESULTS = ("denied", "allowed", "contained", "absent", "skipped")

# The probes whose "allowed" is a way out of (or into the secrets of) the host. Under a
# secured container each must say denied, absent or skipped.
MUST_BE_DENIED = frozenset(
    {
        "write_sysrq_trigger", "write_core_pattern", "write_modprobe", "write_proc_sys_kernel",
        "write_uevent_helper", "write_sys_kernel", "write_sys_kernel_mm_thp", "read_kcore",
        "read_host_disk", "cgroup_release_agent", "mount_cgroup_v1", "kexec_load",
        "init_module", "finit_module", "delete_module", "open_by_handle_at",
    }
)  # fmt: skip
# Undoing a read-only mount of /proc/sys or /sys, then opening a host knob below it:
# "allowed" in a privileged container without AppArmor (its root holds CAP_SYS_ADMIN over
# the mount), which is why --privileged is no security boundary; "contained" or "denied"
# in a user namespace, where the knobs stay the host root's.
PRIVILEGED_WEAK_SPOTS = frozenset({"remount_proc_sys_rw", "remount_sys_rw"})
# Hidden by the masked paths: readable without them, but no way out by themselves.
MUST_BE_HIDDEN = frozenset({"read_proc_keys", "read_timer_list", "read_sys_firmware"})
# Denied by richc's seccomp profile on top; "allowed" without a filter is no escape by
# itself (the kernel's own checks still apply further on), so they are checked only where
# a filter is expected.
DENIED_BY_SECCOMP = frozenset(
    {
        "kexec_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
        "bpf", "perf_event_open", "userfaultfd", "keyctl", "swapoff", "acct",
        "io_uring_setup", "umount2_force",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ProbeResult:
    name: str
    target: str
    result: str
    errno: str
    detail: str

    @property
    def allowed(self) -> bool:
        return self.result == "allowed"


@dataclass(frozen=True)
class ProbeReport:
    info: dict[str, Any]
    results: tuple[ProbeResult, ...]

    def __getitem__(self, name: str) -> ProbeResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def root_host_uid(self) -> int:
        """The host uid the probe's uid 0 is (0 without a user namespace)."""
        return int(self.info.get("root_host_uid", -1))

    @property
    def seccomp_mode(self) -> int:
        """0 none, 1 strict, 2 filter (the ``Seccomp:`` line of /proc/self/status)."""
        return int(self.info.get("seccomp") or 0)

    def escapes(self, names: frozenset[str] = MUST_BE_DENIED) -> list[ProbeResult]:
        """The probes among *names* that got through."""
        return [r for r in self.results if r.name in names and r.allowed]


def source_path() -> Path:
    """The C source, from the installed package."""
    return Path(str(resources.files("isolation") / "probe" / SOURCE))


def can_build(cc: str = "gcc") -> str | None:
    """None if :func:`build_probe` can work here, else why not."""
    if shutil.which(cc) is None:
        return f"{cc} is not installed (apt-get install gcc libc6-dev)"
    if not GLIBC_STATIC.exists() and not Path("/usr/lib/aarch64-linux-gnu/libc.a").exists():
        return "glibc's static library is missing (apt-get install libc6-dev)"
    return None


def build_probe(out_dir: StrPath, *, cc: str = "gcc") -> Path:
    """Compile the probe into *out_dir*/escape_probe, static; return its path."""
    why = can_build(cc)
    if why is not None:
        raise IsolationError(errno.ENOENT, f"cannot build the escape probe: {why}")
    out = Path(out_dir) / "escape_probe"
    argv = [cc, "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(source_path())]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolFailed(argv, result.returncode, result.stderr)
    return out


def parse_report(text: str) -> ProbeReport:
    """The probe's JSON output as a ProbeReport."""
    try:
        data = json.loads(text)
        results = tuple(
            ProbeResult(p["name"], p["target"], p["result"], p["errno"], p["detail"])
            for p in data["probes"]
        )
        info = dict(data["info"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an escape probe report ({exc}): {text[:200]!r}") from None
    for result in results:
        if result.result not in RESULTS:
            raise ValueError(f"probe {result.name}: unknown result {result.result!r}")
    return ProbeReport(info, results)


def format_table(report: ProbeReport) -> str:
    """A fixed-width table of the report, for test output and ``richc doctor``."""
    rows = [("probe", "result", "errno", "detail")]
    rows += [(r.name, r.result, r.errno, r.detail or r.target) for r in report.results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows
    ]
    info = report.info
    head = (
        f"uid_map: {info.get('uid_map', '').split()} seccomp: {info.get('seccomp')} "
        f"pids visible: {info.get('pids_visible')} pid 1: {info.get('pid1_comm')}"
    )
    return "\n".join([head, *lines])
