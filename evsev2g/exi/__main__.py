"""
Command line for people debugging cars and chargers.

Examples::

    python -m evsev2g.exi decode --schema auto 809a0200000000000000001...
    python -m evsev2g.exi decode --schema iso15118-2 --file frame.bin
    python -m evsev2g.exi encode --schema din70121 message.xml
    python -m evsev2g.exi decode --schema iso15118-2 --fragment 80ec02...
    python -m evsev2g.exi encode --schema iso15118-2 --fragment --grammar xmldsig signedinfo.xml
    python -m evsev2g.exi cache

``cache`` builds the three codecs and ISO 15118-2's xmldsig fragment
grammar into the codec cache (:mod:`evsev2g.exi.cache`, in child
processes) and prints where, so that even the first start of ``twistd
evsev2g`` loads them instead of waiting for them to be built (an install
step for small boards).

``decode`` accepts the EXI body or a whole V2GTP frame (its 8-byte header
``01 fe 80 01 <length>`` is recognised and stripped), as hex on the command
line, or from a file holding hex text or raw bytes.  ``--schema auto``
picks the set from the first bytes (0x80 0x9a DIN, 0x80 0x98 ISO 15118-2,
0x80 0x00/0x40 handshake) and falls back to trying each.  Errors are one
line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import string
import sys

from evsev2g import v2gtp
from evsev2g.exi.codec import load_codec
from evsev2g.exi.errors import ExiError

SETS = ("appHandshake", "din70121", "iso15118-2")


def strip_v2gtp(data: bytes) -> bytes:
    """
    :param data: EXI bytes, or a V2GTP frame.
    :returns: the EXI body (the frame's payload when ``data`` is a frame).
    """
    if len(data) >= v2gtp.HEADER_SIZE:
        version, inverse, payload_type, length = v2gtp.HEADER.unpack_from(data)
        is_frame = (version == v2gtp.PROTOCOL_VERSION and inverse == v2gtp.INVERSE_PROTOCOL_VERSION
                    and payload_type == v2gtp.PayloadType.EXI)
        if is_frame and length <= len(data) - v2gtp.HEADER_SIZE:
            return data[v2gtp.HEADER_SIZE:v2gtp.HEADER_SIZE + length]
    return data


def parse_hex(text: str) -> bytes:
    """:returns: bytes from hex text (spaces, colons and ``0x`` allowed)."""
    cleaned = text.strip().lower().replace("0x", "")
    cleaned = "".join(ch for ch in cleaned if ch not in " \t\r\n:,-")
    if not cleaned or any(ch not in string.hexdigits for ch in cleaned):
        raise ExiError("input is not hex")
    if len(cleaned) % 2:
        raise ExiError("hex input has an odd number of digits")
    return bytes.fromhex(cleaned)


def read_input(args) -> bytes:
    """The EXI bytes named by the command line (hex argument or file)."""
    if args.file:
        with open(args.file, "rb") as fh:
            raw = fh.read()
        try:
            return parse_hex(raw.decode("ascii"))
        except (UnicodeDecodeError, ExiError):
            return raw
    if not args.hex:
        raise ExiError("give the EXI as hex or --file PATH")
    return parse_hex(" ".join(args.hex))


def guess_sets(data: bytes) -> list[str]:
    """Schema sets to try for ``--schema auto``, most likely first."""
    order = list(SETS)
    if len(data) >= 2 and data[0] == 0x80:
        first = {0x9A: "din70121", 0x98: "iso15118-2", 0x00: "appHandshake", 0x40: "appHandshake"}
        if data[1] in first:
            order.remove(first[data[1]])
            order.insert(0, first[data[1]])
    return order


def cmd_decode(args) -> int:
    data = strip_v2gtp(read_input(args))
    names = guess_sets(data) if args.schema == "auto" else [args.schema]
    errors = []
    for name in names:
        codec = load_codec(name)
        try:
            if args.fragment:
                msg = codec.decode_fragment(data, grammar=args.grammar)
            else:
                msg = codec.decode(data)
        except ExiError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if args.schema == "auto":
            sys.stderr.write(f"schema: {name}\n")
        sys.stdout.write(codec.to_xml(msg).decode("utf-8") + "\n")
        return 0
    raise ExiError("; ".join(errors))


def cmd_encode(args) -> int:
    if args.schema == "auto":
        raise ExiError("encode needs --schema appHandshake, din70121 or iso15118-2")
    if args.input in (None, "-"):
        xml = sys.stdin.buffer.read()
    else:
        with open(args.input, "rb") as fh:
            xml = fh.read()
    codec = load_codec(args.schema)
    msg = codec.from_xml(xml)
    data = codec.encode_fragment(msg, grammar=args.grammar) if args.fragment else codec.encode(msg)
    sys.stdout.write(data.hex() + "\n")
    return 0


def cmd_cache(args) -> int:
    from evsev2g.exi import cache

    folder = cache.cache_dir()
    if folder is None:
        raise ExiError("the codec cache is off (EVSEV2G_EXI_CACHE=off)")
    from evsev2g.exi.codec import prepare

    for name, problem in prepare(SETS).items():  # the three and ISO 15118-2's signature grammar
        sys.stderr.write(f"{name}: {problem}; building it here\n")
    for name in SETS:
        load_codec(name)
    saved = sorted(path.name for path in folder.glob("*.pickle")) if folder.is_dir() else []
    if len(saved) < len(SETS):
        raise ExiError(f"could not write the codec cache in {folder} (it must be owned by this user and writable by nobody else)")
    sys.stdout.write(f"{folder}: {', '.join(saved)}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """:returns: the argument parser of ``python -m evsev2g.exi``."""
    parser = argparse.ArgumentParser(prog="python -m evsev2g.exi",
                                     description="Decode and encode V2G EXI (appHandshake, DIN 70121, ISO 15118-2).")
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decode", help="EXI (hex, file, or V2GTP frame) to XML")
    dec.add_argument("--schema", choices=SETS + ("auto",), default="auto")
    dec.add_argument("--file", help="file with the EXI as raw bytes or hex text")
    dec.add_argument("--fragment", action="store_true", help="the input is an EXI fragment (signatures)")
    dec.add_argument("--grammar", choices=("xmldsig",), help="fragment grammar: xmldsig-core alone")
    dec.add_argument("hex", nargs="*", help="EXI bytes as hex")
    enc = sub.add_parser("encode", help="XML to EXI hex")
    enc.add_argument("--schema", choices=SETS + ("auto",), default="auto")
    enc.add_argument("--fragment", action="store_true", help="encode as an EXI fragment")
    enc.add_argument("--grammar", choices=("xmldsig",), help="fragment grammar: xmldsig-core alone")
    enc.add_argument("input", nargs="?", help="XML file, or - for standard input")
    sub.add_parser("cache", help="build the codecs into the codec cache (an install step)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """
    Run the command line.

    :param argv: arguments (default ``sys.argv[1:]``).
    :returns: the exit status: 0 on success, 1 on bad input, 2 on usage errors.
    """
    args = build_parser().parse_args(argv)
    try:
        commands = {"decode": cmd_decode, "encode": cmd_encode, "cache": cmd_cache}
        return commands[args.command](args)
    except ExiError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '')}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
