from __future__ import annotations

from pathlib import Path

import pytest

from richc.execute import ExecFailed, find_command, lookup_user


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    (tmp_path / "etc").mkdir()
    busybox = tmp_path / "bin/busybox"
    busybox.write_text("")
    busybox.chmod(0o755)
    (tmp_path / "bin/sh").symlink_to("busybox")
    (tmp_path / "bin/abs").symlink_to("/bin/busybox")  # absolute: resolved inside root
    (tmp_path / "bin/data").write_text("")
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/srv:/bin/sh\n"
    )
    return tmp_path


def test_commands_resolve_inside_the_rootfs(root: Path) -> None:
    assert find_command(root, "sh", "/usr/bin:/bin") == "/bin/sh"
    assert find_command(root, "/bin/abs", "/bin") == "/bin/abs"


def test_missing_and_not_executable_use_127_and_126(root: Path) -> None:
    with pytest.raises(ExecFailed) as missing:
        find_command(root, "nosuch", "/bin")
    assert missing.value.exit_code == 127
    with pytest.raises(ExecFailed) as data:
        find_command(root, "/bin/data", "/bin")
    assert data.value.exit_code == 126


def test_users_come_from_the_container(root: Path) -> None:
    assert lookup_user(root, "web") == (1000, 1001, "/srv")
    assert lookup_user(root, "1000:5") == (1000, 5, "/srv")
    assert lookup_user(root, "4242") == (4242, 4242, "/")
