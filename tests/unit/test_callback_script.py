"""The runtime's poststop callback script (richc/hookrun/poststop.sh), run by a real sh:
it exits at once while a live `richc stop` holds the claim, and otherwise hands over to
`python -m richc.hookrun` with the arguments that module takes."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from richc.hookrun import claim
from richc.procs import start_time


@pytest.fixture
def claim_file(tmp_path: Path) -> Path:
    return tmp_path / "run" / claim.CLAIM_FILE


def run_callback(
    tmp_path: Path, claim_file: Path, env: dict[str, str] | None = None
) -> list[str] | None:
    """Run the callback as LXC's monitor would; the argv it gave python, or None if it
    exited without starting python."""
    fake_python = tmp_path / "python"
    handed = tmp_path / "handed"
    handed.unlink(missing_ok=True)
    fake_python.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(handed))}\n')
    fake_python.chmod(0o755)
    argv = shlex.split(claim.callback_command(tmp_path / "root", claim_file.parent))
    argv[-1] = str(fake_python)
    done = subprocess.run(
        [*argv, "web01", "lxc", "post-stop"],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 0 and done.stderr == ""
    return handed.read_text().splitlines() if handed.exists() else None


def write(claim_file: Path, record: dict[str, object] | str) -> None:
    claim_file.parent.mkdir(parents=True, exist_ok=True)
    claim_file.write_text(record if isinstance(record, str) else json.dumps(record))


def test_without_a_claim_it_hands_over_to_python(tmp_path: Path, claim_file: Path) -> None:
    assert run_callback(tmp_path, claim_file) == [
        "-I", "-m", "richc.hookrun", "--root", str(tmp_path / "root"),
        "--claim", str(claim_file), "poststop", "web01", "lxc", "post-stop",
    ]  # fmt: skip


def test_a_live_claim_taken_by_take_ends_it_at_once(tmp_path: Path, claim_file: Path) -> None:
    assert claim.take(claim_file.parent)  # this test process is the live owner
    assert run_callback(tmp_path, claim_file) is None


def test_a_done_record_ends_it(tmp_path: Path, claim_file: Path) -> None:
    write(claim_file, {"status": "done", "results": [{"hook": "x", "ok": False}]})
    assert run_callback(tmp_path, claim_file) is None


def test_an_in_container_reboot_runs_nothing(tmp_path: Path, claim_file: Path) -> None:
    assert run_callback(tmp_path, claim_file, env={"LXC_TARGET": "reboot"}) is None


@pytest.mark.parametrize(
    "record",
    [
        {"status": "running", "pid": os.getpid(), "start_time": 1},  # the pid was reused
        {"status": "running", "pid": 2**22 + 12345, "start_time": 1},  # its owner died
        {"status": "running", "pid": os.getpid(), "start_time": None},
        '{\n  "status": "running"\n}',  # a shape it does not know: python decides
        "{",
        "",
    ],
)
def test_anything_else_goes_to_python(
    tmp_path: Path, claim_file: Path, record: dict[str, object] | str
) -> None:
    write(claim_file, record)
    handed = run_callback(tmp_path, claim_file)
    assert handed is not None and handed[-3:] == ["web01", "lxc", "post-stop"]


@pytest.fixture
def oddly_named_process(tmp_path: Path) -> Iterator[int]:
    # /proc/PID/stat puts the command name in parentheses; a name may hold ") " itself.
    odd = tmp_path / "a) b (c"
    shutil.copy("/bin/sleep", odd)
    process = subprocess.Popen([str(odd), "60"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_the_owner_is_found_whatever_its_name(
    tmp_path: Path, claim_file: Path, oddly_named_process: int
) -> None:
    pid = oddly_named_process
    for _ in range(200):  # until the exec shows in /proc
        if ") b (c" in Path(f"/proc/{pid}/stat").read_text():
            break
        time.sleep(0.01)
    started = start_time(pid)
    write(claim_file, {"status": "running", "pid": pid, "start_time": started})
    assert run_callback(tmp_path, claim_file) is None
    write(claim_file, {"status": "running", "pid": pid, "start_time": (started or 0) + 1})
    assert run_callback(tmp_path, claim_file) is not None
