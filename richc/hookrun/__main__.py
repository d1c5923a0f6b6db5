"""``python -m richc.hookrun --root ROOT [--claim FILE] poststop NAME [...]``: a runtime's
poststop callback.

LXC runs it from the container's monitor (``lxc.hook.post-stop``), appending
``NAME lxc post-stop``, whenever the container stops: ``richc stop``, init exiting by
itself, init killed from outside. It deliberately avoids the CLI (typer) to stay cheap, and
it takes no lock: ``richc stop`` may hold the container's lock while it waits for this.
``--claim`` names the container's poststop claim (:mod:`.claim`): when a live ``richc stop``
holds it, the callback exits after reading that one file, importing nothing else.
An in-container reboot (``LXC_TARGET=reboot``) is not a stop, so it runs nothing then.
"""

from __future__ import annotations

import os
import sys

USAGE = "usage: python -m richc.hookrun --root ROOT [--claim FILE] poststop NAME [RUNTIME-ARGS...]"


def main(argv: list[str]) -> int:
    claim_file = None
    if len(argv) >= 4 and argv[2] == "--claim":
        claim_file, argv = argv[3], argv[:2] + argv[4:]
    if len(argv) < 4 or argv[0] != "--root" or argv[2] != "poststop":
        print(USAGE, file=sys.stderr)
        return 2
    root, name = argv[1], argv[3]
    if os.environ.get("LXC_TARGET") == "reboot":
        return 0
    if claim_file is not None:
        from richc.hookrun import claim

        # The usual case on `richc stop`: it claimed the hooks before the halt signal and
        # runs them itself; the stop is waiting for this process to exit.
        record = claim.read(os.path.dirname(claim_file))
        if record is not None and not claim.orphaned(record):
            return 0
    return _run_poststop(root, name)


def _run_poststop(root: str, name: str) -> int:
    from richc.context import Context
    from richc.errors import RichcError
    from richc.hookrun import claim, hooklog, stages
    from richc.paths import HostPaths

    ctx = Context(paths=HostPaths.from_root(root))
    try:
        cdir = ctx.store.get(name)
        claim.release_orphan(cdir.run_dir)  # a `richc stop` that died mid-way: run them here
        config = cdir.load_config()
        state = cdir.load_state()
        stages.poststop_once(ctx, cdir, config, state)
    except RichcError as exc:
        # Nobody reads the monitor's stderr: say it where the hooks' output goes.
        log_file = ctx.paths.logs / name / "hooks.log"
        with hooklog.to_container_log(log_file):
            hooklog.logger.error(
                "poststop callback failed: %s", exc.message, extra=hooklog.tags(name, "poststop")
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
