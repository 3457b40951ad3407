"""
The built codec of a schema set, kept on disk between runs.

Building a codec reads the XSDs (with lxml), builds the grammars and
compiles the generated decoders and encoders: about 0.1 s and, at its
peak, tens of MB per schema set.  The result (grammars, constants and
compiled code) is saved once and loaded at the next start, which then
needs neither lxml nor the compiler.

The key is a SHA-256 over everything the result depends on: the bytes of
every ``.xsd`` file beside the set's entry files (the reader follows
includes and imports only there), the source of the engine modules that
shape the grammars and the generated code, the Python implementation and
bytecode magic number, and :data:`FORMAT`.  A changed XSD, engine or
Python therefore never meets a stale entry: it gets a new key.

A missing entry is built in a child process (:func:`build_elsewhere`):
the reading of the XSDs (lxml), the grammar construction and the compiler
then peak there, not in the long-running service, which loads the result
as on any warm start.  Several missing sets build in parallel.  When no
child can be started or it fails, the caller builds in its own process
and says why.

Where: ``$EVSEV2G_EXI_CACHE`` (``off`` disables the cache), else
``$XDG_CACHE_HOME/evsev2g/exi``, else ``~/.cache/evsev2g/exi``.  The entries
are pickles, so they are used only from a directory owned by this user and
writable by nobody else, and only when the file is owned by this user too;
otherwise, and whenever anything goes wrong reading or writing, the codec
is simply built.  Entries are written to a temporary file and renamed, so
a reader never sees half of one; saving an entry removes the set's older
ones.  An entry keeps the generated functions packed
(:mod:`evsev2g.exi.packed_code`): each is unpacked on its first call, so a
loaded codec holds only the code it has used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import stat
import sys
import tempfile
import types
from pathlib import Path

from evsev2g.exi.packed_code import Packed, is_function_body, pack

#: Bump when the layout of an entry changes.
FORMAT = 3

#: Seconds a child process may take to build one schema set.
BUILD_TIMEOUT = 120.0

#: ``{(schema set, key): problem}`` of the child builds that failed in this
#: process, not tried again.
_FAILED: dict = {}

#: The engine modules whose source shapes a built codec.
_ENGINE_MODULES = ("bits", "codegen", "errors", "fragment", "grammar", "grammar_builder", "message", "runtime",
                   "values", "xsd", "xsd_reader", "cache", "packed_code")


def cache_dir() -> Path | None:
    """:returns: the cache directory, or ``None`` when the cache is off."""
    configured = os.environ.get("EVSEV2G_EXI_CACHE")
    if configured:
        return None if configured.lower() == "off" else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "evsev2g" / "exi"


def key(name: str, files: list[Path]) -> str:
    """
    :param name: the schema set.
    :param files: its entry files.
    :returns: the hex SHA-256 naming the built codec of these inputs.
    """
    digest = hashlib.sha256()
    digest.update(f"{FORMAT} {name} {sys.implementation.cache_tag} ".encode())
    digest.update(importlib.util.MAGIC_NUMBER)
    folders = sorted({Path(f).resolve().parent for f in files})
    for folder in folders:
        for xsd in sorted(folder.glob("*.xsd")):
            digest.update(xsd.name.encode() + b"\0" + xsd.read_bytes() + b"\0")
    here = Path(__file__).resolve().parent
    for module in _ENGINE_MODULES:
        digest.update((here / f"{module}.py").read_bytes())
    return digest.hexdigest()


def _trusted(path: Path, directory: bool) -> bool:
    """Owned by this user, and (a directory) writable by nobody else."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if info.st_uid != os.getuid():
        return False
    if directory:
        return stat.S_ISDIR(info.st_mode) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return stat.S_ISREG(info.st_mode)


def present(name: str, digest: str) -> bool:
    """:returns: whether an entry of that key exists where :func:`load` would trust it (not whether it reads)."""
    folder = cache_dir()
    return folder is not None and _trusted(folder, True) and _trusted(folder / f"{name}-{digest}.pickle", False)


def load(name: str, digest: str):
    """
    :returns: ``(gset, consts, functions, code)`` saved under ``digest``
        (``code`` :class:`~evsev2g.exi.packed_code.Packed`: each generated
        function is unpacked on its first call), or ``None`` when there is
        no usable entry.
    """
    folder = cache_dir()
    if folder is None or not _trusted(folder, True):
        return None
    path = folder / f"{name}-{digest}.pickle"
    if not _trusted(path, False):
        return None
    try:
        with open(path, "rb") as file:
            saved_digest, gset, consts, functions, code = pickle.load(file)
        if saved_digest != digest:
            return None
        if not isinstance(code, Packed):
            return None
        _rekey(gset)
        return gset, consts, functions, code
    except Exception:  # noqa: BLE001 - a damaged entry is rebuilt
        return None


