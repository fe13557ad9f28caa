"""Shared fixtures."""

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory to run entry points in (their outputs/ lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
