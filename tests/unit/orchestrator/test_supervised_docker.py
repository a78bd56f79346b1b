"""DockerSupervised never acts on a container that runs no teamd-shim (hld §11.3, §14.4): in
the SONiC shape the supervisor's own container is `teamd`, from the same image. A fake engine
stands in for Docker: what would be renamed, started or killed is recorded, nothing runs."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestrator.runtime.base import Instance, RuntimeFailure
from orchestrator.supervised import DockerSupervised

LABELS = {"teamd-hitless.role": "teamd"}


@dataclasses.dataclass
class FakeContainer:
    id: str
    name: str
    cmd: list[str]
    did: list[str]

    @property
    def attrs(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Config": {"Cmd": self.cmd, "Labels": LABELS},
            "State": {"Running": True, "Paused": False},
        }

    def rename(self, new: str) -> None:
        self.did.append(f"rename {self.name} -> {new}")
        self.name = new

    def start(self) -> None:
        self.did.append(f"start {self.name}")


class FakeRuntime:
    def __init__(self, *ctrs: FakeContainer) -> None:
        self.ctrs = {c.name: c for c in ctrs} | {c.id: c for c in ctrs}
        self.client: Any = None

    def _get(self, ref: str) -> FakeContainer | None:
        return self.ctrs.get(ref)

    def locate(self, inst: Instance) -> Instance:
        return dataclasses.replace(inst, handle="standby-id", container_name="teamd_standby")

    def kill(self, handle: str, timeout: float = 2.0) -> None:
        raise AssertionError(f"killed {handle}")


REC = {"pid": "7", "starttime": "1", "argv": "[]", "role": "active"}


def _supervisor_shape() -> tuple[DockerSupervised, list[str]]:
    did: list[str] = []
    supervisor = FakeContainer("sup-id", "teamd", ["warm-restart", "supervise"], did)
    standby = FakeContainer("standby-id", "teamd_standby", ["teamd-shim", "--hot"], did)
    sup = DockerSupervised()  # no base name given, nothing learned yet: falls back to `teamd`
    sup.rt = FakeRuntime(supervisor, standby)  # type: ignore[assignment]
    return sup, did


def test_after_a_promotion_the_supervisors_own_teamd_is_not_renamed_or_killed() -> None:
    sup, did = _supervisor_shape()
    note = sup.after_promotion("teamd-shim", REC, "teamd-shim~s1", REC)
    assert "runs no teamd-shim" in note and "--container-name" in note, note
    assert did == []


def test_a_cold_start_does_not_start_a_container_that_runs_no_shim() -> None:
    sup, did = _supervisor_shape()
    with pytest.raises(RuntimeFailure, match="runs no teamd-shim.*--container-name"):
        sup.start_cold("teamd-shim", [])
    assert did == []


def test_the_base_name_is_not_unlearned_from_a_container_of_another_name() -> None:
    sup = DockerSupervised(container_name="teamd-lacp")
    assert sup.container_name == "teamd-lacp"
    sup.rt = FakeRuntime()  # type: ignore[assignment]
    sup.rt.locate = lambda inst: dataclasses.replace(  # type: ignore[method-assign]
        inst, handle="x", container_name="something-else"
    )
    sup.learn("teamd-shim", REC)
    assert sup.container_name == "teamd-lacp" and sup.owner_container == "x"
