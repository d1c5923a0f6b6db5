"""How a container is migrated from what ops hold: a VM disk image (``disk:IMAGE``) or a
live host (``ssh://USER@HOST[:PORT][/PATH]``), in a config's ``migrate:`` key::

    from: disk:/srv/vms/web01.qcow2
    migrate: {root_partition: 2}          # default: the partition whose fstab mounts /

    from: ssh://root@web01.example.internal
    migrate: {ssh_key: /root/.ssh/migrate, known_hosts: /root/.ssh/known_hosts_vms}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from richc.errors import ConfigError


@dataclass(frozen=True)
class MigrateConfig:
    root_partition: str | None = None  # a partition number, 0 (no table) or VG/LV
    ssh_key: str | None = None
    known_hosts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def parse_migrate(raw: object) -> MigrateConfig:
    if raw is None:
        return MigrateConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("migrate", raw, "expected a mapping")
    unknown = set(raw) - {"root_partition", "ssh_key", "known_hosts"}
    if unknown:
        bad = sorted(unknown, key=str)[0]
        raise ConfigError(f"migrate.{bad}", raw[bad], "unknown migrate setting")
    part = raw.get("root_partition")
    if part is not None:
        text = str(part).strip()
        vg, sep, lv = text.partition("/")
        if not (text.isdigit() or (sep and vg and lv and "/" not in lv)):
            raise ConfigError(
                "migrate.root_partition",
                part,
                "expected a partition number (0: no partition table) or VG/LV",
                hint="e.g. --root-partition 2 or --root-partition vg0/root",
            )
        part = text
    files: dict[str, str | None] = {}
    for key in ("ssh_key", "known_hosts"):
        value = raw.get(key)
        if value is not None:
            path = Path(str(value)).expanduser().absolute()
            if not path.is_file():
                raise ConfigError(f"migrate.{key}", value, "no such file")
            value = str(path)
        files[key] = value
    return MigrateConfig(part, files["ssh_key"], files["known_hosts"])
