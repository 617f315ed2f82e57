"""Shared fixtures: one stand-in cache per test session (or CI's), so each graph is built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spinepose_deploy.paths import CACHE_ENV


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Use $SPINEPOSE_DEPLOY_CACHE when CI sets it (persists between runs), else a session temp dir."""
    existing = os.environ.get(CACHE_ENV)
    path = Path(existing) if existing else tmp_path_factory.mktemp("cache")
    os.environ[CACHE_ENV] = str(path)
    return path


@pytest.fixture(scope="session")
def standin_paths(session_cache: Path) -> dict[str, Path]:
    """Stand-ins of the small mode (built once per session)."""
    from spinepose_deploy.zoo.standins import build_standin

    return {name: build_standin(name) for name in ("yolox-tiny", "pose-s-v2", "lifter")}
