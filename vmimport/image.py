"""A VM disk image: what it is (format by magic, then qemu-img's view of it), whether it
is sound, and making its disk readable as a read-only block device.

The image is never written to. It is opened O_RDONLY here; qemu-img info, check and
convert open their source read-only; raw images sit under a ``losetup --read-only``
device; qemu-nbd serves with --read-only.
"""

from __future__ import annotations

import enum
import fcntl
import io
import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from vmimport import nbd
from vmimport.errors import (
    CorruptImage,
    HostUnsupported,
    ImageInUse,
    ImageNotFound,
    ScratchFull,
    ToolFailed,
    UnknownFormat,
)
from vmimport.leases import Leases
from vmimport.magic import (
    ImageFormat,
    has_partition_table,
    sniff_archive,
    sniff_image,
    sniff_superblock,
)
from vmimport.progress import qemu_img_percent
from vmimport.tools import Progress, find_tool, run

HEAD_BYTES = 65536 + 4096  # reaches the btrfs superblock of a partitionless image
CONVERTED = "disk.raw"

# qemu-img check exit statuses (docs/tools/qemu-img.rst).
CHECK_OK = 0
CHECK_INCOMPLETE = 1
CHECK_CORRUPT = 2
CHECK_LEAKS = 3
CHECK_UNSUPPORTED = 63

SUPPORTED = "raw, qcow2, vmdk, vdi, vhdx or vhd"


class AttachMethod(enum.StrEnum):
    """How a non-raw image becomes a block device: ``auto`` serves it with qemu-nbd where
    the kernel has nbd and converts it otherwise; the others insist."""

    AUTO = "auto"
    CONVERT = "convert"
    NBD = "nbd"


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    format: ImageFormat
    size: int  # the guest disk's size (qemu-img's virtual size)
    allocated: int | None  # bytes the image file takes on disk, where known
    block_device: bool
    backing_chain: tuple[str, ...] = ()  # backing files, nearest first (reported, not refused)
    warnings: tuple[str, ...] = ()


