"""Control requests to a shim, bounded by a handover's deadlines.

The stages, the rollback and the recovery all ask shims the same questions; one place keeps the
rule that a busy or starting shim means "not yet", never "failed".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator.outcome import Deadline
from teamd_shim.control.transport import ControlError, request
from teamd_shim.model.contract import ContractError, InstanceInfo

POLL_S = 0.005
CHECK_FLOOR_S = 0.02  # the shortest control request a deadline wait makes


def ctl(path: str, cmd: str, timeout: float = 2.0, **kw: Any) -> Any:
    return request(path, {"cmd": cmd, **kw}, timeout=timeout)


def info(path: str, timeout: float = 2.0) -> InstanceInfo:
    """`ctl info` as the typed contract; a reply of another shape is a ControlError."""
    try:
        return InstanceInfo.from_json(ctl(path, "info", timeout=timeout))
    except ContractError as e:
        raise ControlError(f"{path}: {e}") from None


def poll_until(
    what: str, deadline: float, check: Callable[[float], Any], every: float = POLL_S
) -> Any:
    """Poll `check` until truthy; a ControlError (busy or starting shim) means "not yet".

    `check` gets the seconds left (at least CHECK_FLOOR_S) and must not block longer: on the
    partner-visible stages a control request to a stopped or hung shim would otherwise run
    past the deadline by its whole socket timeout, and the rollback's PDUs with it.
    """
    while True:
        left = max(CHECK_FLOOR_S, deadline - time.monotonic())
        try:
            got = check(left)
        except ControlError:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise Deadline(f"{what}: deadline passed")
        time.sleep(every)
