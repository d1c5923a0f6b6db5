"""Loop backend: the rootfs is a fixed-size ext4 image, mounted through a loop device.

Works on any host filesystem. The image is preallocated, so the limit is real space set
aside and a full host disk cannot take it away from the container later.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from pathlib import Path

from quota import loopdev
from quota._libc import ioctl
from quota.backend import (
    MAX_INODES,
    StrPath,
    Usage,
    existing_parent,
    fs_size,
    human,
    validate_inodes,
    validate_limit,
)
from quota.errors import (
    InvalidInodeLimit,
    InvalidLimit,
    NotManaged,
    QuotaExceeded,
    QuotaUnsupported,
    ResizeUnsupported,
)
from quota.mounts import EXT4_SUPER_MAGIC, find_mount, fs_magic, is_mount_point, mount, umount
from quota.tools import find_tool, grow_ext4_offline, make_ext4

ALIGN = 1 << 20  # image sizes are whole MiB
MINIMUM = 16 << 20  # below this the journal and metadata leave too little room

# <linux/capability.h>
CAP_SYS_RESOURCE = 24
# <linux/ext4.h>: grow a mounted ext4 to this many blocks (what resize2fs does online).
EXT4_IOC_RESIZE_FS = 0x40086610


def image_path(rootfs: StrPath) -> Path:
    """The image lives next to the rootfs: ``.../NAME/rootfs`` -> ``.../NAME/rootfs.img``."""
    root = Path(os.path.abspath(rootfs))
    return root.with_name(root.name + ".img")


def _aligned(size: int) -> int:
    return -(-size // ALIGN) * ALIGN


def max_inodes(size: int) -> int:
    """The most inodes an ext4 image of *size* bytes can be made with: mkfs.ext4 allows no
    more than one inode per KiB (its smallest -i ratio)."""
    return min(size // 1024, MAX_INODES)


class LoopBackend:
    """An inode limit is the image's inode count, fixed by mkfs.ext4 -N; ext4 cannot change
    it in place, except that a grow adds block groups, each with its share of inodes."""

    name = "loop"
    inode_limits = True

    def check(self, path: StrPath) -> None:
        if not loopdev.available():
            raise QuotaUnsupported(
                f"neither {loopdev.LOOP_CONTROL} nor /dev/loop0 exists: this host has no loop "
                "devices",
                path,
                hint="load the loop module (modprobe loop)",
            )
        if os.geteuid() != 0:
            raise QuotaUnsupported("the loop backend needs root", path)
        if find_tool("mkfs.ext4") is None:
            raise QuotaUnsupported("mkfs.ext4 is not installed", path, hint="install e2fsprogs")
        if not kernel_has_filesystem("ext4"):
            raise QuotaUnsupported(
                "the kernel has no ext4: /proc/filesystems does not list it and no module "
                "provides it",
                path,
                hint="install the kernel's ext4 module, or use another --disk-backend",
            )
        existing_parent(path)

    def prepare(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        parent = Path(rootfs).parent
        self.check(parent)
        size = _aligned(limit_bytes)
        validate_limit(size, parent, minimum=MINIMUM, available_only=True)
        validate_inodes(inodes)
        if inodes is not None and inodes > max_inodes(size):
            raise InvalidInodeLimit(
                f"an inode limit of {inodes} is more than a {human(size)} ext4 image can hold "
                f"(at most {max_inodes(size)}, one per KiB)",
                rootfs,
                hint="choose a larger --disk or fewer --disk-inodes",
            )
        image = image_path(rootfs)
        if os.path.lexists(rootfs) and any(os.scandir(rootfs)):
            raise FileExistsError(errno.EEXIST, "exists and is not empty", os.fspath(rootfs))
        try:
            self._create_image(image, size)
            make_ext4(image, label=Path(rootfs).parent.name, inodes=inodes)
            Path(rootfs).mkdir(exist_ok=True)
            self.activate(rootfs)
        except BaseException:
            self.remove(rootfs)
            raise

    @staticmethod
    def _create_image(image: Path, size: int) -> None:
        fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _allocate(fd, image, 0, size)
        finally:
            os.close(fd)

    def activate(self, rootfs: StrPath) -> None:
        """Mount the image on the rootfs unless it is mounted there already."""
        image = image_path(rootfs)
        if not image.exists():
            raise NotManaged(f"{os.fspath(rootfs)} has no disk image ({image})", rootfs)
        if is_mount_point(rootfs):
            return
        with loopdev.attached(image) as device:
            mount(device, rootfs, "ext4")

    def set_limit(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        if not image_path(rootfs).exists():
            raise QuotaUnsupported(
                f"{os.fspath(rootfs)} is a plain directory; the loop backend can only limit a "
                "rootfs it created in an image",
                rootfs,
            )
        self.resize(rootfs, limit_bytes, inodes)

    def usage(self, rootfs: StrPath) -> Usage:
        image = image_path(rootfs)
        if not image.exists() or not is_mount_point(rootfs):
            raise NotManaged(f"{os.fspath(rootfs)} is not a mounted disk image", rootfs)
        st = os.statvfs(rootfs)
        return Usage(
            image.stat().st_size,
            (st.f_blocks - st.f_bfree) * st.f_frsize,
            limit_inodes=st.f_files,
            used_inodes=st.f_files - st.f_ffree,
        )

    def resize(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        """Grow live: the image file, then the loop device's capacity, then the mounted
        ext4. ext4 cannot shrink while mounted, so a smaller size is refused, and its inode
        count is fixed, so any other inode count is refused."""
        image = image_path(rootfs)
        current = self.usage(rootfs)
        if inodes is not None and inodes != current.limit_inodes:
            raise ResizeUnsupported(
                f"the loop backend cannot change the inode count of {os.fspath(rootfs)} from "
                f"{current.limit_inodes} to {inodes}: ext4 fixes it when the image is made "
                "(mkfs.ext4 -N)",
                rootfs,
                hint="recreate the container with the new --disk-inodes, or use the project "
                "backend, which changes it live",
            )
        size = _aligned(limit_bytes)
        if size == current.limit_bytes:
            return
        if size < current.limit_bytes:
            if current.used_bytes > limit_bytes:
                raise QuotaExceeded(
                    f"{os.fspath(rootfs)} already holds {human(current.used_bytes)}, more "
                    f"than {human(limit_bytes)}",
                    rootfs,
                )
            raise ResizeUnsupported(
                f"the loop backend cannot shrink {os.fspath(rootfs)} from "
                f"{human(current.limit_bytes)} to {human(size)}: ext4 only shrinks unmounted",
                rootfs,
                hint="recreate the container with the smaller size, or keep the current one",
            )
        _, available = fs_size(image.parent)
        if size - current.limit_bytes > available:
            raise InvalidLimit(
                f"growing to {human(size)} needs {human(size - current.limit_bytes)} more, but "
                f"only {human(available)} is free next to {image}",
                rootfs,
            )
        if _can_resize_online():
            self._grow_image(image, current.limit_bytes, size)
            loopdev.refresh_capacity(find_mount(rootfs).source)
            _grow_ext4(rootfs, size)
        else:
            self._grow_offline(rootfs, image, current.limit_bytes, size)

    @staticmethod
    def _grow_image(image: Path, old: int, new: int) -> None:
        fd = os.open(image, os.O_WRONLY | os.O_CLOEXEC)
        try:
            _allocate(fd, image, old, new - old)
        finally:
            os.close(fd)

    def _grow_offline(self, rootfs: StrPath, image: Path, old: int, new: int) -> None:
        """Without CAP_SYS_RESOURCE the kernel refuses an online ext4 resize. Unmount and
        grow the image with resize2fs, but only if nothing else (a running container's
        mount namespace) still holds the filesystem: resizing a mounted ext4 from outside
        would corrupt it."""
        busy = ResizeUnsupported(
            f"cannot grow {os.fspath(rootfs)} while it is in use: growing a mounted ext4 "
            "needs CAP_SYS_RESOURCE, which this process does not have",
            rootfs,
            hint="stop the container and set the size again; it grows offline then",
        )
        device = find_mount(rootfs).source
        try:
            umount(rootfs)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise busy from None
            raise
        if _in_use(device):
            mount(device, rootfs, "ext4")  # the same, still live filesystem: put it back
            raise busy
        for stale in loopdev.devices_for(image):
            loopdev.detach(stale)
        self._grow_image(image, old, new)
        grow_ext4_offline(image)
        self.activate(rootfs)

    def remove(self, rootfs: StrPath) -> None:
        """Unmount, unbind every loop device still on the image, delete the image."""
        image = image_path(rootfs)
        if os.path.isdir(rootfs) and is_mount_point(rootfs):
            umount(rootfs)
        for device in loopdev.devices_for(image):
            loopdev.detach(device)
        image.unlink(missing_ok=True)


def kernel_has_filesystem(
    fstype: str, proc: Path = Path("/proc"), modules: Path = Path("/lib/modules")
) -> bool:
    """Whether mount(2) can mount *fstype*: built in or loaded (/proc/filesystems), or a
    module the kernel loads on the first mount (request_module("fs-TYPE"), which
    modules.alias maps to a file)."""
    with contextlib.suppress(OSError):
        if fstype in (proc / "filesystems").read_text().split():
            return True
    alias = f"alias fs-{fstype} "
    with (
        contextlib.suppress(OSError),
        open(modules / os.uname().release / "modules.alias") as aliases,
    ):
        return any(line.startswith(alias) for line in aliases)
    return False


def _allocate(fd: int, image: Path, offset: int, length: int) -> None:
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InvalidLimit(
                f"not enough free space for a {human(offset + length)} image at {image}", image
            ) from None
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        os.ftruncate(fd, offset + length)  # the host filesystem cannot preallocate


def _can_resize_online() -> bool:
    """The kernel lets only CAP_SYS_RESOURCE resize a mounted ext4 (ext4_resize_begin)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
    return False


def _in_use(device: str) -> bool:
    """Whether a block device is open exclusively, as a mounted filesystem holds it."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return True
        raise
    os.close(fd)
    return False


def _grow_ext4(rootfs: StrPath, size: int) -> None:
    if fs_magic(rootfs) != EXT4_SUPER_MAGIC:
        raise QuotaUnsupported(f"{os.fspath(rootfs)} is not the ext4 image's mount", rootfs)
    block = os.statvfs(rootfs).f_bsize
    count = ctypes.c_uint64(size // block)
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ioctl(fd, EXT4_IOC_RESIZE_FS, count, rootfs, "EXT4_IOC_RESIZE_FS")
    finally:
        os.close(fd)
