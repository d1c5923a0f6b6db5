"""richc's default seccomp filter, its renderings for LXC and runc, and custom profiles.

The default is a deny list (everything else allowed): a system container runs a real init,
mounts filesystems in its own namespace, traces processes and reboots itself, so an allow
list in the style of Docker's would break systemd units one by one. The list holds what
LXC's common.seccomp and Docker's default profile refuse that such a container has no use
for; each entry says why (:data:`DEFAULT_DENY`), and :data:`NOT_DENIED` says why a few
candidates are left allowed.

In an unprivileged container (a user namespace) the kernel already refuses most of these
calls, because they need a capability in the initial namespace; the filter is the second
wall there, and the main one for a ``--privileged`` container. Denied calls fail with
EPERM (what an unprivileged caller would get from the kernel) except where noted.

Renderings: :func:`render_lxc` gives LXC's seccomp text, version 2 (``lxc.seccomp.profile``
names a file holding it; the grammar is LXC 5.0's, see ``man lxc.container.conf`` and
``/usr/share/lxc/config/common.seccomp``); :func:`render_oci` gives the ``linux.seccomp``
object of a config.json for runc. A custom profile (:func:`load_profile`) may be either
format; it is validated with line-exact errors and can be rendered for the other runtime
when it uses nothing that runtime lacks. ``unconfined`` means no filter.
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from isolation._libc import machine
from isolation.errors import InvalidProfile, StrPath

UNCONFINED = "unconfined"
DEFAULT = "default"


class Action(StrEnum):
    """What a rule does; the value is LXC's word for it."""

    ALLOW = "allow"
    ERRNO = "errno"
    KILL = "kill"
    TRAP = "trap"
    NOTIFY = "notify"
    LOG = "log"  # OCI only: LXC 5.0 has no log action

    def oci(self) -> str:
        return _OCI_ACTIONS[self]


_OCI_ACTIONS = {
    Action.ALLOW: "SCMP_ACT_ALLOW",
    Action.ERRNO: "SCMP_ACT_ERRNO",
    Action.KILL: "SCMP_ACT_KILL",
    Action.TRAP: "SCMP_ACT_TRAP",
    Action.NOTIFY: "SCMP_ACT_NOTIFY",
    Action.LOG: "SCMP_ACT_LOG",
}
_FROM_OCI = {v: k for k, v in _OCI_ACTIONS.items()} | {
    "SCMP_ACT_KILL_THREAD": Action.KILL,
    "SCMP_ACT_KILL_PROCESS": Action.KILL,
}

# libseccomp's comparison operators; LXC also accepts the symbols.
OPERATORS = {
    "SCMP_CMP_NE": "!=",
    "SCMP_CMP_LT": "<",
    "SCMP_CMP_LE": "<=",
    "SCMP_CMP_EQ": "==",
    "SCMP_CMP_GE": ">=",
    "SCMP_CMP_GT": ">",
    "SCMP_CMP_MASKED_EQ": "&=",
}
_OPERATOR_NAMES = {v: k for k, v in OPERATORS.items()}

# LXC 5.0's section names (seccomp.c); "all" covers the native and compat architectures.
LXC_ARCHES = frozenset(
    {
        "all", "x86", "i386", "x32", "x86_64", "amd64", "arm", "armel", "armhf", "arm64",
        "ppc64", "ppc64le", "ppc", "mips", "mips64", "mips64n32", "mipsel", "mipsel64",
        "mipsel64n32", "s390x", "s390",
    }
)  # fmt: skip

# The architectures a filter must cover on each machine: a 64-bit host also runs 32-bit
# (and on x86, x32) binaries, whose system call numbers differ; a filter for the native
# numbers only would let `int 0x80` past it.
OCI_ARCHES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
}
KNOWN_OCI_ARCHES = frozenset(
    {
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
    }
)  # fmt: skip

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# <sys/mount.h>
MNT_FORCE = 1


@dataclass(frozen=True)
class ArgCondition:
    """A condition on argument *index*: ``arg OP value``, or for SCMP_CMP_MASKED_EQ
    ``(arg & mask) == value`` (libseccomp's datum and mask)."""

    index: int
    op: str
    value: int
    mask: int = 0


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: Action
    errno: int | None = None
    args: tuple[ArgCondition, ...] = ()
    arch: str = "all"
    reason: str = ""


@dataclass(frozen=True)
class Profile:
    """A filter: ``default`` for calls no rule matches, then the rules."""

    default: Action = Action.ALLOW
    default_errno: int | None = None
    rules: tuple[Rule, ...] = ()
    source: str = "richc default"

    @property
    def denylist(self) -> bool:
        return self.default is Action.ALLOW

    def denied(self) -> set[str]:
        """Names of the calls an unconditional non-allow rule refuses."""
        return {
            n for r in self.rules if r.action is not Action.ALLOW and not r.args for n in r.names
        }


