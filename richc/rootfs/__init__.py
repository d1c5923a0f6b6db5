"""Building a container's rootfs from a source, and the files richc renders into it.

One pipeline for every source: get the tree (a cached image, shared through overlayfs,
or a copy of a directory or tarball), find its init, then plan and apply the edits it
needs (per-init files, container and VM fix-ups, identity). The same planning code, run
read-only, is what ``create --dry-run`` prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from richc.config import ContainerConfig, Init

if TYPE_CHECKING:
    from pathlib import Path

    from richc.paths import HostPaths
    from richc.rootfs.edit import Edit
    from richc.state import State
    from richc.store import ContainerDir


# Re-exported: callers name them as richc.rootfs.*.
from richc.rootfs.model import Change as Change
from richc.rootfs.model import RootfsResult as RootfsResult


def resolve_init(root: Path, requested: Init) -> Init:
    from richc.rootfs import detect

    if requested is Init.auto:
        return detect.detect(root)
    detect.check(root, requested)
    return requested


def plan_edits(root: Path, config: ContainerConfig, init: Init, fresh: bool) -> list[Edit]:
    """Every edit the tree at *root* needs, computed by reading it only.

    *fresh* is True for a tree from a cached image (it gets its own machine id and the
    host's resolvers); a migrated VM keeps the ones it has.
    """
    from richc.rootfs import identity, inits, vmfix

    return [
        *vmfix.plan(root, config, init),
        *inits.init_edits(root, config, init, fresh),
        *identity.identity_edits(config),
    ]


def populate(
    config: ContainerConfig, cdir: ContainerDir, paths: HostPaths, state: State
) -> RootfsResult:
    """Fill the container's (empty) rootfs from the config's source and fix it up."""
    from richc.rootfs import sources
    from richc.rootfs.sources import Kind

    source = sources.parse(config.source)
    target = cdir.rootfs
    if source.kind is Kind.busybox:
        from richc.rootfs import busybox

        return busybox.populate(config, cdir, paths, state)
    from richc.rootfs import copy, debian, share

    steps: list[Change] = []
    if source.kind is Kind.debian:
        debian.image_flavour(config.init)  # refuses --init busybox before a debootstrap
        image = debian.ensure_image(paths, source.value, config.init)
        if config.disk.size is None and share.try_mount(state, image, cdir):
            steps.append(Change(str(target), "overlay", f"shares the image {image} read-only"))
        else:
            copy.copy_tree(image, target, f"copying {image.parent.name}")
            steps.append(Change(str(target), "copy", f"a copy of the image {image}"))
    elif source.kind is Kind.dir:
        sources.check_outside(source, paths.containers)
        copy.copy_tree(source.path, target)
        steps.append(Change(str(target), "copy", f"a copy of {source.path}"))
    elif source.kind is Kind.disk:
        from richc.rootfs import importer

        steps += importer.from_disk(source.path, target, cdir, config)
    elif source.kind is Kind.ssh:
        from richc.rootfs import importer

        steps += importer.from_host(source.value, target, config)
    else:
        copy.extract_tar(source.path, target)
        steps.append(Change(str(target), "extract", f"the tarball {source.path}"))
    init = resolve_init(target, config.init)
    edits = plan_edits(target, config, init, fresh=source.cached)
    for edit in edits:
        edit.run(target)
    return RootfsResult(init=init, changes=steps + [edit.change for edit in edits])
