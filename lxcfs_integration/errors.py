"""The exceptions of lxcfs_integration; richc wraps them into its own typed errors once."""

from __future__ import annotations


class LxcfsError(Exception):
    """A failure to find, start, stop or re-attach lxcfs, with an optional hint for the user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class LxcfsNotInstalled(LxcfsError):
    """The lxcfs binary is missing."""


class LxcfsStartError(LxcfsError):
    """lxcfs was started but never served its home within the timeout, or exited early."""
