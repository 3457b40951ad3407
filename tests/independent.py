"""
Independent checks (the EXIficient oracle, Josev's EVCC, real network
namespaces, the reference folder) skip outside CI with their reason and
*fail* in CI (``CI=true``, as CI services set it, or
``EVSEV2G_REQUIRE_INDEPENDENT=1``): they are the only checks that our EV
simulator and our SECC do not agree on a shared mistake, so CI must never
count them as passed without running them.
"""

import os

import pytest


def in_ci() -> bool:
    """Whether this run is CI's, where independent checks must run (see the module docstring)."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes") or os.environ.get("EVSEV2G_REQUIRE_INDEPENDENT") == "1"


def independent_check_unavailable(reason: str) -> None:
    """
    An independent check cannot run: skip saying why, or fail in CI.

    :param reason: what is missing and how to get it.
    :raises pytest.fail.Exception: in CI.
    :raises pytest.skip.Exception: elsewhere.
    """
    if in_ci():
        pytest.fail(f"{reason} (in CI this independent check must run, not skip)")
    pytest.skip(reason)


def reference_file(path):
    """
    A file of the reference folder (``../shared``) a test reads.

    :param path: its ``pathlib.Path``.
    :returns: ``path`` when it exists; otherwise the check is unavailable
        (skip with the path, or fail in CI).
    """
    if not path.exists():
        independent_check_unavailable(f"reference file {path} is absent")
    return path
