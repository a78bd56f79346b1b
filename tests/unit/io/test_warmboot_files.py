"""teamd's warm-boot dump files (io/warmboot.py): the layout of libteam patch 0008's
lacp_state_save / lacpdu_read, byte for byte, and what a warm start consumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from teamd_shim.io import warmboot

PDU = bytes(range(124))


def test_the_lag_file_is_teamds_text_layout(tmp_path: Path) -> None:
    warmboot.save(str(tmp_path), "PortChannel0001", True,
                  {"Ethernet0": True, "Ethernet4": False}, {"Ethernet0": PDU})  # fmt: skip
    # fprintf("%d\n%d\n", carrier, n) then fprintf("%s\n%d\n", name, enabled) per member
    assert (tmp_path / "PortChannel0001").read_bytes() == b"1\n2\nEthernet0\n1\nEthernet4\n0\n"
    assert (tmp_path / "Ethernet0").read_bytes() == PDU
    assert not (tmp_path / "Ethernet4").exists()  # not current: no PDU file


def test_a_warm_start_reads_and_consumes_the_files(tmp_path: Path) -> None:
    warmboot.save(str(tmp_path), "PortChannel0001", True,
                  {"Ethernet0": True, "Ethernet4": False}, {"Ethernet0": PDU})  # fmt: skip
    saved = warmboot.take(str(tmp_path), "PortChannel0001")
    assert saved == warmboot.SavedLag(
        True, (("Ethernet0", True), ("Ethernet4", False)), {"Ethernet0": PDU}
    )
    assert list(tmp_path.iterdir()) == []
    assert warmboot.take(str(tmp_path), "PortChannel0001") is None


def test_a_file_written_by_teamd_is_read(tmp_path: Path) -> None:
    """teamd's own output: fscanf skips any whitespace, names are at most 16 characters."""
    (tmp_path / "PortChannel0002").write_text("0\n1\nEthernet8\n1\n")
    saved = warmboot.take(str(tmp_path), "PortChannel0002")
    assert saved is not None and saved.carrier is False and saved.members == (("Ethernet8", True),)


@pytest.mark.parametrize("text", ["", "1\n", "1\n2\nEthernet0\n1\n", "x\n0\n"])
def test_a_malformed_lag_file_means_a_cold_start_and_is_removed(tmp_path: Path, text: str) -> None:
    (tmp_path / "PortChannel0001").write_text(text)
    assert warmboot.take(str(tmp_path), "PortChannel0001") is None
    assert not (tmp_path / "PortChannel0001").exists()


def test_a_pdu_file_of_the_wrong_size_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "PortChannel0001").write_text("1\n1\nEthernet0\n1\n")
    (tmp_path / "Ethernet0").write_bytes(PDU[:100])
    saved = warmboot.take(str(tmp_path), "PortChannel0001")
    assert saved is not None and saved.pdus == {}


def test_a_short_frame_is_saved_padded_to_teamds_size(tmp_path: Path) -> None:
    warmboot.save(str(tmp_path), "PortChannel0001", True, {"Ethernet0": True},
                  {"Ethernet0": PDU[:110]})  # fmt: skip
    assert (tmp_path / "Ethernet0").read_bytes() == PDU[:110] + bytes(14)


def test_a_cold_stop_removes_what_a_warm_start_would_read(tmp_path: Path) -> None:
    warmboot.save(str(tmp_path), "PortChannel0001", True, {"Ethernet0": True},
                  {"Ethernet0": PDU})  # fmt: skip
    warmboot.remove(str(tmp_path), "PortChannel0001", ["Ethernet0"])
    assert list(tmp_path.iterdir()) == []
