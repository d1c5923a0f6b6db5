"""Id-range allocation (pure) and the subuid/subgid files (in tmp roots)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from isolation.errors import IdRangeExhausted, SubIdFileInvalid
from isolation.idmap import (
    COUNT,
    IdMap,
    IdRange,
    SubIdEntry,
    add_entries,
    allocate,
    lxc_idmap_keys,
    namespace_limit,
    oci_id_mappings,
    parse_subid,
    read_entries,
    release,
    reserve,
    shadow_tools_used,
    stale_entries,
    with_entry,
    without_entry,
)


def test_first_range_starts_at_100000_rounded_to_the_range_size() -> None:
    # 100000 is not a multiple of 65536: the first aligned start above it is 131072.
    assert allocate([], []) == 131072


def test_allocation_goes_above_every_entry_of_other_users() -> None:
    entries = [SubIdEntry("alice", 100000, 65536), SubIdEntry("bob", 1_000_000, 65536)]
    start = allocate(entries, [])
    assert start >= 1_065_536
    assert start % COUNT == 0
    assert not any(IdRange(start).overlaps(e.range) for e in entries)


def test_allocation_skips_ranges_in_use_and_richc_entries() -> None:
    base = allocate([], [])
    in_use: list[IdRange | int] = [IdRange(base), base + 2 * COUNT]  # a range, a start
    entries = [SubIdEntry("richc", base + COUNT, COUNT)]
    assert allocate(entries, in_use) == base + 3 * COUNT


def test_allocation_fills_a_gap_between_ranges_in_use() -> None:
    base = allocate([], [])
    assert allocate([], [base, base + 2 * COUNT]) == base + COUNT


def test_an_unaligned_range_in_use_pushes_past_its_end() -> None:
    base = allocate([], [])
    odd = IdRange(base + 10, COUNT)  # overlaps the first two aligned slots
    start = allocate([], [odd])
    assert start == base + 2 * COUNT
    assert not IdRange(start).overlaps(odd)


def test_allocation_fails_when_nothing_is_left_below_2_32() -> None:
    entries = [SubIdEntry("root", 2**32 - 70000, 65536)]
    with pytest.raises(IdRangeExhausted) as exc:
        allocate(entries, [])
    assert exc.value.hint


def test_inside_an_unprivileged_container_no_range_fits_and_the_error_says_why(
    tmp_path: Path,
) -> None:
    (tmp_path / "uid_map").write_text("         0     131072      65536\n")
    (tmp_path / "gid_map").write_text("         0     131072      65536\n")
    limit = namespace_limit(tmp_path)
    assert limit == 65536
    with pytest.raises(IdRangeExhausted) as exc:
        allocate([], [], limit=limit)
    assert "maps ids only up to 65535" in str(exc.value)
    assert exc.value.hint and "--privileged --nesting" in exc.value.hint
    # A bigger map (LXD's raw.idmap, a hand-made one) leaves room above 100000.
    (tmp_path / "uid_map").write_text("0 1000000 1000000000\n")
    (tmp_path / "gid_map").write_text("0 1000000 1000000000\n")
    assert allocate([], [], limit=namespace_limit(tmp_path)) == 131072


def test_idmap_helpers() -> None:
    m = IdMap.of(200000)
    assert m.host_uid(0) == 200000 and m.host_gid(65535) == 265535
    assert m.uid_map() == "0 200000 65536\n"
    with pytest.raises(ValueError):
        m.host_uid(65536)


def test_renderers() -> None:
    m = IdMap(100000, 300000, 65536)
    assert lxc_idmap_keys(m) == [
        ("lxc.idmap", "u 0 100000 65536"),
        ("lxc.idmap", "g 0 300000 65536"),
    ]
    assert oci_id_mappings(m) == {
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 300000, "size": 65536}],
    }


def test_parse_skips_comments_and_refuses_garbage(tmp_path: Path) -> None:
    assert parse_subid("# x\n\nalice:100000:65536\n") == [SubIdEntry("alice", 100000, 65536)]
    with pytest.raises(SubIdFileInvalid) as exc:
        parse_subid("alice:100000\n", tmp_path / "subuid")
    assert "line 1" in str(exc.value)


def test_with_and_without_entry_keep_other_lines() -> None:
    text = "# admin note\nalice:100000:65536\n"
    added = with_entry(text, SubIdEntry("richc", 131072, 65536))
    assert added == "# admin note\nalice:100000:65536\nrichc:131072:65536\n"
    assert with_entry(added, SubIdEntry("richc", 131072, 65536)) == added
    assert without_entry(added, "richc", 131072) == text
    assert without_entry(text, "alice", 999) == text


def test_stale_entries_are_richc_entries_nobody_records() -> None:
    entries = [SubIdEntry("richc", 131072, COUNT), SubIdEntry("richc", 196608, COUNT)]
    assert stale_entries(entries, [IdRange(131072)]) == [196608]


def test_reserve_writes_both_files_and_release_removes_them(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "subuid").write_text("alice:100000:65536\n")
    (etc / "subgid").write_text("alice:100000:65536\n")
    os.chmod(etc / "subuid", 0o640)
    first = reserve(tmp_path)
    second = reserve(tmp_path, in_use=[first.uid_range])
    # alice ends at 165535: the first aligned start above is 196608
    assert first.host_uid_start == first.host_gid_start == 196608
    assert second.host_uid_start == 262144
    for name in ("subuid", "subgid"):
        assert (etc / name).read_text() == (
            "alice:100000:65536\nrichc:196608:65536\nrichc:262144:65536\n"
        )
    assert stat.S_IMODE((etc / "subuid").stat().st_mode) == 0o640  # kept
    release(first, tmp_path)
    release(first, tmp_path)  # idempotent
    assert [e.start for e in read_entries(tmp_path) if e.owner == "richc"] == [262144, 262144]
    assert not [p for p in etc.iterdir() if p.name.startswith(".sub")]  # no temp files left


def test_reserve_in_an_empty_root_creates_the_files(tmp_path: Path) -> None:
    m = reserve(tmp_path)
    assert (tmp_path / "etc/subuid").read_text() == f"richc:{m.host_uid_start}:65536\n"
    assert stat.S_IMODE((tmp_path / "etc/subgid").stat().st_mode) == 0o644


def test_add_entries_is_idempotent_and_refuses_an_unreadable_file(tmp_path: Path) -> None:
    m = IdMap.of(131072)
    add_entries(m, tmp_path)
    before = (tmp_path / "etc/subuid").stat().st_ino
    add_entries(m, tmp_path)
    assert (tmp_path / "etc/subuid").stat().st_ino == before  # not rewritten
    (tmp_path / "etc/subgid").write_text("garbage\n")
    with pytest.raises(SubIdFileInvalid):
        add_entries(IdMap.of(196608), tmp_path)
    assert (tmp_path / "etc/subgid").read_text() == "garbage\n"


def test_overlay_options_refuse_separators() -> None:
    from isolation.overlay import overlay_options

    assert overlay_options(["/a", "/b"], "/u", "/w") == "lowerdir=/a:/b,upperdir=/u,workdir=/w"
    with pytest.raises(ValueError):
        overlay_options(["/a,b"], "/u", "/w")


def test_concurrent_reservations_never_share_a_range(tmp_path: Path) -> None:
    """Eight processes reserve at once: the lock makes each read see the others' writes."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(8) as pool:
        starts = pool.map(_reserve_start, [str(tmp_path)] * 8)
    assert len(set(starts)) == 8
    assert sorted(e.start for e in read_entries(tmp_path) if e.owner == "richc") == sorted(
        starts * 2
    )


