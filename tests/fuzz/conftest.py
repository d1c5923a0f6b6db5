"""Fuzzing richc's input handling with hypothesis, in-process.

Each case calls :func:`richc.cli.main` (what the console script runs) with its argv, so a
case costs milliseconds: only validation and `create --dry-run` paths, which never touch a
container. Profiles: ``ci`` (the default, 60 examples per property) and ``scheduled``
(``HYPOTHESIS_PROFILE=scheduled``: 10,000); ``RICHC_FUZZ_EXAMPLES=N`` sets any other count.

Invariants every property checks (:func:`check_outcome`): no traceback, an exit status of
0, 1 or 2, and a refusal that says ``error:`` and names the field it refuses.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # the first case of a property pays richc's imports
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "derandomize": False,
}
settings.register_profile("ci", max_examples=60, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("scheduled", max_examples=10_000, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("quick", max_examples=20, **_COMMON)  # type: ignore[arg-type]
# A run between the two (an hour's budget rather than a night's): RICHC_FUZZ_EXAMPLES=1000.
if os.environ.get("RICHC_FUZZ_EXAMPLES"):
    settings.register_profile(
        "custom",
        max_examples=int(os.environ["RICHC_FUZZ_EXAMPLES"]),
        **_COMMON,  # type: ignore[arg-type]
    )
    os.environ.setdefault("HYPOTHESIS_PROFILE", "custom")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"richc {self.argv!r} -> {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class InProcessRichc:
    """richc's CLI called in this process, under a private root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *args: str) -> Outcome:
        from richc.cli import main

        out, err = io.StringIO(), io.StringIO()
        argv = ("--root", str(self.root), *args)
        # main binds the log context of its operation (richc.log): in a process that runs
        # other tests after these, each call gets a context of its own.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = contextvars.copy_context().run(main, list(argv))
        return Outcome(tuple(args), code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("richc-fuzz") / "root"
    (root / "var/lib/richc").mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cli(fuzz_root: Path) -> InProcessRichc:
    return InProcessRichc(fuzz_root)


def check_outcome(outcome: Outcome, *fields: str, report: bool = False) -> None:
    """The invariants: no traceback, exit 0/1/2, and a refusal naming one of *fields*.

    *report*: the command's exit 1 is a finding it reports on stdout (`hooks validate`),
    not an error."""
    assert "Traceback" not in outcome.stderr, str(outcome)
    assert "richc hit a bug" not in outcome.stderr, str(outcome)
    assert outcome.code in (0, 1, 2), str(outcome)
    if outcome.code == 1 and not report:
        assert outcome.stderr.startswith("error: "), str(outcome)
    if outcome.code != 0 and fields:
        assert any(f in outcome.stderr for f in fields), f"no mention of {fields}: {outcome}"


FuzzYaml = Callable[[object], Path]


@pytest.fixture(scope="session")
def fuzz_yaml(tmp_path_factory: pytest.TempPathFactory) -> FuzzYaml:
    """Write a document to a YAML file (a str is written as it is: garbage stays garbage)."""
    import yaml

    path = tmp_path_factory.mktemp("richc-fuzz-yaml") / "config.yaml"

    def write(document: object) -> Path:
        if isinstance(document, str):
            path.write_text(document, errors="surrogateescape")
        else:
            path.write_text(yaml.safe_dump(document, allow_unicode=True))
        return path

    return write
