"""
Packed generated functions (:mod:`evsev2g.exi.packed_code`): a codec loaded
from the cache unpacks each function on its first call and then runs it
directly; what it decodes and encodes does not change.
"""

import threading
import types

import pytest

from evsev2g.exi import cache
from evsev2g.exi.codec import Codec
from evsev2g.exi.packed_code import GROUP, LazyFunction, Packed, pack


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("EVSEV2G_EXI_CACHE", str(folder))
    return folder


def compiled(source: str) -> list:
    """Module code split as the codec keeps it: one code object per definition."""
    namespace: dict = {}
    exec(compile(source, "<test>", "exec"), namespace)
    return cache.compact([compile(chunk, "<test>", "exec") for chunk in source.strip().split("\n\n")])


SOURCE = "\n\n".join(
    [f"def f{i}(x):\n    return g{i}(x) + {i}" for i in range(GROUP + 3)]
    + [f"def g{i}(x):\n    return x * 2" for i in range(GROUP + 3)]
    + ["TABLE = {'answer': 42}"]
)


def test_pack_keeps_every_function_and_runs_the_rest_at_definition():
    """Functions are packed in compressed groups; module code runs when defined."""
    packed = pack(compiled(SOURCE))
    assert len(packed.index) == 2 * (GROUP + 3)
    assert len(packed.groups) == -(-2 * (GROUP + 3) // GROUP)
    namespace: dict = {}
    packed.define(namespace)
    assert namespace["TABLE"] == {"answer": 42}
    assert all(isinstance(namespace[f"f{i}"], LazyFunction) for i in range(GROUP + 3))


def test_the_first_call_puts_the_function_in_place():
    """A stub's first call unpacks the function, replaces itself in the namespace and its homes, and answers."""
    packed = pack(compiled(SOURCE))
    namespace: dict = {}
    packed.define(namespace)
    stub = namespace["f5"]
    table = {"f5": stub}
    stub.home(table, "f5")
    assert stub(10) == 25  # f5 calls g5 through the namespace: g5 is unpacked too
    assert isinstance(namespace["f5"], types.FunctionType) and namespace["f5"].__name__ == "f5"
    assert isinstance(namespace["g5"], types.FunctionType)
    assert table["f5"] is namespace["f5"]
    assert isinstance(namespace["f6"], LazyFunction)  # the others stay packed
    assert stub(1) == 7 and table["f5"] is namespace["f5"]  # a stub kept elsewhere still answers


def test_concurrent_first_calls_make_one_function():
    """Threads calling a stub at once all get the same function."""
    packed = pack(compiled(SOURCE))
    namespace: dict = {}
    packed.define(namespace)
    stub, results = namespace["f1"], []
    threads = [threading.Thread(target=lambda: results.append(stub.load())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(function) for function in results}) == 1 and results[0] is namespace["f1"]


def test_a_packed_entry_pickles():
    """What the cache saves loads back the same."""
    import pickle

    packed = pack(compiled(SOURCE))
    again = pickle.loads(pickle.dumps(packed))
    assert isinstance(again, Packed) and again.index == packed.index and again.groups == packed.groups


def test_a_cached_codec_unpacks_only_what_it_uses(cache_dir, golden, monkeypatch):
    """After loading from the cache no function is unpacked; one decode unpacks a few, and the results match a codec built here."""
    monkeypatch.setenv("EVSEV2G_EXI_CACHE", "off")
    built = Codec("iso15118-2")  # built in this process, every function compiled
    assert not any(isinstance(f, LazyFunction) for f in built._engine.decoders.values())
    monkeypatch.setenv("EVSEV2G_EXI_CACHE", str(cache_dir))
    Codec("iso15118-2")  # builds the cache entry
    loaded = Codec("iso15118-2")
    engine = loaded._engine
    stubs = [f for f in engine.decoders.values() if isinstance(f, LazyFunction)]
    assert len(stubs) == len(engine.decoders)
    vectors = [v for v in golden if v["protocol"] == "iso15118-2" and "fragment" not in v]
    data = bytes.fromhex(vectors[0]["exi_hex"])
    assert loaded.decode(data) == built.decode(data)
    unpacked = [f for f in engine.decoders.values() if isinstance(f, types.FunctionType)]
    assert 0 < len(unpacked) < len(engine.decoders) // 2
    for vector in vectors:
        data = bytes.fromhex(vector["exi_hex"])
        assert loaded.decode(data) == built.decode(data)
        assert loaded.encode(loaded.decode(data)) == data
