"""
A codec's generated functions, kept compressed until first called.

A loaded schema set holds about 210 generated functions (a decoder and an
encoder per complex type); as code objects they take about 0.6 MiB per
large schema set, and an SECC calls well under half of them (it decodes
requests and encodes responses, never the other way round).  A cache entry
therefore stores them packed: marshalled, in groups of :data:`GROUP`
functions compressed with zlib (the functions of one schema set are much
alike, so a group compresses about eightfold).  :meth:`Packed.define` puts a
:class:`LazyFunction` under each function's name; its first call unpacks
that one function, puts it in its place (the generated code's globals and
every table registered with :meth:`LazyFunction.home`) and calls it.  From
then on callers reach the real function directly: a warm codec runs
exactly as if nothing were lazy.

Code that is not a plain function (it never occurs in today's generated
code, but :func:`~evsev2g.exi.cache.compact` allows it) is kept as it is
and run at load, in order.
"""

from __future__ import annotations

import marshal
import threading
import types
import zlib

__all__ = ["GROUP", "LazyFunction", "Packed", "is_function_body", "pack"]

#: Functions per compressed group: unpacking one function decompresses its
#: group (about 35 kB, tens of µs); larger groups compress a little better.
GROUP = 16

_FUNCTION_FLAGS = 0x0001 | 0x0002  # CO_OPTIMIZED | CO_NEWLOCALS


def is_function_body(code: types.CodeType) -> bool:
    """Whether a code object is a function's body (made into a function), not module code (run)."""
    return code.co_flags & _FUNCTION_FLAGS == _FUNCTION_FLAGS


class Packed:
    """
    A generated module's code, packed (see the module docstring).

    :ivar eager: the code objects that are not plain functions, run at
        load, marshalled (a pickle cannot hold code objects).
    :ivar index: ``{function name: (group, offset, length)}``.
    :ivar groups: the compressed groups.
    """

    __slots__ = ("eager", "index", "groups")

    def __init__(self, eager: bytes, index: dict, groups: list[bytes]) -> None:
        self.eager, self.index, self.groups = eager, index, groups

    def __reduce__(self):
        return Packed, (self.eager, self.index, self.groups)

    def unpack(self, name: str) -> types.CodeType:
        """:returns: the code object of the function ``name``."""
        group, offset, length = self.index[name]
        return marshal.loads(zlib.decompress(self.groups[group])[offset:offset + length])

    def define(self, namespace: dict) -> None:
        """
        Put a :class:`LazyFunction` in ``namespace`` for every packed
        function, then run the eager items in their order.
        """
        lock = threading.Lock()
        for name in self.index:
            namespace[name] = LazyFunction(name, namespace, self, lock)
        for item in marshal.loads(self.eager):
            exec(item, namespace)  # noqa: S102 - our own generated code


class LazyFunction:
    """
    Stands for a packed generated function until its first call.

    :param name: the function's name in ``namespace``.
    :param namespace: the generated code's globals.
    :param packed: where its code is.
    :param lock: shared by the functions of one namespace.
    """

    __slots__ = ("name", "namespace", "packed", "lock", "homes")

    def __init__(self, name: str, namespace: dict, packed: Packed, lock) -> None:
        self.name, self.namespace, self.packed, self.lock = name, namespace, packed, lock
        self.homes: list = []

    def __repr__(self) -> str:
        return f"<LazyFunction {self.name}>"

    def home(self, table: dict, key) -> None:
        """Also replace ``table[key]`` (which holds this stub) by the function once it is loaded."""
        self.homes.append((table, key))

    def load(self) -> types.FunctionType:
        """:returns: the real function, unpacked and put in place on the first call."""
        with self.lock:
            current = self.namespace.get(self.name)
            if current is self:
                current = types.FunctionType(self.packed.unpack(self.name), self.namespace)
                self.namespace[self.name] = current
            for table, key in self.homes:
                if table.get(key) is self:
                    table[key] = current
            self.homes = []
        return current

    def __call__(self, *args):
        return self.load()(*args)


def pack(code: list) -> Packed:
    """
    :param code: what :func:`~evsev2g.exi.cache.compact` returns: function
        code objects and module code objects, in order.
    :returns: the :class:`Packed` form.
    """
    eager, index, groups = [], {}, []
    pending: list = []  # (name, blob) of the group being filled; a later definition of a name wins

    def close_group() -> None:
        offset, data = 0, []
        for name, blob in pending:
            index[name] = (len(groups), offset, len(blob))
            offset += len(blob)
            data.append(blob)
        groups.append(zlib.compress(b"".join(data), 9))
        pending.clear()

    for item in code:
        if not is_function_body(item):
            eager.append(item)
            continue
        pending.append((item.co_name, marshal.dumps(item)))
        if len(pending) == GROUP:
            close_group()
    if pending:
        close_group()
    return Packed(marshal.dumps(eager), index, groups)
