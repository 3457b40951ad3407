"""
A small validator for EVerest payloads, read straight from the interface
and type YAML in ``../shared/everest`` (JSON-schema keywords the EVerest
files use: type, $ref, enum, required, properties, additionalProperties,
items, minItems/maxItems, minimum/maximum, minLength/maxLength, pattern).
``$ref`` is resolved as draft-07 does (keywords beside it are ignored).
It knows nothing of evsev2g's own shapes: it is the independent check that
what the module publishes is what EVerest's subscribers accept.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

__all__ = ["Schemas"]

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


class Schemas:
    """The interfaces and types of one shared ``everest`` folder."""

    def __init__(self, everest_dir: Path) -> None:
        self.dir = Path(everest_dir)
        self._types: dict[str, dict] = {}
        self._interfaces: dict[str, dict] = {}

    def interface(self, name: str) -> dict:
        if name not in self._interfaces:
            self._interfaces[name] = yaml.safe_load((self.dir / "interfaces" / f"{name}.yaml").read_text())
        return self._interfaces[name]

    def _resolve(self, ref: str) -> dict:
        file, _, name = ref.lstrip("/").partition("#/")
        if file not in self._types:
            self._types[file] = yaml.safe_load((self.dir / "types" / f"{file}.yaml").read_text())["types"]
        return self._types[file][name]

    def check_var(self, interface: str, var: str, value) -> None:
        """:raises AssertionError: naming the path that does not fit."""
        spec = self.interface(interface)["vars"][var]
        self.check(spec, value, var)

    def check_result(self, interface: str, cmd: str, value) -> None:
        spec = self.interface(interface)["cmds"][cmd].get("result", {"type": "null"})
        self.check(spec, value, f"{cmd}.result")

    def check(self, spec: dict, value, path: str) -> None:
        if "$ref" in spec:
            # draft-07, which EVerest's validator follows: keywords beside $ref are ignored
            spec = self._resolve(spec["$ref"])
        kind = spec.get("type")
        if kind == "number":
            assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: {value!r} is not a number"
        elif kind == "integer":
            assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r} is not an integer"
        elif kind in _TYPES:
            assert isinstance(value, _TYPES[kind]), f"{path}: {value!r} is not {kind}"
        if "enum" in spec:
            assert value in spec["enum"], f"{path}: {value!r} not in {spec['enum']}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in spec:
                assert value >= spec["minimum"], f"{path}: {value} < {spec['minimum']}"
            if "maximum" in spec:
                assert value <= spec["maximum"], f"{path}: {value} > {spec['maximum']}"
        if isinstance(value, str):
            if "pattern" in spec:
                assert re.search(spec["pattern"], value), f"{path}: {value!r} does not match {spec['pattern']}"
            if "maxLength" in spec:
                assert len(value) <= spec["maxLength"], f"{path}: longer than {spec['maxLength']}"
            if "minLength" in spec:
                assert len(value) >= spec["minLength"], f"{path}: shorter than {spec['minLength']}"
        if isinstance(value, dict):
            properties = spec.get("properties", {})
            for key in spec.get("required", []):
                assert key in value, f"{path}: missing {key!r}"
            for key, item in value.items():
                if key in properties:
                    self.check(properties[key], item, f"{path}.{key}")
                else:
                    assert spec.get("additionalProperties", True) is not False, f"{path}: unexpected {key!r}"
        if isinstance(value, list):
            if "minItems" in spec:
                assert len(value) >= spec["minItems"], f"{path}: fewer than {spec['minItems']} items"
            if "maxItems" in spec:
                assert len(value) <= spec["maxItems"], f"{path}: more than {spec['maxItems']} items"
            for index, item in enumerate(value):
                if "items" in spec:
                    self.check(spec["items"], item, f"{path}[{index}]")
