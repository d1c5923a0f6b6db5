"""Durations only a running container exercises: `stop --timeout` and `stop_timeout`.

The in-process properties cannot reach these (a stop needs a container), so the values the
fuzzing pointed at are checked here on one real busybox container each. Same invariants:
no traceback, exit 0/1/2, a refusal naming the field; and the container is not left
half-stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration import conftest as _integration
from tests.integration.conftest import RichcRunner

# The integration tests' fixtures (tests/fuzz's own conftest runs richc in-process).
image_cache = _integration.image_cache
richc_root = _integration.richc_root
richc = _integration.richc
name = _integration.name

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]


def _state(richc: RichcRunner, name: str) -> str:
    return str(json.loads(richc("inspect", name).stdout)["state"])


@pytest.mark.parametrize(
    "value",
    [
        "nan",
        "inf",
        "5",
    ],
)
def test_stop_timeout_flag_on_a_running_container(
    richc: RichcRunner, name: str, value: str
) -> None:
    richc("create", name, "--from", "busybox")
    richc("start", name)
    stop = richc("stop", name, "--timeout", value, check=False)
    assert "Traceback" not in stop.stderr, stop.stderr
    assert stop.returncode in (0, 1, 2), stop.stderr
    if stop.returncode == 0:
        assert _state(richc, name) == "stopped"
    else:
        assert "--timeout" in stop.stderr, stop.stderr


def test_huge_stop_timeout_setting(richc: RichcRunner, name: str, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"name: {name}\nfrom: busybox\nstop_timeout: {2**31}\n")
    created = richc("create", "--config", str(config), check=False)
    if created.returncode != 0:  # refused at create: fine if it names the field
        assert "stop_timeout" in created.stderr, created.stderr
        return
    richc("start", name)
    stop = richc("stop", name, check=False)
    assert "Traceback" not in stop.stderr, stop.stderr
    assert stop.returncode == 0 and _state(richc, name) == "stopped", stop.stderr
