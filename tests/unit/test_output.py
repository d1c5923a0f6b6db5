"""The table and dotted-key views of command output."""

from __future__ import annotations

from richc.cli.output import flatten


def test_flatten_nested_document_to_dotted_keys() -> None:
    data = {
        "name": "web01",
        "disk": {"backend": "loop", "limit_bytes": 64},
        "env": {},
        "hooks": [],
        "ports": ["80", "443"],
        "applied": [{"action": "mask", "path": "/etc/x"}],
    }
    assert flatten(data) == [
        ("name", "web01"),
        ("disk.backend", "loop"),
        ("disk.limit_bytes", 64),
        ("env", None),
        ("hooks", None),
        ("ports", "80, 443"),
        ("applied.0.action", "mask"),
        ("applied.0.path", "/etc/x"),
    ]
