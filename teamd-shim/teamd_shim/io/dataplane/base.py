"""The small interface every dataplane backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from teamd_shim.model.config import LagConfig, PortSettings


@dataclass(frozen=True)
class TeamDevice:
    """The LAG netdev as the dataplane backend knows it (ifindex 0 when there is none)."""

    ifindex: int
    dev_addr: str
    admin_up: bool
    oper_up: bool
    mtu: int


class Dataplane(Protocol):
    """Kernel-side effects of LACP decisions.

    `owner=True` calls come only from the owning (active) instance at a *cold* start or a
    runtime config change, and may create/enslave/reset as teamd does on start; `owner=False`
    (a standby loading its config) only looks. set_* calls come only from the owner, and only
    when its LACP machines decided a change: a new owner after a handover writes nothing.
    """

    name: str

    def lag_added(self, cfg: LagConfig, *, owner: bool, carrier: bool = False) -> None:
        """`carrier`: the owner's initial carrier, down (teamd's `lacp_carrier_init`) except on
        a warm start from a saved carrier that was up (hld §6.2)."""
        ...

    def lag_changed(self, cfg: LagConfig) -> None:
        """The owner applies a runtime change of the netdev's MTU or admin state (teammgrd's
        setLagMtu / setLagAdminStatus); a standby never calls it."""
        ...

    def member_added(
        self,
        lag: str,
        port: str,
        *,
        owner: bool,
        admin_up: bool = True,
        enabled: bool | None = False,
    ) -> None:
        """`admin_up`: the member's CONFIG_DB PORT admin state, which teammgrd gives it once it
        is enslaved (it is set down to be enslaved, as the kernel requires). `enabled`: the
        port's initial `enabled`, None to leave the kernel's (a warm start)."""
        ...

    def set_port_enabled(self, lag: str, port: str, enabled: bool) -> None: ...

    def set_carrier(self, lag: str, up: bool) -> None: ...

    def lag_removed(self, lag: str) -> None: ...

    def member_removed(self, lag: str, port: str, restore: PortSettings | None = None) -> None:
        """`restore`: a real removal gives the port back its CONFIG_DB PORT admin state and MTU
        (teammgrd's removeLagMember); None leaves it as it is (a handover, a fix-up)."""
        ...

    def device(self, lag: str) -> TeamDevice | None:
        """The kernel's view of the LAG netdev, or None when there is no kernel LAG."""
        ...

    def port_enabled(self, lag: str, port: str) -> bool | None:
        """The kernel's `enabled` option of a port, or None when there is no kernel LAG."""
        ...

    def queued_carrier(self, lag: str) -> bool | None:
        """The carrier last asked for and not written yet, or None (queued.py says why)."""
        ...

    def queued_enabled(self, lag: str, port: str) -> bool | None:
        """A port's `enabled` last asked for and not written yet, or None."""
        ...

    def close(self) -> None: ...


class NullDataplane:
    """No kernel LAG: the shim's APPL_DB / STATE_DB output is the whole dataplane."""

    name = "appdb"

    def lag_added(self, cfg: LagConfig, *, owner: bool, carrier: bool = False) -> None:
        pass

    def lag_changed(self, cfg: LagConfig) -> None:
        pass

    def member_added(
        self,
        lag: str,
        port: str,
        *,
        owner: bool,
        admin_up: bool = True,
        enabled: bool | None = False,
    ) -> None:
        pass

    def set_port_enabled(self, lag: str, port: str, enabled: bool) -> None:
        pass

    def set_carrier(self, lag: str, up: bool) -> None:
        pass

    def lag_removed(self, lag: str) -> None:
        pass

    def member_removed(self, lag: str, port: str, restore: PortSettings | None = None) -> None:
        pass

    def device(self, lag: str) -> TeamDevice | None:
        return None

    def port_enabled(self, lag: str, port: str) -> bool | None:
        return None

    def queued_carrier(self, lag: str) -> bool | None:
        return None

    def queued_enabled(self, lag: str, port: str) -> bool | None:
        return None

    def close(self) -> None:
        pass
