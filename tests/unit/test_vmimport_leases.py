"""The leases file (written before each action, released newest first, kept for what
could not be released), the scratch lock, the guest-confined path walk, and run()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vmimport import CleanupIncomplete, ScratchBusy, ToolFailed, cleanup
from vmimport.leases import Leases, locked, replay
from vmimport.root import looks_like_root, resolve_in
from vmimport.tools import run


def test_leases_are_on_disk_before_the_action_and_released_newest_first(tmp_path: Path) -> None:
    leases = Leases(tmp_path)
    made = leases.make_dir(tmp_path / "tree")
    temp = leases.temp_file(tmp_path / "disk.raw")
    recorded = replay((tmp_path / "leases.jsonl").read_text())
    assert [(e["kind"], e["path"]) for e in recorded] == [
        ("dir", str(made)),
        ("file", str(temp)),  # recorded although the file is not made yet
    ]
    temp.write_bytes(b"x")
    order: list[str] = []
    real_release = leases.release

    def spy(lease: dict[str, object]) -> None:
        order.append(str(lease["kind"]))
        real_release(lease)

    leases.release = spy  # type: ignore[method-assign]
    leases.release_all()
    assert order == ["file", "dir"]
    assert not temp.exists() and not made.exists()
    assert not (tmp_path / "leases.jsonl").exists()


def test_what_cannot_be_released_stays_listed(tmp_path: Path) -> None:
    leases = Leases(tmp_path)
    busy = leases.make_dir(tmp_path / "tree")
    (busy / "left").write_text("not ours to delete")  # rmdir only: never a recursive delete
    with pytest.raises(CleanupIncomplete) as err:
        leases.release_all()
    assert len(err.value.left) == 1 and str(busy) in err.value.left[0]
    assert [e["path"] for e in replay((tmp_path / "leases.jsonl").read_text())] == [str(busy)]
    assert (busy / "left").exists()


def test_replay_skips_a_line_cut_short_and_applies_sets_and_drops() -> None:
    journal = (
        '{"add":{"id":0,"kind":"loop","backing":"/i","offset":0}}\n'
        '{"add":{"id":1,"kind":"mount","target":"/t"}}\n'
        '{"set":0,"fields":{"device":"/dev/loop3"}}\n'
        '{"drop":1}\n'
        '{"add":{"id":2,"kind":"mou'  # the kill came mid-write
    )
    assert replay(journal) == [
        {"id": 0, "kind": "loop", "backing": "/i", "offset": 0, "device": "/dev/loop3"}
    ]


def test_a_dead_runs_leftovers_are_released_by_cleanup(tmp_path: Path) -> None:
    leases = Leases(tmp_path)
    leftover = leases.temp_file(tmp_path / "disk.raw")
    leftover.write_bytes(b"converted")
    del leases  # the run "dies" here: nothing released
    cleanup(tmp_path)
    assert not leftover.exists() and not (tmp_path / "leases.jsonl").exists()
    cleanup(tmp_path / "never-made")  # nothing to do is fine


def test_a_live_run_holds_the_scratch_directory(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path / 'lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(ScratchBusy):
            cleanup(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    with locked(tmp_path) as leases:  # the lock dies with its holder
        assert leases.entries == []


def test_resolve_in_keeps_guest_symlinks_inside_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "sbin").symlink_to("usr/sbin")  # relative, usrmerge style
    (root / "usr/sbin/init").symlink_to("/lib/systemd/systemd")  # dangling is fine
    (root / "etc/fstab").write_text("")
    (root / "escape").symlink_to("/etc")  # absolute: must stay in the guest
    (root / "up").symlink_to("../../../../..")
    assert resolve_in(root, "/sbin/init") == root / "usr/sbin/init"
    assert resolve_in(root, "/escape/fstab") == root / "etc/fstab"
    assert resolve_in(root, "/up/etc/fstab") == root / "etc/fstab"
    assert resolve_in(root, "../../etc/fstab") == root / "etc/fstab"
    assert looks_like_root(root)
    (root / "etc/fstab").unlink()
    assert not looks_like_root(root)


def test_resolve_in_refuses_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError, match="too many levels"):
        resolve_in(tmp_path, "/a/x")


def test_run_reports_lines_split_at_carriage_returns_and_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_FROM_CALLER", "1")
    lines: list[str] = []
    out = run(["printf", r"  (10.00/100%%)\r  (55.50/100%%)\r  (100.00/100%%)\r\ndone"],
              on_output=lines.append)  # fmt: skip
    assert lines == ["  (10.00/100%)", "  (55.50/100%)", "  (100.00/100%)", "done"]
    assert out.endswith("done")
    with pytest.raises(ToolFailed, match="failed with exit status 3: boom") as err:
        run(["sh", "-c", "echo boom >&2; exit 3"])
    assert err.value.returncode == 3
    with pytest.raises(ToolFailed, match="was not found"):
        run(["no-such-tool-vmimport"])
    assert run(["sh", "-c", "echo $HOME; echo $LC_ALL"], env={"HOME": "/x"}) == "/x\nC\n"
    assert "SECRET_FROM_CALLER" not in run(["env"])  # the environment is rebuilt


def test_guest_files_are_read_through_guest_links_only(tmp_path: Path) -> None:
    from vmimport.root import _read_in

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text("ID=debian\n")
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    (root / "etc/hop").symlink_to("/etc/hop2")
    (root / "etc/hop2").symlink_to("/etc/hostname")  # the host's, if followed on the host
    (root / "etc/hostname").write_text("guest\n")
    os.mkfifo(root / "etc/fifo")
    assert _read_in(root, "etc/os-release") == "ID=debian\n"
    assert _read_in(root, "etc/hop") == "guest\n"
    assert _read_in(root, "etc/fifo") is None  # and no hang
    assert _read_in(root, "etc/missing") is None
