"""The Debian mirror debootstrap uses: read from the host's apt sources at run time.

Both formats are understood: deb822 ``*.sources`` files (bookworm's default) and the one-line
``sources.list`` format. A mirror is never hard-coded; a host without one gets a clear error.
"""

from __future__ import annotations

from pathlib import Path

from richc.errors import HostUnsupported

APT_DIR = Path("/etc/apt")


def _deb822_entries(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                entries.append(current)
            current, key = {}, ""
            continue
        if line[0] in " \t" and key:  # a continuation line
            current[key] += " " + line.strip()
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        current[key] = value.strip()
    return entries


def _one_line_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        if words[1].startswith("["):  # options: deb [arch=amd64 signed-by=...] URI SUITE
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = ["deb", *words[1:]]
        if len(words) >= 3:
            entries.append({"types": "deb", "uris": words[1], "suites": words[2]})
    return entries


def apt_entries(apt_dir: Path = APT_DIR) -> list[dict[str, str]]:
    """Every enabled ``deb`` entry of the host's apt sources, as deb822-style fields."""
    entries: list[dict[str, str]] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        if path.suffix == ".sources":
            for entry in _deb822_entries(text):
                if entry.get("enabled", "yes").lower() != "no":
                    entries.append(entry)
        elif path.name == "sources.list" or path.suffix == ".list":
            entries.extend(_one_line_entries(text))
    return [e for e in entries if "deb" in e.get("types", "").split()]


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The URI of the host's main Debian archive (not -security, not -updates)."""
    candidates: list[str] = []
    for entry in apt_entries(apt_dir):
        suites = entry.get("suites", "").split()
        # The security archive serves only SUITE-security; a main mirror serves plain suites.
        if not any("-" not in suite and "/" not in suite for suite in suites):
            continue
        candidates.extend(entry.get("uris", "").split())
    for uri in candidates:
        if uri.startswith(("http://", "https://", "file:/", "ftp://")):
            return uri.rstrip("/")
    raise HostUnsupported(
        f"no Debian mirror found in {apt_dir}/sources.list or {apt_dir}/sources.list.d/",
        hint="add a `deb` entry for the Debian archive to the host's apt sources",
    )
