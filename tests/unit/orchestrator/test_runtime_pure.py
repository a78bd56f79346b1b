"""Pure parts of the docker runtime and of the shim's identity (no engine needed)."""

from __future__ import annotations

import pytest

from orchestrator.runtime import Instance, runtime_for
from orchestrator.runtime.base import RuntimeFailure
from orchestrator.runtime.docker import host_path
from teamd_shim.io import identity

MOUNTS = [
    {"Source": "/srv/run", "Destination": "/run/lab"},
    {"Source": "/srv/run-ctl", "Destination": "/run/lab/teamd-shim"},
]


def test_host_path_takes_the_longest_mount() -> None:
    assert host_path(MOUNTS, "/run/lab/redis.sock") == "/srv/run/redis.sock"
    assert host_path(MOUNTS, "/run/lab/teamd-shim/teamd.sock") == "/srv/run-ctl/teamd.sock"


def test_host_path_refuses_a_path_on_no_shared_mount_and_says_what_to_mount() -> None:
    with pytest.raises(RuntimeFailure, match="not on a volume shared with the host"):
        host_path(MOUNTS, "/run/teamd-shim/teamd.sock")
    with pytest.raises(RuntimeFailure):
        host_path(MOUNTS, "/run/laboratory/x.sock")  # a prefix of the name is not a mount


def test_cgroup_v1_and_systemd_paths_name_the_container() -> None:
    cid = "a" * 64
    assert identity._CGROUP_ID.search(f"12:memory:/docker/{cid}\n").group(1) == cid
    assert (
        identity._CGROUP_ID.search(f"1:name=systemd:/system.slice/docker-{cid}.scope\n").group(1)
        == cid
    )
    assert identity._CGROUP_ID.search("0::/\n") is None


def _inst(**kw: str) -> Instance:
    return Instance(
        name="teamd",
        pid=7,
        starttime="1",
        host="h",
        argv=[],
        netns="",
        version="",
        role="active",
        ctl="",
        **kw,
    )


def test_auto_runtime_is_docker_exactly_when_the_active_is_in_another_pid_namespace() -> None:
    assert runtime_for("auto", _inst(pidns=identity.pid_namespace())).name == "process"
    assert runtime_for("auto", _inst(pidns="pid:[1]")).name == "docker"
    assert runtime_for("auto", _inst(container="c" * 64)).name == "docker"
    assert runtime_for("process", _inst(pidns="pid:[1]")).name == "process"
    with pytest.raises(ValueError, match="unknown runtime"):
        runtime_for("podman", None)


def test_the_control_socket_is_computed_from_the_command_line_as_the_shim_decides() -> None:
    from orchestrator.runtime.process import argv_option, shim_ctl_path, shim_name

    exe = "/opt/bin/teamd-shim"
    assert argv_option([exe, "--ctl-dir", "/a", "--ctl-dir=/b"], "--ctl-dir") == "/b"
    assert argv_option([exe, "--name"], "--name") is None  # a dangling option is no value
    assert shim_name([exe, "--redis", "x"]) == "teamd-shim"
    assert shim_name([exe, "--name=teamd_bak"]) == "teamd_bak"
    assert shim_ctl_path([exe, "--ctl-dir", "/run/x", "--name", "t"], {}) == "/run/x/t.sock"
    env = {"TEAMD_SHIM_CTL_DIR": "/run/env"}
    assert shim_ctl_path([exe, "--name", "t"], env) == "/run/env/t.sock"
    assert shim_ctl_path([exe], {}) == "/run/teamd-shim/teamd-shim.sock"
    assert shim_ctl_path([exe, "--ctl-dir", "rel", "--name", "t"], {}, "/w") == "/w/rel/t.sock"
