"""`richc set` request parsing and the all-or-nothing config update (no host involved)."""

from __future__ import annotations

import pytest

from richc import config as cfg
from richc import reconfigure as settings
from richc.errors import ConfigError, UsageError

BASE = cfg.from_dict(
    {"name": "c1", "limits": {"memory": "64M", "pids": 50}, "env": {"A": "1", "B": "2"}}
)


def test_keys_accept_dashes_and_empty_values_remove() -> None:
    request = settings.parse_request(
        ["memory-swap=256M", "cpus=1", "pids=", "env.C=3", "env.A=", "ulimit.nofile=10:20"]
    )
    assert request.limits == {"memory_swap": "256M", "cpus": "1", "pids": None}
    assert request.env == {"C": "3", "A": ""}
    assert request.ulimits == {"nofile": "10:20"}
    new = settings.updated(BASE, request)
    assert new.limits.memory_swap == 256 << 20
    assert new.limits.pids is None
    assert new.limits.memory == 64 << 20  # untouched keys stay
    assert new.env_dict == {"B": "2", "C": "3"}
    assert new.limits.ulimits == (("nofile", 10, 20),)


def test_disk_is_parsed_for_the_quota_module() -> None:
    assert settings.parse_request(["disk=1G"]).disk == 1 << 30
    with pytest.raises(ConfigError):
        settings.parse_request(["disk="])


@pytest.mark.parametrize(
    ("items", "error", "words"),
    [
        (["bogus=1"], UsageError, "unknown setting 'bogus'"),
        (["memory"], UsageError, "expected KEY=VALUE"),
        ([], UsageError, "nothing to set"),
        (["env.1BAD=x"], ConfigError, "invalid environment variable name"),
    ],
)
def test_bad_requests(items: list[str], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        settings.parse_request(items)


@pytest.mark.parametrize(
    ("items", "key"),
    [
        (["pids=100", "memory=2M"], "limits.memory"),
        (["memory=128M", "memory_swap=64M"], "limits.memory_swap"),
        (["cpus=0.001", "pids=10"], "limits.cpus"),
        (["pids=-1"], "limits.pids"),
        (["ulimit.nofile=9:1"], "limits.ulimits.nofile"),
    ],
)
def test_one_invalid_key_refuses_the_whole_request(items: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings.updated(BASE, settings.parse_request(items))
    assert info.value.key == key


def test_messages_say_when_a_change_applies() -> None:
    new = settings.updated(BASE, settings.parse_request(["pids=80", "env.B="]))
    lines = settings._describe(BASE, new, live=True)
    assert lines == [
        "c1: pids = 80 (applies now)",
        "c1: env B removed (new sessions and the next start)",
    ]
    assert settings._describe(BASE, new, live=False)[0].endswith("(applies at the next start)")
