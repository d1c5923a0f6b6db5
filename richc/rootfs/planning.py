"""The rootfs part of ``create --dry-run``: the same edits a create makes, found read-only.

A directory source is read in place. A tarball is listed, and only the files the fix-ups
read (``/etc``, unit files, ``/sbin/init``) are extracted to a private temporary directory
that is removed again. A cached image is read in place; a suite not yet cached is planned
from the fix-ups a fresh debootstrap tree is known to need.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from richc.config import ContainerConfig, Init
from richc.paths import HostPaths
from richc.rootfs import plan_edits, resolve_init
from richc.rootfs.model import Change

# What the fix-ups and init detection read; everything else in a tarball stays packed.
PLAN_PREFIXES = (
    "etc/", "sbin/init", "usr/sbin/init", "sbin/getty", "sbin/agetty", "usr/sbin/getty",
    "usr/sbin/agetty", "sbin/ifup", "usr/sbin/ifup", "lib/systemd/", "usr/lib/systemd/",
    "bin/busybox",
)  # fmt: skip


def _wanted(name: str) -> bool:
    plain = name.removeprefix("./")
    if "/" not in plain.rstrip("/"):
        return True  # top-level entries: the usr-merge symlinks (lib -> usr/lib) and dirs
    return plain.startswith(PLAN_PREFIXES)


def _plan_tree(root: Path, config: ContainerConfig, fresh: bool) -> tuple[Init, list[Change]]:
    init = resolve_init(root, config.init)
    return init, [edit.change for edit in plan_edits(root, config, init, fresh)]


def _plan_tarball(tarball: Path, config: ContainerConfig) -> tuple[Init, list[Change]]:
    from richc.rootfs import copy

    members = [name for name in copy.list_tar(tarball) if _wanted(name)]
    with tempfile.TemporaryDirectory(prefix="richc-plan-") as tmp:
        copy.extract_members(tarball, members, Path(tmp))
        return _plan_tree(Path(tmp), config, fresh=False)


def _plan_uncached_debian(suite: str, config: ContainerConfig, paths: HostPaths,
                          ) -> tuple[Init, list[Change]]:  # fmt: skip
    from richc.rootfs import debian, identity, inits
    from richc.rootfs.mirror import debian_mirror

    flavour = debian.image_flavour(config.init)
    image = debian.image_dir(paths, suite, flavour)
    packages = ",".join(debian.PACKAGES[flavour])
    changes = [
        Change(str(image), "debootstrap", f"minbase {suite} +{packages} from {debian_mirror()}")
    ]
    init = Init.sysvinit if flavour == "sysvinit" else Init.systemd
    if config.init is Init.dumb_init:
        init = Init.dumb_init
    if init is Init.systemd:
        changes += [
            Change(f"/etc/systemd/system/{unit}", "mask", f"{why} (where the unit exists)")
            for unit, why in inits.CONTAINER_MASKS.items()
        ]
    with tempfile.TemporaryDirectory(prefix="richc-plan-") as tmp:
        edits = inits.init_edits(Path(tmp), config, init, fresh=True)
        edits += identity.identity_edits(config)
    return init, changes + [edit.change for edit in edits]


def _plan_disk(image: Path, config: ContainerConfig, paths: HostPaths) -> tuple[Init, list[Change]]:
    """Assemble the image's tree read-only in a private scratch directory, plan it there,
    and release it all again."""
    import vmimport as vi
    from richc.rootfs.importer import wrap

    scratch = Path(
        tempfile.mkdtemp(prefix="richc-plan-", dir=paths.run if paths.run.is_dir() else None)
    )
    try:
        with vi.mounted_tree(image, scratch, config.migrate.root_partition) as tree:
            init, changes = _plan_tree(tree.path, config, fresh=False)
            plan = tree.plan
            steps = [Change("/", "copy", f"the guest tree of {image} ({tree.image.format})")]
            steps += [
                Change(m.target, "merge", f"the guest's {m.fstype} filesystem for {m.target}")
                for m in plan.mounts
                if m.target != "/"
            ]
            steps += [
                Change(d.target, "drop", f"{d.spec} ({d.fstype}): {d.reason}") for d in plan.dropped
            ]
            return init, [*steps, *changes]
    except vi.VmImportError as exc:
        raise wrap(exc) from None
    finally:
        import shutil

        with contextlib.suppress(OSError):
            vi.cleanup(scratch)
        shutil.rmtree(scratch, ignore_errors=True)


# What the fix-ups read of a live host, fetched for a dry run (the copy itself is all of it).
LIVE_PLAN_PATHS = ("/etc/", "/sbin/", "/usr/sbin/", "/lib/systemd/", "/usr/lib/systemd/")


def _plan_live_host(url: str, config: ContainerConfig, rootfs: Path) -> tuple[Init, list[Change]]:
    import vmimport as vi
    from richc.rootfs.importer import ssh_options, wrap
    from richc.run import run

    source = vi.parse_source(url)
    with tempfile.TemporaryDirectory(prefix="richc-plan-") as tmp:
        argv = vi.rsync_argv(source, tmp, ssh_options(config), [])
        # Only what the fix-ups read: the top-level links (usr-merge), then those paths.
        wanted: list[str] = []
        for path in LIVE_PLAN_PATHS:
            parts = path.strip("/").split("/")
            wanted += [f"--include=/{'/'.join(parts[:i])}/" for i in range(1, len(parts))]
            wanted.append(f"--include={path}***")
        filters = [*wanted, "--include=/*", "--exclude=/*/**"]
        argv = [*argv[:-2], *filters, *argv[-2:]]
        try:
            run(argv, hint="check that the host answers ssh with the key given (--ssh-key)")
        except vi.VmImportError as exc:
            raise wrap(exc) from None
        init, changes = _plan_tree(Path(tmp), config, fresh=False)
    step = Change(str(rootfs), "sync", f"rsync of {source} over ssh")
    return init, [step, *changes]


def plan(config: ContainerConfig, paths: HostPaths, rootfs: Path) -> tuple[Init, list[Change]]:
    """The init a create would use and every change it would make, touching nothing."""
    from richc.rootfs import debian, sources
    from richc.rootfs.sources import Kind

    source = sources.parse(config.source)
    if source.kind is Kind.busybox:
        from richc.rootfs import busybox

        return busybox.plan(config, paths)
    if source.kind is Kind.dir:
        sources.check_outside(source, paths.containers)
        copy_step = Change(str(rootfs), "copy", f"a copy of {source.path}")
        init, changes = _plan_tree(source.path, config, fresh=False)
        return init, [copy_step, *changes]
    if source.kind is Kind.tar:
        step = Change(str(rootfs), "extract", f"the tarball {source.path}")
        init, changes = _plan_tarball(source.path, config)
        return init, [step, *changes]
    if source.kind is Kind.disk:
        return _plan_disk(source.path, config, paths)
    if source.kind is Kind.ssh:
        return _plan_live_host(source.value, config, rootfs)
    image = debian.cached(paths, source.value, config.init)
    if image is None:
        init, changes = _plan_uncached_debian(source.value, config, paths)
        image = debian.image_dir(paths, source.value, debian.image_flavour(config.init))
    else:
        init, changes = _plan_tree(image, config, fresh=True)
    from richc.rootfs import share

    if config.disk.size is None and share.overlay_supported():
        step = Change(str(rootfs), "overlay", f"shares the image {image} read-only")
    else:
        step = Change(str(rootfs), "copy", f"a copy of the image {image}")
    return init, [step, *changes]