@dataclass(frozen=True)
class Denied:
    names: tuple[str, ...]
    reason: str
    errno: int = errno.EPERM


DEFAULT_DENY: tuple[Denied, ...] = (
    Denied(("kexec_load", "kexec_file_load"), "replaces the running host kernel"),
    Denied(
        ("open_by_handle_at",),
        "opens any file of a host filesystem by its handle, past the container's root "
        "(the 'shocker' escape)",
    ),
    Denied(
        ("init_module", "finit_module", "delete_module"), "loads or unloads host kernel modules"
    ),
    Denied(
        ("add_key", "keyctl", "request_key"),
        "the kernel keyring is not isolated per container; systemd and pam_keyinit treat "
        "EPERM as 'no keyring' and go on",
    ),
    Denied(
        ("bpf",),
        "the BPF verifier and JIT are a recurring source of kernel exploits, reachable "
        "without privilege where kernel.unprivileged_bpf_disabled is 0; systemd inside "
        "treats EPERM as 'no BPF' (its device and IP policies then rely on the host's cgroup)",
    ),
    Denied(
        ("perf_event_open",),
        "host-wide counters reveal other tenants' activity and the perf core is a frequent "
        "kernel CVE source; nothing a system container boots needs it (allow it with a "
        "custom profile for profiling)",
    ),
    Denied(
        ("userfaultfd",),
        "lets a process stall the kernel in the middle of a copy from user memory, the "
        "standard way to win races in kernel bugs; only CRIU lazy pages and QEMU postcopy "
        "migration use it",
    ),
    Denied(("lookup_dcookie",), "an oprofile leftover that hands out kernel addresses"),
    Denied(("swapon", "swapoff"), "turns host-wide swap on or off"),
    Denied(("acct",), "switches host-wide process accounting"),
    Denied(("iopl", "ioperm"), "raw I/O port access to host hardware"),
    Denied(("nfsservctl",), "the old kernel NFS server control call (gone since Linux 3.1)"),
    Denied(
        ("_sysctl",),
        "the binary sysctl interface (gone since Linux 5.5) that bypassed /proc/sys's "
        "read-only mount",
    ),
    Denied(("uselib",), "a.out shared-library loading: obsolete, and a historic exploit vector"),
    Denied(
        ("vm86", "vm86old"),
        "virtual-8086 mode of 32-bit x86: a historic source of kernel bugs, no init needs it",
    ),
    Denied(
        ("io_uring_setup", "io_uring_enter", "io_uring_register"),
        "io_uring is a large kernel attack surface (Docker and ChromeOS refuse it too); ENOSYS "
        "makes programs take their 'kernel without io_uring' path instead of failing",
        errno.ENOSYS,
    ),
)

# The force-unmount rule of LXC's common.seccomp: umount2(path, MNT_FORCE) fails with
# EACCES, so a container cannot force off a mount it shares with the host (NFS).
FORCE_UMOUNT = Rule(
    ("umount2",),
    Action.ERRNO,
    errno.EACCES,
    (ArgCondition(1, "SCMP_CMP_MASKED_EQ", MNT_FORCE, MNT_FORCE),),
    reason="forcing off a mount shared with the host (LXC's reject_force_umount)",
)

NOT_DENIED: Mapping[str, str] = {
    "ptrace": "systemd, strace and gdb need it; seccomp bypasses through ptrace are closed "
    "since Linux 4.8",
    "mount": "systemd mounts /run, /tmp and the like, and sets up PrivateTmp= and "
    "ProtectSystem= with mount, umount2, pivot_root, unshare and setns; in a user namespace "
    "the kernel keeps it to the container's own mounts. In a --privileged container it also "
    "lets root remount /proc/sys read-write (measured): only AppArmor or a user namespace "
    "stops that, no syscall filter can without breaking systemd (mount_setattr and "
    "fsconfig reach the same flags)",
    "reboot": "in a PID namespace reboot() only ends the container's init, which is how its "
    "`reboot` and `poweroff` reach the runtime",
    "quotactl": "richc's quota backends may be queried from inside",
    "personality": "setarch/linux32 and gdb's ASLR switch only affect the caller (Docker's "
    "restriction breaks them)",
    "sysfs": "the obsolete sysfs(2) call only lists filesystem types, as /proc/filesystems does",
    "syslog": "left to the capability: richc drops CAP_SYSLOG where the kernel log must stay "
    "private (dmesg_restrict)",
    "clock_settime": "left to the capability: richc drops CAP_SYS_TIME",
}


