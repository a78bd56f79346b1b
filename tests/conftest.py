from __future__ import annotations

from pathlib import Path

import pytest

from teamd_lab.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """A fresh real redis-server per test, on a unix socket in a short private directory."""
    # unix socket paths are limited to 107 bytes, so keep the directory short.
    d = Path(tmp_path_factory.mktemp("r", numbered=True))
    srv = RedisServer(d).start()
    yield srv
    srv.stop()


# Numbers a test measured, printed at the end of the run beside each other (the supervised
# results next to the unsupervised contrast), whatever pytest captured.
_SUMMARY: list[str] = []


@pytest.fixture(scope="session")
def summary() -> list[str]:
    return _SUMMARY


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _SUMMARY:
        terminalreporter.section("measured (partner-side)")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
