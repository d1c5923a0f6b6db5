"""The cgroup writes of `richc set` on a running container, each with its undo."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from richc.config.limits import Limits
from richc.errors import RichcError
from richc.spec.cgroupfiles import cgroup_files, reset_value

log = logging.getLogger("richc.set")


class LiveApplyError(RichcError):
    """A cgroup write failed; the writes before it were rolled back."""


@dataclass(frozen=True)
class Write:
    filename: str
    value: str
    undo: str


def _keyed(filename: str) -> bool:
    return filename.startswith("blkio.throttle.") or filename == "io.max"


def _current_line(text: str, device: str) -> str | None:
    for line in text.splitlines():
        if line.split(" ", 1)[0] == device:
            return line
    return None


def plan_writes(
    old: Limits,
    new: Limits,
    version: int,
    read: Any,
    *,
    io_weight_file: str | None = None,
) -> list[Write]:
    """The writes that take a running container from *old* to *new*, each with its undo.

    *read(filename)* returns the file's current text (for the undo values).
    """
    before = cgroup_files(old, version, io_weight_file=io_weight_file)
    after = cgroup_files(new, version, io_weight_file=io_weight_file)
    wanted: list[tuple[str, str]] = [item for item in after if item not in before]
    # Limits that are gone are lifted.
    after_keys = {(f, v.split()[0] if _keyed(f) else "") for f, v in after}
    for filename, value in before:
        key = (filename, value.split()[0] if _keyed(filename) else "")
        if key not in after_keys:
            wanted.append((filename, reset_value(filename, value)))
    if version == 1:
        wanted = _order_v1_memory(wanted, read)
    writes: list[Write] = []
    cache: dict[str, str] = {}
    for filename, value in wanted:
        if filename not in cache:
            cache[filename] = read(filename).strip()
        current = cache[filename]
        if _keyed(filename):
            device = value.split()[0]
            undo = _current_line(current, device) or reset_value(filename, value)
            if filename.startswith("blkio.throttle."):
                undo = " ".join(undo.split()[:2])
        else:
            undo = current
        writes.append(Write(filename, value, undo))
    return writes


def _order_v1_memory(wanted: list[tuple[str, str]], read: Any) -> list[tuple[str, str]]:
    # v1 demands memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every moment:
    # raising both, memsw goes first; lowering both, memory goes first.
    files = [f for f, _ in wanted]
    if "memory.limit_in_bytes" not in files or "memory.memsw.limit_in_bytes" not in files:
        return wanted
    new_memory = dict(wanted)["memory.limit_in_bytes"]
    try:
        current = int(read("memory.limit_in_bytes").strip())
    except (OSError, ValueError):
        return wanted
    rising = int(new_memory) < 0 or int(new_memory) > current
    if not rising:
        return wanted
    swap = [item for item in wanted if item[0] == "memory.memsw.limit_in_bytes"]
    rest = [item for item in wanted if item[0] != "memory.memsw.limit_in_bytes"]
    return swap + rest


def apply_writes(writes: Sequence[Write], write: Any) -> None:
    """Write each value with *write(filename, value)*; on a failure undo the earlier ones."""
    done: list[Write] = []
    for item in writes:
        try:
            write(item.filename, item.value)
        except OSError as exc:
            failed_undo: list[str] = []
            for previous in reversed(done):
                try:
                    write(previous.filename, previous.undo)
                except OSError as undo_exc:
                    failed_undo.append(f"{previous.filename} ({undo_exc.strerror})")
            message = (
                f"cannot write {item.value!r} to {exc.filename or item.filename}: {exc.strerror}"
            )
            hint = _write_hint(item.filename, exc.errno)
            if failed_undo:
                message += "; could not restore " + ", ".join(failed_undo)
            else:
                message += "; nothing was changed"
            raise LiveApplyError(message, hint=hint) from None
        done.append(item)
        log.debug("cgroup %s = %s", item.filename, item.value)


def _write_hint(filename: str, code: int | None) -> str | None:
    if filename.startswith("memory.") and code == 16:  # EBUSY: usage above the new limit
        return "the container uses more memory than the new limit; free some or pick more"
    if filename.startswith("cpuset."):
        return "the CPUs must be online and allowed to the parent cgroup"
    if code == 2:
        return "the kernel does not provide this cgroup file; see `richc doctor`"
    return None