def _read_ends(path: Path) -> tuple[bytes, bytes, int, bool]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ImageNotFound(f"{path}: no such image", path) from None
    except OSError as exc:
        raise ImageNotFound(f"{path}: cannot open: {exc.strerror}", path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            raise ImageNotFound(f"{path}: not a file or a block device", path)
        size = os.lseek(fd, 0, os.SEEK_END)  # works for block devices, unlike st_size
        head = os.pread(fd, HEAD_BYTES, 0)
        tail = os.pread(fd, 512, max(size - 512, 0))
    finally:
        os.close(fd)
    return head, tail, size, stat.S_ISBLK(mode)


def detect_format(path: str | os.PathLike[str]) -> ImageFormat:
    """The image's format from its magic bytes; raw only when a partition table or a
    known filesystem is there. Raise UnknownFormat otherwise."""
    return _detect(Path(path), *_read_ends(Path(path))[:3])


def _detect(path: Path, head: bytes, tail: bytes, size: int) -> ImageFormat:
    fmt = sniff_image(head, tail)
    if fmt is not None:
        return fmt  # a damaged one is caught by qemu-img
    archive = sniff_archive(head)
    if archive is not None:
        kind, hint = archive
        raise UnknownFormat(f"{path} is a {kind} file, not a disk image", path, hint=hint)
    if size < 1024:
        raise UnknownFormat(f"{path}: {size} bytes is too small for a disk image", path)
    if has_partition_table(head):
        return ImageFormat.RAW
    if sniff_superblock(io.BytesIO(head)) is not None:
        return ImageFormat.RAW  # a filesystem (or PV, or LUKS) without a partition table
    raise UnknownFormat(
        f"{path}: not a disk image this tool knows (no {SUPPORTED} header, "
        "no partition table, no filesystem)",
        path,
        hint=f"convert it to one of {SUPPORTED} first (qemu-img convert -O qcow2 ...)",
    )


def _qemu_img(argv: list[str], path: Path, ok: tuple[int, ...] = (0,)) -> str:
    if find_tool("qemu-img") is None:
        raise HostUnsupported(
            f"{path}: reading {argv[2] if len(argv) > 2 else 'this'} images needs qemu-img",
            hint="apt-get install qemu-utils",
        )
    try:
        return run(argv, ok=ok)
    except ToolFailed as exc:
        if '"write" lock' in exc.stderr:
            raise ImageInUse(
                f"{path} is in use by a running VM (qemu holds its lock)",
                path,
                hint="shut the VM down, or import from a snapshot copy",
            ) from None
        lines = exc.stderr.strip().splitlines()
        detail = lines[-1] if lines else f"exit status {exc.returncode}"
        if "backing" in exc.stderr.lower():
            raise CorruptImage(
                f"{path}: its backing file cannot be opened: {detail}",
                path,
                hint="put the backing chain next to it, or flatten it with qemu-img convert",
            ) from None
        raise CorruptImage(f"{path}: qemu-img cannot read it: {detail}", path) from None


def inspect(image: str | os.PathLike[str]) -> ImageInfo:
    """Detect the format, read qemu-img's description of the image and check its metadata.
    Raise ImageNotFound, UnknownFormat, CorruptImage, ImageInUse or HostUnsupported."""
    path = Path(image).absolute()
    head, tail, size, is_block = _read_ends(path)
    fmt = _detect(path, head, tail, size)
    if not fmt.needs_qemu():
        if not is_block and held_by_qemu(path):
            raise ImageInUse(
                f"{path} is in use by a running VM (qemu holds its lock)",
                path,
                hint="shut the VM down, or import from a snapshot copy",
            )
        return ImageInfo(path, fmt, size, None if is_block else _allocated(path), is_block)
    out = _qemu_img(
        ["qemu-img", "info", "-f", fmt.value, "--backing-chain", "--output=json", str(path)], path
    )
    chain = json.loads(out)
    if isinstance(chain, dict):
        chain = [chain]
    top = chain[0]
    specific = top.get("format-specific", {}).get("data", {})
    if specific.get("corrupt"):
        raise CorruptImage(
            f"{path}: qemu marked this {fmt.value} image corrupt",
            path,
            hint="repair a copy with qemu-img check -r all, then import the copy",
        )
    warnings = []
    if top.get("dirty-flag"):
        warnings.append("the image was not closed cleanly (dirty flag set)")
    if fmt.has_check():
        warnings += _check(path, fmt)
    return ImageInfo(
        path=path,
        format=fmt,
        size=int(top["virtual-size"]),
        allocated=top.get("actual-size"),
        block_device=is_block,
        backing_chain=tuple(e.get("filename", "?") for e in chain[1:]),
        warnings=tuple(warnings),
    )


# qemu's block/file-posix.c locks one byte per permission it uses (from 100) and per
# permission it will not share (from 200), as OFD locks.
QEMU_LOCK_START = 100
QEMU_LOCK_END = 300
_FLOCK = "=hh4xqqi4x"  # struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid


def held_by_qemu(path: Path) -> bool:
    """Whether some process (a running VM's qemu) holds a lock on qemu's lock bytes.
    qemu-img info notices that for qcow2 and the like, but not for raw images."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        query = struct.pack(
            _FLOCK, fcntl.F_WRLCK, os.SEEK_SET, QEMU_LOCK_START, QEMU_LOCK_END - QEMU_LOCK_START, 0
        )
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, query)
    finally:
        os.close(fd)
    lock_type: int = struct.unpack(_FLOCK, answer)[0]
    return lock_type != fcntl.F_UNLCK


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def _check(path: Path, fmt: ImageFormat) -> list[str]:
    # A truncated qcow2 still converts "successfully" (reads past the end give zeros), so
    # the metadata check is what tells a damaged image from a sound one.
    argv = ["qemu-img", "check", "-f", fmt.value, "--output=json", str(path)]
    try:
        out = run(argv, ok=(CHECK_OK, CHECK_LEAKS, CHECK_UNSUPPORTED))
    except ToolFailed as exc:
        if exc.returncode not in (CHECK_CORRUPT, CHECK_INCOMPLETE):
            raise CorruptImage(f"{path}: qemu-img check could not read it: {exc}", path) from None
        found = _check_counts(exc.stderr)
        raise CorruptImage(
            f"{path}: qemu-img check found the {fmt.value} image damaged{found}",
            path,
            hint="the file may be truncated or only partly copied; copy it again, "
            "or repair a copy with qemu-img check -r all",
        ) from None
    try:
        result = json.loads(out) if out.strip() else {}
    except json.JSONDecodeError:
        return []
    leaks = result.get("leaks", 0)
    return [f"{leaks} leaked clusters (harmless)"] if leaks else []


def _check_counts(text: str) -> str:
    # The JSON report comes on stdout, which ToolFailed keeps only when stderr is empty;
    # count the ERROR lines instead.
    errors = sum(1 for line in text.splitlines() if line.startswith("ERROR"))
    return f" ({errors} errors)" if errors else ""


def attach(
    info: ImageInfo,
    leases: Leases,
    *,
    method: AttachMethod = AttachMethod.AUTO,
    progress: Progress | None = None,
) -> str:
    """Make the guest disk a read-only block device; return its path (/dev/loopN or
    /dev/nbdN). Everything made is recorded in *leases*."""
    if not info.format.needs_qemu():
        return leases.attach_loop(str(info.path), partscan=True)
    served = method is not AttachMethod.CONVERT and nbd.available()
    if method is AttachMethod.NBD or served:
        device = nbd.free_device() if served else None
        if device is None:
            if method is AttachMethod.NBD:
                raise HostUnsupported(
                    "no free nbd device (the nbd module is missing or every device is busy)",
                    hint="modprobe nbd, or let the image be converted (attach method auto)",
                )
        else:
            leases.connect_nbd(str(info.path), info.format.value, device)
            return device
    raw = convert(info, leases, progress=progress)
    return leases.attach_loop(str(raw), partscan=True)


def convert(info: ImageInfo, leases: Leases, *, progress: Progress | None = None) -> Path:
    """``qemu-img convert`` the image to a sparse raw file in the scratch directory."""
    target = leases.scratch / CONVERTED
    need = info.allocated or 0
    free = _free_bytes(leases.scratch)
    if need > free:
        raise ScratchFull(
            f"converting {info.path.name} needs at least {need >> 20} MiB in "
            f"{leases.scratch}, which has {free >> 20} MiB free",
            leases.scratch,
            hint="free some space or give a scratch directory on a larger filesystem",
        )
    lease = leases.record("file", path=str(target))
    what = f"converting {info.path.name}"

    def on_output(line: str) -> None:
        percent = qemu_img_percent(line)
        if percent is not None and progress is not None:
            progress(int(info.size * percent / 100), info.size, what)

    argv = ["qemu-img", "convert", "-p", "-f", info.format.value, "-O", "raw"]
    try:
        if progress is not None:
            progress(0, info.size, what)
        run([*argv, str(info.path), str(target)], on_output=on_output)
    except ToolFailed as exc:
        leases.release(lease)  # a partial file must not be left behind
        if "No space left" in exc.stderr:
            raise ScratchFull(
                f"{leases.scratch} filled up while converting {info.path.name}",
                leases.scratch,
                hint="free some space or give a scratch directory on a larger filesystem",
            ) from None
        raise CorruptImage(f"{info.path}: conversion failed: {exc}", info.path) from None
    except BaseException:
        leases.release(lease)
        raise
    return target


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
