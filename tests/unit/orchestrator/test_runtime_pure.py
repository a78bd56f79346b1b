"""Pure parts of the docker runtime and of the shim's identity (no engine needed)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestrator.runtime import Instance, runtime_for
from orchestrator.runtime.base import RuntimeFailure
from orchestrator.runtime.docker import (
    check_teamd_container,
    container_ctl,
    container_ctl_dir,
    host_path,
    is_shim_container,
    successor_config,
)
from orchestrator.runtime.process import standby_argv
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


def _inst(**kw: Any) -> Instance:
    fields: dict[str, Any] = {
        "name": "teamd",
        "pid": 7,
        "starttime": "1",
        "host": "h",
        "argv": [],
        "netns": "",
        "version": "",
        "role": "active",
        "ctl": "",
    }
    return Instance(**{**fields, **kw})


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


# ---- DockerRuntime.locate's checks: the container is checked, the control socket computed ----
def _attrs(cmd: list[str], env: list[str] | None = None, **over: object) -> dict[str, object]:
    attrs: dict[str, object] = {
        "Id": "f" * 64,
        "Name": "/teamd",
        "Image": "sha256:" + "1" * 64,
        "State": {"Pid": 4242, "Running": True},
        "Config": {
            "Cmd": cmd,
            "Env": env or ["PATH=/usr/bin"],
            "Image": "teamd-hitless/teamd:latest",
            "Labels": {"teamd-hitless.role": "teamd"},
        },
    }
    attrs.update(over)
    return attrs


def _rec(name: str = "teamd-shim", ctl: str = "/run/teamd-shim/teamd-shim.sock") -> Instance:
    return _inst(name=name, pid=1, host="h/pid:[9]", ctl=ctl, pidns="pid:[9]", container="f" * 64)


def _ns(pid: int) -> str:
    return "pid:[9]" if pid == 4242 else ""


def test_the_control_socket_dir_comes_from_the_containers_cmd_then_env_then_the_default() -> None:
    shim = ["teamd-shim", "--redis", "unix:///r/redis.sock"]
    assert container_ctl_dir(_attrs(shim)["Config"]) == "/run/teamd-shim"  # type: ignore[arg-type]
    env = ["TEAMD_SHIM_CTL_DIR=/run/x", "PATH=/usr/bin"]
    assert container_ctl_dir(_attrs(shim, env)["Config"]) == "/run/x"  # type: ignore[arg-type]
    for cmd in ([*shim, "--ctl-dir", "/run/y"], [*shim, "--ctl-dir=/run/y/"]):
        assert container_ctl_dir(_attrs(cmd, env)["Config"]) == "/run/y"  # type: ignore[arg-type]
    # the last one wins, as with argparse
    cmd = [*shim, "--ctl-dir", "/a", "--ctl-dir=/b"]
    assert container_ctl(_attrs(cmd)["Config"], "teamd-shim~3") == "/b/teamd-shim~3.sock"  # type: ignore[arg-type]


def test_a_teamd_container_that_agrees_with_its_record_gives_the_computed_socket() -> None:
    a = _attrs(["teamd-shim", "--redis", "unix:///r/redis.sock"])
    assert check_teamd_container(_rec(), a, _ns) == "/run/teamd-shim/teamd-shim.sock"
    sb = _attrs(["/opt/teamd-hitless/bin/teamd-shim", "--role", "standby", "--name", "t~2"])
    assert check_teamd_container(_rec("t~2", "/run/teamd-shim/t~2.sock"), sb, _ns)


@pytest.mark.parametrize(
    "cmd,labels,image",
    [
        (["redis-server", "--port", "0"], {"teamd-hitless.role": "partner"}, "partner:latest"),
        (["sleep", "infinity"], {"teamd-hitless.role": "teamd"}, "teamd-hitless/teamd:latest"),
        (["teamd-shim"], {}, "debian:bookworm"),  # not our image, whatever it runs
        (["warm-restart", "supervise"], {"teamd-hitless.role": "teamd"}, "teamd:latest"),
    ],
)
def test_a_record_pointing_at_a_foreign_container_is_refused(
    cmd: list[str], labels: dict[str, str], image: str
) -> None:
    a = _attrs(cmd, Name="/teamd-hitless-redis-1")
    a["Config"] = {**a["Config"], "Labels": labels, "Image": image}  # type: ignore[dict-item]
    with pytest.raises(RuntimeFailure) as e:
        check_teamd_container(_rec(), a, _ns)
    msg = str(e.value)
    assert "TEAMD_SHIM_INSTANCE|teamd-shim field container is " + "f" * 64 in msg, msg
    assert f"teamd-hitless-redis-1 from image {image}" in msg
    assert "not a teamd-hitless teamd container: refused; nothing was changed" in msg


def test_a_record_whose_pidns_ctl_or_name_disagrees_with_the_container_is_refused() -> None:
    a = _attrs(["teamd-shim"])
    with pytest.raises(RuntimeFailure, match=r"field pidns is 'pid:\[8\]'.*runs in 'pid:\[9\]'"):
        check_teamd_container(dataclasses.replace(_rec(), pidns="pid:[8]"), a, _ns)
    stopped = _attrs(["teamd-shim"], State={"Pid": 0, "Running": False})
    with pytest.raises(RuntimeFailure, match="field pidns.*not running"):
        check_teamd_container(_rec(), stopped, _ns)
    # from a pid namespace that cannot see the container's pid: the other checks stand
    assert check_teamd_container(_rec(), a, lambda pid: "") == "/run/teamd-shim/teamd-shim.sock"
    for planted in ("/run/lab/fake.sock", "/run/teamd-shim/../lab/teamd-shim.sock", ""):
        with pytest.raises(RuntimeFailure, match="field ctl is .*refused"):
            check_teamd_container(_rec(ctl=planted), a, _ns)
    # a record name that the container does not run (e.g. ../../x, to steer the socket path)
    with pytest.raises(RuntimeFailure, match="runs the shim named 'teamd-shim'"):
        check_teamd_container(_rec("../../x", "/run/teamd-shim/../../x.sock"), a, _ns)


# ---- the successor container (hld §11.3): the whole config the old one set, no standby role
IMAGE_CFG: dict[str, Any] = {
    "Env": ["PATH=/opt/teamd-hitless/bin:/usr/bin", "TEAMD_SHIM_HEALTH_FILE=/run/h/status"],
    "Labels": {"teamd-hitless.role": "teamd", "org.opencontainers.image.version": "0.1.0"},
    "Entrypoint": ["/usr/bin/tini", "--"],
    "Cmd": ["teamd-shim"],
    "Healthcheck": {"Test": ["CMD-SHELL", "check"], "Interval": 1_000_000_000, "Retries": 3},
    "WorkingDir": "",
    "User": "",
    "Tty": False,
    "AttachStdout": False,
}
OLD_ID = "0123456789ab" + "c" * 52


def _old(**config: Any) -> dict[str, Any]:
    """An inspected container as `docker create -t --health-interval 2s ...` leaves it: the
    image's config merged with what the container set."""
    return {
        "Id": OLD_ID,
        "Config": {
            **IMAGE_CFG,
            "Hostname": OLD_ID[:12],
            "Env": [*IMAGE_CFG["Env"], "SONIC_ENV=1"],
            "Labels": {**IMAGE_CFG["Labels"], "com.docker.compose.service": "teamd"},
            "Cmd": ["teamd-shim", "--redis", "unix:///var/run/redis/redis.sock"],
            **config,
        },
        "HostConfig": {"NetworkMode": "host", "CapAdd": ["NET_ADMIN"], "RestartPolicy": {}},
    }


