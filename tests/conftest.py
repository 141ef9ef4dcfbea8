"""Shared pytest fixtures for every tier."""

from __future__ import annotations

import pytest


@pytest.fixture
def hs(tmp_path):
    """The real homeserver built in-process on a fake reactor (SQLite)."""
    from tests.inprocess.harness import InProcessServer

    server = InProcessServer(tmp_path)
    yield server
    server.hs.db.close()
