"""The state store: one directory per container, the only code that knows the layout.

``containers/NAME/config.yaml`` holds the normalised config and ``state.json`` the
schema-versioned state. Both are written atomically (temp file, fsync, rename), so a crash
leaves either the old or the new file, never half of one.

``.config.json`` caches config.yaml parsed, next to the exact text it was parsed from:
every command reads the config, and importing and running a YAML parser costs more than
the rest of `richc exec`. A config.yaml edited by hand no longer matches that text, so it
is parsed again; the cache is never the source of truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from richc import config as cfg
from richc.errors import Busy, Conflict, NotFound, RichcError
from richc.lock import locked
from richc.paths import HostPaths
from richc.state import State

CONFIG_CACHE = ".config.json"


def write_atomic(path: Path, text: str, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace *path* with *text* in one rename; *durable* fsyncs it first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid makes the name unique among richc processes, O_EXCL among a reused pid's
    # leftovers (after a crash); not tempfile, whose import costs more than the write.
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # only a crashed process with this pid can have left it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ContainerDir:
    """The files of one container."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.path = store.paths.containers / name
        self._holds_lock = False

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def lxc_config(self) -> Path:
        return self.path / "config"

    @property
    def lxc_config_key(self) -> Path:
        """What :attr:`lxc_config` was rendered from (the LXC runtime skips an unchanged render)."""
        return self.path / ".config.key"

    @property
    def seccomp_file(self) -> Path:
        """The seccomp profile LXC reads (``lxc.seccomp.profile``), rendered by richc."""
        return self.path / "seccomp.lxc"

    @property
    def bundle(self) -> Path:
        """The OCI bundle directory (runc runtime)."""
        return self.path

    @property
    def log_dir(self) -> Path:
        return self.store.paths.logs / self.name

    @property
    def run_dir(self) -> Path:
        return self.store.paths.run / "containers" / self.name

    def exists(self) -> bool:
        return self.path.is_dir()

    def load_config(self) -> cfg.ContainerConfig:
        try:
            text = self.config_file.read_text()
            data = self._cached_config(text)
            if data is None:
                data = _parse_yaml(text)
                # Only under the lock: a lockless reader (exec, list) writing here could
                # race `richc rm` emptying the directory.
                if self._holds_lock:
                    self._cache_config(text, data)
        except FileNotFoundError:
            raise NotFound(
                f"container {self.name} has no config (a create was interrupted)",
                hint=f"remove it with `richc rm --force {self.name}` and create it again",
            ) from None
        return cfg.from_dict(data)

    def save_config(self, config: cfg.ContainerConfig) -> None:
        import yaml

        data = config.to_dict()
        text = yaml.safe_dump(data, sort_keys=False)
        write_atomic(self.config_file, text)
        self._cache_config(text, data)

    def _cached_config(self, text: str) -> Any:
        try:
            cached = json.loads((self.path / CONFIG_CACHE).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(cached, dict) or cached.get("yaml") != text:
            return None
        return cached.get("config")

    def _cache_config(self, text: str, data: Any) -> None:
        # Best effort, no fsync: a cache lost or unwritable only costs the next reader a
        # parse.
        with contextlib.suppress(OSError):
            cached = json.dumps({"yaml": text, "config": data})
            write_atomic(self.path / CONFIG_CACHE, cached, durable=False)

    def load_state(self) -> State:
        try:
            return State.from_dict(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return State(name=self.name, status="creating")
        except json.JSONDecodeError as exc:
            raise RichcError(
                f"{self.state_file} is corrupt: {exc}",
                hint=f"remove the container with `richc rm --force {self.name}`",
            ) from None

    def save_state(self, state: State) -> None:
        write_atomic(self.state_file, json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n")

    @property
    def lock_file(self) -> Path:
        return self.store.paths.locks / f"{self.name}.lock"

    @contextlib.contextmanager
    def lock(self, wait: float = 30.0) -> Iterator[None]:
        with locked(self.lock_file, self.name, wait=wait):
            held, self._holds_lock = self._holds_lock, True
            try:
                yield
            finally:
                self._holds_lock = held


def _parse_yaml(text: str) -> Any:
    import yaml

    # libyaml's loader is ~10x faster than the pure-Python one.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class Store:
    def __init__(self, paths: HostPaths) -> None:
        self.paths = paths

    def container(self, name: str) -> ContainerDir:
        return ContainerDir(self, cfg.validate_name(name))

    def get(self, name: str) -> ContainerDir:
        cdir = self.container(name)
        if not cdir.exists():
            raise NotFound(f"no container named {name}", hint="`richc list` shows the containers")
        return cdir

    def reserve(self, name: str) -> ContainerDir:
        """Claim *name* atomically: mkdir succeeds for exactly one of two racing creates."""
        cdir = self.container(name)
        self.paths.containers.mkdir(parents=True, exist_ok=True)
        try:
            cdir.path.mkdir(mode=0o750)
        except FileExistsError:
            state = cdir.load_state()
            hint = "choose another name, or remove it with `richc rm`"
            if state.status == "creating":
                hint = _creating_hint(cdir)
            raise Conflict(f"container {name} already exists", hint=hint) from None
        return cdir

    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.paths.containers)
        except FileNotFoundError:
            return []
        return sorted(
            n for n in entries if cfg.NAME_RE.match(n) and (self.paths.containers / n).is_dir()
        )

    def remove(self, cdir: ContainerDir) -> None:
        """Delete the container's files. Refuses to cross into a still-mounted filesystem."""
        _remove_tree(cdir.path)
        shutil.rmtree(cdir.log_dir, ignore_errors=True)
        shutil.rmtree(cdir.run_dir, ignore_errors=True)


def _creating_hint(cdir: ContainerDir) -> str:
    """A container still "creating" is either being created by another richc right now (it
    holds the lock; or it has just made the directory and not yet written its state, which
    it does first thing under the lock) or was left by a create that died: only the second
    may be cleaned up, or `rm --force` would delete the winner of a race."""
    busy = "another richc process is creating it right now; wait for it, or choose another name"
    try:
        with cdir.lock(wait=0):
            pass
    except Busy:
        return busy
    if not cdir.state_file.exists():
        return busy
    return f"an earlier create did not finish; clean up with `richc rm --force {cdir.name}`"


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return

    def onerror(func: Any, failed: str, exc_info: Any) -> None:
        exc = exc_info[1]
        if isinstance(exc, FileNotFoundError):
            return
        raise RichcError(
            f"cannot remove {failed}: {exc}",
            hint="something may still be mounted there; check `findmnt -R " + str(path) + "`",
        )

    # rmtree does not follow symlinks and, with one_file_system-like safety below, will not
    # descend into a mount that a crash left behind: it fails on the busy mount instead.
    from richc.mountinfo import mounts_under

    for mount_point in mounts_under(path):
        raise RichcError(
            f"{mount_point} is still mounted",
            hint=f"unmount it (`umount -R {mount_point}`) or use `richc rm --force`",
        )
    shutil.rmtree(path, onerror=onerror)
