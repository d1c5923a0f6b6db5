"""Reading progress out of the tools' own progress lines, for the Progress callback."""

from __future__ import annotations

import re
from dataclasses import dataclass

# qemu-img convert -p redraws "    (42.17/100%)" with carriage returns.
_QEMU_IMG = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")

# rsync --info=progress2 redraws one line for the whole transfer:
#   "    123,456,789  42%   10.00MB/s    0:00:12 (xfr#3, to-chk=10/20)"
_RSYNC = re.compile(r"^\s*([\d,]+)\s+(\d+)%\s")


def qemu_img_percent(line: str) -> float | None:
    match = _QEMU_IMG.search(line)
    return float(match.group(1)) if match else None


@dataclass(frozen=True)
class RsyncProgress:
    done: int  # bytes sent so far in this run
    percent: int  # rsync's own estimate of the whole run

    @property
    def total(self) -> int | None:
        """The run's total in bytes as rsync's percentage implies it."""
        if self.percent <= 0:
            return None
        return max(self.done, self.done * 100 // self.percent)


def rsync_progress(line: str) -> RsyncProgress | None:
    match = _RSYNC.match(line)
    if match is None:
        return None
    return RsyncProgress(int(match.group(1).replace(",", "")), int(match.group(2)))
