"""Hypothesis-generated files richc reads: YAML container configs (`create --config`) and
OCI hook JSON files in hooks.d (`richc hooks validate`, `richc hooks list`).

Documents come in three shapes: well-formed ones with richc's own keys and random values,
arbitrary YAML/JSON values, and garbage text. Same invariants as the flags: no traceback,
exit 0/1/2, a refusal naming the field (or the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import FuzzYaml, InProcessRichc, check_outcome

pytestmark = pytest.mark.fuzz

TOP_KEYS = [
    "name", "from", "init", "hostname", "limits", "disk", "lxcfs", "runtime", "env", "hooks",
    "net", "restart", "stop_timeout", "stop_signal", "command", "annotations",
]  # fmt: skip
LIMIT_KEYS = [
    "memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares", "cpu_weight",
    "cpuset", "pids", "io_weight", "device_read_bps", "ulimits",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["512M", "1G", "0", "-1", "busybox", "auto", "0-1", "yes", "on-failure"]),
)
# Arbitrary nested YAML-able values; keys are strings (PyYAML dumps others too, but
# safe_dump of a non-str key is valid YAML richc must also survive: some ints are mixed in).
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers(0, 9)), inner, max_size=3),
    ),
    max_leaves=8,
)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A config mapping that looks like richc's: a valid core plus mutated keys."""
    doc: dict[str, Any] = {"name": "fz", "from": "busybox"}
    for key in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=4, unique=True)):
        if key == "limits":
            doc[key] = draw(
                st.dictionaries(st.sampled_from(LIMIT_KEYS), values, max_size=3) | values
            )
        elif key == "hooks":
            hook = st.fixed_dictionaries(
                {"path": st.sampled_from(["/bin/true", "relative", "", "/nonexistent"]) | values},
                optional={"timeout": values, "args": values, "on_failure": values, "env": values},
            )
            doc[key] = draw(
                st.dictionaries(
                    st.sampled_from(["prestart", "poststart", "prestop", "poststop", "bogus"]),
                    st.lists(hook | values, max_size=2),
                    max_size=2,
                )
                | values
            )
        else:
            doc[key] = draw(values)
    if draw(st.booleans()):
        doc[draw(st.text(min_size=1, max_size=8))] = draw(values)  # an unknown key
    return doc


garbage = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.sampled_from(
        [
            "name: [unclosed",
            "{a: 1",
            "- just\n- a list",
            "&a [*a]",
            "name: fz\nfrom: busybox\n\t tab: 1",
            "!!python/object:os.system 'true'",
            "name: !!binary aGVsbG8=\nfrom: busybox",
            "a: &x 1\nb: *y",
            "name: fz\nname: fz2\nfrom: busybox",
            "\ufeffname: fz\nfrom: busybox",
        ]
    ),
)


def _fields_for(document: object, path: Path) -> tuple[str, ...]:
    """What a refusal of *document* may name: one of its keys (top-level or limits.KEY),
    `name` (which it must have), or the file itself (YAML syntax, not a mapping)."""
    names: list[str] = ["name", str(path), "YAML", "config"]
    if isinstance(document, dict):
        names += [str(k) for k in document]
        for key in ("limits", "disk", "hooks", "env", "annotations"):
            if isinstance(document.get(key), dict):
                names += [f"{key}.{k}" for k in document[key]]
    return tuple(names)


@given(document=configs())
@example(document={"name": "fz", "from": "busybox", "limits": {"memory": 2**70}})
@example(document={"name": "fz", "from": "busybox", "stop_timeout": True})
@example(document={"name": "fz", "from": "busybox", "env": {"A": None}})
@example(document={"name": "fz", "from": "busybox", "command": 1})  # was a TypeError
@example(document={"name": "fz", "from": "busybox", "net": {"": None, 0: None}})  # sort crash
@example(document={"name": "fz", "from": "busybox", "hooks": {"prestart": [{"timeout": 1}]}})
def test_config_documents(
    cli: InProcessRichc, fuzz_yaml: FuzzYaml, document: dict[str, Any]
) -> None:
    path = fuzz_yaml(document)
    outcome = cli("create", "--config", str(path), "--dry-run")
    check_outcome(outcome, *_fields_for(document, path))


