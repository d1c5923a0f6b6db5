"""Reading a VM's disk image or a live host into a directory tree, for richc to copy into
a container's rootfs (issue 18).

Disk images (raw, qcow2, vmdk, vdi, vhdx, vhd) are attached read-only, their partitions
found, the root chosen by its /etc/fstab and the guest's other filesystems mounted below
it: :func:`mounted_tree`. Live hosts are copied with rsync over ssh: :mod:`vmimport.livehost`.
Standalone: imports the standard library and itself only.
"""

from vmimport.errors import (
    AmbiguousRoot,
    CleanupIncomplete,
    CopyIncomplete,
    CorruptImage,
    EncryptedRoot,
    HostUnsupported,
    ImageInUse,
    ImageNotFound,
    InvalidSource,
    MountFailed,
    RootNotFound,
    ScratchBusy,
    ScratchFull,
    SourceUnreachable,
    ToolFailed,
    UnknownFormat,
    VmImportError,
)
from vmimport.image import AttachMethod, ImageInfo, detect_format, inspect
from vmimport.leases import cleanup
from vmimport.livehost import SshOptions, SshSource, SyncResult, parse_source, rsync_argv, sync
from vmimport.magic import ImageFormat
from vmimport.mounted import MountedTree, mounted_tree
from vmimport.root import Dropped, MountPlan, PlannedMount
from vmimport.tools import Progress
from vmimport.volumes import Volume

__all__ = [
    "AmbiguousRoot",
    "AttachMethod",
    "CleanupIncomplete",
    "CopyIncomplete",
    "CorruptImage",
    "Dropped",
    "EncryptedRoot",
    "HostUnsupported",
    "ImageFormat",
    "ImageInUse",
    "ImageInfo",
    "ImageNotFound",
    "InvalidSource",
    "MountFailed",
    "MountPlan",
    "MountedTree",
    "PlannedMount",
    "Progress",
    "RootNotFound",
    "ScratchBusy",
    "ScratchFull",
    "SourceUnreachable",
    "SshOptions",
    "SshSource",
    "SyncResult",
    "ToolFailed",
    "UnknownFormat",
    "VmImportError",
    "Volume",
    "cleanup",
    "detect_format",
    "inspect",
    "mounted_tree",
    "parse_source",
    "rsync_argv",
    "sync",
]
