"""A private, real redis-server for the lab and the tests.

fakeredis is not used anywhere: keyspace notifications, Lua and timing need the real server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis


class RedisServer:
    """One redis-server on a unix socket (and no TCP port), with keyspace events as SONiC has."""

    def __init__(self, workdir: Path, *, port: int = 0, persist: bool = False) -> None:
        self.workdir = Path(workdir)
        self.socket_path = self.workdir / "redis.sock"
        self.port = port
        # persist: snapshot to workdir/dump.rdb every second and on shutdown, so a restarted
        # server comes back with CONFIG_DB as SONiC's does (config is not lost on restart).
        self.persist = persist
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError(
                "redis-server not found: run `make setup` (apt package redis-server)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "777",
            "--dir",
            str(self.workdir),
            "--save",
            "1 1" if self.persist else "",
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "no",
            "--databases",
            "16",
            "--notify-keyspace-events",
            "AKE",
            "--daemonize",
            "no",
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        # never inherit our stdout: a pipe reader (`lab up | tail`) would wait for redis to exit
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited early, see {self.workdir / 'redis.log'}")
            if self.socket_path.exists():
                try:
                    redis.Redis(unix_socket_path=str(self.socket_path)).ping()
                    return self
                except redis.exceptions.ConnectionError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not come up in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), db=db, decode_responses=True)
