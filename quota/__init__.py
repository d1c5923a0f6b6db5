"""Directory disk quotas: a kernel-enforced size limit on a directory tree.

Backends: ``project`` (ext4/xfs project quota), ``btrfs`` (subvolume + qgroup) and
``loop`` (an ext4 image on a loop device). Standalone: imports nothing from richc.
"""

from quota.backend import QuotaBackend, Usage
from quota.errors import (
    BackendUnavailable,
    InvalidInodeLimit,
    InvalidLimit,
    KernelTooOld,
    NotManaged,
    QuotaError,
    QuotaExceeded,
    QuotaNotEnabled,
    QuotaUnsupported,
    ResizeUnsupported,
    ToolFailed,
)
from quota.selection import BACKENDS, Probe, make_backend, probe, probe_all, select_backend

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "InvalidInodeLimit",
    "InvalidLimit",
    "KernelTooOld",
    "NotManaged",
    "Probe",
    "QuotaBackend",
    "QuotaError",
    "QuotaExceeded",
    "QuotaNotEnabled",
    "QuotaUnsupported",
    "ResizeUnsupported",
    "ToolFailed",
    "Usage",
    "make_backend",
    "probe",
    "probe_all",
    "select_backend",
]
