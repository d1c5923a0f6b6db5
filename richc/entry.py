"""The ``richc`` console script: settings for a short-lived process, then the CLI."""

from __future__ import annotations

import gc


def run() -> None:
    # Importing typer, click and richc allocates some 30,000 objects that live as long as
    # the process; at the default threshold (700) the collector runs about forty young
    # collections over them while they load and frees a few hundred objects: 5-10 ms of a
    # 100 ms command. At 100,000 a short command ends before the first, and a long-lived
    # one (`start --foreground`, `logs --follow`) still collects, only less often. Set
    # before richc.cli is imported, which is where most of them are made.
    gc.set_threshold(100_000)
    from richc.cli import run as cli_run

    cli_run()
