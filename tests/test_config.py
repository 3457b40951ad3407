"""Tests for :mod:`evsev2g.config` and :mod:`evsev2g.config_types`."""

from pathlib import Path

import attrs
import pytest
import yaml

from evsev2g.config import Config, load_config
from evsev2g.config_types import Flag, Whole, build_section, describe, group, keys_of, setting
from evsev2g.errors import ConfigError

from tests.conftest import REPO_ROOT

MANIFEST_KEYS = {
    "device": "eth0",
    "supported_DIN70121": True,
    "supported_ISO15118_2": True,
    "tls_security": "allow",
    "terminate_connection_on_failed_response": False,
    "tls_key_logging": False,
    "tls_key_logging_path": Path("/tmp"),
    "tls_timeout": 15000,
    "verify_contract_cert_chain": False,
    "auth_timeout_pnc": 55,
    "auth_timeout_eim": 300,
    "enable_sdp_server": True,
    "publish_telemetry_only_on_change": True,
}


def write(tmp_path, text: str) -> Path:
    """Write a config file and return its path."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def error_of(path=None, overrides=()) -> str:
    """The one-line ConfigError message of a failing load."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_are_evsev2g_manifest_defaults():
    """Every EvseV2G manifest key exists with the manifest's default."""
    config = load_config()
    for key, default in MANIFEST_KEYS.items():
        assert getattr(config, key) == default, key
    assert (config.backend, config.tcp_port, config.tls_port, config.sdp_port) == ("simulator", 61341, 64109, 15118)


def test_manifest_keys_match_the_shared_manifest(shared_dir):
    """The key list and defaults above are the EVerest manifest's own."""
    manifest = yaml.safe_load((shared_dir / "everest" / "EvseV2G-manifest.yaml").read_text())
    for key, spec in manifest["config"].items():
        expected = Path(spec["default"]) if key == "tls_key_logging_path" else spec["default"]
        assert MANIFEST_KEYS[key] == expected, key
    assert set(manifest["config"]) == set(MANIFEST_KEYS)


def test_tap_config_yaml_lists_every_key_at_its_default():
    """tap_config.yaml holds every key, those of the groups too, in the code's order, each at the code's default."""
    path = REPO_ROOT / "tap_config.yaml"
    raw = yaml.safe_load(path.read_text())
    assert list(raw) == keys_of(Config)

    def flat(mapping, prefix=""):
        for key, value in mapping.items():
            yield from flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]

    assert list(flat(raw)) == [info.key for info in describe(Config)]
    assert load_config(path) == Config()


def test_readme_documents_every_key():
    """The README's configuration table has one row per key: its default, what it allows and what it means, as the code says (which the EVerest manifest carries too)."""
    readme = (REPO_ROOT / "README.md").read_text()
    for info in describe(Config):
        assert f"| `{info.key}` | `{info.default}` | {info.allowed} | {info.doc} |" in readme.splitlines(), info.key


def test_file_values_and_typed_overrides(tmp_path):
    """--set values are typed by their key and win over the file, in order."""
    path = write(tmp_path, "tls_security: force\ntcp_port: 50000\n")
    config = load_config(path, ["tcp_port=0", "device=50000", "tls_key_logging=yes", "tcp_port=50001"])
    assert config.tls_security == "force"
    assert config.tcp_port == 50001
    assert config.device == "50000"
    assert config.tls_key_logging is True