def default_profile() -> Profile:
    rules = [Rule(d.names, Action.ERRNO, d.errno, reason=d.reason) for d in DEFAULT_DENY]
    rules.append(FORCE_UMOUNT)
    return Profile(Action.ALLOW, None, tuple(rules))


# --- LXC text ------------------------------------------------------------------------------


def _lxc_action(action: Action, err: int | None) -> str:
    if action is Action.LOG:
        raise InvalidProfile(
            "LXC 5.0 has no 'log' action", hint="use errno, kill, trap, notify or allow"
        )
    return f"errno {err}" if action is Action.ERRNO else action.value


def _lxc_arg(cond: ArgCondition) -> str:
    if cond.op == "SCMP_CMP_MASKED_EQ":
        return f"[{cond.index},{cond.value},{cond.op},{cond.mask}]"
    return f"[{cond.index},{cond.value},{cond.op}]"


def render_lxc(profile: Profile) -> str:
    """The profile as LXC seccomp text version 2, the file ``lxc.seccomp.profile`` names."""
    policy = "denylist" if profile.denylist else "allowlist"
    implied = Action.ALLOW if profile.denylist else Action.KILL
    if profile.default is not implied:
        policy += " " + _lxc_action(profile.default, profile.default_errno)
    head = ["2", policy]
    lines: list[str] = []
    by_arch: dict[str, list[Rule]] = {}
    for rule in profile.rules:
        by_arch.setdefault(rule.arch, []).append(rule)
    for arch, rules in by_arch.items():
        lines.append(f"[{arch}]")
        for rule in rules:
            if rule.reason:
                lines.append(f"# {rule.reason}")
            action = _lxc_action(rule.action, rule.errno)
            args = "".join(_lxc_arg(c) for c in rule.args)
            lines += [f"{name} {action}{' ' + args if args else ''}" for name in rule.names]
    return "\n".join(head + lines) + "\n"


def parse_lxc(text: str, path: StrPath | None = None) -> Profile:
    """Check LXC seccomp text as LXC 5.0 reads it, and return it as a Profile."""
    lines = text.splitlines()
    if not lines or lines[0].strip() not in ("1", "2"):
        raise InvalidProfile(
            "the first line must be the version, 1 or 2", path, line=1,
            hint="see `man lxc.container.conf`, section SECCOMP CONFIGURATION",
        )  # fmt: skip
    version = int(lines[0])
    if len(lines) < 2:
        raise InvalidProfile("the second line must say denylist or allowlist", path, line=2)
    words = lines[1].split("#")[0].split()
    kinds = {"denylist": True, "blacklist": True, "allowlist": False, "whitelist": False}
    if not words or words[0] not in kinds:
        raise InvalidProfile(
            f"the policy must be denylist or allowlist, not {lines[1].strip()!r}", path, line=2
        )
    denylist = kinds[words[0]]
    if version == 1:
        if denylist:
            raise InvalidProfile("version 1 profiles can only be allowlists", path, line=2)
        for number, raw in enumerate(lines[2:], 3):
            if raw.strip() and not raw.strip().isdigit():
                raise InvalidProfile(
                    f"version 1 takes one syscall number per line, not {raw.strip()!r}",
                    path, line=number,
                )  # fmt: skip
        raise InvalidProfile(
            "version 1 (numeric allowlist) profiles are valid for LXC but cannot be read by "
            "richc: numbers differ per architecture",
            path, hint="write a version 2 profile with syscall names",
        )  # fmt: skip
    default, default_errno = (Action.ALLOW, None) if denylist else (Action.KILL, None)
    if len(words) > 1:
        default, default_errno = _parse_lxc_action(words[1:], path, 2)
    rule_default = (Action.KILL, None) if denylist else (Action.ALLOW, None)
    rules: list[Rule] = []
    arch = "all"
    for number, raw in enumerate(lines[2:], 3):
        line = raw.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]").strip().lower()
            if not line.endswith("]") or section not in LXC_ARCHES:
                raise InvalidProfile(
                    f"unknown architecture section {line}", path, line=number,
                    hint=f"one of {', '.join(sorted(LXC_ARCHES))}",
                )  # fmt: skip
            arch = section
            continue
        if line.split()[0] == "reject_force_umount":
            rules.append(FORCE_UMOUNT)
            continue
        head, _, argtext = line.partition("[")
        parts = head.split()
        name = parts[0]
        if not _NAME.match(name):
            raise InvalidProfile(f"{name!r} is not a syscall name", path, line=number)
        action, err = _parse_lxc_action(parts[1:], path, number) if len(parts) > 1 else rule_default
        args = _parse_lxc_args("[" + argtext, path, number) if argtext else ()
        rules.append(Rule((name,), action, err, args, arch))
    return Profile(default, default_errno, tuple(rules), source=str(path or "LXC text"))


