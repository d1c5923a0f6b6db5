"""Hooks: operator scripts run at prestart, poststart, prestop and poststop.

(``richc.hookrun`` because the top-level ``hooks/`` directory is data: the built-in hooks
and the examples shipped with richc.)

The contract, the same on every runtime
----------------------------------------
Sources, in running order: built-in ``hooks/builtin/STAGE/*``; ``/etc/richc/hooks.d/STAGE/*``
executables in lexical order; OCI hook files ``/etc/richc/hooks.d/*.json`` (oci-hooks(5)
1.0.0) whose ``when`` matches; the container's own ``hooks:`` (:mod:`.sources`).

Each hook runs on the host, as root, as the leader of its own session, with:

- stdin: the OCI state JSON ``{ociVersion, id, status, pid, bundle, annotations}``
  (``pid`` only while there is an init);
- environment: PATH and locale, ``RICHC_NAME``, ``RICHC_STAGE``, ``RICHC_ROOTFS``,
  ``RICHC_PID`` (while there is an init), ``RICHC_CONFIG`` (the normalised config.yaml),
  ``RICHC_RUNTIME``, ``RICHC_ROOT``, ``RICHC_LOG_DIR``, ``RICHC_INIT``, ``RICHC_HOOK``, then
  the hook's own ``env``; nothing else is inherited;
- a timeout (default 30 s): on expiry its whole process group gets SIGKILL and the hook
  counts as failed; a hook that fails has its process group killed too;
- stdout and stderr captured to ``/var/log/richc/NAME/hooks.log`` and journald, tagged
  with container, stage, hook and richc operation (:mod:`.hooklog`).

Files that are world-writable, not owned by root (when richc runs as root), or in such a
directory are refused (:mod:`.safety`); so are OCI JSON files, which choose what runs.

prestart, poststart and prestop hooks run while richc holds the container's lock:
``richc exec``, ``inspect`` and ``list`` work from a hook, but a lifecycle command on the
same container (``stop``, ``set``) would wait for the lock and fail after 30 s.

Failure policy (:mod:`.stages`): a failed prestart hook aborts the start (poststop hooks
then run to undo earlier prestart work, as in OCI); a failed poststart hook stops the
container unless it is marked ``on_failure: warn``; prestop and poststop failures are
reported and never block a stop.

How a runtime triggers each stage
---------------------------------
- ``prestart``: richc itself (:func:`richc.lifecycle.start`), after the rootfs is ready
  (disk quota image mounted, lxcfs views prepared, runtime config rendered) and right
  before ``Runtime.start``. No init exists yet, so "rootfs there, no init" holds on every
  runtime; mounts a hook makes under ``RICHC_ROOTFS`` are seen by the container, because
  the runtime bind-mounts the rootfs recursively when it starts.
- ``poststart``: richc after ``Runtime.start`` returned the init's pid and the init is
  ready (:mod:`.ready`); skipped with no wait when there are no poststart hooks.
- ``prestop``: richc before ``Runtime.shutdown`` sends the halt signal (``richc stop``,
  ``restart``), while the init still runs.
- ``poststop``: exactly once per run (:func:`.stages.poststop_once`). A runtime that can
  notice the container stopping by itself must call the callback
  (:func:`.claim.callback_argv` + the container's name) when it does: LXC renders it as
  ``lxc.hook.post-stop``, which its monitor runs after init exits for any reason, before
  the container counts as STOPPED. A runtime without such a monitor (runc, run detached)
  must run the same callback from whatever reaps the init (``richc start --foreground``'s
  supervisor, or its ``delete``); ``richc stop`` and ``rm`` call
  :func:`.stages.after_stop`, which runs poststop only if nobody did. ``richc stop``
  claims the hooks (:mod:`.claim`) before the halt signal and runs them itself after the
  init is gone, so LXC's callback, which the stop waits for, exits after reading one file:
  the callback is a shell script (``poststop.sh``) that starts ``python -m richc.hookrun``
  only when no live ``richc stop`` holds the claim.
  An LXC reboot from inside the container is not a stop: neither poststop nor
  prestart/poststart run for it.
"""

# Nothing is imported here: LXC's monitor runs ``python -m richc.hookrun`` on every stop that
# richc stop did not claim, and waits for it, and this package is imported first. The model
# lives in ``.model``.