def test_relative_paths(tmp_path, monkeypatch):
    """Relative paths in a file are relative to the file; on --set to the cwd."""
    sub = tmp_path / "etc"
    sub.mkdir()
    path = write(sub, "certs_dir: certs\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(path).certs_dir == sub / "certs"
    assert load_config(path, ["certs_dir=other"]).certs_dir == tmp_path / "other"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_config(path, ["certs_dir=~/certs"]).certs_dir == tmp_path / "home" / "certs"


def test_empty_file_gives_defaults(tmp_path):
    """An empty file (or only comments) means every key at its default."""
    assert load_config(write(tmp_path, "# nothing\n")) == Config()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("tls_securty: allow\n", "tls_securty: unknown key (did you mean 'tls_security'?)"),
        ("colour: blue\n", "colour: unknown key (known keys: device, "),
        ("tls_security: maybe\n", "tls_security: 'maybe' is not allowed (allowed: prohibit, allow, force)"),
        ("tls_timeout: fast\n", "tls_timeout: 'fast' is not allowed (allowed: a whole number from 100 to 600000 ms)"),
        ("tls_timeout: 1.5\n", "tls_timeout: 1.5 is not allowed"),
        ("tls_timeout: true\n", "tls_timeout: True is not allowed"),
        ("tcp_port: 8080\n", "tcp_port: 8080 is not allowed (allowed: a whole number from 49152 to 65535, or 0"),
        ("supported_DIN70121: 1\n", "supported_DIN70121: 1 is not allowed (allowed: true or false)"),
        ("device: ''\n", "device: '' is not allowed"),
        ("v2gtp_max_payload: 10\n", "v2gtp_max_payload: 10 is not allowed (allowed: a whole number from 512 to 1048576 bytes)"),
        ("backend: rest\n", "backend: 'rest' is not allowed (allowed: everest, simulator)"),
        ("tcp_port: 50000\ntls_port: 50000\n", "tls_port: must differ from tcp_port (50000)"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(tmp_path, text, expected):
    """Unknown key, wrong type, out of range: one line naming key and allowed values."""
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize(
    "assignment, expected",
    [
        ("tls_security", "--set: tls_security: expected KEY=VALUE"),
        ("tcp_port=abc", "--set: tcp_port: 'abc' is not allowed"),
        ("nope=1", "--set: nope: unknown key"),
        ("tls_key_logging=maybe", "--set: tls_key_logging: 'maybe' is not allowed (allowed: true or false)"),
        ("device.x=1", "--set: device: is not a group; it has no keys below it"),
    ],
)
def test_bad_overrides(assignment, expected):
    """A bad --set is reported as coming from --set, in one line."""
    assert error_of(None, [assignment]).startswith(expected)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("tls_security: [allow\n", "config: not valid YAML at line 2"),
        ("- a\n- b\n", "config: must be a mapping of keys to values"),
    ],
)
def test_file_errors(tmp_path, text, expected):
    """YAML syntax errors and non-mapping files are one line naming the file."""
    path = write(tmp_path, text)
    assert error_of(path).startswith(f"{path}: {expected}")


def test_missing_file(tmp_path):
    """A missing file is one line naming the file and why."""
    path = tmp_path / "absent.yaml"
    assert error_of(path) == f"{path}: config: cannot read the file: No such file or directory"


def test_config_is_frozen():
    """The configuration cannot be changed after loading."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        load_config().device = "lo"


# -- nested groups, as the session core will add them ----------------------


@attrs.frozen
class Simulated:
    """A group the way a later section (simulator:, timers) is declared."""

    delay_ms: int = setting(0, Whole(0, 5000, "ms"), "Answer delay.")
    strict: bool = setting(False, Flag(), "Strict mode.")


@attrs.frozen
class WithGroup:
    """A top-level schema holding a group."""

    name: int = setting(1, Whole(0, 9), "A number.")
    simulator: Simulated = group(Simulated, "The simulated part.")


def test_group_values_defaults_and_errors(tmp_path):
    """A nested group is checked with its own schema and dotted key names."""
    built = build_section(WithGroup, {"simulator": {"delay_ms": 20}}, tmp_path)
    assert built.simulator == Simulated(delay_ms=20)
    assert build_section(WithGroup, {}, tmp_path).simulator == Simulated()
    with pytest.raises(ConfigError, match=r"^simulator\.delay_ms: 9999 is not allowed"):
        build_section(WithGroup, {"simulator": {"delay_ms": 9999}}, tmp_path)
    with pytest.raises(ConfigError, match=r"^simulator\.strikt: unknown key \(did you mean 'strict'\?\)"):
        build_section(WithGroup, {"simulator": {"strikt": True}}, tmp_path)
    with pytest.raises(ConfigError, match=r"^simulator: 3 is not allowed \(allowed: a mapping with the keys delay_ms, strict\)"):
        build_section(WithGroup, {"simulator": 3}, tmp_path)


def test_group_overrides_and_description(tmp_path):
    """Dotted --set keys reach into groups; describe() lists dotted keys."""
    from evsev2g.config_types import override

    raw = override({"simulator": {"strict": True}}, WithGroup, "simulator.delay_ms=250")
    assert build_section(WithGroup, raw, tmp_path).simulator == Simulated(250, True)
    with pytest.raises(ConfigError, match="is a group; set its keys one by one as simulator.KEY=VALUE"):
        override({}, WithGroup, "simulator=1")
    assert [info.key for info in describe(WithGroup)] == ["name", "simulator.delay_ms", "simulator.strict"]
