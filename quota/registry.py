"""Project ID registry: a small JSON file mapping directories to their project IDs.

IDs are allocated deterministically (the lowest free one from a base) and never while
the kernel still sees them in use, so a leftover tree from a crash keeps its ID to itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

REGISTRY_NAME = "quota-projects.json"
# Well above the IDs admins hand out by hand in /etc/projid, and below 2**31 so tools
# that read IDs as signed ints agree with us.
FIRST_ID = 100_000
LAST_ID = 2**31 - 1


class ProjectRegistry:
    def __init__(self, path: str | os.PathLike[str], first_id: int = FIRST_ID) -> None:
        self.path = Path(path)
        self.first_id = first_id

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, int]]:
        """Hold the lock, yield the mapping, write it back atomically if it changed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(
            self.path.with_name(self.path.name + ".lock"),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            projects = self._read()
            before = dict(projects)
            yield projects
            if projects != before:
                self._write(projects)
        finally:
            os.close(lock)

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): int(v) for k, v in data.get("projects", {}).items()}

    def _write(self, projects: dict[str, int]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(
            json.dumps({"version": 1, "projects": projects}, indent=2, sort_keys=True) + "\n"
        )
        os.replace(tmp, self.path)

    @staticmethod
    def key(directory: str | os.PathLike[str]) -> str:
        return os.path.abspath(directory)

    def lookup(self, directory: str | os.PathLike[str]) -> int | None:
        return self._read().get(self.key(directory))

    def all(self) -> dict[str, int]:
        return self._read()

    def allocate(self, directory: str | os.PathLike[str], in_use: Callable[[int], bool]) -> int:
        """The ID recorded for *directory*, or the lowest ID that is neither recorded nor
        in use on the filesystem (as *in_use* reports), recorded for it now."""
        with self._locked() as projects:
            key = self.key(directory)
            if key in projects:
                return projects[key]
            taken = set(projects.values())
            for candidate in range(self.first_id, LAST_ID + 1):
                if candidate not in taken and not in_use(candidate):
                    projects[key] = candidate
                    return candidate
        raise OSError("no free project ID left")

    def release(self, directory: str | os.PathLike[str]) -> int | None:
        with self._locked() as projects:
            return projects.pop(self.key(directory), None)