def _parse_lxc_action(
    words: list[str], path: StrPath | None, number: int
) -> tuple[Action, int | None]:
    word = words[0]
    if word == "errno":
        if len(words) < 2 or not re.fullmatch(r"-?\d+", words[1]):
            raise InvalidProfile("errno needs a number: 'errno 1'", path, line=number)
        return Action.ERRNO, int(words[1])
    if word in ("kill", "allow", "trap", "notify"):
        return Action(word), None
    raise InvalidProfile(
        f"unknown action {word!r}", path, line=number,
        hint="LXC 5.0 knows kill, errno N, allow, trap and notify",
    )  # fmt: skip


def _parse_lxc_args(text: str, path: StrPath | None, number: int) -> tuple[ArgCondition, ...]:
    conds = []
    for chunk in re.findall(r"\[([^\]]*)\]", text):
        fields = [f.strip() for f in chunk.split(",")]
        if len(fields) not in (3, 4) or not fields[0].isdigit() or int(fields[0]) >= 6:
            raise InvalidProfile(
                f"argument condition [{chunk}] is not [index,value,op] or [index,value,op,mask]"
                " with index 0-5", path, line=number,
            )  # fmt: skip
        op = _OPERATOR_NAMES.get(fields[2], fields[2])
        if op not in OPERATORS:
            raise InvalidProfile(f"unknown comparison {fields[2]!r}", path, line=number)
        try:
            value = int(fields[1], 0)
            mask = int(fields[3], 0) if len(fields) == 4 else 0
        except ValueError:
            raise InvalidProfile(
                f"[{chunk}]: value and mask must be numbers", path, line=number
            ) from None
        conds.append(ArgCondition(int(fields[0]), op, value, mask))
    if len(conds) > 6:
        raise InvalidProfile("at most 6 argument conditions", path, line=number)
    return tuple(conds)


# --- OCI JSON ------------------------------------------------------------------------------


def render_oci(profile: Profile, arch: str | None = None) -> dict[str, Any]:
    """The profile as the ``linux.seccomp`` object of an OCI config.json, for the
    architectures of *arch* (default: this machine)."""
    arch = arch or machine()
    out: dict[str, Any] = {"defaultAction": profile.default.oci()}
    if profile.default is Action.ERRNO and profile.default_errno is not None:
        out["defaultErrnoRet"] = profile.default_errno
    if arch not in OCI_ARCHES:
        raise InvalidProfile(f"no seccomp architectures known for machine {arch!r}")
    out["architectures"] = list(OCI_ARCHES[arch])
    syscalls = []
    for rule in profile.rules:
        if rule.arch != "all":
            raise InvalidProfile(
                f"the rule for {', '.join(rule.names)} is for [{rule.arch}] only; OCI "
                "profiles have no per-architecture rules",
                hint="give runc an OCI JSON profile of its own",
            )
        entry: dict[str, Any] = {"names": list(rule.names), "action": rule.action.oci()}
        if rule.action is Action.ERRNO and rule.errno is not None:
            entry["errnoRet"] = rule.errno
        if rule.args:
            entry["args"] = [_oci_arg(c) for c in rule.args]
        # No "comment": it is not in the runtime spec, and a strict parser may refuse it.
        syscalls.append(entry)
    out["syscalls"] = syscalls
    return out


def _oci_arg(cond: ArgCondition) -> dict[str, Any]:
    # libseccomp (and runc after it) take the mask as "value" and the datum as "valueTwo"
    # for SCMP_CMP_MASKED_EQ.
    if cond.op == "SCMP_CMP_MASKED_EQ":
        return {"index": cond.index, "value": cond.mask, "valueTwo": cond.value, "op": cond.op}
    return {"index": cond.index, "value": cond.value, "op": cond.op}


_OCI_KEYS = {"defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
             "listenerMetadata", "syscalls"}  # fmt: skip
_OCI_SYSCALL_KEYS = {"names", "action", "errnoRet", "args", "comment"}


