"""
What a running ``twistd evsev2g`` keeps out of its process until used
(issue 10's footprint): the EVerest backend and its MQTT, Twisted's
``application.internet`` (ClientService, automat), Plug & Charge (contract
chains, XML signatures, OCSP, EXI fragments), the XSD reader and grammar
builder; and that those features still work when used.
"""

import os
import subprocess
import sys

from twisted.application.service import MultiService
from twisted.internet.task import Clock

from evsev2g.service import CertificateWatch

from tests.conftest import REPO_ROOT

_SERVICE_START = (
    "import sys\n"
    "from twisted.internet import reactor\n"
    "from evsev2g.tap import Options, makeService\n"
    "options = Options()\n"
    "options.parseOptions(['--set', 'device=lo', '--set', 'tcp_port=0', '--set', 'tls_port=0', '--set', 'sdp_port=0',\n"
    "                      '--set', 'certs_dir=' + sys.argv[1]])\n"
    "service = makeService(options, reactor)\n"
    "print(' '.join(sorted(sys.modules)))\n"
)

NOT_AT_START = ("paho", "evsev2g.everest.backend", "evsev2g.everest.module", "evsev2g.everest.mqtt",
                "twisted.application.internet", "automat", "evsev2g.security.contract", "evsev2g.security.ocsp",
                "evsev2g.security.xmldsig", "evsev2g.protocols.iso15118_2.pnc_session", "evsev2g.exi.fragment",
                "evsev2g.exi.codegen", "evsev2g.exi.xsd_reader", "evsev2g.exi.grammar_builder", "lxml", "decimal",
                "shlex", "ctypes.util")

#: Plug & Charge's modules, which an EIM session never needs, over TLS neither.
PLUG_AND_CHARGE = ("evsev2g.protocols.iso15118_2.pnc_session", "evsev2g.security.contract", "evsev2g.security.xmldsig")


def test_the_service_is_built_without_what_it_does_not_use_yet(test_pki, tmp_path):
    """
    ``makeService`` of the default configuration (simulator backend, TLS,
    all three codecs) imports none of the modules only a chosen backend or
    a later feature needs.
    """
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", _SERVICE_START, str(test_pki.directory)], capture_output=True,
                          text=True, env=environment, cwd=REPO_ROOT, check=True)
    modules = set(done.stdout.split())
    assert "evsev2g.exi.codec" in modules and "evsev2g.sim.charger" in modules
    assert [m for m in NOT_AT_START if m in modules] == []


def test_an_eim_session_over_tls_loads_no_plug_and_charge(tmp_path):
    """The ISO 15118-2 AC demo over TLS (Contract offered, ExternalPayment chosen) completes without Plug & Charge's modules."""
    code = (
        "import sys\n"
        "from evsev2g.__main__ import main\n"
        "status = main(['demo', '--protocol', 'iso15118-2', '--mode', 'ac', '--tls'])\n"
        "print(status, ' '.join(sorted(sys.modules)))\n"
    )
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          cwd=REPO_ROOT, check=True, timeout=120)
    status, *modules = done.stdout.splitlines()[-1].split()
    assert status == "0"
    assert "evsev2g.protocols.iso15118_2.pnc" in modules  # Contract is offered
    assert [m for m in PLUG_AND_CHARGE if m in modules] == []


def test_the_everest_backend_still_imports_mqtt_when_chosen():
    """The lazily imported EVerest module code is there once the backend is made (the factory is found without it)."""
    code = (
        "import sys\n"
        "from evsev2g.backends import backend_factories\n"
        "factory = backend_factories()['everest']\n"
        "print('paho' in sys.modules)\n"
        "from evsev2g.config import load_config\n"
        "from twisted.internet.task import Clock\n"
        "backend = factory.make(load_config(None, ['backend=everest']), Clock())\n"
        "print('paho' in sys.modules, type(backend.module).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert done.stdout.split("\n")[:2] == ["False", "True EverestModule"]


def test_the_certificate_watch_checks_at_start_then_every_interval_until_stopped():
    """``CertificateWatch`` (in place of Twisted's TimerService) calls the check at start, each interval, and no more once stopped."""
    calls = []
    clock = Clock()
    top = MultiService()
    watch = CertificateWatch(lambda: calls.append(clock.seconds()), clock, interval=10.0)
    watch.setServiceParent(top)
    top.startService()
    clock.advance(10.0)
    clock.advance(10.0)
    assert calls == [0.0, 10.0, 20.0]
    assert watch.call[0] is not None and watch.name == "certificate-watch"
    top.stopService()
    clock.advance(30.0)
    assert calls == [0.0, 10.0, 20.0] and not clock.getDelayedCalls()


def test_the_certificate_watch_survives_a_failing_check():
    """A check that raises is logged and ends the watch; stopping the service afterwards is clean."""
    clock = Clock()
    watch = CertificateWatch(lambda: 1 / 0, clock, interval=5.0)
    watch.startService()
    assert not clock.getDelayedCalls()
    watch.stopService()
