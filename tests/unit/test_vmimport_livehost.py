"""--from ssh://USER@HOST[:PORT][/PATH]: parsing with errors that name the field, the ssh
and rsync command lines, the excludes from the remote's mounts, and rsync's progress."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from vmimport import InvalidSource, SshOptions, SshSource, parse_source, rsync_argv
from vmimport.livehost import (
    RemoteMount,
    exclude_patterns,
    parse_findmnt,
    parse_proc_mounts,
    skipped_mounts,
    ssh_argv,
)
from vmimport.progress import qemu_img_percent, rsync_progress


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("ssh://root@web1", SshSource("root", "web1", 22, "/")),
        ("ssh://root@web1.example.org:2222", SshSource("root", "web1.example.org", 2222, "/")),
        ("ssh://ops@10.201.0.2:22/srv/tree/", SshSource("ops", "10.201.0.2", 22, "/srv/tree")),
        ("ssh://root@[fd00::2]:2200", SshSource("root", "fd00::2", 2200, "/")),
        ("ssh://svc_backup@host/", SshSource("svc_backup", "host", 22, "/")),
    ],
)
def test_valid_sources(url: str, parsed: SshSource) -> None:
    assert parse_source(url) == parsed


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://root@web1", "scheme"),
        ("web1", "scheme"),
        ("ssh://web1", "user"),
        ("ssh://@web1", "user"),
        ("ssh://ro ot@web1", "user"),
        ("ssh://root:hunter2@web1", "password"),
        ("ssh://root@", "host"),
        ("ssh://root@bad_host!", "host"),
        ("ssh://root@[web1]", "host"),
        ("ssh://root@web1:0", "port"),
        ("ssh://root@web1:65536", "port"),
        ("ssh://root@web1:ssh", "port"),
        ("ssh://root@web1:", "port"),
        ("ssh://root@web1/srv/../etc", "path"),
        ("ssh://root@web1/?x=1", "query"),
    ],
)
def test_invalid_sources_name_the_field(url: str, field: str) -> None:
    with pytest.raises(InvalidSource) as err:
        parse_source(url)
    assert err.value.field == field, str(err.value)
    assert url in str(err.value)


def test_str_round_trips() -> None:
    for url in ("ssh://root@web1/", "ssh://ops@[fd00::2]:2200/srv"):
        assert str(parse_source(url)) == url


def test_ssh_argv_batch_mode_port_key_and_known_hosts() -> None:
    source = SshSource("root", "10.201.0.2", 2222)
    options = SshOptions(identity_file=Path("/k/id"), known_hosts=Path("/k/known"))
    argv = ssh_argv(source, options)
    assert argv[:3] == ["ssh", "-p", "2222"]
    pairs = {argv[i + 1] for i, a in enumerate(argv) if a == "-o"}
    assert {"BatchMode=yes", "UserKnownHostsFile=/k/known", "StrictHostKeyChecking=yes"} <= pairs
    assert argv[argv.index("-i") + 1] == "/k/id"
    assert "StrictHostKeyChecking=accept-new" in ssh_argv(source, SshOptions())


def test_rsync_argv() -> None:
    source = SshSource("root", "10.201.0.2", 2222, "/")
    argv = rsync_argv(source, "/var/lib/richc/c1/rootfs", SshOptions(), ["/proc/*", "/sys/*"])
    assert argv[:8] == [
        "rsync", "-aHAXS", "--numeric-ids", "--delete", "--info=progress2",
        "--no-human-readable", "-e", argv[7],
    ]  # fmt: skip
    assert shlex.split(argv[7])[:3] == ["ssh", "-p", "2222"]
    assert argv[8:] == [
        "--exclude=/proc/*",
        "--exclude=/sys/*",
        "root@10.201.0.2:/",
        "/var/lib/richc/c1/rootfs/",
    ]
    v6 = rsync_argv(SshSource("root", "fd00::2", 22, "/srv"), "/d", SshOptions(sudo=True), [])
    assert v6[-3:] == ["--rsync-path=sudo -n rsync", "root@[fd00::2]:/srv/", "/d/"]


FINDMNT = """\
/ ext4
/proc proc
/sys sysfs
/boot ext4
/home/alice/remote fuse.sshfs
/srv/nfs\\x20share nfs4
/var/lib/docker/overlay2/abc/merged overlay
/mnt/backup cifs
/var/lib/lxcfs fuse.lxcfs
/data xfs
"""


def test_remote_mounts_parsed_and_network_ones_skipped() -> None:
    mounts = parse_findmnt(FINDMNT)
    assert mounts[5] == RemoteMount("/srv/nfs share", "nfs4")
    assert [m.target for m in skipped_mounts(mounts)] == [
        "/proc", "/sys", "/home/alice/remote", "/srv/nfs share",
        "/var/lib/docker/overlay2/abc/merged", "/mnt/backup", "/var/lib/lxcfs",
    ]  # fmt: skip


def test_proc_mounts_when_the_remote_has_no_findmnt() -> None:
    text = (
        "/dev/vda1 / ext4 rw 0 0\nnas:/x /srv/nfs\\040share nfs4 rw 0 0\nproc /proc proc rw 0 0\n"
    )
    assert parse_proc_mounts(text) == [
        RemoteMount("/", "ext4"),
        RemoteMount("/srv/nfs share", "nfs4"),
        RemoteMount("/proc", "proc"),
    ]


def test_excludes_for_the_whole_host_and_for_a_subtree() -> None:
    skipped = skipped_mounts(parse_findmnt(FINDMNT))
    whole = exclude_patterns("/", skipped)
    assert whole[:8] == [
        "/proc/*", "/sys/*", "/dev/*", "/run/*", "/tmp/*", "/mnt/*", "/media/*", "/lost+found/*",
    ]  # fmt: skip
    assert whole[8:] == [
        "/home/alice/remote/*",
        "/srv/nfs share/*",
        "/var/lib/docker/overlay2/abc/merged/*",
        "/mnt/backup/*",
        "/var/lib/lxcfs/*",
    ]
    assert exclude_patterns("/home", skipped) == ["/alice/remote/*"]
    assert exclude_patterns("/srv", [RemoteMount("/srv/a[1]*", "nfs")]) == ["/a\\[1]\\*/*"]


def test_rsync_progress2_lines() -> None:
    step = rsync_progress("    104,857,600  50%   98.00MB/s    0:00:01 (xfr#3, to-chk=10/20)")
    assert step is not None and (step.done, step.percent, step.total) == (104857600, 50, 209715200)
    zero = rsync_progress("              0   0%    0.00kB/s    0:00:00 (xfr#0, to-chk=0/5)")
    assert zero is not None and zero.total is None
    assert rsync_progress("sending incremental file list") is None


def test_qemu_img_percent() -> None:
    assert qemu_img_percent("    (42.17/100%)") == 42.17
    assert qemu_img_percent("    (100.00/100%)") == 100.0
    assert qemu_img_percent("qemu-img: warning") is None
