"""teamd's warm-boot dump files (`teamd -L <dir>`, SONiC libteam patch 0008; hld §6.2).

In the directory (on SONiC `/var/warmboot/teamd`, the host's `/host/warmboot/teamd`, which
survives the warm reboot's kexec), per LAG:
- `<lag>`: text, `carrier\\nN\\n` then N pairs `port\\nenabled\\n` (1/0), one per member;
- `<port>`: the member's last received LACPDU, 124 bytes (Ethernet header + 110-byte PDU), only
  for a member whose partner info was current.
The same layout as teamd's `lacp_state_save` / `lacpdu_read`, so a box can go between stock teamd
and us across a warm reboot. A warm start reads and deletes them (teamd's `stop_wr_mode`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_DIR = "/var/warmboot/teamd"  # what SONiC's teammgrd passes as -L
PDU_FILE_LEN = 124  # sizeof(struct lacpdu) in teamd_runner_lacp.c: ethhdr + 110


@dataclass(frozen=True)
class SavedLag:
    """One LAG as a warm stop left it."""

    carrier: bool
    members: tuple[tuple[str, bool], ...]  # (port, enabled), in saved order
    pdus: dict[str, bytes]  # port -> the partner's last PDU (current members only)


def format_lag(carrier: bool, members: list[tuple[str, bool]]) -> str:
    lines = [str(int(carrier)), str(len(members))]
    for port, enabled in members:
        lines += [port, str(int(enabled))]
    return "\n".join(lines) + "\n"


def parse_lag(text: str) -> tuple[bool, tuple[tuple[str, bool], ...]]:
    """teamd's fscanf("%d\\n%d\\n") then N x ("%16s\\n%d\\n"): ValueError when it is not that."""
    words = text.split()
    if len(words) < 2:
        raise ValueError("fewer than 2 lines (carrier, member count)")
    carrier, count = int(words[0]), int(words[1])
    if count < 0 or len(words) < 2 + 2 * count:
        raise ValueError(f"{count} members announced, {max(0, (len(words) - 2) // 2)} present")
    members = tuple(
        (words[2 + 2 * i][:16], int(words[3 + 2 * i]) == 1) for i in range(count)
    )  # %16s: teamd reads at most 16 characters of a name
    return carrier == 1, members


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a reboot mid-write leaves the old file or the new one


def save(directory: str, lag: str, carrier: bool, members: dict[str, bool],
         pdus: dict[str, bytes]) -> None:  # fmt: skip
    """Write one LAG's dump; a member with no current PDU gets no file (an older one goes)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for port in members:
        frame = pdus.get(port)
        if frame is None:
            (d / port).unlink(missing_ok=True)
        else:
            _write(d / port, frame[:PDU_FILE_LEN].ljust(PDU_FILE_LEN, b"\0"))
    _write(d / lag, format_lag(carrier, list(members.items())).encode())


def take(directory: str, lag: str) -> SavedLag | None:
    """Read and delete one LAG's dump (and its members' PDU files); None when there is none
    or it is unreadable (said in the log: that LAG then starts cold, as teamd does)."""
    d = Path(directory)
    path = d / lag
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.error("%s: warm-boot dump %s unreadable (%s): cold start", lag, path, e)
        return None
    path.unlink(missing_ok=True)
    try:
        carrier, members = parse_lag(text)
    except ValueError as e:
        log.error("%s: warm-boot dump %s malformed (%s): cold start", lag, path, e)
        return None
    pdus = {}
    for port, _enabled in members:
        try:
            frame = (d / port).read_bytes()
        except OSError:
            continue  # not current when saved: that member starts afresh
        (d / port).unlink(missing_ok=True)
        if len(frame) == PDU_FILE_LEN:
            pdus[port] = frame
        else:
            log.error("%s: saved PDU of %s is %d bytes, not %d: ignored", lag, port,
                      len(frame), PDU_FILE_LEN)  # fmt: skip
    return SavedLag(carrier, members, pdus)


def remove(directory: str, lag: str, members: list[str]) -> None:
    """A cold stop's end: nothing of this LAG may be restored by a later warm start."""
    d = Path(directory)
    for name in [lag, *members]:
        try:
            (d / name).unlink(missing_ok=True)
        except OSError as e:
            log.warning("%s: warm-boot file %s not removed: %s", lag, d / name, e)
