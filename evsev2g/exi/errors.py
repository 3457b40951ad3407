"""
The one exception family of the EXI engine.

Everything that goes wrong while reading schemas, decoding EXI, encoding a
message tree or converting XML raises :class:`ExiError` (or a subclass), so a
caller handling untrusted input needs a single ``except`` clause.
"""

from __future__ import annotations

__all__ = ["ExiError", "SchemaError", "LimitExceeded"]


class ExiError(ValueError):
    """
    EXI data or a message tree that the schema-informed codec cannot accept.

    :ivar reason: what was wrong, in words.
    :ivar path: element names from the root to where it went wrong, e.g.
        ``["V2G_Message", "Body", "SessionSetupRes", "ResponseCode"]``.
    :ivar bit: bit offset in the EXI stream (header included) where decoding
        stopped, or ``None`` when encoding or converting.
    :ivar context: the grammar state, e.g. ``"SessionSetupResType state 2"``,
        or ``None``.
    """

    def __init__(self, reason: str, *, bit: int | None = None, context: str | None = None,
                 path: list[str] | None = None) -> None:
        """
        :param reason: what was wrong.
        :param bit: bit offset where it was noticed, when decoding.
        :param context: the grammar state or datatype involved.
        :param path: element names leading to the problem (more are added in
            front while the error travels up through enclosing elements).
        """
        super().__init__(reason)
        self.reason = reason
        self.bit = bit
        self.context = context
        self.path = list(path) if path else []

    def __str__(self) -> str:
        text = self.reason
        if self.path:
            text = f"{'/'.join(self.path)}: {text}"
        extras = []
        if self.bit is not None:
            extras.append(f"at bit {self.bit} (byte {self.bit // 8})")
        if self.context:
            extras.append(f"in {self.context}")
        if extras:
            text += f" [{', '.join(extras)}]"
        return text


class SchemaError(ExiError):
    """An XSD file set that cannot be turned into EXI grammars."""


class LimitExceeded(ExiError):
    """Input beyond one of the codec's configured limits (see ``Limits``)."""
