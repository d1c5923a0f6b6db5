"""Files every rich container gets: hostname, hosts and the container's environment."""

from __future__ import annotations

from pathlib import Path

from richc.config import ContainerConfig
from richc.rootfs import Change
from richc.rootfs.edit import Edit, write_edit, write_text
from richc.templating import render

PROFILE_ENV = "etc/profile.d/richc-env.sh"


def write_file(root: Path, relpath: str, text: str, mode: int = 0o644) -> None:
    """Write *relpath* under *root* without following a symlink that points out of the rootfs."""
    # A VM's /etc/hostname may be a symlink to an absolute path; writing through it
    # would write on the host, so write_text replaces the link.
    write_text(root, relpath, text, mode)


def identity_edits(config: ContainerConfig) -> list[Edit]:
    hostname = config.hostname or config.name
    return [
        write_edit(
            "etc/hostname",
            render("rootfs/common/hostname.j2", hostname=hostname),
            f"the container's host name is {hostname}",
            keep=True,
        ),
        write_edit(
            "etc/hosts",
            render(
                "rootfs/common/hosts.j2",
                hostname=hostname,
                short_hostname=hostname.split(".")[0],
            ),
            "name resolution for localhost and the host name",
            keep=True,
        ),
        *env_edits(config),
    ]


def env_edits(config: ContainerConfig) -> list[Edit]:
    env = list(config.env)
    return [
        write_edit(
            PROFILE_ENV,
            render("rootfs/common/profile-env.sh.j2", env=env),
            "the container's env for login shells",
        ),
        write_edit(
            "etc/environment",
            render("rootfs/common/environment.j2", env=env),
            "the container's env for PAM sessions",
            keep=True,
        ),
    ]


def _apply(edits: list[Edit], root: Path) -> list[Change]:
    for edit in edits:
        edit.run(root)
    return [edit.change for edit in edits]


def render_identity(config: ContainerConfig, root: Path) -> list[Change]:
    return _apply(identity_edits(config), root)


def render_env(config: ContainerConfig, root: Path) -> list[Change]:
    return _apply(env_edits(config), root)
