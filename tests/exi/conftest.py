"""
Fixtures for the EXI engine tests: the vector files of ``../shared`` and the
codecs.  Tests that need the vectors skip (with that reason) when the
shared folder is absent; see ``tests/conftest.py``.
"""

import json

import pytest

from evsev2g.exi import load_codec


def _jsonl(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def golden(shared_dir):
    """Every vector of ``exi-vectors/golden.jsonl``."""
    return _jsonl(shared_dir / "exi-vectors" / "golden.jsonl")


@pytest.fixture(scope="session")
def real_world(shared_dir):
    """Every capture of ``exi-vectors/real-world.jsonl``."""
    return _jsonl(shared_dir / "exi-vectors" / "real-world.jsonl")


@pytest.fixture(scope="session")
def signature_fragments(shared_dir):
    """Every fragment of ``exi-vectors/iso2-signature-fragments.jsonl``."""
    return _jsonl(shared_dir / "exi-vectors" / "iso2-signature-fragments.jsonl")


@pytest.fixture(scope="session")
def official_xsd(shared_dir):
    """The official schema folder ``../shared/xsd``."""
    return shared_dir / "xsd"


@pytest.fixture(scope="session")
def iso2():
    """The ISO 15118-2 codec."""
    return load_codec("iso15118-2")


@pytest.fixture(scope="session")
def din():
    """The DIN SPEC 70121 codec."""
    return load_codec("din70121")


@pytest.fixture(scope="session")
def app():
    """The application-handshake codec."""
    return load_codec("appHandshake")


def fragment_grammar(vector):
    """The ``grammar`` argument a golden fragment vector needs."""
    return "xmldsig" if vector.get("fragment_grammar") == "xmldsig-core-schema" else None


def signature_grammar(fragment):
    """The ``grammar`` argument a fragment of ``iso2-signature-fragments.jsonl`` needs."""
    return "xmldsig" if fragment["grammar"].startswith("xmldsig") else None
