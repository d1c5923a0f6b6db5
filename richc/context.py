"""What every operation needs: where the host state is, and the store over it."""

from __future__ import annotations

from dataclasses import dataclass

from richc.paths import HostPaths
from richc.store import Store


@dataclass(frozen=True)
class Context:
    paths: HostPaths
    debug: bool = False

    @property
    def store(self) -> Store:
        return Store(self.paths)
