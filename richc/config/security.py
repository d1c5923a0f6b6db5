"""A container's security settings in its config: privileged or not, its seccomp filter,
and nesting.

Forms the ``security:`` key accepts (the create flags ``--privileged`` and ``--seccomp``
build the same)::

    security:
      privileged: false        # the default: a user namespace with its own id range
      seccomp: default         # richc's deny list; ``unconfined``: no filter; or a PATH
                               # to a profile (LXC seccomp text or OCI JSON)
      nesting: false           # true: an unmasked /proc and /sys at /dev/.lxc, so
                               # unprivileged containers can start inside (``--nesting``)

A custom profile is validated at create (:func:`check_profile`), where an error names the
file and the line; it is read again at each start, so an edit takes effect then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from richc.errors import ConfigError

DEFAULT = "default"
UNCONFINED = "unconfined"


@dataclass(frozen=True)
class SecurityConfig:
    privileged: bool = False
    seccomp: str = DEFAULT  # default, unconfined or an absolute path
    nesting: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"privileged": self.privileged, "seccomp": self.seccomp}
        if self.nesting:  # written only when chosen: older configs stay as they were
            out["nesting"] = True
        return out

    @property
    def custom_profile(self) -> Path | None:
        if self.seccomp in (DEFAULT, UNCONFINED):
            return None
        return Path(self.seccomp)


def parse_security(raw: object) -> SecurityConfig:
    if raw is None:
        return SecurityConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("security", raw, "expected a mapping (privileged, seccomp, nesting)")
    unknown = set(raw) - {"privileged", "seccomp", "nesting"}
    if unknown:
        bad = sorted(unknown, key=str)[0]
        raise ConfigError(
            f"security.{bad}", raw[bad], "unknown setting",
            hint="known: privileged, seccomp, nesting",
        )  # fmt: skip
    flags = {}
    for key in ("privileged", "nesting"):
        value = raw.get(key, False)
        if value is None:
            value = False
        if not isinstance(value, bool):
            raise ConfigError(f"security.{key}", value, "expected true or false")
        flags[key] = value
    return SecurityConfig(seccomp=parse_seccomp(raw.get("seccomp")), **flags)


def parse_seccomp(value: object, key: str = "security.seccomp") -> str:
    """``default``, ``unconfined`` or a profile path, made absolute."""
    if value is None or value == "":
        return DEFAULT
    text = str(value).strip()
    if text in (DEFAULT, UNCONFINED):
        return text
    if "/" not in text and not text.endswith((".json", ".seccomp")):
        raise ConfigError(
            key, value, "expected default, unconfined or a profile path",
            hint="a path to LXC seccomp text or an OCI JSON profile, e.g. ./my.seccomp",
        )  # fmt: skip
    return str(Path(text).expanduser().absolute())


def check_profile(security: SecurityConfig) -> None:
    """Refuse a custom profile the runtimes would refuse, naming its file and line."""
    path = security.custom_profile
    if path is None:
        return
    from isolation.errors import InvalidProfile
    from isolation.seccomp import load_profile

    try:
        load_profile(path)
    except InvalidProfile as exc:
        raise ConfigError(
            "security.seccomp", str(path), f"not a usable seccomp profile: {exc.message}",
            hint=exc.hint or "see `man lxc.container.conf` (seccomp) or the OCI runtime-spec",
        ) from None  # fmt: skip
