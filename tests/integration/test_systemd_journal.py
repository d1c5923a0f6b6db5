"""richc's records, and its hooks' output, in a real journald, with their RICHC_* fields.

This host has no systemd as PID 1, but systemd-journald runs on its own: the test gives it
a private mount namespace (a fresh tmpfs on /run, so it listens on a private
/run/systemd/journal/socket and writes a volatile journal under /run/log/journal), runs
richc there against a private --root, and reads the journal back with journalctl.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import RICHC, RichcRunner

pytestmark = pytest.mark.integration

JOURNALD = Path("/lib/systemd/systemd-journald")

SCRIPT = r"""#!/bin/bash
set -euo pipefail
root=$1 name=$2 out=$3 hook=$4
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd /run/log
# journald writes to /run/log/journal until told to flush; the tmpfs makes sure nothing
# could reach the host's /var/log/journal even then.
if [ -d /var/log/journal ]; then
    mount -t tmpfs tmpfs /var/log/journal
fi
{journald} &
journald=$!
trap 'kill $journald; wait $journald || true' EXIT
for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
export RICHC_ROOT=$root
{richc} create "$name" --no-lxcfs --hook "prestart=$hook" 2>"$out.create"
{richc} start --foreground "$name" 2>"$out.supervise" &
supervisor=$!
for _ in $(seq 200); do
    pid=$({richc} inspect "$name" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"] or "")')
    [ -n "$pid" ] && break; sleep 0.1
done
kill -KILL "$pid"                      # the init dies: the supervisor logs it and exits 7
status=0; wait $supervisor || status=$?
echo "$status" > "$out.status"
{richc} rm "$name" 2>"$out.rm"
journalctl --sync 2>/dev/null || true
journalctl -D /run/log/journal --no-pager -o json SYSLOG_IDENTIFIER=richc > "$out"
journalctl -D /run/log/journal --no-pager -o json SYSLOG_IDENTIFIER=richc-hook > "$out.hooks"
"""


@pytest.mark.skipif(not JOURNALD.exists(), reason="systemd-journald is not installed")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is missing")
def test_records_reach_journald_with_structured_fields(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    script = tmp_path / "journal.sh"
    script.write_text(SCRIPT.replace("{journald}", str(JOURNALD)).replace("{richc}", str(RICHC)))
    script.chmod(0o755)
    out = tmp_path / "journal.json"
    hook = tmp_path / "announce"
    hook.write_text('#!/bin/sh\necho "announcing $RICHC_NAME to the CMDB"\n')
    hook.chmod(0o755)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", str(script), str(richc_root), name,
         str(out), str(hook)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path(f"{out}.status").read_text().strip() == "7", Path(f"{out}.supervise").read_text()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    ours = [r for r in records if r.get("RICHC_CONTAINER") == name]
    by_message = {r["MESSAGE"]: r for r in ours}

    running = next(r for m, r in by_message.items() if m.startswith(f"{name} running"))
    assert running["RICHC_OPERATION"] == "supervise"
    assert running["PRIORITY"] == "6"
    died = by_message[f"{name}: init died (restart: no)"]
    assert died["PRIORITY"] == "3" and died["RICHC_OPERATION"] == "supervise"
    removed = by_message[f"removed {name}"]
    assert removed["RICHC_OPERATION"] == "rm"
    # With journald there, records go to it, not to the container's richc.log (and stderr
    # of a terminal still shows them).
    assert f"{name}: init died" in Path(f"{out}.supervise").read_text()

    # The hook's own output, as richc-hook records tagged like richc's.
    hooks = [json.loads(line) for line in Path(f"{out}.hooks").read_text().splitlines()]
    said = [r for r in hooks if r["MESSAGE"] == f"| announcing {name} to the CMDB"]
    assert len(said) == 1, [r["MESSAGE"] for r in hooks]
    assert said[0]["RICHC_CONTAINER"] == name
    assert said[0]["RICHC_STAGE"] == "prestart"
    assert said[0]["RICHC_HOOK"] == "container/announce"
    assert said[0]["RICHC_OPERATION"] == "supervise"  # `start --foreground` supervises
    assert said[0]["PRIORITY"] == "6"
