"""``python -m richc.hookrun --root ROOT poststop NAME [...]``: a runtime's poststop callback.

LXC runs it from the container's monitor (``lxc.hook.post-stop``), appending
``NAME lxc post-stop``, whenever the container stops: ``richc stop``, init exiting by
itself, init killed from outside. It deliberately avoids the CLI (typer) to stay cheap, and
it takes no lock: ``richc stop`` may hold the container's lock while it waits for this.
An in-container reboot (``LXC_TARGET=reboot``) is not a stop, so it runs nothing then.
"""

from __future__ import annotations

import os
import sys

USAGE = "usage: python -m richc.hookrun --root ROOT poststop NAME [RUNTIME-ARGS...]"


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--root" or argv[2] != "poststop":
        print(USAGE, file=sys.stderr)
        return 2
    root, name = argv[1], argv[3]
    if os.environ.get("LXC_TARGET") == "reboot":
        return 0
    from richc.context import Context
    from richc.errors import RichcError
    from richc.hookrun import hooklog, stages
    from richc.paths import HostPaths

    ctx = Context(paths=HostPaths.from_root(root))
    try:
        cdir = ctx.store.get(name)
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