def test_the_successor_keeps_every_field_the_container_set_beyond_its_image() -> None:
    hc = {**IMAGE_CFG["Healthcheck"], "Interval": 2_000_000_000}
    old = _old(
        Tty=True,
        Healthcheck=hc,
        User="0:0",
        StopSignal="SIGINT",
        StopTimeout=60,
        WorkingDir="/tmp",
        Entrypoint=["/usr/bin/tini", "-g", "--"],
        AttachStdout=True,
    )
    body = successor_config(old, IMAGE_CFG, "img:new", ["teamd-shim", "--role", "auto"])
    assert body["Tty"] is True and body["Healthcheck"] == hc and body["User"] == "0:0"
    assert body["StopSignal"] == "SIGINT" and body["StopTimeout"] == 60
    assert body["WorkingDir"] == "/tmp" and body["Entrypoint"] == ["/usr/bin/tini", "-g", "--"]
    assert body["AttachStdout"] is True
    assert body["Env"] == ["SONIC_ENV=1"]  # the image's own env comes from the new image
    assert body["Labels"] == {"com.docker.compose.service": "teamd"}
    assert body["HostConfig"] == old["HostConfig"] and body["Image"] == "img:new"
    assert body["Cmd"] == ["teamd-shim", "--role", "auto"]
    assert "Hostname" not in body  # the engine's (network host; the short id otherwise)


def test_what_the_image_set_is_left_to_the_new_image() -> None:
    """An upgrade's image brings its own healthcheck, entrypoint, workdir and user."""
    body = successor_config(_old(), IMAGE_CFG, "img:new", ["teamd-shim"])
    for field in ("Healthcheck", "Entrypoint", "WorkingDir", "User", "Tty", "AttachStdout"):
        assert field not in body, field
    assert body["HostConfig"]["RestartPolicy"] == {}
    sup = successor_config(_old(), IMAGE_CFG, "i", ["teamd-shim"], {"Name": "no"})
    assert sup["HostConfig"]["RestartPolicy"] == {"Name": "no"}  # the supervisor's standby


def test_a_hostname_is_carried_only_when_the_user_set_it() -> None:
    old = _old(Hostname="lacp-box")
    assert "Hostname" not in successor_config(old, IMAGE_CFG, "i", [])  # network host
    old["HostConfig"] = {"NetworkMode": "none"}
    assert successor_config(old, IMAGE_CFG, "i", [])["Hostname"] == "lacp-box"
    old["HostConfig"] = {"NetworkMode": "container:holder"}  # Docker refuses a hostname there
    assert "Hostname" not in successor_config(old, IMAGE_CFG, "i", [])
    own = _old()
    own["HostConfig"] = {"NetworkMode": "none"}
    assert "Hostname" not in successor_config(own, IMAGE_CFG, "i", [])  # the short id


def test_the_successors_command_line_says_auto_never_standby() -> None:
    cmd = ["teamd-shim", "--redis", "unix:///r.sock", "--role", "standby", "--name", "teamd~1"]
    argv = standby_argv(cmd, "teamd~2", None, role="auto")
    assert argv == [
        "teamd-shim",
        "--redis",
        "unix:///r.sock",
        "--role",
        "auto",
        "--name",
        "teamd~2",
    ]
    assert standby_argv(cmd, "t~s1", None, hot=True, role="auto")[-4:] == [
        "auto",
        "--name",
        "t~s1",
        "--hot",
    ]


def test_only_shim_containers_are_ours_to_rename_start_or_kill() -> None:
    assert is_shim_container(_old())
    sup = _old(Cmd=["warm-restart", "supervise", "--runtime", "docker"])
    assert not is_shim_container(sup)  # the SONiC shape's `teamd`, same image
    assert not is_shim_container(_old(Labels={}))
