"""Where things live on disk: the user cache (overridable) and the package's own data."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "SPINEPOSE_DEPLOY_CACHE"
MODELS_DIR_ENV = "SPINEPOSE_DEPLOY_MODELS"
OFFLINE_ENV = "SPINEPOSE_DEPLOY_OFFLINE"


def cache_dir() -> Path:
    """Root of the user cache: ``$SPINEPOSE_DEPLOY_CACHE`` or the platform's cache dir."""
    override = os.environ.get(CACHE_ENV)
    root = Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("spinepose-deploy"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_subdir(name: str) -> Path:
    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_requested() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def repo_calib_dir() -> Path | None:
    """The ``calib_data/`` folder of a source checkout, if this package runs from one."""
    candidate = Path(__file__).resolve().parent.parent / "calib_data"
    return candidate if candidate.is_dir() else None


def package_data_dir() -> Path:
    return Path(__file__).resolve().parent / "data"
