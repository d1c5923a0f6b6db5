"""Files every rich container gets: hostname, hosts and the container's environment."""

from __future__ import annotations

from pathlib import Path

from richc.config import ContainerConfig
from richc.rootfs.edit import Edit, write_edit
from richc.rootfs.model import Change
from richc.templating import render

PROFILE_ENV = "etc/profile.d/richc-env.sh"


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


def render_env(config: ContainerConfig, root: Path) -> list[Change]:
    return _apply(env_edits(config), root)
