"""quota: project ID allocation and the registry file."""

from __future__ import annotations

import json
from pathlib import Path

from quota.registry import ProjectRegistry


def test_allocates_lowest_free_id_deterministically(tmp_path: Path) -> None:
    reg = ProjectRegistry(tmp_path / "projects.json", first_id=1000)
    assert reg.allocate(tmp_path / "a", lambda _: False) == 1000
    assert reg.allocate(tmp_path / "b", lambda _: False) == 1001
    # Asking again for a known directory returns its ID, not a new one.
    assert reg.allocate(tmp_path / "a", lambda _: False) == 1000


def test_never_hands_out_an_id_the_kernel_still_counts(tmp_path: Path) -> None:
    reg = ProjectRegistry(tmp_path / "projects.json", first_id=1000)
    busy = {1000, 1001}
    assert reg.allocate(tmp_path / "a", lambda i: i in busy) == 1002


def test_release_frees_the_id_for_reuse(tmp_path: Path) -> None:
    reg = ProjectRegistry(tmp_path / "projects.json", first_id=1000)
    reg.allocate(tmp_path / "a", lambda _: False)
    reg.allocate(tmp_path / "b", lambda _: False)
    assert reg.release(tmp_path / "a") == 1000
    assert reg.release(tmp_path / "a") is None
    assert reg.lookup(tmp_path / "a") is None
    assert reg.allocate(tmp_path / "c", lambda _: False) == 1000


def test_registry_survives_a_new_instance_and_is_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "store" / "projects.json"
    ProjectRegistry(path, first_id=7).allocate(tmp_path / "a", lambda _: False)
    assert ProjectRegistry(path).lookup(tmp_path / "a") == 7
    data = json.loads(path.read_text())
    assert data == {"version": 1, "projects": {str(tmp_path / "a"): 7}}
