"""The ownership shift's pure parts: the id mapper and the marker's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from isolation.errors import ShiftConflict
from isolation.shift import IdMapper, ShiftState, marker_path, read_state


def test_mapper_moves_ids_from_any_known_range_and_keeps_shifted_ones() -> None:
    ids = IdMapper((0, 200000), 100000, 65536)
    assert ids(0) == 100000
    assert ids(65535) == 165535
    assert ids(200005) == 100005  # from an interrupted shift to 200000
    assert ids(100007) == 100007  # already there: never shifted twice
    assert ids(70000) == 70000  # outside every range: left, and counted
    assert ids.outside == 1


def test_mapper_refuses_overlapping_ranges() -> None:
    with pytest.raises(ShiftConflict) as exc:
        IdMapper((0,), 30000, 65536)
    assert exc.value.hint


def test_state_round_trips_through_json() -> None:
    done = ShiftState(65536, 100000)
    going = ShiftState(65536, None, 200000, (0, 100000))
    assert ShiftState.from_json(done.to_json()) == done
    assert ShiftState.from_json(going.to_json()) == going
    assert going.in_progress and not done.in_progress
    assert going.possible_offsets() == (0, 100000, 200000)


def test_marker_lives_beside_the_tree(tmp_path: Path) -> None:
    assert marker_path(tmp_path / "rootfs") == tmp_path / ".rootfs.richc-shift.json"
    assert read_state(tmp_path / "rootfs") == ShiftState()  # no marker: offset 0
    marker_path(tmp_path / "rootfs").write_text("{not json")
    with pytest.raises(ShiftConflict):
        read_state(tmp_path / "rootfs")
