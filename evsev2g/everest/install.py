"""
``python -m evsev2g.everest install MODULES_DIR [--name NAME]``: the module
folder EVerest's manager needs (``MQTT_PROTOCOL.md`` §2, §8).

- ``manifest.yaml``: EvseV2G's ``provides`` (``charger``: ISO15118_charger,
  ``extensions``: iso15118_extensions) and ``requires`` (``security``:
  evse_security, ``iso15118_vas``: ISO15118_vas 0…128), so run configs keep
  their connections; ``config``: EvseV2G's keys with the same types and
  defaults, and evsev2g's own top-level keys of
  :data:`~evsev2g.everest.config.EXTRA_KEYS`; all generated from
  :class:`evsev2g.config.Config`.
- ``module.py``: what the manager starts for a Python module (``python3
  module.py`` with the ``EV_*`` environment); it hands over to the
  interpreter evsev2g is installed in, running ``-m evsev2g.everest``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from evsev2g.config import Config
from evsev2g.config_types import Choice, Flag, Whole, settings_of

__all__ = ["manifest", "module_script", "install", "main", "EVSEV2G_KEYS", "DEFAULT_NAME"]

DEFAULT_NAME = "PyEvseV2G"

#: EvseV2G's configuration keys (its manifest's ``config``), in its order.
EVSEV2G_KEYS = (
    "device",
    "supported_DIN70121",
    "supported_ISO15118_2",
    "tls_security",
    "terminate_connection_on_failed_response",
    "tls_key_logging",
    "tls_key_logging_path",
    "tls_timeout",
    "verify_contract_cert_chain",
    "auth_timeout_pnc",
    "auth_timeout_eim",
    "enable_sdp_server",
    "publish_telemetry_only_on_change",
)


def _entry(name: str) -> dict:
    setting = settings_of(Config)[name]
    default = next(f.default for f in Config.__attrs_attrs__ if f.name == name)
    check = setting.check
    entry = {"description": setting.doc}
    if isinstance(check, Flag):
        entry["type"] = "boolean"
    elif isinstance(check, Whole):
        entry["type"] = "integer"
    else:
        entry["type"] = "string"
        if isinstance(check, Choice):
            entry["enum"] = list(check.choices)
    entry["default"] = default if isinstance(default, (bool, int)) else str(default)
    return entry


def manifest() -> dict:
    """:returns: the module manifest as a mapping."""
    from evsev2g.everest.config import EXTRA_KEYS

    return {
        "description": "evsev2g: DIN SPEC 70121 and ISO 15118-2 SECC on Twisted, a drop-in for EvseV2G",
        "config": {name: _entry(name) for name in EVSEV2G_KEYS + EXTRA_KEYS},
        "provides": {
            "charger": {"interface": "ISO15118_charger", "description": "DIN SPEC 70121 and ISO 15118-2 for an AC or DC charger"},
            "extensions": {"interface": "iso15118_extensions", "description": "Data shared between ISO 15118 and OCPP"},
        },
        "requires": {
            "security": {"interface": "evse_security"},
            "iso15118_vas": {"interface": "ISO15118_vas", "min_connections": 0, "max_connections": 128},
        },
        "metadata": {"license": "https://opensource.org/licenses/Apache-2.0", "authors": ["evsev2g contributors"]},
    }


def module_script(interpreter: str) -> str:
    """:returns: the text of ``module.py``, handing over to ``interpreter``."""
    return f'''"""EVerest module: evsev2g (written by python -m evsev2g.everest install)."""
import os

INTERPRETER = {interpreter!r}
os.execv(INTERPRETER, [INTERPRETER, "-m", "evsev2g.everest"])
'''


def install(modules_dir: Path, name: str = DEFAULT_NAME, interpreter: str | None = None) -> Path:
    """
    Write ``modules_dir/name/manifest.yaml`` and ``module.py``.

    :returns: the module folder.
    """
    folder = Path(modules_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest(), sort_keys=False), encoding="utf-8")
    script = folder / "module.py"
    script.write_text(module_script(interpreter or sys.executable), encoding="utf-8")
    script.chmod(0o755)
    return folder


def main(argv) -> int:
    """The ``install`` command line; :returns: the exit status."""
    parser = argparse.ArgumentParser(prog="python -m evsev2g.everest install", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules_dir", type=Path, help="EVerest's modules directory, e.g. /opt/everest/libexec/everest/modules")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"module (folder) name, default {DEFAULT_NAME}")
    options = parser.parse_args(argv)
    folder = install(options.modules_dir, options.name)
    print(f"installed the EVerest module {options.name} in {folder}")
    print(f"use it with: module: {options.name} (see the README for the config entry)")
    return 0
