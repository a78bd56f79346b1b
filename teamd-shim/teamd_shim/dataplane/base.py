"""The small interface every dataplane backend implements."""

from __future__ import annotations

from typing import Protocol


class Dataplane(Protocol):
    """Kernel-side effects of LACP decisions. Calls come only from the owning (active) shim."""

    name: str

    def set_port_enabled(self, lag: str, port: str, enabled: bool) -> None: ...

    def set_carrier(self, lag: str, up: bool) -> None: ...

    def lag_removed(self, lag: str) -> None: ...

    def member_removed(self, lag: str, port: str) -> None: ...


class NullDataplane:
    """No kernel LAG: the shim's APPL_DB / STATE_DB output is the whole dataplane."""

    name = "appdb"

    def set_port_enabled(self, lag: str, port: str, enabled: bool) -> None:
        pass

    def set_carrier(self, lag: str, up: bool) -> None:
        pass

    def lag_removed(self, lag: str) -> None:
        pass

    def member_removed(self, lag: str, port: str) -> None:
        pass
