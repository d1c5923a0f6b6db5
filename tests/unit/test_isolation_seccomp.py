"""richc's seccomp profile: what it denies and why, its LXC and OCI renderings (golden
files), and validation of custom profiles.

Regenerate the golden files after an intended change with
``RICHC_UPDATE_GOLDEN=1 pytest tests/unit/test_isolation_seccomp.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from isolation.errors import InvalidProfile
from isolation.seccomp import (
    NOT_DENIED,
    Action,
    default_profile,
    load_profile,
    lxc_seccomp_keys,
    parse_lxc,
    parse_oci,
    render_lxc,
    render_oci,
    resolve,
)

GOLDEN = Path(__file__).parent / "golden" / "isolation"
UPDATE = os.environ.get("RICHC_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, text: str) -> None:
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} is missing; run with RICHC_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{path} differs; RICHC_UPDATE_GOLDEN=1 regenerates it"


def test_lxc_rendering_golden() -> None:
    check_golden(GOLDEN / "default.seccomp", render_lxc(default_profile()))


def test_oci_rendering_golden() -> None:
    text = json.dumps(render_oci(default_profile(), "x86_64"), indent=2) + "\n"
    check_golden(GOLDEN / "default-seccomp.json", text)


def test_default_denies_the_escape_calls_and_none_a_system_container_needs() -> None:
    denied = default_profile().denied()
    must = {
        "kexec_load", "kexec_file_load", "open_by_handle_at", "init_module", "finit_module",
        "delete_module", "add_key", "keyctl", "request_key", "bpf", "userfaultfd",
        "swapon", "swapoff", "acct", "iopl", "ioperm", "perf_event_open",
    }  # fmt: skip
    assert must <= denied
    needed = {"ptrace", "mount", "umount2", "reboot", "quotactl", "personality", "unshare",
              "setns", "pivot_root", "name_to_handle_at", "clone", "clone3"}  # fmt: skip
    assert not needed & denied
    # Each allowed candidate has its reason written down, and none is denied after all.
    assert not set(NOT_DENIED) & denied


def test_every_default_rule_says_why() -> None:
    assert all(rule.reason for rule in default_profile().rules)


def test_lxc_text_follows_lxc_5_grammar() -> None:
    text = render_lxc(default_profile())
    lines = text.splitlines()
    assert lines[:3] == ["2", "denylist", "[all]"]
    assert "kexec_load errno 1" in lines
    assert "io_uring_setup errno 38" in lines
    # LXC's reject_force_umount, spelled as a rule: [index,value,op,mask]
    assert "umount2 errno 13 [1,1,SCMP_CMP_MASKED_EQ,1]" in lines


def test_lxc_text_round_trips() -> None:
    profile = default_profile()
    again = parse_lxc(render_lxc(profile))
    assert [(r.names, r.action, r.errno, r.args) for r in again.rules] == [
        ((n,), r.action, r.errno, r.args) for r in profile.rules for n in r.names
    ]


def test_oci_rendering_covers_the_compat_architectures_and_round_trips() -> None:
    oci = render_oci(default_profile(), "x86_64")
    assert oci["defaultAction"] == "SCMP_ACT_ALLOW"
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    kexec = next(s for s in oci["syscalls"] if "kexec_load" in s["names"])
    assert kexec["action"] == "SCMP_ACT_ERRNO" and kexec["errnoRet"] == 1
    force = next(s for s in oci["syscalls"] if s["names"] == ["umount2"])
    assert force["args"] == [{"index": 1, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]
    assert render_oci(default_profile(), "aarch64")["architectures"] == [
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
    ]
    again = parse_oci(oci)
    assert again.denied() == default_profile().denied()
    assert again.rules[-1].args == default_profile().rules[-1].args


def test_the_hosts_lxc_common_seccomp_parses() -> None:
    path = Path("/usr/share/lxc/config/common.seccomp")
    if not path.exists():
        pytest.skip("LXC is not installed")
    profile = parse_lxc(path.read_text(), path)
    assert {"kexec_load", "open_by_handle_at"} <= profile.denied()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("3\ndenylist\n", 1, "version"),
        ("2\ngreylist\n", 2, "denylist or allowlist"),
        ("2\ndenylist\n[vax]\nkexec_load errno 1\n", 3, "architecture"),
        ("2\ndenylist\nkexec_load errno\n", 3, "errno needs a number"),
        ("2\ndenylist\nkexec_load explode\n", 3, "unknown action"),
        ("2\ndenylist\nKexec-Load errno 1\n", 3, "not a syscall name"),
        ("2\ndenylist\numount2 errno 13 [7,1,SCMP_CMP_EQ]\n", 3, "index 0-5"),
        ("2\ndenylist\numount2 errno 13 [1,1,SCMP_CMP_ABOUT]\n", 3, "unknown comparison"),
        ("1\nallowlist\nread\n", 3, "one syscall number"),
    ],
)
def test_lxc_validation_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(InvalidProfile) as exc:
        parse_lxc(text, "custom.seccomp")
    assert exc.value.line == line
    assert words in str(exc.value)
    assert "custom.seccomp" in str(exc.value)


def test_lxc_allowlist_with_default_errno() -> None:
    profile = parse_lxc("2\nallowlist errno 1\n# comment\nread\nwrite allow\n")
    assert profile.default is Action.ERRNO and profile.default_errno == 1
    assert [r.action for r in profile.rules] == [Action.ALLOW, Action.ALLOW]
    assert render_lxc(profile).splitlines()[1] == "allowlist errno 1"


def test_arch_specific_rules_cannot_go_to_oci() -> None:
    profile = parse_lxc("2\ndenylist\n[x86_64]\nkexec_load errno 1\n")
    assert profile.rules[0].arch == "x86_64"
    with pytest.raises(InvalidProfile, match="per-architecture"):
        render_oci(profile, "x86_64")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], "JSON object"),
        ({"defaultAction": "SCMP_ACT_MAYBE"}, "not a seccomp action"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "archMap": []}, "unknown key"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86"]}, "SCMP_ARCH_"),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}],
            },
            "names",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}],
            },
            "errnoRet",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "includes": {}}],
            },
            "includes",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["bpf"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 9, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "index",
        ),
        ({"defaultAction": "SCMP_ACT_TRACE"}, "tracer"),
    ],
)
def test_oci_validation(data: object, words: str) -> None:
    with pytest.raises(InvalidProfile) as exc:
        parse_oci(data, "custom.json")
    assert words in str(exc.value)


def test_load_profile_tells_the_formats_apart(tmp_path: Path) -> None:
    lxc = tmp_path / "p.seccomp"
    lxc.write_text(render_lxc(default_profile()))
    oci = tmp_path / "p.json"
    oci.write_text(json.dumps(render_oci(default_profile(), "x86_64")))
    assert load_profile(lxc).denied() == load_profile(oci).denied() == default_profile().denied()
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "defaultAction": \n}')
    with pytest.raises(InvalidProfile) as exc:
        load_profile(broken)
    assert exc.value.line == 3
    with pytest.raises(InvalidProfile, match="cannot read"):
        load_profile(tmp_path / "missing")


def test_resolve_and_lxc_keys(tmp_path: Path) -> None:
    assert resolve(None) == resolve("default") == default_profile()
    assert resolve("unconfined") is None
    path = tmp_path / "p.seccomp"
    path.write_text("2\ndenylist\nbpf errno 1\n")
    profile = resolve(str(path))
    assert profile is not None and profile.denied() == {"bpf"}
    assert lxc_seccomp_keys(None) == [("lxc.seccomp.profile", "")]
    assert lxc_seccomp_keys(path) == [("lxc.seccomp.profile", str(path))]
