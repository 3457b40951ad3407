"""
A real Mosquitto broker for the tests: our own process on 127.0.0.1 with a
free port and on a unix socket in a temporary directory (reachable from
network namespaces, which share the file system), never the system's
service.  It can be stopped and started again on the same addresses.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["Mosquitto", "mosquitto_binary"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    """
    The mosquitto binary (.ci/run installs it).  Missing, the test fails
    saying so: these are the only checks against a real broker, so they
    never skip.
    """
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if path is None:
        raise AssertionError("mosquitto is not installed: apt-get install mosquitto (.ci/run does)")
    return path


class Mosquitto:
    """
    One broker process.

    :ivar port: its TCP port on 127.0.0.1.
    :ivar socket_path: its unix socket.
    """

    def __init__(self, directory: Path, anonymous: bool = True) -> None:
        self.binary = mosquitto_binary()
        self.directory = Path(directory)
        self.port = _free_port()
        self.socket_path = str(self.directory / "mqtt.sock")
        self.log_path = self.directory / "mosquitto.log"
        self.process: subprocess.Popen | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"listener 0 {self.socket_path}",
            f"allow_anonymous {'true' if anonymous else 'false'}",
            "persistence false",
        ]
        if not anonymous:
            (self.directory / "passwords").write_text("")
            lines.append(f"password_file {self.directory / 'passwords'}")
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to 'mosquitto' and cannot bind the socket here
        self.conf = self.directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> "Mosquitto":
        """Start and wait until both listeners accept connections."""
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                unix = socket.socket(socket.AF_UNIX)
                unix.connect(self.socket_path)
                unix.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not come up: {self.log_path.read_text()}")

    def stop(self) -> None:
        """Stop this broker (our process only)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
