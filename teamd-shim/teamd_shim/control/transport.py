"""A unix control socket per shim instance, the way teamd has one per LAG for teamdctl.

One JSON request per line, one JSON reply per line. Unix sockets live in the filesystem, so the
CLI reaches a shim from any network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
from collections.abc import Mapping
from typing import Any, Protocol

from teamd_shim.control.access import AccessError, AccessPolicy, Peer
from teamd_shim.control.alias import OwnerAlias
from teamd_shim.control.teamd_config import teamd_config
from teamd_shim.db.ownership import OwnershipError
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.io.dataplane import Dataplane
from teamd_shim.model.running_lag import RunningLag


class ControlTarget(Protocol):
    """What the control server needs of a shim (daemon.Shim provides it); the server depends
    on this, not on the daemon module."""

    @property
    def lags(self) -> Mapping[str, RunningLag]: ...

    dataplane: Dataplane
    endpoint: Endpoint
    publisher: Publisher

    def dump(self, name: str) -> dict[str, Any]: ...
    def state_item_get(self, name: str, path: str) -> Any: ...
    def state_item_set(self, name: str, path: str, value: str) -> Any: ...
    def info(self) -> dict[str, Any]: ...
    def request_shadow(self, seconds: float = ...) -> None: ...
    async def do_yield(self) -> dict[str, Any]: ...
    async def do_takeover(self) -> dict[str, Any]: ...
    async def do_resume(self, force: bool = False) -> dict[str, Any]: ...
    def retire(self) -> None: ...
    async def serve_watcher(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None: ...


log = logging.getLogger(__name__)
DEFAULT_CTL_DIR = "/run/teamd-shim"
DEFAULT_NAME = "teamd-shim"  # an instance's name when --name is not given


class ControlError(Exception):
    """The request could not be served; the message is for the user."""


class ControlServer:
    def __init__(self, shim: ControlTarget, path: str, policy: AccessPolicy | None = None) -> None:
        self.shim = shim
        self.path = path
        self.policy = policy or AccessPolicy(os.geteuid())
        self.refused = 0  # connections SO_PEERCRED turned away
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen on `path`; refuse (ControlError, nothing touched) when a live shim already
        answers there: unlinking its socket would leave it unmanageable, and a second instance
        of the same name must not take its LAGs (hld §9)."""
        try:
            self.policy.prepare_dir(os.path.dirname(self.path) or ".")
        except AccessError as e:
            raise ControlError(str(e)) from None
        if _answers(self.path):
            raise ControlError(
                f"a live teamd-shim already answers on {self.path}: not starting a second "
                "instance of the same name (nothing was changed; stop that one first, or start "
                "this one with another --name as a standby)"
            )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._client, path=self.path)
        self.policy.secure_socket(self.path)

    async def stop(self) -> None:
        """Stop listening; the owner alias goes first if it is still ours, so it never names a
        socket nobody listens on (a successor's alias is left alone)."""
        if self._server is not None:
            self._server.close()
            OwnerAlias(self.path).release()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _admit(self, writer: asyncio.StreamWriter) -> str | None:
        """None if the kernel says the caller may talk to us, else the refusal to send."""
        sock = writer.get_extra_info("socket")
        try:
            peer = Peer.of(sock)
        except (OSError, TypeError) as e:
            return f"refused: cannot tell who is calling ({e}); nothing was changed"
        if self.policy.allows(peer):
            return None
        self.refused += 1
        log.warning("control socket %s: %s", self.path, self.policy.refusal(peer))
        return self.policy.refusal(peer)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        refusal = self._admit(writer)
        if refusal is not None:  # before a byte of the request is read (hld §15.2)
            try:
                writer.write((json.dumps({"ok": False, "error": refusal}) + "\n").encode())
                await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()
            return
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    if isinstance(req, dict) and req.get("cmd") == "watch":
                        # a hot standby's watch: heartbeats on this connection until it closes
                        # (hld §14.1); nothing else is served on it
                        await self.shim.serve_watcher(reader, writer)
                        return
                    reply: dict[str, Any] = {"ok": True, "result": await self.handle(req)}
                except ControlError as e:
                    reply = {"ok": False, "error": str(e)}
                except Exception as e:  # a bad request must not take the shim down
                    log.exception("control request failed")
                    reply = {"ok": False, "error": f"internal error: {e}"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        finally:
            writer.close()

    async def handle(self, req: dict[str, Any]) -> Any:
        """One request: teamdctl's state and config commands, the queries, or a role command."""
        cmd = req.get("cmd")
        shim = self.shim
        if cmd in ("state_dump", "state_item_get", "state_item_set"):
            return self._state(str(cmd), self._lag(req), req)
        if cmd == "config_dump":
            return teamd_config(shim.lags[self._lag(req)].cfg)
        if cmd == "lags":
            return sorted(shim.lags)
        if cmd == "info":
            return {
                **shim.info(),
                "dataplane": shim.dataplane.name,
                "redis": shim.endpoint.url,
                "redis_connected": shim.publisher.connected,
            }
        try:
            return await self._role(cmd, req)
        except OwnershipError as e:
            raise ControlError(str(e)) from None

    def _lag(self, req: dict[str, Any]) -> str:
        lag = req.get("lag")
        if not isinstance(lag, str) or lag not in self.shim.lags:
            known = ", ".join(sorted(self.shim.lags)) or "none"
            raise ControlError(f"no LAG {lag!r} in this shim (running: {known})")
        return lag

    def _state(self, cmd: str, lag: str, req: dict[str, Any]) -> Any:
        shim = self.shim
        if cmd == "state_dump":
            return shim.dump(lag)
        try:
            if cmd == "state_item_get":
                return shim.state_item_get(lag, str(req.get("path")))
            return shim.state_item_set(lag, str(req.get("path")), str(req.get("value")))
        except (KeyError, ValueError) as e:
            raise ControlError(str(e).strip("'\"")) from None

    async def _role(self, cmd: object, req: dict[str, Any]) -> Any:
        shim = self.shim
        if cmd == "shadow":
            shim.request_shadow(shadow_seconds(req.get("seconds", 30.0)))
            return shim.info()
        if cmd == "yield":
            return await shim.do_yield()
        if cmd == "takeover":
            return await shim.do_takeover()
        if cmd == "resume":
            return await shim.do_resume(force=bool(req.get("force")))
        if cmd == "retire":
            shim.retire()
            return {"role": "retired"}
        raise ControlError(f"unknown command {cmd!r}")


MAX_SHADOW_S = 3600.0  # a planned restart asks for its timeout + 30 s; nothing needs hours


def shadow_seconds(raw: object) -> float:
    """A shadow lease the shim grants: finite and in (0, MAX_SHADOW_S]. Anything else (inf,
    nan, negative, a year) would have it write all LAG state to STATE_DB every 0.5 s for ever."""
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_SHADOW_S):
        raise ControlError(
            f"shadow: seconds must be a number in (0, {MAX_SHADOW_S:.0f}], got {raw!r}; "
            "nothing was changed"
        )
    return seconds


def _answers(path: str) -> bool:
    """Something listens on the unix socket `path` (a stale file left by a dead shim refuses)."""
    import socket

    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(path)
    except OSError:
        return False
    finally:
        s.close()
    return True


def request(path: str, req: dict[str, Any], timeout: float = 5.0) -> Any:
    """Client side, synchronous; raises ControlError with a message the user can act on."""
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except PermissionError:
        raise ControlError(
            f"permission denied on {path}: a teamd-shim control socket answers root (and the "
            "shim's --ctl-group) only; nothing was sent. Run this as root"
        ) from None
    except OSError as e:
        raise ControlError(
            f"cannot reach teamd-shim at {path}: {e.strerror or e}. "
            "Is it running? (`warm-restart status` lists instances)"
        ) from None
    with s:
        try:
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as e:  # a busy or dying shim: the caller decides whether to wait more
            raise ControlError(
                f"teamd-shim at {path} did not answer {req.get('cmd')!r} within {timeout} s: {e}"
            ) from None
    try:
        reply = json.loads(buf)
    except ValueError:
        raise ControlError(
            f"teamd-shim at {path} closed the connection without an answer to {req.get('cmd')!r}"
        ) from None
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "unknown error"))
    return reply["result"]
