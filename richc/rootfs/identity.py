"""Files every rich container gets: hostname, hosts and the container's environment."""

from __future__ import annotations

from pathlib import Path

from richc.config import ContainerConfig
from richc.rootfs import Change
from richc.templating import render

PROFILE_ENV = "etc/profile.d/richc-env.sh"


def write_file(root: Path, relpath: str, text: str, mode: int = 0o644) -> None:
    """Write *relpath* under *root* without following a symlink that points out of the rootfs."""
    target = root / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        # A VM's /etc/hostname may be a symlink to an absolute path; writing through it
        # would write on the host.
        target.unlink()
    tmp = target.with_name(f".{target.name}.richc-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(target)


def render_identity(config: ContainerConfig, root: Path) -> list[Change]:
    hostname = config.hostname or config.name
    write_file(root, "etc/hostname", render("rootfs/common/hostname.j2", hostname=hostname))
    write_file(
        root,
        "etc/hosts",
        render("rootfs/common/hosts.j2", hostname=hostname, short_hostname=hostname.split(".")[0]),
    )
    changes = [
        Change("/etc/hostname", "write", f"the container's host name is {hostname}"),
        Change("/etc/hosts", "write", "name resolution for localhost and the host name"),
    ]
    return changes + render_env(config, root)


def render_env(config: ContainerConfig, root: Path) -> list[Change]:
    env = list(config.env)
    write_file(root, PROFILE_ENV, render("rootfs/common/profile-env.sh.j2", env=env))
    write_file(root, "etc/environment", render("rootfs/common/environment.j2", env=env))
    return [
        Change(f"/{PROFILE_ENV}", "write", "the container's env for login shells"),
        Change("/etc/environment", "write", "the container's env for PAM sessions"),
    ]
