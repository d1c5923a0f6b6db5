"""Host-side pieces of richc's secure defaults: user-namespace id ranges, idmapped mounts,
the ownership-shift fallback, seccomp, masked paths, AppArmor and an escape probe.
Standalone: imports nothing from richc."""
