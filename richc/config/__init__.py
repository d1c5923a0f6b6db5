"""The container config model: a YAML document and command-line flags, merged and validated.

Flags win over the file. Validation errors name the key and the value. The result is a frozen
:class:`ContainerConfig`; :meth:`ContainerConfig.to_dict` is the normalised form the store
writes to ``config.yaml``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Re-exported: callers name them through the config model (cfg.Limits, cfg.LIMIT_KEYS).
from richc.config.limits import DEVICE_LIMIT_KEYS as DEVICE_LIMIT_KEYS
from richc.config.limits import LIMIT_KEYS as LIMIT_KEYS
from richc.config.limits import Limits as Limits
from richc.config.limits import parse_limits
from richc.config.migrate import MigrateConfig as MigrateConfig
from richc.config.migrate import parse_migrate
from richc.config.net import DEFAULT_NETWORK, parse_net
from richc.config.net import NetConfig as NetConfig
from richc.config.net import NicConfig as NicConfig
from richc.config.security import SecurityConfig as SecurityConfig
from richc.config.security import parse_security
from richc.errors import ConfigError, NotFound, UsageError
from richc.sizes import parse_cpus, parse_positive_int, parse_size

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOOK_STAGES = ("prestart", "poststart", "prestop", "poststop")
# richc's own annotations (hooks' io.richc.*, runc's config.json org.richc.*): a user's
# annotation of the same name would make hooks and `when` conditions see a lie.
RESERVED_ANNOTATION_PREFIXES = ("io.richc.", "org.richc.")


class Init(enum.StrEnum):
    auto = "auto"
    systemd = "systemd"
    sysvinit = "sysvinit"
    busybox = "busybox"
    dumb_init = "dumb-init"


class RuntimeName(enum.StrEnum):
    auto = "auto"
    lxc = "lxc"
    runc = "runc"


class RestartPolicy(enum.StrEnum):
    no = "no"
    on_failure = "on-failure"
    always = "always"


def validate_name(name: object, key: str = "name") -> str:
    text = "" if name is None else str(name)
    if not NAME_RE.match(text):
        raise ConfigError(
            key,
            name,
            "invalid container name",
            hint="use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit"
            " and not ending with '-' (the name is also the hostname and unit instance)",
        )
    return text


@dataclass(frozen=True)
class DiskConfig:
    size: int | None = None
    backend: str = "auto"
    mode: str = "strict"  # or "best-effort": warn instead of failing when nothing can enforce
    inodes: int | None = None  # files and directories the rootfs may hold

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.backend, "mode": self.mode}
        if self.size is not None:
            out["size"] = self.size
        if self.inodes is not None:
            out["inodes"] = self.inodes
        return out


@dataclass(frozen=True)
class HookRef:
    path: str
    args: tuple[str, ...] = ()
    timeout: float | None = None
    on_failure: str = "fail"  # or "warn"
    env: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.args:
            out["args"] = list(self.args)
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.on_failure != "fail":
            out["on_failure"] = self.on_failure
        if self.env:
            out["env"] = dict(self.env)
        return out


@dataclass(frozen=True)
class ContainerConfig:
    name: str
    source: str = "busybox"
    init: Init = Init.auto
    hostname: str = ""
    limits: Limits = field(default_factory=Limits)
    disk: DiskConfig = field(default_factory=DiskConfig)
    lxcfs: bool = True
    runtime: RuntimeName = RuntimeName.auto
    env: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()  # OCI annotations: hooks and config.json
    hooks: tuple[tuple[str, tuple[HookRef, ...]], ...] = ()
    net: NetConfig = field(default_factory=NetConfig)
    restart: RestartPolicy = RestartPolicy.no
    stop_timeout: int = 10
    stop_signal: str | None = None
    command: tuple[str, ...] = ()
    security: SecurityConfig = field(default_factory=SecurityConfig)
    migrate: MigrateConfig = field(default_factory=MigrateConfig)

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def hooks_for(self, stage: str) -> tuple[HookRef, ...]:
        return dict(self.hooks).get(stage, ())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "from": self.source,
            "init": self.init.value,
            "hostname": self.hostname,
            "limits": self.limits.to_dict(),
            "disk": self.disk.to_dict(),
            "lxcfs": self.lxcfs,
            "runtime": self.runtime.value,
            "env": dict(self.env),
            "hooks": {stage: [h.to_dict() for h in refs] for stage, refs in self.hooks},
            "net": self.net.to_dict(),
            "restart": self.restart.value,
            "stop_timeout": self.stop_timeout,
        }
        if self.stop_signal:
            out["stop_signal"] = self.stop_signal
        if self.command:
            out["command"] = list(self.command)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.security != SecurityConfig():
            out["security"] = self.security.to_dict()
        if self.migrate.to_dict():
            out["migrate"] = self.migrate.to_dict()
        return out

    def with_changes(self, **changes: Any) -> ContainerConfig:
        return replace(self, **changes)


KNOWN_KEYS = {
    "name", "from", "init", "hostname", "limits", "disk", "lxcfs", "runtime", "env", "hooks",
    "net", "restart", "stop_timeout", "stop_signal", "command", "annotations", "security",
    "migrate",
}  # fmt: skip


def _enum(cls: type[enum.StrEnum], key: str, value: object) -> Any:
    try:
        return cls(str(value))
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise ConfigError(key, value, f"expected one of: {choices}") from None


def _mapping(key: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "expected a mapping")
    return value


def _parse_disk(raw: object) -> DiskConfig:
    data = _mapping("disk", raw)
    size = data.get("size")
    mode = str(data.get("mode", "strict"))
    if mode not in ("strict", "best-effort"):
        raise ConfigError("disk.mode", mode, "expected strict or best-effort")
    backend = str(data.get("backend", "auto"))
    if backend not in ("auto", "project", "btrfs", "loop"):
        raise ConfigError("disk.backend", backend, "expected one of: auto, project, btrfs, loop")
    inodes = data.get("inodes")
    if inodes is not None:
        inodes = parse_positive_int("disk.inodes", inodes)
        if size is None:
            raise ConfigError(
                "disk.inodes", inodes, "an inode limit needs a disk size", hint="add --disk SIZE"
            )
    return DiskConfig(
        size=None if size is None else parse_size("disk.size", size),
        backend=backend,
        mode=mode,
        inodes=inodes,
    )


def _parse_env(raw: object) -> tuple[tuple[str, str], ...]:
    data = _mapping("env", raw)
    out: dict[str, str] = {}
    for key, value in data.items():
        if not ENV_KEY_RE.match(str(key)):
            raise ConfigError(f"env.{key}", value, "invalid environment variable name")
        out[str(key)] = "" if value is None else str(value)
    return tuple(sorted(out.items()))


def _parse_annotations(raw: object) -> tuple[tuple[str, str], ...]:
    """OCI annotations are string to string: a YAML ``3`` or ``true`` must be quoted."""
    data = _mapping("annotations", raw)
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError("annotations", key, "an annotation key is a non-empty string")
        if key.startswith(RESERVED_ANNOTATION_PREFIXES):
            raise ConfigError(
                f"annotations.{key}",
                value,
                "reserved for richc's own annotations",
                hint="use a prefix of your own, e.g. com.example.role; richc sets io.richc.*"
                " and org.richc.* itself",
            )
        if not isinstance(value, str):
            raise ConfigError(
                f"annotations.{key}",
                value,
                "an annotation value is a string",
                hint=f"quote it in YAML ({key}: '...'); OCI annotations are strings",
            )
    return tuple(sorted(data.items()))


def _parse_hook(stage: str, raw: object) -> HookRef:
    key = f"hooks.{stage}"
    if isinstance(raw, str):
        raw = {"path": raw}
    data = _mapping(key, raw)
    path = data.get("path")
    if not path or not str(path).startswith("/"):
        raise ConfigError(f"{key}.path", path, "a hook needs an absolute path")
    on_failure = str(data.get("on_failure", "fail"))
    if on_failure not in ("fail", "warn"):
        raise ConfigError(f"{key}.on_failure", on_failure, "expected fail or warn")
    timeout = data.get("timeout")
    if timeout is not None:
        timeout = parse_cpus(f"{key}.timeout", timeout)  # any positive number of seconds
    args = data.get("args", [])
    if not isinstance(args, list):
        raise ConfigError(f"{key}.args", args, "expected a list of strings")
    return HookRef(
        path=str(path),
        args=tuple(str(a) for a in args),
        timeout=timeout,
        on_failure=on_failure,
        env=_parse_env(data.get("env")),
    )


def _parse_hooks(raw: object) -> tuple[tuple[str, tuple[HookRef, ...]], ...]:
    data = _mapping("hooks", raw)
    out = []
    for stage, entries in data.items():
        if stage not in HOOK_STAGES:
            raise ConfigError(
                "hooks", stage, "unknown hook stage", hint=f"stages: {', '.join(HOOK_STAGES)}"
            )
        if not isinstance(entries, list):
            entries = [entries]
        out.append((str(stage), tuple(_parse_hook(stage, e) for e in entries)))
    return tuple(sorted(out, key=lambda item: HOOK_STAGES.index(item[0])))


def normalise_source(value: object) -> str:
    text = str(value or "busybox").strip()
    if text == "busybox" or text.startswith(("debian:", "dir:", "tar:", "oci:", "disk:")):
        return text
    if text.startswith("ssh://"):
        return text
    if text.startswith(("/", ".")):
        path = Path(text).expanduser().absolute()
        tar_suffixes = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst")
        kind = "tar" if path.name.endswith(tar_suffixes) else "dir"
        return f"{kind}:{path}"
    raise ConfigError(
        "from",
        value,
        "unknown source",
        hint="use busybox, debian:SUITE, dir:PATH, tar:PATH, disk:IMAGE or ssh://USER@HOST",
    )


def default_net(source: str) -> NetConfig:
    """A new container that says nothing of networking: images richc builds (busybox,
    debian:SUITE) join the managed default network; a VM's own tree gets none, since its
    network config names addresses only the operator can place (see --keep-ip)."""
    if source == "busybox" or source.startswith("debian:"):
        return NetConfig(mode="nics", nics=(NicConfig(network=DEFAULT_NETWORK),))
    return NetConfig()


def from_dict(data: Mapping[str, Any]) -> ContainerConfig:
    """Validate a merged settings mapping (file keys, with flags already applied)."""
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        bad = sorted(unknown, key=str)[0]
        raise ConfigError(
            bad, data[bad], "unknown setting", hint=f"known: {', '.join(sorted(KNOWN_KEYS))}"
        )
    name = validate_name(data.get("name"))
    hostname = str(data.get("hostname") or name)
    if len(hostname) > 253 or not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", hostname):
        raise ConfigError("hostname", hostname, "invalid host name")
    stop_timeout = data.get("stop_timeout", 10)
    command = data.get("command") or []
    if isinstance(command, str):
        command = [command]
    if not isinstance(command, list) or not all(isinstance(c, str | int | float) for c in command):
        raise ConfigError("command", command, "expected a command line: a string or a list")
    lxcfs = data.get("lxcfs", True)
    if not isinstance(lxcfs, bool):
        raise ConfigError("lxcfs", lxcfs, "expected true or false")
    source = normalise_source(data.get("from"))
    return ContainerConfig(
        name=name,
        source=source,
        init=_enum(Init, "init", data.get("init", "auto")),
        hostname=hostname,
        limits=parse_limits(data.get("limits")),
        disk=_parse_disk(data.get("disk")),
        lxcfs=lxcfs,
        runtime=_enum(RuntimeName, "runtime", data.get("runtime", "auto")),
        env=_parse_env(data.get("env")),
        annotations=_parse_annotations(data.get("annotations")),
        hooks=_parse_hooks(data.get("hooks")),
        net=parse_net(data.get("net"), default=default_net(source)),
        restart=_enum(RestartPolicy, "restart", data.get("restart", "no")),
        stop_timeout=parse_stop_timeout("stop_timeout", stop_timeout),
        stop_signal=str(data["stop_signal"]) if data.get("stop_signal") else None,
        command=tuple(str(c) for c in command),
        security=parse_security(data.get("security")),
        migrate=parse_migrate(data.get("migrate")),
    )


MAX_STOP_TIMEOUT = 86_400  # a day; LXC and runc take the wait as a C int


def parse_stop_timeout(key: str, value: object) -> int:
    seconds = parse_positive_int(key, value)
    if seconds > MAX_STOP_TIMEOUT:
        raise ConfigError(key, value, f"at most {MAX_STOP_TIMEOUT} seconds (a day)")
    return seconds


def load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NotFound(f"config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}",
            hint="check indentation and quoting; the file is one YAML mapping of settings",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a YAML mapping of settings, got {type(data).__name__}")
    return data


def merge(file_data: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay *flags* on *file_data*. Nested mappings (limits, disk, env, hooks) merge by key."""
    merged: dict[str, Any] = dict(file_data)
    for key, value in flags.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            base = merged.get(key)
            inner = dict(base) if isinstance(base, Mapping) else {}
            for inner_key, inner_value in value.items():
                if inner_value is None:
                    continue
                if isinstance(inner_value, list) and isinstance(inner.get(inner_key), list):
                    inner[inner_key] = [*inner[inner_key], *inner_value]
                else:
                    inner[inner_key] = inner_value
            if inner or key in merged:
                merged[key] = inner
        else:
            merged[key] = value
    return merged


def parse_key_values(key: str, items: list[str]) -> dict[str, str]:
    """Parse repeated ``K=V`` flags (``--env``, ``--annotation``)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(key, item, "expected KEY=VALUE")
        out[name] = value
    return out


def parse_hook_flags(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        stage, sep, path = item.partition("=")
        if not sep or stage not in HOOK_STAGES:
            raise ConfigError(
                "--hook", item, "expected STAGE=PATH", hint=f"stages: {', '.join(HOOK_STAGES)}"
            )
        out.setdefault(stage, []).append(path)
    return out