def parse_oci(data: object, path: StrPath | None = None) -> Profile:
    """Check an OCI ``linux.seccomp`` object (as runc 1.1 reads it) and return it."""
    if not isinstance(data, dict):
        raise InvalidProfile("an OCI seccomp profile is a JSON object", path)
    unknown = set(data) - _OCI_KEYS
    if unknown:
        raise InvalidProfile(
            f"unknown key(s) {', '.join(sorted(unknown))}", path,
            hint="Docker's archMap/includes/excludes format is not OCI; runc ignores them",
        )  # fmt: skip
    default = _oci_action(data.get("defaultAction"), path, "defaultAction")
    default_errno = _oci_int(data.get("defaultErrnoRet"), path, "defaultErrnoRet")
    arches = data.get("architectures", [])
    if not isinstance(arches, list) or any(a not in KNOWN_OCI_ARCHES for a in arches):
        raise InvalidProfile(f"architectures must be a list of SCMP_ARCH_* names: {arches!r}", path)
    rules = []
    syscalls = data.get("syscalls", [])
    if not isinstance(syscalls, list):
        raise InvalidProfile("syscalls must be a list", path)
    for i, entry in enumerate(syscalls):
        where = f"syscalls[{i}]"
        if not isinstance(entry, dict):
            raise InvalidProfile(f"{where} must be an object", path)
        unknown = set(entry) - _OCI_SYSCALL_KEYS
        if unknown:
            raise InvalidProfile(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}", path,
                hint="Docker's includes/excludes are not OCI; runc ignores them",
            )  # fmt: skip
        names = entry.get("names")
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and _NAME.match(n) for n in names)
        ):
            raise InvalidProfile(f"{where}.names must be a non-empty list of syscall names", path)
        action = _oci_action(entry.get("action"), path, f"{where}.action")
        err = _oci_int(entry.get("errnoRet"), path, f"{where}.errnoRet")
        args = tuple(
            _parse_oci_arg(a, path, f"{where}.args[{j}]")
            for j, a in enumerate(entry.get("args") or [])
        )
        rules.append(Rule(tuple(names), action, err, args, reason=str(entry.get("comment", ""))))
    return Profile(default, default_errno, tuple(rules), source=str(path or "OCI JSON"))


def _oci_action(value: object, path: StrPath | None, where: str) -> Action:
    if value == "SCMP_ACT_TRACE":
        raise InvalidProfile(f"{where}: SCMP_ACT_TRACE needs a tracer richc does not run", path)
    if not isinstance(value, str) or value not in _FROM_OCI:
        raise InvalidProfile(
            f"{where}: {value!r} is not a seccomp action", path,
            hint=f"one of {', '.join(sorted(_FROM_OCI))}",
        )  # fmt: skip
    return _FROM_OCI[value]


def _oci_int(value: object, path: StrPath | None, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidProfile(f"{where} must be a non-negative integer", path)
    return value


def _parse_oci_arg(arg: object, path: StrPath | None, where: str) -> ArgCondition:
    if not isinstance(arg, dict):
        raise InvalidProfile(f"{where} must be an object", path)
    index, op = arg.get("index"), arg.get("op")
    value, two = arg.get("value", 0), arg.get("valueTwo", 0)
    if not isinstance(index, int) or not 0 <= index < 6:
        raise InvalidProfile(f"{where}.index must be 0-5", path)
    if op not in OPERATORS:
        raise InvalidProfile(f"{where}.op {op!r} is not one of {', '.join(OPERATORS)}", path)
    if not isinstance(value, int) or not isinstance(two, int):
        raise InvalidProfile(f"{where}.value and valueTwo must be integers", path)
    if op == "SCMP_CMP_MASKED_EQ":
        return ArgCondition(index, op, two, value)
    return ArgCondition(index, op, value)


# --- choosing ------------------------------------------------------------------------------


def load_profile(path: StrPath) -> Profile:
    """A custom profile file, OCI JSON (it starts with ``{``) or LXC text (a version
    number), validated."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidProfile(f"cannot read the profile: {exc.strerror}", path) from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidProfile(f"not valid JSON: {exc.msg}", path, line=exc.lineno) from None
        return parse_oci(data, path)
    return parse_lxc(text, path)


def resolve(setting: str | None) -> Profile | None:
    """The profile a ``--seccomp`` setting asks for: None or ``default`` for richc's
    default, ``unconfined`` for no filter (None), anything else a profile path."""
    if setting is None or setting == DEFAULT:
        return default_profile()
    if setting == UNCONFINED:
        return None
    return load_profile(setting)


def lxc_seccomp_keys(profile_file: StrPath | None) -> list[tuple[str, str]]:
    """The config keys for a rendered profile file; None (unconfined) sets an empty
    profile, which turns LXC's filter off even where an included config set one."""
    return [("lxc.seccomp.profile", "" if profile_file is None else str(profile_file))]
