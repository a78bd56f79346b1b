"""Who may use a control socket: root, the shim's own user, and one configured group.

A control socket can make the shim yield, retire, or shadow all its state into STATE_DB, so it
is guarded twice (hld §15.2): by the filesystem (its directory 0750, the socket 0600, or 0660
with `--ctl-group`) and, on every connection, by the kernel's word on who connected
(`SO_PEERCRED`), which holds even when a mount or a chmod has loosened the first guard.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import socket
import stat
import struct
from dataclasses import dataclass

log = logging.getLogger(__name__)
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class AccessError(Exception):
    """The control directory cannot be made safe; the message says what to fix."""


@dataclass(frozen=True)
class Peer:
    """The process at the other end of a unix socket, as the kernel saw it at connect()."""

    pid: int
    uid: int
    gid: int

    @classmethod
    def of(cls, sock: socket.socket) -> Peer:
        pid, uid, gid = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
        return cls(pid, uid, gid)

    def groups(self) -> frozenset[int]:
        """Primary and supplementary groups (/proc/<pid>/status); the primary alone when the
        process is gone or not visible from here."""
        out = {self.gid}
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("Groups:"):
                        out.update(int(g) for g in line.split()[1:])
                        break
        return frozenset(out)


@dataclass(frozen=True)
class AccessPolicy:
    """Root, `uid` (the shim's own effective user) and members of `gid` (if any) may talk."""

    uid: int
    gid: int | None = None

    @classmethod
    def for_group(cls, group: str | None) -> AccessPolicy:
        """The policy of this process, with `group` (a name or a number) allowed too."""
        if not group:
            return cls(os.geteuid())
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise AccessError(
                f"--ctl-group {group!r}: no such group on this machine; nothing was started"
            ) from None
        return cls(os.geteuid(), gid)

    @property
    def socket_mode(self) -> int:
        return 0o660 if self.gid is not None else 0o600

    def allows(self, peer: Peer) -> bool:
        if peer.uid in (0, self.uid):
            return True
        return self.gid is not None and self.gid in peer.groups()

    def refusal(self, peer: Peer) -> str:
        who = "root" + (f", uid {self.uid}" if self.uid else "")
        if self.gid is not None:
            who += f" and group {self.gid}"
        return (
            f"refused: uid {peer.uid} (pid {peer.pid}) may not use this control socket, only "
            f"{who} may; nothing was changed"
        )

    def prepare_dir(self, path: str) -> None:
        """Create the socket directory 0750 (group: the configured one), or tighten one that
        others can enter. A directory owned by another unprivileged user is refused: whoever
        owns it could swap the socket under us."""
        os.makedirs(path, mode=0o750, exist_ok=True)
        st = os.stat(path)
        if st.st_uid not in (0, self.uid):
            raise AccessError(
                f"control directory {path} belongs to uid {st.st_uid}, not to root or uid "
                f"{self.uid}: not listening there (nothing was changed); remove it or pass "
                "--ctl-dir with a directory of root's"
            )
        if self.gid is not None and st.st_gid != self.gid:
            os.chown(path, -1, self.gid)
        if stat.S_IMODE(st.st_mode) & 0o027:
            log.warning(
                "control directory %s was mode %o: made it 0750 (a control socket can make "
                "the shim yield or retire)",
                path,
                stat.S_IMODE(st.st_mode),
            )
            os.chmod(path, 0o750)

    def secure_socket(self, path: str) -> None:
        if self.gid is not None:
            os.chown(path, -1, self.gid)
        os.chmod(path, self.socket_mode)
