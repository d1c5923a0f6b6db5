"""OCI hook files in the oci-hooks(5) 1.0.0 schema, so a Podman or CRI-O hook works unchanged.

A file looks like::

    {"version": "1.0.0",
     "hook": {"path": "/usr/libexec/oci/hooks.d/my-hook", "args": ["my-hook", "prestart"],
              "env": ["K=V"], "timeout": 10},
     "when": {"always": true},
     "stages": ["prestart", "poststop"]}

``when`` holds conditions, all of which must match (the 1.0.0 semantics): ``always``,
``annotations`` (key regex -> value regex, matched against the container's annotations),
``commands`` (regexes matched against the init's argv[0]) and ``hasBindMounts``. Like
Podman, regexes are searched for anywhere in the string (Go's ``MatchString``).

The OCI stages map onto richc's four. ``createRuntime``, ``createContainer`` and
``startContainer`` all happen between "rootfs ready" and "init runs" in the OCI lifecycle,
which is what richc's ``prestart`` is; richc runs every hook in the host's namespaces, so
a hook written for ``createContainer`` (container namespaces) sees the host's instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from richc.errors import RichcError
from richc.hookrun.model import DEFAULT_TIMEOUT, Hook, MatchInfo, Source, Stage

SCHEMA_VERSION = "1.0.0"

STAGE_MAP: dict[str, Stage] = {
    "prestart": Stage.prestart,
    "createRuntime": Stage.prestart,
    "createContainer": Stage.prestart,
    "startContainer": Stage.prestart,
    "poststart": Stage.poststart,
    "poststop": Stage.poststop,
}


class OciHookError(RichcError):
    """An OCI hook file that does not follow the oci-hooks(5) 1.0.0 schema."""


@dataclass(frozen=True)
class When:
    always: bool | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    commands: tuple[str, ...] = ()
    has_bind_mounts: bool | None = None

    def matches(self, info: MatchInfo) -> bool:
        checks: list[bool] = []
        if self.always is not None:
            checks.append(self.always)
        # Every annotation pair must be matched by some annotation of the container.
        checks += [
            any(re.search(kr, k) and re.search(vr, v) for k, v in info.annotations)
            for kr, vr in self.annotations
        ]
        if self.commands:
            checks.append(any(re.search(pattern, info.command) for pattern in self.commands))
        if self.has_bind_mounts is not None:
            # As in Podman: `false` is not "has none", it is a condition that never holds.
            checks.append(self.has_bind_mounts and info.has_bind_mounts)
        return bool(checks) and all(checks)

    def describe(self) -> str:
        parts = []
        if self.always is not None:
            parts.append(f"always={str(self.always).lower()}")
        parts += [f"annotation {k}={v}" for k, v in self.annotations]
        parts += [f"command ~ {c}" for c in self.commands]
        if self.has_bind_mounts is not None:
            parts.append(f"hasBindMounts={str(self.has_bind_mounts).lower()}")
        return ", ".join(parts)


@dataclass(frozen=True)
class OciHookFile:
    file: Path
    path: Path
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    timeout: float
    when: When
    stages: tuple[str, ...]  # as written, OCI names

    def richc_stages(self) -> tuple[Stage, ...]:
        return tuple(dict.fromkeys(STAGE_MAP[s] for s in self.stages))

    def hook(self) -> Hook:
        return Hook(
            name=self.file.stem,
            source=Source.oci,
            path=self.path,
            argv=self.argv,
            env=self.env,
            timeout=self.timeout,
            origin=self.file,
        )


def load(file: Path) -> OciHookFile:
    """Read and validate one hook file; OciHookError names the file and the bad key."""
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise OciHookError(f"{file}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OciHookError(f"{file}: not valid JSON: {exc}", hint=_HINT) from None
    return parse(file, data)


_HINT = "see oci-hooks(5): version, hook {path, args, env, timeout}, when, stages"


def _fail(file: Path, key: str, problem: str) -> OciHookError:
    return OciHookError(f"{file}: {key}: {problem}", hint=_HINT)


def _strings(file: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(file, key, "expected an array of strings")
    return tuple(value)


def _regex(file: Path, key: str, pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _fail(file, key, f"bad regular expression {pattern!r}: {exc}") from None
    return pattern


def parse(file: Path, data: Any) -> OciHookFile:
    if not isinstance(data, dict):
        raise _fail(file, "(top level)", "expected a JSON object")
    unknown = set(data) - {"version", "hook", "when", "stages"}
    if unknown:
        raise _fail(file, ", ".join(sorted(unknown)), "unknown key")
    version = data.get("version")
    if version != SCHEMA_VERSION:
        raise _fail(file, "version", f"{version!r} is not supported (only {SCHEMA_VERSION})")

    hook = data.get("hook")
    if not isinstance(hook, dict):
        raise _fail(file, "hook", "required, an object with at least path")
    path = hook.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise _fail(file, "hook.path", "required, an absolute path")
    argv = _strings(file, "hook.args", hook["args"]) if "args" in hook else ()
    env_items = _strings(file, "hook.env", hook["env"]) if "env" in hook else ()
    env = []
    for item in env_items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(file, "hook.env", f"{item!r} is not KEY=VALUE")
        env.append((key, value))
    timeout = hook.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _fail(file, "hook.timeout", "must be a number of seconds greater than zero")

    raw_when = data.get("when")
    if not isinstance(raw_when, dict) or not raw_when:
        raise _fail(file, "when", "required, an object with at least one condition")
    unknown = set(raw_when) - {"always", "annotations", "commands", "hasBindMounts"}
    if unknown:
        raise _fail(file, "when." + ", when.".join(sorted(unknown)), "unknown condition")
    for key in ("always", "hasBindMounts"):
        if key in raw_when and not isinstance(raw_when[key], bool):
            raise _fail(file, f"when.{key}", "expected true or false")
    annotations = raw_when.get("annotations", {})
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise _fail(file, "when.annotations", "expected an object of regex: regex")
    when = When(
        always=raw_when.get("always"),
        annotations=tuple(
            (_regex(file, "when.annotations", k), _regex(file, "when.annotations", v))
            for k, v in annotations.items()
        ),
        commands=tuple(
            _regex(file, "when.commands", c)
            for c in _strings(file, "when.commands", raw_when.get("commands", []))
        ),
        has_bind_mounts=raw_when.get("hasBindMounts"),
    )

    stages = _strings(file, "stages", data.get("stages"))
    if not stages:
        raise _fail(file, "stages", "required, at least one stage")
    for stage in stages:
        if stage not in STAGE_MAP:
            raise _fail(file, "stages", f"unknown stage {stage!r} (known: {', '.join(STAGE_MAP)})")

    return OciHookFile(
        file=file,
        path=Path(path),
        # OCI args include argv[0]; with none given, the hook sees its path there.
        argv=argv or (path,),
        env=tuple(env),
        timeout=float(timeout),
        when=when,
        stages=stages,
    )
