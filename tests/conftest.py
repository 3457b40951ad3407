"""
Shared test fixtures.

The reference material (official XSDs, EXI vectors, EVerest YAML) lives in
``../shared`` beside the project and is never copied into it.  Tests that
need it use the ``shared_dir`` fixture, which skips with that reason when the
folder is absent (fails in CI).  ``EVSEV2G_SHARED`` overrides the location.

Certificates and keys are made at run time (``test_pki``), never committed.

The independent checks (the EXIficient oracle, Josev's EVCC, real network
namespaces, the reference folder) skip outside CI with the reason, and
*fail* in CI (``CI=true``, as CI services set it, or
``EVSEV2G_REQUIRE_INDEPENDENT=1``): they are the only checks that our EV
simulator and our SECC do not agree on a shared mistake, so CI must never
count them as passed without running them
(:func:`independent_check_unavailable`).
"""

import os
import socket
from pathlib import Path

import pytest

from evsev2g.netif import ServingAddress
from evsev2g.pki import create_test_pki
from evsev2g.security.files import FileSecurity
from tests.independent import independent_check_unavailable

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
        independent_check_unavailable(f"reference folder {path} is absent (it lies beside the project in CI)")
    return path


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory):
    """A complete ISO 15118-2 test PKI, made once per test run."""
    return create_test_pki(tmp_path_factory.mktemp("pki") / "certs")


@pytest.fixture(scope="session")
def credentials(test_pki):
    """The checked TLS server chain and key of :func:`test_pki`."""
    return FileSecurity(test_pki.directory).tls_server_credentials()


@pytest.fixture
def loopback():
    """The ``lo`` interface with ``::1``, as ``device: lo`` resolves it."""
    return ServingAddress("lo", socket.if_nametoindex("lo"), "::1")


@pytest.fixture
def reactor():
    """The global reactor that pytest-twisted runs (real-socket tests only)."""
    from twisted.internet import reactor as global_reactor

    return global_reactor


class LogCapture(list):
    """Log events captured during a test; :meth:`text` formats them."""

    def text(self) -> str:
        """:returns: every captured event formatted, one per line."""
        from twisted.logger import formatEvent

        return "\n".join(formatEvent(event) for event in self)

    def failures(self) -> list:
        """:returns: the events that carry a failure (``log.failure``)."""
        return [event for event in self if event.get("log_failure") is not None]


@pytest.fixture
def log_events():
    """Captures every twisted.logger event during the test."""
    from twisted.logger import globalLogPublisher

    captured = LogCapture()
    globalLogPublisher.addObserver(captured.append)
    yield captured
    globalLogPublisher.removeObserver(captured.append)
