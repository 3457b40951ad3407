"""
Typed configuration keys and the loader that checks a mapping against them.

A configuration section is a frozen attrs class whose fields are declared
with :func:`setting` (one key) or :func:`group` (a nested section with its
own keys).  :func:`build_section` turns a mapping (from YAML) into an
instance, rejecting unknown keys, wrong types and out-of-range values with a
:class:`~evsev2g.errors.ConfigError` whose message names the key and what it
allows.  Adding a key is one line in the schema; adding a group is one small
attrs class and one :func:`group` field.

Example::

    @attrs.frozen
    class Simulator:
        delay_ms: int = setting(0, Whole(0, 60000, "ms"), "Answer delay.")

    @attrs.frozen
    class Config:
        simulator: Simulator = group(Simulator, "The simulated charger.")
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from evsev2g.errors import ConfigError

_SETTING = "evsev2g.setting"


class Check:
    """
    The type and range of one configuration key.

    Subclasses convert a value read from YAML (:meth:`from_yaml`) or typed on
    the command line (:meth:`from_text`), raising :class:`ConfigError` with
    :attr:`allowed` in the message.
    """

    allowed = "a value"

    def from_yaml(self, key: str, value: Any, base: Path) -> Any:
        """
        :param key: the dotted key, for messages.
        :param value: what ``yaml.safe_load`` produced.
        :param base: the directory relative paths are resolved against.
        :returns: the typed value.
        :raises ConfigError: when the value is not allowed.
        """
        raise NotImplementedError

    def from_text(self, key: str, text: str) -> Any:
        """
        Convert a command-line value (``--set key=text``).

        :param key: the dotted key, for messages.
        :param text: the text after ``=``.
        :returns: the typed value, as :meth:`from_yaml` would accept it.
        :raises ConfigError: when the text is not allowed.
        """
        return self.from_yaml(key, text, Path.cwd())

    def format(self, value: Any) -> str:
        """
        :param value: a typed value of this key.
        :returns: the value written as in the YAML file.
        """
        return str(value)

    def reject(self, key: str, value: Any) -> ConfigError:
        """
        :param key: the dotted key.
        :param value: the offending value.
        :returns: the error naming the key, the value and what is allowed.
        """
        return ConfigError(key, f"{value!r} is not allowed (allowed: {self.allowed})")


class Flag(Check):
    """``true`` or ``false``."""

    allowed = "true or false"
    _words = {"true": True, "yes": True, "on": True, "1": True,
              "false": False, "no": False, "off": False, "0": False}

    def from_yaml(self, key, value, base):
        """:returns: the boolean; other types are rejected."""
        if isinstance(value, bool):
            return value
        raise self.reject(key, value)

    def from_text(self, key, text):
        """:returns: the boolean for true/false, yes/no, on/off, 1/0."""
        try:
            return self._words[text.strip().lower()]
        except KeyError:
            raise self.reject(key, text) from None

    def format(self, value):
        """:returns: ``true`` or ``false``."""
        return "true" if value else "false"


@attrs.frozen
class Whole(Check):
    """
    A whole number within ``low``–``high``, or one of ``also``.

    :param low: the smallest value allowed.
    :param high: the largest value allowed.
    :param unit: the unit shown in messages (``"ms"``, ``"bytes"``), or ``""``.
    :param also: extra single values allowed outside the range, each with
        its meaning, e.g. ``{0: "any free port in 49152-65535"}``.
    """

    low: int
    high: int
    unit: str = ""
    also: Mapping[int, str] = attrs.field(factory=dict)

    @property
    def allowed(self) -> str:
        """What the key accepts, in words."""
        unit = f" {self.unit}" if self.unit else ""
        words = f"a whole number from {self.low} to {self.high}{unit}"
        for value, meaning in self.also.items():
            words += f", or {value} for {meaning}"
        return words

    def from_yaml(self, key, value, base):
        """:returns: the int; bools, floats and text are rejected."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.reject(key, value)
        if value in self.also or self.low <= value <= self.high:
            return value
        raise self.reject(key, value)

    def from_text(self, key, text):
        """:returns: the int written in decimal."""
        stripped = text.strip()
        if not stripped.lstrip("-").isdigit():
            raise self.reject(key, text)
        return self.from_yaml(key, int(stripped), Path.cwd())


@attrs.frozen
class Choice(Check):
    """
    One of a fixed set of words.

    :param choices: the words allowed now.
    :param later: words that name something not built yet, each with the
        sentence that says so.
    """

    choices: tuple[str, ...]
    later: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def allowed(self) -> str:
        """What the key accepts, in words."""
        return ", ".join(self.choices)

    def from_yaml(self, key, value, base):
        """:returns: the word; anything else is rejected."""
        if isinstance(value, str) and value in self.later:
            raise ConfigError(key, f"{value!r} {self.later[value]} (allowed now: {self.allowed})")
        if isinstance(value, str) and value in self.choices:
            return value
        raise self.reject(key, value)


@attrs.frozen
class Text(Check):
    """
    A non-empty string.

    :param allowed: what the text means, for messages.
    """

    allowed: str = "a non-empty text"

    def from_yaml(self, key, value, base):
        """:returns: the string; empty strings and other types are rejected."""
        if isinstance(value, str) and value.strip():
            return value
        raise self.reject(key, value)


@attrs.frozen
class Directory(Check):
    """
    A directory path (``~`` expanded).  Relative paths in a file are
    relative to the file's directory; relative paths on the command line to
    the current directory.
    Whether it exists is checked by whoever uses it.
    """

    allowed = "a directory path"

    def from_yaml(self, key, value, base):
        """:returns: the absolute :class:`~pathlib.Path`."""
        if isinstance(value, Path):
            return value if value.is_absolute() else base / value
        if isinstance(value, str) and value.strip():
            return (base / Path(value).expanduser()).absolute()
        raise self.reject(key, value)


