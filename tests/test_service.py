"""
The whole service tree (:mod:`evsev2g.service`, :mod:`evsev2g.tap`) in
process on ``lo``: SDP answers per ``tls_security`` and the announced
servers really answer.
"""

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, formatEvent

from evsev2g import session as session_module
from evsev2g.config import load_config
from evsev2g.sdp import Security
from evsev2g.service import build_service
from evsev2g.tap import Options, makeService
from evsev2g.testing import FakeSecurity, RecordingSessionFactory
from evsev2g.v2gtp import build_frame

from tests.listeners import EXI, echo
from tests.netclient import converse, sdp_ask, tls12_client_context


def lo_config(tmp_path, mode, certs_dir):
    """A configuration for lo with every port free."""
    return load_config(
        None,
        [f"tls_security={mode}", "device=lo", "tcp_port=0", "tls_port=0", "sdp_port=0", f"certs_dir={certs_dir}"],
    )


@pytest.mark.parametrize(
    "mode, with_certs, asked, expected, tls_protocols",
    [
        ("prohibit", True, Security.TLS, Security.NO_TLS, None),
        ("allow", True, Security.TLS, Security.TLS, None),
        ("allow", True, Security.TLS, Security.TLS, ["ISO15118D2"]),
        ("allow", True, Security.NO_TLS, Security.NO_TLS, None),
        ("allow", False, Security.TLS, Security.NO_TLS, None),
        # Only DIN 70121 served: it never runs over TLS ([V2G-DC-618]), so an
        # EV asking for TLS is sent to the TCP server (Josev's EVCC would
        # otherwise drop DIN from its offer and no protocol could be agreed).
        ("allow", True, Security.TLS, Security.NO_TLS, []),
        ("force", True, Security.NO_TLS, Security.TLS, None),
        ("force", True, Security.NO_TLS, Security.TLS, []),
    ],
)
@pytest_twisted.ensureDeferred
async def test_sdp_announces_a_server_that_answers(
    reactor, loopback, test_pki, tmp_path, mode, with_certs, asked, expected, tls_protocols
):
    """
    SDP's answer follows tls_security and what can be agreed over TLS, and
    the announced address and port serve V2GTP (TLS when announced).
    """
    certs = test_pki.directory if with_certs else tmp_path / "no-certs"
    config = lo_config(tmp_path, mode, certs)
    sessions = RecordingSessionFactory(echo)
    service = build_service(config, loopback, reactor, sessions, tls_protocols=tls_protocols)
    service.startService()
    try:
        address, port, security = await deferToThread(sdp_ask, service.sdp.port_number, asked)
        assert (address, security) == ("::1", expected)
        context = tls12_client_context() if security == Security.TLS else None
        frame = build_frame(EXI, b"\x80\x01")
        outcome = await deferToThread(converse, port, [frame], context=context, want=len(frame))
        assert outcome.received == frame
    finally:
        await service.stopService()
    assert (service.tcp is None) == (mode == "force")
    assert (service.tls is None) == (mode == "prohibit" or not with_certs)
    assert sessions.sessions[0].link.secure == (expected == Security.TLS)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("allow", "no enabled protocol runs over TLS (DIN SPEC 70121 never does, [V2G-DC-618]): "
                  "SDP answers TCP to EVs that ask for TLS"),
        ("force", "tls_security is force, but no enabled protocol runs over TLS (DIN SPEC 70121 never does, "
                  "[V2G-DC-618]): no EV can agree on a protocol"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_useless_tls_server_is_explained_at_start(reactor, loopback, test_pki, tmp_path, log_events, mode, expected):
    """A TLS server that no enabled protocol can use is said so once at start-up (a warning under force)."""
    config = lo_config(tmp_path, mode, test_pki.directory)
    service = build_service(config, loopback, reactor, RecordingSessionFactory(), tls_protocols=[])
    service.startService()
    await service.stopService()
    [event] = [event for event in log_events if "over TLS" in formatEvent(event)]
    assert formatEvent(event) == expected
    assert event["log_level"] == (LogLevel.warn if mode == "force" else LogLevel.info)


def test_make_service_tells_sdp_what_runs_over_tls(tmp_path, test_pki):
    """makeService asks the real session factory which protocols run over TLS: ISO 15118-2 once enabled."""
    options = Options()
    options.parseOptions(["--set", "device=lo", "--set", f"certs_dir={test_pki.directory}", "--set", "supported_ISO15118_2=true"])
    service = makeService(options, reactor=object())
    assert service.tls is not None and service.tls_protocols == ["ISO15118D2"]
    assert service.tls_useful


def test_allow_without_certificates_logs_how_to_make_them(loopback, tmp_path, log_events):
    """allow without a usable certificate serves TCP only and says once how to create a test PKI."""
    config = lo_config(tmp_path, "allow", tmp_path / "certs")
    service = build_service(config, loopback, None, RecordingSessionFactory())
    assert service.tls is None and service.tcp is not None
    [line] = [line for line in log_events.text().splitlines() if "TLS server off" in line]
    assert line.endswith(f"create a test PKI with: python -m evsev2g.pki create {tmp_path / 'certs'}")


def test_force_without_certificates_refuses_to_start(tmp_path, monkeypatch):
    """force without a usable certificate: makeService stops twistd with that same message."""
    options = Options()
    options.parseOptions(["--set", "device=lo", "--set", "tls_security=force", "--set", f"certs_dir={tmp_path}/certs"])
    with pytest.raises(SystemExit) as caught:
        makeService(options, reactor=object())
    message = str(caught.value.code)
    assert message.startswith("twistd evsev2g: tls_security is force, but no usable TLS server certificate in ")
    assert message.endswith(f"create a test PKI with: python -m evsev2g.pki create {tmp_path}/certs")


def test_make_service_gets_sessions_from_build_session_factory(tmp_path, monkeypatch, test_pki):
    """makeService takes its sessions from session.build_session_factory(config, reactor), the seam the core replaces."""
    calls = []
    sessions = RecordingSessionFactory()

    def spy(config, reactor):
        calls.append((config, reactor))
        return sessions

    monkeypatch.setattr(session_module, "build_session_factory", spy)
    options = Options()
    options.parseOptions(["--set", "device=lo", "--set", f"certs_dir={test_pki.directory}"])
    marker = object()
    service = makeService(options, reactor=marker)
    assert calls == [(options.config, marker)]
    assert service.tcp.factory.session_factory is sessions and service.tls.factory.session_factory is sessions
    assert [child.name for child in service] == ["tcp", "tls", "sdp", "certificate-watch"]


def test_sdp_can_be_disabled(loopback, tmp_path):
    """enable_sdp_server: false builds no SDP service (a proxy such as IsoMux does SDP)."""
    config = load_config(None, ["device=lo", "enable_sdp_server=false", "tls_security=prohibit"])
    service = build_service(config, loopback, None, RecordingSessionFactory(), FakeSecurity())
    assert service.sdp is None and [child.name for child in service] == ["tcp"]


def test_options_load_file_and_overrides(tmp_path):
    """--config and repeated --set build the config; the device is resolved."""
    path = tmp_path / "c.yaml"
    path.write_text("tls_security: prohibit\ntcp_port: 50000\n")
    options = Options()
    options.parseOptions(["--config", str(path), "--set", "device=lo", "-s", "tcp_port=50001"])
    assert (options.config.tls_security, options.config.tcp_port) == ("prohibit", 50001)
    assert options.serving.address == "::1"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--set", "tls_security=on"], "twistd evsev2g: --set: tls_security: 'on' is not allowed (allowed: prohibit, allow, force)"),
        (["--set", "device=nosuch7"], "twistd evsev2g: device: 'nosuch7' does not exist; would do: "),
        (["--set", "colour=blue"], "twistd evsev2g: --set: colour: unknown key (known keys: "),
    ],
)
def test_options_errors_are_one_line(argv, expected):
    """Config errors end option parsing with SystemExit carrying one line."""
    with pytest.raises(SystemExit) as caught:
        Options().parseOptions(argv)
    message = str(caught.value.code)
    assert message.startswith(expected) and "\n" not in message
