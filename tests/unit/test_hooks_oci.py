"""OCI hook files (oci-hooks(5) 1.0.0): parsing, errors naming file and key, `when` matching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from richc.hookrun import ocihooks as oci
from richc.hookrun.model import MatchInfo, Source, Stage

PODMAN_HOOK = {
    "version": "1.0.0",
    "hook": {
        "path": "/usr/libexec/oci/hooks.d/oci-systemd-hook",
        "args": ["oci-systemd-hook", "prestart"],
        "env": ["container=podman", "EMPTY="],
        "timeout": 5,
    },
    "when": {"commands": [".*/init$", ".*/systemd$"]},
    "stages": ["prestart", "poststop"],
}


def write(tmp_path: Path, data: Any, name: str = "h.json") -> Path:
    file = tmp_path / name
    file.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return file


def test_podman_hook_file_parses_unchanged(tmp_path: Path) -> None:
    parsed = oci.load(write(tmp_path, PODMAN_HOOK))
    assert parsed.path == Path("/usr/libexec/oci/hooks.d/oci-systemd-hook")
    assert parsed.argv == ("oci-systemd-hook", "prestart")
    assert parsed.env == (("container", "podman"), ("EMPTY", ""))
    assert parsed.timeout == 5.0
    assert parsed.richc_stages() == (Stage.prestart, Stage.poststop)
    hook = parsed.hook()
    assert hook.source is Source.oci and hook.name == "h" and hook.label == "oci/h"


def test_args_default_to_the_path_as_argv0(tmp_path: Path) -> None:
    data = {**PODMAN_HOOK, "hook": {"path": "/bin/true"}}
    assert oci.load(write(tmp_path, data)).argv == ("/bin/true",)


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        (["createRuntime"], (Stage.prestart,)),
        (["createContainer", "startContainer", "prestart"], (Stage.prestart,)),
        (["poststart"], (Stage.poststart,)),
        (["poststop", "createRuntime"], (Stage.poststop, Stage.prestart)),
    ],
)
def test_oci_stages_map_onto_richc_stages(
    tmp_path: Path, stages: list[str], expected: tuple[Stage, ...]
) -> None:
    parsed = oci.load(write(tmp_path, {**PODMAN_HOOK, "stages": stages}))
    assert parsed.richc_stages() == expected


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"version": "0.1.0"}, "version"),
        ({"hook": {"path": "relative/hook"}}, "hook.path"),
        ({"hook": {"path": "/x", "args": "not-a-list"}}, "hook.args"),
        ({"hook": {"path": "/x", "env": ["NOEQUALS"]}}, "hook.env"),
        ({"hook": {"path": "/x", "timeout": 0}}, "hook.timeout"),
        ({"hook": {"path": "/x", "timeout": True}}, "hook.timeout"),
        ({"when": {}}, "when"),
        ({"when": {"always": "yes"}}, "when.always"),
        ({"when": {"sometimes": True}}, "when.sometimes"),
        ({"when": {"commands": ["("]}}, "when.commands"),
        ({"when": {"annotations": {"a": 1}}}, "when.annotations"),
        ({"stages": []}, "stages"),
        ({"stages": ["prestop"]}, "stages"),
        ({"extra": 1}, "extra"),
    ],
)
def test_schema_errors_name_the_file_and_key(
    tmp_path: Path, change: dict[str, Any], key: str
) -> None:
    file = write(tmp_path, {**PODMAN_HOOK, **change})
    with pytest.raises(oci.OciHookError) as info:
        oci.load(file)
    assert str(file) in info.value.message and key in info.value.message
    assert info.value.hint and "oci-hooks(5)" in info.value.hint


def test_invalid_json_is_an_error_naming_the_file(tmp_path: Path) -> None:
    file = write(tmp_path, "{not json")
    with pytest.raises(oci.OciHookError, match="not valid JSON"):
        oci.load(file)


INFO = MatchInfo(
    annotations=(("io.richc.name", "web01"), ("com.example.department", "fluid-dynamics")),
    command="/sbin/init",
    has_bind_mounts=True,
)


@pytest.mark.parametrize(
    ("when", "info", "expected"),
    [
        (oci.When(always=True), INFO, True),
        (oci.When(always=False), INFO, False),
        (oci.When(commands=("init$",)), INFO, True),  # searched, not anchored at the start
        (oci.When(commands=("^/usr/bin/systemd$", "bash")), INFO, False),
        (oci.When(annotations=(("department$", "fluid"),)), INFO, True),
        (oci.When(annotations=(("department$", "^physics$"),)), INFO, False),
        # every annotation pair must be matched by some annotation
        (oci.When(annotations=(("name$", "web01"), ("missing", ".*"))), INFO, False),
        (oci.When(has_bind_mounts=True), INFO, True),
        (oci.When(has_bind_mounts=True), MatchInfo(command="/sbin/init"), False),
        (oci.When(has_bind_mounts=False), MatchInfo(), False),  # as Podman: never holds
        # all conditions must hold
        (oci.When(always=True, commands=("systemd",)), INFO, False),
        (oci.When(commands=("init",), annotations=(("name", "web"),)), INFO, True),
        (oci.When(), INFO, False),
    ],
)
def test_when_conditions_all_must_match(when: oci.When, info: MatchInfo, expected: bool) -> None:
    assert when.matches(info) is expected


def test_shipped_podman_style_example_is_valid() -> None:
    from richc.datafiles import hooks_dir

    parsed = oci.load(hooks_dir() / "examples/podman-style.json")
    assert parsed.path.name == "log-lifecycle"
    assert parsed.richc_stages() == (Stage.prestart, Stage.poststop)
    assert parsed.when.matches(MatchInfo(command="/sbin/init"))
    assert not parsed.when.matches(MatchInfo(command="/usr/bin/dumb-init --"))