@attrs.frozen
class Group(Check):
    """
    A nested section: a mapping checked against its own schema.

    :param schema: the attrs class of the section.
    """

    schema: type

    @property
    def allowed(self) -> str:
        """What the key accepts, in words."""
        return "a mapping with the keys " + ", ".join(keys_of(self.schema))

    def from_yaml(self, key, value, base):
        """:returns: an instance of :attr:`schema`."""
        if value is None:
            value = {}
        if isinstance(value, self.schema):
            return value
        if not isinstance(value, Mapping):
            raise self.reject(key, value)
        return build_section(self.schema, value, base, prefix=f"{key}.")

    def from_text(self, key, text):
        """A group cannot be set as a whole from the command line."""
        raise ConfigError(key, f"is a group; set its keys one by one as {key}.KEY=VALUE")


@attrs.frozen
class Setting:
    """
    What the schema says about one key.

    :param check: its type and range.
    :param doc: one sentence for the documentation.
    """

    check: Check
    doc: str


def setting(default: Any, check: Check, doc: str) -> Any:
    """
    Declare one key of a configuration section.

    :param default: the value when the key is absent.
    :param check: the key's type and range.
    :param doc: one sentence for the documentation.
    :returns: an attrs field.
    """
    return attrs.field(default=default, metadata={_SETTING: Setting(check, doc)})


def group(schema: type, doc: str) -> Any:
    """
    Declare a nested section.

    :param schema: the section's attrs class; all its keys have defaults.
    :param doc: one sentence for the documentation.
    :returns: an attrs field whose default is ``schema()``.
    """
    return attrs.field(factory=schema, metadata={_SETTING: Setting(Group(schema), doc)})


def settings_of(schema: type) -> dict[str, Setting]:
    """
    :param schema: a section's attrs class.
    :returns: its keys in declaration order, each with its :class:`Setting`.
    """
    return {f.name: f.metadata[_SETTING] for f in attrs.fields(schema) if _SETTING in f.metadata}


def keys_of(schema: type) -> list[str]:
    """
    :param schema: a section's attrs class.
    :returns: its key names in declaration order.
    """
    return list(settings_of(schema))


@attrs.frozen
class KeyInfo:
    """
    One key as the documentation shows it.

    :param key: the dotted key.
    :param default: the default written as in YAML.
    :param allowed: what it accepts.
    :param doc: what it does.
    """

    key: str
    default: str
    allowed: str
    doc: str


def describe(schema: type, prefix: str = "") -> Iterator[KeyInfo]:
    """
    Walk a schema, groups included, for documentation and tests.

    :param schema: a section's attrs class.
    :param prefix: the dotted prefix of the section.
    :returns: an iterator of :class:`KeyInfo`, leaf keys only.
    """
    defaults = schema()
    for name, info in settings_of(schema).items():
        if isinstance(info.check, Group):
            yield from describe(info.check.schema, f"{prefix}{name}.")
        else:
            value = getattr(defaults, name)
            yield KeyInfo(f"{prefix}{name}", info.check.format(value), info.check.allowed, info.doc)


def _unknown(key: str, known: list[str]) -> ConfigError:
    """The error for a key the schema does not have."""
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    else:
        hint = "known keys: " + ", ".join(known)
    return ConfigError(key, f"unknown key ({hint})")


def build_section(schema: type, values: Mapping, base: Path, prefix: str = "") -> Any:
    """
    Check a mapping against a schema and build the frozen section.

    :param schema: the section's attrs class.
    :param values: the raw mapping (absent keys take their defaults).
    :param base: the directory relative paths are resolved against.
    :param prefix: the dotted prefix of this section, for messages.
    :returns: an instance of ``schema``.
    :raises ConfigError: for the first unknown key or bad value.
    """
    known = settings_of(schema)
    for key in values:
        if not isinstance(key, str) or key not in known:
            raise _unknown(f"{prefix}{key}", list(known))
    kwargs = {
        name: known[name].check.from_yaml(f"{prefix}{name}", value, base)
        for name, value in values.items()
    }
    section = schema(**kwargs)
    check_together = getattr(section, "check_together", None)
    if check_together is not None:
        check_together()
    return section


def override(values: dict, schema: type, assignment: str) -> dict:
    """
    Apply one ``KEY=VALUE`` from the command line to a raw mapping.

    The value is converted by the key's own type, so ``tcp_port=50000`` is
    a number and ``device=50000`` is an interface name.

    :param values: the raw mapping read from the file (not modified).
    :param schema: the top-level attrs class.
    :param assignment: ``KEY=VALUE``; ``KEY`` may be dotted for groups.
    :returns: a new raw mapping with the value set.
    :raises ConfigError: for a malformed assignment, an unknown key or a
        value the key does not allow.
    """
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(key or repr(assignment), "expected KEY=VALUE")
    parts = key.split(".")
    result = dict(values)
    section, section_schema = result, schema
    for depth, part in enumerate(parts):
        known = settings_of(section_schema)
        dotted = ".".join(parts[: depth + 1])
        if part not in known:
            raise _unknown(dotted, list(known))
        check = known[part].check
        if depth == len(parts) - 1:
            section[part] = check.from_text(dotted, text)
            break
        if not isinstance(check, Group):
            raise ConfigError(dotted, "is not a group; it has no keys below it")
        inner = section.get(part) or {}
        if not isinstance(inner, Mapping):
            raise check.reject(dotted, inner)
        section[part] = dict(inner)
        section, section_schema = section[part], check.schema
    return result
