"""`<ctl dir>/owner`: one stable name for the control socket of whichever shim owns the LAGs.

Every instance listens on `<ctl dir>/<name>.sock`, and the name changes with every handover
(`teamd`, `teamd~2`, ...), while SONiC's callers (`teamdctl <lag> ...`) know no instance names.
So the owner keeps a hard link to its own socket at `owner` (hld §15.2): a unix-socket
`connect()` resolves the path to the inode, so whoever connects through the alias reaches the
socket the link was made from, with that socket's own mode, owner and `SO_PEERCRED` check (a
hard link is the same inode: it cannot widen access). A new owner swaps it in atomically: a
link to a temporary name in the same directory, then `rename()` over the alias, so a caller
never finds the alias missing during a handover.

The alias has no `.sock` suffix on purpose: an instance of any `--name` listens on
`<name>.sock` (the lab, the supervisor and the docker runtime all name the first one `teamd`),
so no instance socket can ever be the alias, and a glob of `*.sock` lists instances only.

A shim killed outright leaves the alias behind; connecting then fails (ECONNREFUSED) until the
next owner swaps it, which a hot standby's promotion does at once.
"""

from __future__ import annotations

import contextlib
import glob
import os
from dataclasses import dataclass

ALIAS_NAME = "owner"


def alias_path(ctl_dir: str) -> str:
    return os.path.join(ctl_dir, ALIAS_NAME)


def instance_sockets(ctl_dir: str) -> list[str]:
    """The instance sockets in `ctl_dir`, live or stale (a killed shim's stays)."""
    return sorted(glob.glob(os.path.join(ctl_dir, "*.sock")))


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@dataclass(frozen=True)
class OwnerAlias:
    """The alias as seen by the instance listening on `sock` (its own socket path)."""

    sock: str

    @property
    def path(self) -> str:
        return alias_path(os.path.dirname(self.sock))

    def held(self) -> bool:
        """The alias is our socket (same inode), so callers reach us through it."""
        try:
            return _same_file(os.stat(self.path), os.stat(self.sock))
        except OSError:
            return False

    def claim(self) -> str | None:
        """Point the alias at our socket; None when it does, else what went wrong (the caller
        logs it: a missing alias costs teamdctl, never the LAGs). Idempotent."""
        if self.held():
            return None
        tmp = os.path.join(os.path.dirname(self.sock), f".{ALIAS_NAME}.{os.getpid()}.tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # left by a crash of a process that had our pid
            os.link(self.sock, tmp)
            os.rename(tmp, self.path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return (
                f"could not point {self.path} at {self.sock}: {e.strerror or e}; teamdctl "
                "and `teamd-shim ctl` without --name will not reach this shim (the LAGs are "
                "not affected)"
            )
        return None

    def release(self) -> bool:
        """Remove the alias if it still is our socket (a successor may already have swapped it:
        that one is left alone). True if removed."""
        if not self.held():
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
            return True
        return False


def missing_alias(ctl_dir: str) -> str | None:
    """None when `ctl_dir` has an alias to connect to, else the error for a client: what is
    there instead and what to do."""
    if os.path.exists(alias_path(ctl_dir)):
        return None
    socks = [os.path.basename(s) for s in instance_sockets(ctl_dir)]
    if not os.path.isdir(ctl_dir):
        there = f"{ctl_dir} does not exist"
    elif socks:
        there = f"instance sockets there: {', '.join(socks)}"
    else:
        there = "no instance socket there either"
    return (
        f"no {alias_path(ctl_dir)}: no teamd-shim is the active owner of the LAGs in this "
        f"control directory ({there}). Is a teamd-shim active? (`warm-restart status`); "
        "a wrong directory: --ctl-dir or TEAMD_SHIM_CTL_DIR; one instance by name: "
        "`teamd-shim --ctl-dir DIR --name NAME ctl ...`"
    )
