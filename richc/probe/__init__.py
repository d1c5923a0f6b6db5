"""The host probe: what this kernel and host offer, and what richc will use and why.

``probe_host(root)`` reads only files below *root* (``/`` in production, a recorded tree in
tests), plus the live runtime checks of :mod:`richc.probe.tools`. ``features()`` is what the
spec builder consumes; ``HostReport`` is what ``richc doctor`` prints.
"""

from richc.probe.decide import (
    Decision,
    Features,
    RuntimeChoice,
    auto_runtime,
    choose_runtime,
    features,
    host_features,
)
from richc.probe.host import CgroupLayout, HostProbe, probe_host
from richc.probe.kernel import REQUIREMENTS, KernelVersion
from richc.probe.report import SCHEMA_VERSION, HostReport
from richc.probe.tools import RuntimeTools, probe_tools

__all__ = [
    "REQUIREMENTS",
    "SCHEMA_VERSION",
    "CgroupLayout",
    "Decision",
    "Features",
    "HostProbe",
    "HostReport",
    "KernelVersion",
    "RuntimeChoice",
    "RuntimeTools",
    "auto_runtime",
    "choose_runtime",
    "features",
    "host_features",
    "probe_host",
    "probe_tools",
]