def save(name: str, digest: str, gset, consts, functions, code: list) -> None:
    """Save a built codec under ``digest``; any failure leaves the cache as it was."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(folder, True):
            return
        _slim(gset, consts)
        data = pickle.dumps((digest, gset, consts, functions, pack(code)), protocol=pickle.HIGHEST_PROTOCOL)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, folder / f"{name}-{digest}.pickle")
        except BaseException:
            os.unlink(temporary)
            raise
        for old in folder.glob(f"{name}-*.pickle"):
            if old.name != f"{name}-{digest}.pickle":
                old.unlink()
    except Exception:  # noqa: BLE001 - the cache is an optimisation only
        return


def usable() -> bool:
    """:returns: whether entries can be saved and loaded (the cache is on, its directory trusted or creatable)."""
    folder = cache_dir()
    if folder is None:
        return False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return _trusted(folder, True)


def build_elsewhere(jobs: list[tuple[str, list[Path], str]], timeout: float = BUILD_TIMEOUT) -> dict[str, str]:
    """
    Build codecs into the cache in child processes, all at once.

    :param jobs: ``(schema set, entry files, key)`` per codec to build.
    :param timeout: seconds to wait for all of them.
    :returns: ``{schema set: problem}`` for each job that did not leave a
        usable entry (an empty dict when all did).
    """
    problems = {name: _FAILED[(name, digest)] for name, _, digest in jobs if (name, digest) in _FAILED}
    jobs = [job for job in jobs if job[0] not in problems]
    if not jobs:
        return problems
    if not usable() or not sys.executable:
        problems.update({name: "no usable codec cache directory" if sys.executable else "no Python executable to run"
                         for name, _, _ in jobs})
        return problems
    import subprocess  # noqa: PLC0415 - only when something is built
    import time  # noqa: PLC0415
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    environment["EVSEV2G_EXI_CACHE"] = str(cache_dir())
    children = {}
    for name, files, digest in jobs:
        command = [sys.executable, "-c", "import sys; from evsev2g.exi.cache import _build_here; _build_here(sys.argv[1:])",
                   name, digest, *map(str, files)]
        try:
            children[name] = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as error:
            problems[name] = f"cannot start a child process to build it ({error})"
    deadline = time.monotonic() + timeout
    for name, child in children.items():
        try:
            _, errors = child.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            problems[name] = f"the child process building it took more than {timeout:g} s"
            continue
        if child.returncode != 0:
            lines = errors.decode(errors="replace").strip().splitlines()
            problems[name] = (f"the child process building it failed (exit status {child.returncode}"
                              f"{': ' + lines[-1] if lines else ''})")
    for name, _, digest in jobs:
        if name not in problems and not present(name, digest):
            problems[name] = "the child process left no cache entry"
    for name, _, digest in jobs:
        if name in problems:
            _FAILED[(name, digest)] = problems[name]
    return problems


def _build_here(arguments: list[str]) -> None:
    """
    Build one codec and save it under its key (the child's side of
    :func:`build_elsewhere`).

    :param arguments: the schema set, the key, the entry files.

    :raises RuntimeError: when the sources do not have that key (before or
        after the build: a file changed meanwhile), or nothing was saved.
    """
    from evsev2g.exi.codec import _build

    name, digest, files = arguments[0], arguments[1], [Path(f) for f in arguments[2:]]
    if key(name, files) != digest:
        raise RuntimeError(f"the sources of {name} no longer have the key asked for")
    built = _build(name, files)
    if key(name, files) != digest:
        raise RuntimeError(f"the sources of {name} changed while it was built")
    save(name, digest, *built)
    if not (cache_dir() / f"{name}-{digest}.pickle").is_file():
        raise RuntimeError(f"could not save the {name} codec in {cache_dir()}")


# -- compact entries ------------------------------------------------------------

def _rekey(gset) -> None:
    """
    Key a loaded grammar set's tables by the ``id`` of this process's type
    objects: they were keyed by those of the process that built it, which
    here would miss every type (and could even hit another one).
    """
    types = getattr(gset, "types", None)
    if isinstance(types, dict):
        gset.types = {id(grammar.type): grammar for grammar in types.values()}
        gset._names = {key: grammar.name for key, grammar in gset.types.items()}


def _slim(gset, consts: dict) -> None:
    """
    Leave out of an entry what a loaded codec never uses: one object per
    distinct value among the generated code's plain constant tables (the
    generator makes one per use; they are only ever read), and the
    position trees that built the grammars (``Leaf.node``).
    """
    shared: dict = {}
    for name, value in consts.items():
        key = _value_key(value) if type(value) in (dict, list, tuple, frozenset) else None
        if key is not None:
            consts[name] = shared.setdefault(key, value)
    for grammar in getattr(gset, "types", {}).values():
        for leaf in grammar.leaves:
            leaf.node = None


_PLAIN = (int, str, bool, float, bytes, type(None))


def _value_key(value):
    """:returns: a hashable key, equal for equal plain tables (dicts, lists, tuples, frozensets of numbers, strings …), else ``None``."""
    def keyed(item):
        kind = type(item)
        if kind in _PLAIN:
            return kind, item  # the type too: 1, 1.0 and True are equal, not the same
        if kind is tuple:
            return kind, tuple(keyed(x) for x in item)
        if kind is frozenset:
            return kind, frozenset(keyed(x) for x in item)
        if kind is dict:
            return kind, tuple((keyed(k), keyed(v)) for k, v in item.items())
        if kind is list:
            return kind, tuple(keyed(x) for x in item)
        raise TypeError(kind)

    try:
        return keyed(value)
    except TypeError:
        return None


# -- compact code ------------------------------------------------------------



def compact(chunks: list) -> list:
    """
    The code to keep of a generated module compiled one definition at a time.

    A chunk that only defines a plain function (no defaults, annotations,
    decorators or closure) is replaced by that function's code object:
    :func:`define` makes the function from it directly, as the chunk's
    ``MAKE_FUNCTION`` would, without keeping or executing the chunk.  Every
    code object loses its column positions (line numbers stay: tracebacks
    still name the generated line), a third of its size.

    :param chunks: module code objects, in order.
    :returns: module code objects and function code objects, in order.
    """
    out = []
    for chunk in chunks:
        body = _plain_definition(chunk)
        out.append(_without_columns(body if body is not None else chunk))
    return out


def at_line(code, offset: int):
    """
    :returns: ``code`` compiled from a piece of a module, moved ``offset``
        lines down (every line number of a code object counts from its
        ``co_firstlineno``), as if the piece had been compiled in place:
        cheaper than compiling it behind ``offset`` empty lines.
    """
    consts = tuple(at_line(c, offset) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + offset, co_consts=consts)


def define(code, namespace: dict) -> None:
    """
    Run what :func:`compact` kept, in order, into ``namespace``; a
    :class:`~evsev2g.exi.packed_code.Packed` entry puts its lazy functions there.
    """
    if isinstance(code, Packed):
        code.define(namespace)
        return
    for item in code:
        if is_function_body(item):
            namespace[item.co_name] = types.FunctionType(item, namespace)
        else:
            exec(item, namespace)  # noqa: S102 - our own generated code


def _plain_definition(chunk):
    """:returns: the function code a chunk ``def``-ines and stores under its name, or ``None``."""
    scratch: dict = {"__builtins__": {}}
    try:
        exec(chunk, scratch)  # only MAKE_FUNCTION and STORE_NAME run for a plain def
    except Exception:  # noqa: BLE001 - anything else is kept as it is
        return None
    made = {name: value for name, value in scratch.items() if name != "__builtins__"}
    if len(made) != 1:
        return None
    (name, function), = made.items()
    if (not isinstance(function, types.FunctionType) or function.__code__.co_name != name
            or function.__defaults__ or function.__kwdefaults__ or function.__closure__ or function.__annotations__
            or function.__code__ not in chunk.co_consts):
        return None
    return function.__code__


def _without_columns(code):
    """:returns: ``code`` (and the code objects in its constants) with line numbers only; ``code`` when unsure."""
    consts = tuple(_without_columns(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    try:
        lines = _lines(code)
        slim = code.replace(co_linetable=_line_only_table(lines, code.co_firstlineno), co_consts=consts)
        if _lines(slim) != lines:
            return code.replace(co_consts=consts)
        return slim
    except Exception:  # noqa: BLE001 - another bytecode version: keep the full table
        return code.replace(co_consts=consts)


def _lines(code) -> list:
    """``co_lines()`` with adjacent ranges of one line merged: ``[[start, end, line], …]``."""
    merged: list = []
    for start, end, line in code.co_lines():
        if merged and merged[-1][2] == line and merged[-1][1] == start:
            merged[-1][1] = end
        else:
            merged.append([start, end, line])
    return merged


def _line_only_table(lines: list, first_line: int) -> bytes:
    """
    The location table of CPython 3.11+ (``Objects/locations.md``) for
    these line ranges, with "no column" entries (code 13) and "no location"
    ones (code 15) only.
    """
    if sys.version_info < (3, 11):
        raise NotImplementedError
    out = bytearray()
    previous = first_line
    for start, end, line in lines:
        units = (end - start) // 2
        while units:
            run = min(units, 8)
            units -= run
            if line is None:
                out.append(0x80 | 15 << 3 | (run - 1))
                continue
            out.append(0x80 | 13 << 3 | (run - 1))
            delta = line - previous
            value = (-delta << 1 | 1) if delta < 0 else delta << 1
            while value >= 0x40:
                out.append(0x40 | value & 0x3F)
                value >>= 6
            out.append(value)
            previous = line
    return bytes(out)
