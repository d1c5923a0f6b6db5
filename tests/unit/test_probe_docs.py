"""The documents that describe the probe say what the code does.

docs/kernel-compat.md lists the same features and versions as ``REQUIREMENTS``, and
docs/doctor.md documents every key of ``richc doctor --format json``, in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from richc.probe import REQUIREMENTS, HostReport
from richc.probe.decide import QuotaBackend, QuotaSelection
from richc.probe.report import SCHEMA_VERSION
from tests.fixtures.hosts.support import FIXTURES, RECORDED_HOST, probe_fixture

DOCS = Path(__file__).resolve().parents[2] / "docs"
LIVE_QUOTA = QuotaSelection(
    "/var/lib/richc/containers",
    "loop",
    (QuotaBackend("project", False, "not mounted with prjquota"), QuotaBackend("loop", True, "")),
)
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \|", re.MULTILINE)


def documented_rows(name: str, section: str = "") -> list[tuple[str, str]]:
    """The first two cells of each table row, in the section under heading *section*."""
    text = (DOCS / name).read_text()
    if section:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [(key, cell.strip()) for key, cell in ROW.findall(text)]


def flatten(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted key paths of a JSON document; list items of objects appear as ``key[]``."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from flatten(item, path)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        yield from flatten(value[0], prefix + "[]")


def test_kernel_compat_table_matches_requirements() -> None:
    rows = documented_rows("kernel-compat.md")
    assert rows == [(r.feature, str(r.since)) for r in REQUIREMENTS]


def test_readme_has_the_kernel_table() -> None:
    text = (DOCS.parent / "README.md").read_text()
    section = text.split("\n## Kernel compatibility\n", 1)[1].split("\n## ", 1)[0]
    rows = [(key, cell.strip()) for key, cell in ROW.findall(section)]
    assert rows == [(r.feature, str(r.since)) for r in REQUIREMENTS]


def test_every_json_key_is_documented_in_order() -> None:
    documented = [key for key, _ in documented_rows("doctor.md", "JSON document")]
    seen: set[str] = set()
    reports = [HostReport.of(probe_fixture(host)) for host in (*FIXTURES, RECORDED_HOST)]
    # On a live host the report also carries create's own quota choice.
    reports.append(HostReport.of(probe_fixture(RECORDED_HOST), LIVE_QUOTA))
    for host, report in zip((*FIXTURES, RECORDED_HOST, "live"), reports, strict=True):
        keys = list(dict.fromkeys(flatten(report.to_json())))
        # Every key the code emits is documented, in the documented order.
        assert [k for k in documented if k in keys] == keys, host
        seen.update(keys)
    # And nothing is documented that no host ever emits.
    assert set(documented) == seen


def test_schema_version_is_documented() -> None:
    rows = dict(documented_rows("doctor.md", "JSON document"))
    assert rows["schema_version"] == "int"
    assert f"| `schema_version` | int | {SCHEMA_VERSION} |" in (DOCS / "doctor.md").read_text()


def test_documented_checks_are_the_checks() -> None:
    text = (DOCS / "doctor.md").read_text()
    section = text.split("## Checks", 1)[1].split("### ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)
    report = HostReport.of(probe_fixture(RECORDED_HOST))
    assert documented == [d.check for d in report.decisions]
