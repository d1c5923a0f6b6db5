"""The escape probe's report parsing and table (the probe itself runs in the integration
tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from isolation.errors import IsolationError
from isolation.probes import MUST_BE_DENIED, build_probe, format_table, parse_report, source_path

REPORT: dict[str, Any] = {
    "info": {"uid_map": "0 100000 65536", "gid_map": "0 100000 65536", "root_host_uid": 100000,
             "mapped_ids": 65536, "seccomp": "2", "seccomp_filters": "1", "cap_eff": "0",
             "no_new_privs": "0", "pid1_comm": "init", "pids_visible": 3, "euid": 0},
    "probes": [
        {"name": "write_sysrq_trigger", "target": "/proc/sysrq-trigger", "result": "denied",
         "errno": "EROFS", "detail": ""},
        {"name": "write_core_pattern", "target": "/proc/sys/kernel/core_pattern",
         "result": "allowed", "errno": "", "detail": "opened for writing (nothing written)"},
        {"name": "bpf", "target": "syscall", "result": "allowed", "errno": "EINVAL",
         "detail": "reached"},
    ],
}  # fmt: skip


def test_parse_and_escapes() -> None:
    report = parse_report(json.dumps(REPORT))
    assert report.root_host_uid == 100000
    assert report.seccomp_mode == 2
    assert report["write_sysrq_trigger"].errno == "EROFS"
    # bpf reaching the kernel is not an escape by itself; core_pattern is
    assert [r.name for r in report.escapes()] == ["write_core_pattern"]
    assert "bpf" not in MUST_BE_DENIED
    with pytest.raises(KeyError):
        report["nope"]


def test_table_has_a_row_per_probe() -> None:
    table = format_table(parse_report(json.dumps(REPORT)))
    lines = table.splitlines()
    assert len(lines) == 2 + len(REPORT["probes"])
    assert lines[1].split()[:2] == ["probe", "result"]
    assert "seccomp: 2" in lines[0]


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_report("Segmentation fault")
    bad = dict(REPORT, probes=[dict(REPORT["probes"][0], result="maybe")])
    with pytest.raises(ValueError):
        parse_report(json.dumps(bad))


def test_the_source_ships_with_the_package() -> None:
    text = source_path().read_text()
    assert "int main" in text
    # the probe opens for writing but must never write: no write(2) call in it at all
    assert not re.search(r"(?<![A-Za-z_-])(write|pwrite|fwrite|fputs)\s*\(", text)


def test_build_without_a_compiler_says_why(tmp_path: Path) -> None:
    with pytest.raises(IsolationError, match="no-such-cc is not installed"):
        build_probe(tmp_path, cc="no-such-cc")
