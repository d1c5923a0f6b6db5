"""Parsing of the human units users type: sizes (``512M``, ``1.5G``) and CPU counts."""

from __future__ import annotations

import re

from richc.errors import ConfigError

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(i?[bB])?\s*$")
_SIZE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
# The kernel keeps limits in signed 64-bit counters (memory.limit_in_bytes clamps anything
# bigger to "no limit"): a larger size would be accepted and silently not applied.
MAX_SIZE = (1 << 63) - 1
# PID_MAX_LIMIT on 64-bit (<linux/threads.h>): no pids.max can count past it.
MAX_PIDS = 4 * 1024 * 1024


def parse_size(key: str, value: object) -> int:
    """Return *value* in bytes. Binary multiples: ``1K`` is 1024 bytes, as in LXC and Docker."""
    if isinstance(value, bool):
        raise ConfigError(key, value, "expected a size such as 512M, 1G or 1048576")
    if isinstance(value, int):
        number, unit = float(value), ""
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ConfigError(
                key,
                value,
                "not a size",
                hint="use a positive number of bytes or a suffix K, M, G, T: 512M, 1.5G, 1048576",
            )
        digits, unit = match.group(1), match.group(2).lower()
        if len(digits) > 30:  # float() of hundreds of digits overflows; none is a real size
            raise ConfigError(key, value, "too large", hint="at most 8E (2**63 - 1 bytes)")
        number = float(digits)
    size = int(number * _SIZE_FACTORS[unit])
    if size <= 0:
        raise ConfigError(key, value, "must be greater than zero")
    if size > MAX_SIZE:
        raise ConfigError(
            key, value, "too large: the kernel cannot hold a limit above 2**63 - 1 bytes"
        )
    return size


def parse_cpus(key: str, value: object) -> float:
    try:
        cpus = float(str(value)) if not isinstance(value, bool) else -1.0
    except ValueError:
        cpus = -1.0
    if not 0 < cpus < 1 << 20:  # also refuses nan and inf
        raise ConfigError(key, value, "expected a positive number of CPUs such as 1, 0.5 or 1.5")
    return cpus


def parse_positive_int(key: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, value, "expected a positive whole number")
    try:
        number = int(str(value), 10)
    except ValueError:
        raise ConfigError(key, value, "expected a positive whole number") from None
    if number <= 0:
        raise ConfigError(key, value, "must be greater than zero")
    return number


def parse_cpuset(key: str, value: object) -> tuple[int, ...]:
    """Parse a CPU list such as ``0``, ``0-3`` or ``0,2-3`` into sorted CPU numbers."""
    text = str(value).strip()
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            low = int(first, 10)
            high = int(last, 10) if last else low
            if low < 0 or high < low:
                raise ValueError
            cpus.update(range(low, high + 1))
    except ValueError:
        raise ConfigError(
            key, value, "not a CPU list", hint="write it like 0, 0-3 or 0,2-3"
        ) from None
    return tuple(sorted(cpus))


def format_cpuset(cpus: tuple[int, ...]) -> str:
    """The canonical kernel spelling of a CPU list: ranges joined by commas."""
    ranges: list[str] = []
    start = prev = None
    for cpu in cpus:
        if start is None:
            start = prev = cpu
        elif prev is not None and cpu == prev + 1:
            prev = cpu
        else:
            ranges.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = cpu
    if start is not None:
        ranges.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ",".join(ranges)


def format_size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{size}B"
