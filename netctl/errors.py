"""The errors of netctl: a message a user can act on and an optional hint. richc wraps them
once into its own typed errors; other callers can catch the subclass they care about."""

from __future__ import annotations


class NetError(Exception):
    """Base class: ``message`` says what went wrong, ``hint`` what to do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidSubnet(NetError):
    """A subnet that is not an IPv4 CIDR fit for a bridge (bad syntax, host bits, too small)."""


class InvalidAddress(NetError):
    """An address that cannot be given to a NIC: not an address, outside the subnet, or one
    of the subnet's reserved addresses (network, broadcast, gateway)."""


class AddressConflict(NetError):
    """A static address already held by someone: ``holder`` names who."""

    def __init__(self, message: str, *, holder: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


class SubnetOverlap(NetError):
    """A subnet overlapping another network's, or a route or address the host already has;
    ``other`` names what it overlaps."""

    def __init__(self, message: str, *, other: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.other = other


class PortConflict(NetError):
    """A host port published twice (same host address, port and protocol); ``holder`` names
    the one that has it."""

    def __init__(self, message: str, *, holder: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


class InvalidPort(NetError):
    """A port specification that does not parse or names a port outside 1-65535."""


class NotOurs(NetError):
    """A link, table or process that netctl did not make (it lacks netctl's mark), which it
    therefore refuses to change or remove."""


class ToolMissing(NetError):
    """A program netctl needs (nft, dnsmasq) is not installed."""


class ToolFailed(NetError):
    """A program netctl runs failed; ``stderr`` holds what it said."""

    def __init__(
        self, argv: list[str], returncode: int, stderr: str, *, hint: str | None = None
    ) -> None:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        detail = f": {lines[-1]}" if lines else ""
        super().__init__(f"{argv[0]} failed with exit status {returncode}{detail}", hint=hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class LinkError(NetError):
    """A netlink request failed (a link, address or route could not be made or changed)."""


class GuestConfigError(NetError):
    """A guest's network configuration file could not be read (e.g. netplan without a YAML
    loader)."""
