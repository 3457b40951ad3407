"""
Shared test fixtures.

The reference material (official XSDs, EXI vectors, EVerest YAML) lives in
``../shared`` beside the project and is never copied into it.  Tests that
need it use the ``shared_dir`` fixture, which skips with that reason when the
folder is absent.  ``EVSEV2G_SHARED`` overrides the location.
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_path() -> Path:
    """Where ``../shared`` is expected (``EVSEV2G_SHARED`` overrides it)."""
    override = os.environ.get("EVSEV2G_SHARED")
    return Path(override) if override else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared reference folder; skips the test when it is absent."""
    path = shared_path()
    if not path.is_dir():
        pytest.skip(f"reference folder {path} is absent (it lies beside the project in CI)")
    return path
