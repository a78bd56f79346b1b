"""Who may use a control socket (control/access.py): the pure policy, and the directory it
prepares on a real filesystem."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from teamd_shim.control.access import AccessError, AccessPolicy, Peer


def test_root_and_the_own_user_are_allowed_others_only_through_the_group() -> None:
    policy = AccessPolicy(uid=1000)
    assert policy.allows(Peer(1, 0, 0)) and policy.allows(Peer(1, 1000, 1000))
    assert not policy.allows(Peer(os.getpid(), 65534, 65534))
    assert policy.socket_mode == 0o600
    grouped = AccessPolicy(uid=0, gid=4242)
    assert grouped.allows(Peer(999_999_999, 65534, 4242))  # primary group, process gone
    assert not grouped.allows(Peer(999_999_999, 65534, 65534))
    assert grouped.socket_mode == 0o660
    msg = grouped.refusal(Peer(77, 65534, 65534))
    assert "uid 65534 (pid 77)" in msg and "group 4242" in msg and "nothing was changed" in msg


def test_an_unknown_group_is_refused_by_name() -> None:
    with pytest.raises(AccessError, match="no such group"):
        AccessPolicy.for_group("no-such-group-teamd-shim")
    assert AccessPolicy.for_group(None).gid is None
    assert AccessPolicy.for_group("0").gid == 0


def test_the_directory_is_created_0750_and_an_open_one_is_tightened(tmp_path: Path) -> None:
    policy = AccessPolicy(os.geteuid())
    new = tmp_path / "ctl"
    policy.prepare_dir(str(new))
    assert stat.S_IMODE(new.stat().st_mode) & 0o027 == 0
    opened = tmp_path / "open"
    opened.mkdir()
    opened.chmod(0o777)
    policy.prepare_dir(str(opened))
    assert stat.S_IMODE(opened.stat().st_mode) == 0o750


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    with pytest.raises(AccessError, match="belongs to uid 65534"):
        AccessPolicy(0).prepare_dir(str(theirs))
