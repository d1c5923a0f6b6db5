"""Loop devices through /dev/loop-control and the loop ioctls (no losetup)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from quota._libc import StrPath, ioctl, opened

# <linux/loop.h>
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_SET_CAPACITY = 0x4C07
LOOP_CONFIGURE = 0x4C0A  # 5.8+: attach and configure in one step
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_AUTOCLEAR = 4  # detach by itself when the last user (the mount) lets go
LO_NAME_SIZE = 64
LO_KEY_SIZE = 32

LOOP_CONTROL = "/dev/loop-control"


class LoopInfo64(ctypes.Structure):
    _fields_ = [
        ("lo_device", ctypes.c_uint64),
        ("lo_inode", ctypes.c_uint64),
        ("lo_rdevice", ctypes.c_uint64),
        ("lo_offset", ctypes.c_uint64),
        ("lo_sizelimit", ctypes.c_uint64),
        ("lo_number", ctypes.c_uint32),
        ("lo_encrypt_type", ctypes.c_uint32),
        ("lo_encrypt_key_size", ctypes.c_uint32),
        ("lo_flags", ctypes.c_uint32),
        ("lo_file_name", ctypes.c_char * LO_NAME_SIZE),
        ("lo_crypt_name", ctypes.c_char * LO_NAME_SIZE),
        ("lo_encrypt_key", ctypes.c_ubyte * LO_KEY_SIZE),
        ("lo_init", ctypes.c_uint64 * 2),
    ]


class LoopConfig(ctypes.Structure):
    _fields_ = [
        ("fd", ctypes.c_uint32),
        ("block_size", ctypes.c_uint32),
        ("info", LoopInfo64),
        ("reserved", ctypes.c_uint64 * 8),
    ]


def _get_free() -> int:
    if not os.path.exists(LOOP_CONTROL):
        return _scan_free()
    with opened(LOOP_CONTROL, os.O_RDWR) as ctl:
        return ioctl(ctl, LOOP_CTL_GET_FREE, 0, LOOP_CONTROL, "LOOP_CTL_GET_FREE")


def _scan_free(limit: int = 256) -> int:
    """Before 3.1 there is no loop-control: the first /dev/loopN whose status query says
    ENXIO (nothing bound) is free."""
    for number in range(limit):
        device = f"/dev/loop{number}"
        if not os.path.exists(device):
            break
        with opened(device, os.O_RDONLY) as fd:
            try:
                ioctl(fd, LOOP_GET_STATUS64, LoopInfo64(), device, "LOOP_GET_STATUS64")
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    return number
                raise
    raise OSError(errno.ENODEV, "no free loop device (and no /dev/loop-control)")


def available() -> bool:
    """Whether loop devices can be had: through loop-control, or /dev/loop0 and up."""
    return os.path.exists(LOOP_CONTROL) or os.path.exists("/dev/loop0")


def _info(image: str) -> LoopInfo64:
    info = LoopInfo64()
    info.lo_flags = LO_FLAGS_AUTOCLEAR
    info.lo_file_name = os.fsencode(image)[: LO_NAME_SIZE - 1]
    return info


@contextlib.contextmanager
def attached(image: StrPath, attempts: int = 8) -> Iterator[str]:
    """Bind *image* to a free loop device with autoclear set; yield the device path.

    The device stays open while the block runs: with autoclear, the kernel unbinds the
    device when its last opener closes it, so mount it inside the block (the mount then
    holds it) or it is gone again on exit. Another process can take the device between
    LOOP_CTL_GET_FREE and the bind; the bind then fails with EBUSY and we try the next.
    """
    image = os.path.abspath(image)
    with opened(image, os.O_RDWR) as backing:
        for _ in range(attempts):
            device = f"/dev/loop{_get_free()}"
            with opened(device, os.O_RDWR) as fd:
                try:
                    _bind(fd, backing, image, device)
                except OSError as exc:
                    if exc.errno == errno.EBUSY:
                        continue
                    raise
                yield device
                return
    raise OSError(errno.EBUSY, f"no free loop device after {attempts} attempts", image)


def _bind(fd: int, backing: int, image: str, device: str) -> None:
    config = LoopConfig(fd=backing, info=_info(image))
    try:
        ioctl(fd, LOOP_CONFIGURE, config, device, "LOOP_CONFIGURE")
        return
    except OSError as exc:
        # Kernels before 5.8 answer EINVAL or ENOTTY: use the two-step way.
        if exc.errno not in (errno.EINVAL, errno.ENOTTY):
            raise
    ioctl(fd, LOOP_SET_FD, backing, device, "LOOP_SET_FD")
    try:
        ioctl(fd, LOOP_SET_STATUS64, _info(image), device, "LOOP_SET_STATUS64")
    except OSError:
        ioctl(fd, LOOP_CLR_FD, 0, device, "LOOP_CLR_FD")
        raise


def detach(device: StrPath) -> None:
    """Unbind *device*; ENXIO (not bound any more) counts as done."""
    with opened(device, os.O_RDWR) as fd:
        try:
            ioctl(fd, LOOP_CLR_FD, 0, device, "LOOP_CLR_FD")
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise


def refresh_capacity(device: StrPath) -> None:
    """Make the device follow its backing file's new size."""
    with opened(device, os.O_RDWR) as fd:
        ioctl(fd, LOOP_SET_CAPACITY, 0, device, "LOOP_SET_CAPACITY")


def devices_for(image: StrPath, sys_block: StrPath = "/sys/block") -> list[str]:
    """Loop devices currently bound to *image* (found through sysfs)."""
    target = os.path.realpath(image)
    found = []
    for backing in sorted(Path(sys_block).glob("loop*/loop/backing_file")):
        try:
            name = backing.read_text().rstrip("\n")
        except OSError:
            continue  # detached while we looked
        if name.removesuffix(" (deleted)") == target:
            found.append(f"/dev/{backing.parent.parent.name}")
    return found