@given(document=st.one_of(values, garbage))
def test_config_garbage(cli: InProcessRichc, fuzz_yaml: FuzzYaml, document: object) -> None:
    if isinstance(document, str) and _not_utf8(document):
        return  # the reported bug of test_bug_config_not_utf8
    path = fuzz_yaml(document)
    outcome = cli("create", "--config", str(path), "--dry-run")
    check_outcome(outcome, *_fields_for(document, path))


def _not_utf8(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def test_bug_config_not_utf8(cli: InProcessRichc, fuzz_yaml: FuzzYaml) -> None:
    path = fuzz_yaml("name: fz\nfrom: busybox\n# caf\udce9 in latin-1\n")
    check_outcome(cli("create", "--config", str(path), "--dry-run"), str(path))


# --- hook JSON files in hooks.d ----------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False),
        st.text(max_size=15),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def oci_hook_files(draw: st.DrawFn) -> Any:
    """oci-hooks(5) 1.0.0 shaped documents, each field sometimes wrong."""

    def maybe(good: st.SearchStrategy[Any]) -> Any:
        return draw(st.one_of(good, good, json_values))

    hook: dict[str, Any] = {"path": maybe(st.sampled_from(["/bin/true", "/nonexistent", "rel"]))}
    fields: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
        ("args", st.lists(st.text(max_size=8), max_size=3)),
        ("env", st.lists(st.text(max_size=12), max_size=2)),
        ("timeout", st.integers(-5, 100)),
    )
    for key, good in fields:
        if draw(st.booleans()):
            hook[key] = maybe(good)
    when: dict[str, Any] = {}
    conditions: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
        ("always", st.booleans()),
        ("annotations", st.dictionaries(st.text(max_size=8), st.sampled_from(["^db$", "(", ".*"]))),
        ("commands", st.lists(st.sampled_from([".*init$", "[", "sh"]), max_size=2)),
        ("hasBindMounts", st.booleans()),
    )
    for key, good in conditions:
        if draw(st.booleans()):
            when[key] = maybe(good)
    stages = st.lists(
        st.sampled_from(
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop",
                "bogus",
            ]
        ),
        max_size=3,
    )
    doc = {"version": maybe(st.just("1.0.0")), "hook": hook, "when": when, "stages": maybe(stages)}
    for key in draw(st.lists(st.sampled_from(list(doc)), max_size=1)):
        del doc[key]
    return doc


@given(document=st.one_of(oci_hook_files(), json_values, garbage))
@example(document={"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": {"always": True},
                   "stages": ["prestart"]})  # fmt: skip
def test_hook_json_files(cli: InProcessRichc, fuzz_root: Path, document: object) -> None:
    hooks_d = fuzz_root / "etc/richc/hooks.d"
    hooks_d.mkdir(parents=True, exist_ok=True)
    hook_file = hooks_d / "fuzz.json"
    text = document if isinstance(document, str) else json.dumps(document)
    hook_file.write_text(text, errors="surrogateescape")
    try:
        outcome = cli("hooks", "validate", "--format", "json")
        check_outcome(outcome, report=True)
        assert outcome.code in (0, 1), str(outcome)
        findings = json.loads(outcome.stdout)
        mine = [f for f in findings if f["path"] == str(hook_file)]
        assert len(mine) == 1, findings
        if mine[0]["level"] == "error":
            assert outcome.code == 1, str(outcome)
            assert mine[0]["message"], findings
        listed = cli("hooks", "list", "--format", "json")
        check_outcome(listed)
        assert listed.code == 0, str(listed)
    finally:
        hook_file.unlink()
