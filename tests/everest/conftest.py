"""Fixtures of the EVerest module tests: a real Mosquitto, the YAML schemas, the module process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.everest.broker import Mosquitto
from tests.everest.fake_everest import DUT, FakeEverest
from tests.everest.schema import Schemas

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker(tmp_path):
    """Our own Mosquitto on 127.0.0.1:<free port> and a unix socket, stopped afterwards."""
    mosquitto = Mosquitto(tmp_path).start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture(scope="session")
def schemas(shared_dir):
    """The EVerest interface and type YAML of the shared folder."""
    return Schemas(shared_dir / "everest")


class ModuleProcess:
    """``python -m evsev2g.everest`` started as EVerest's manager starts a Python module."""

    def __init__(self, broker, prefix, log_path: Path, transport="tcp", generation=None, netns=None, extra_env=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("EV_")}
        env.update({
            "EV_MODULE": DUT,
            "EV_PREFIX": "/usr",
            "EV_LOG_CONF_FILE": "/dev/null",
            "EV_MQTT_EVEREST_PREFIX": prefix,
            "EV_MQTT_EXTERNAL_PREFIX": "",
            "PYTHONPATH": str(REPO),
        })
        if transport == "unix":
            env["EV_MQTT_BROKER_SOCKET_PATH"] = broker.socket_path
        else:
            env["EV_MQTT_BROKER_HOST"], env["EV_MQTT_BROKER_PORT"] = "127.0.0.1", str(broker.port)
        if generation:
            env["EVSEV2G_EVEREST_GENERATION"] = generation
        env.update(extra_env or {})
        command = [sys.executable, "-m", "evsev2g.everest"]
        if netns:
            command = ["ip", "netns", "exec", netns] + command
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        self.process = subprocess.Popen(command, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, cwd="/")

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, fake: FakeEverest, needle: str, timeout: float = 20) -> None:
        """Pump the fake EVerest until the module's log holds ``needle``."""
        fake.wait(lambda: needle in self.log or self.process.poll() is not None, timeout, f"module log line {needle!r}")
        assert needle in self.log, f"the module exited ({self.process.returncode}) before logging {needle!r}:\n{self.log}"

    def stop(self) -> int:
        """SIGTERM (as the manager does), then wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode


@pytest.fixture
def prefix():
    """A fresh EVerest prefix, so tests never see each other's topics."""
    return f"test_{uuid.uuid4().hex[:8]}/"


@pytest.fixture
def start_module(tmp_path, broker, prefix, schemas):
    """Start the module (and a fake EVerest for it); everything is stopped afterwards."""
    started = []

    def start(config, generation="C", transport="tcp", certs=None, netns=None, vas=False, security=True, global_ready=True,
              telemetry_id=None, module_generation=None, module_names=True):
        fake = FakeEverest(
            ("tcp", "127.0.0.1", broker.port), prefix, generation, config, certs,
            schemas, security=security, vas=vas, telemetry_id=telemetry_id, module_names=module_names,
        )
        if module_generation is None:
            module_generation = generation
        module = ModuleProcess(broker, prefix, tmp_path / f"module{len(started)}.log", transport,
                               module_generation if module_generation != "C" else None, netns)
        started.append((fake, module))
        fake.wait(lambda: fake.ready or module.process.poll() is not None, 30, "ModuleReady")
        assert fake.ready, module.log
        if global_ready:
            fake.send_global_ready()
        return fake, module

    yield start
    for fake, module in started:
        module.stop()
        fake.disconnect()
