"""Template rendering through jinja's bytecode cache under the run dir (no root)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from richc import templating

HOSTNAME = "rootfs/common/hostname.j2"


@pytest.fixture
def cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "run/richc/templates"
    monkeypatch.setattr(templating, "cache_dir", directory)
    yield directory
    templating._environment.cache_clear()


def test_compiled_templates_are_kept_and_render_the_same(cache_in: Path) -> None:
    plain = templating._environment(None).get_template(HOSTNAME).render(hostname="web01")
    assert templating.render(HOSTNAME, hostname="web01") == plain == "web01\n"
    assert cache_in.stat().st_mode & 0o777 == 0o700  # it holds code that is executed
    kept = list(cache_in.iterdir())
    assert len(kept) == 1 and kept[0].stat().st_size > 0
    # A new process (a fresh environment) loads what the last one compiled.
    templating._environment.cache_clear()
    assert templating.render(HOSTNAME, hostname="db02") == "db02\n"
    assert list(cache_in.iterdir()) == kept


def test_a_vanished_or_unwritable_cache_only_costs_a_compile(
    cache_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert templating.render(HOSTNAME, hostname="web01") == "web01\n"
    shutil.rmtree(cache_in)  # the run dir cleared under a running command
    assert templating.render("rootfs/common/hosts.j2", hostname="a.b", short_hostname="a")
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setattr(templating, "cache_dir", blocked / "templates")  # mkdir fails
    assert templating.render(HOSTNAME, hostname="web01") == "web01\n"


@pytest.mark.parametrize("unsafe", ["world-writable", "symlink"])
def test_a_cache_others_could_write_is_not_used(
    cache_in: Path, tmp_path: Path, unsafe: str
) -> None:
    # Its entries are code that runs as root: a directory another user can fill, or a link
    # to one, is passed over and every template is compiled afresh.
    if unsafe == "world-writable":
        cache_in.mkdir(parents=True)
        cache_in.chmod(0o777)
        looked_in = cache_in
    else:
        looked_in = tmp_path / "elsewhere"
        looked_in.mkdir()
        cache_in.parent.mkdir(parents=True)
        cache_in.symlink_to(looked_in)
    assert templating.render(HOSTNAME, hostname="web01") == "web01\n"
    assert list(looked_in.iterdir()) == []