def _reserve_start(root: str) -> int:
    return reserve(root).host_uid_start


def _tool(directory: Path, name: str, mode: int) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)


def test_shadow_tools_count_only_when_both_are_privileged(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert not shadow_tools_used(str(bin_dir))
    _tool(bin_dir, "newuidmap", 0o4755)
    assert not shadow_tools_used(str(bin_dir))  # newgidmap missing
    _tool(bin_dir, "newgidmap", 0o755)
    assert not shadow_tools_used(str(bin_dir))  # not setuid, no capability: LXC skips them
    (bin_dir / "newgidmap").chmod(0o4755)
    assert shadow_tools_used(str(bin_dir))


def test_reserve_grants_root_the_range_in_the_host_files_and_release_takes_it_back(
    tmp_path: Path,
) -> None:
    root, host = tmp_path / "root", tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    # What LXD leaves: root and _lxd own a big block. A grant-free start would land on
    # 131072 and newuidmap, run by LXC as root, would refuse anything past the block.
    (host / "etc/subuid").write_text("_lxd:100000:1000000\nroot:100000:1000000\n")
    (host / "etc/subgid").write_text("_lxd:100000:1000000\nroot:100000:1000000\n")
    first = reserve(root, grant_root=host)
    assert first.host_uid_start >= 1100000  # clear of every host entry
    assert f"root:{first.host_uid_start}:65536" in (host / "etc/subuid").read_text()
    assert f"root:{first.host_gid_start}:65536" in (host / "etc/subgid").read_text()
    assert f"richc:{first.host_uid_start}:65536" in (root / "etc/subuid").read_text()
    # Another root's container never gets the same ids: the grant is a host entry now.
    other = reserve(tmp_path / "other-root", grant_root=host)
    assert not other.uid_range.overlaps(first.uid_range)
    release(first, root, grant_root=host)
    assert f"root:{first.host_uid_start}:" not in (host / "etc/subuid").read_text()
    assert "root:100000:1000000" in (host / "etc/subuid").read_text()  # LXD's stays
    assert f"root:{other.host_uid_start}:65536" in (host / "etc/subuid").read_text()


def test_on_the_host_itself_the_grant_sits_beside_richc_s_entry(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/subuid").write_text("root:100000:65000\n")
    (tmp_path / "etc/subgid").write_text("root:100000:65000\n")
    made = reserve(tmp_path, grant_root=tmp_path)
    assert made.host_uid_start == 196608  # above root's own entry, on a 65536 boundary
    text = (tmp_path / "etc/subuid").read_text()
    assert text == "root:100000:65000\nrichc:196608:65536\nroot:196608:65536\n"
    again = reserve(tmp_path, grant_root=tmp_path)  # its own grant keeps the next one off
    assert again.host_uid_start == 262144
    release(made, tmp_path, grant_root=tmp_path)
    release(again, tmp_path, grant_root=tmp_path)
    assert (tmp_path / "etc/subuid").read_text() == "root:100000:65000\n"
