"""
The project's own schema files: they compile, and they give exactly the
grammars the official schema files give.
"""

from pathlib import Path

import pytest
from lxml import etree

from evsev2g.exi.codec import SCHEMA_DIR, SCHEMA_SETS
from evsev2g.exi.grammar import build_grammars, describe
from evsev2g.exi.xsd import load_schema_set

SETS = ["appHandshake", "din70121", "iso15118-2", "xmldsig"]


def _describe(folder: Path, name: str):
    files = [folder / f for f in SCHEMA_SETS[name]]
    return describe(build_grammars(load_schema_set(name, files)))


@pytest.mark.parametrize("name", SETS)
def test_project_grammars_equal_official(name, official_xsd):
    """
    Grammars built from ``evsev2g/schemas/xsd`` equal those built from the
    official ``../shared/xsd`` files, state by state (event codes, widths,
    types, occurrences, substitution groups, namespaces, attribute forms).
    """
    ours = _describe(SCHEMA_DIR, name)
    theirs = _describe(official_xsd, name)
    assert ours == theirs


def test_every_project_xsd_compiles():
    """Every project schema file is accepted by ``lxml.etree.XMLSchema`` (with its imports)."""
    files = sorted(SCHEMA_DIR.glob("*/*.xsd"))
    assert len(files) == 11
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    for path in files:
        etree.XMLSchema(etree.parse(str(path), parser))


def test_project_xsds_carry_no_upstream_prose():
    """The project files hold structure only: no xs:annotation, no copied comments."""
    for path in SCHEMA_DIR.glob("*/*.xsd"):
        text = path.read_text(encoding="utf-8")
        assert "annotation" not in text and "Copyright" not in text and "iso.org" not in text


@pytest.mark.parametrize("name,globals_,width,code", [
    ("appHandshake", 2, 2, None), ("din70121", 81, 7, 77), ("iso15118-2", 80, 7, 76)])
def test_document_grammar_numbers(name, globals_, width, code):
    """DocContent (§8.5.1): global elements sorted by local name then URI; V2G_Message's code."""
    from evsev2g.exi import load_codec
    g = load_codec(name).grammars
    assert len(g.globals) == globals_ and g.doc_width == width
    if code is not None:
        assert [d.name for d in g.globals].index("V2G_Message") == code


def test_fragment_grammar_numbers():
    """FragmentContent (§8.5.2): ISO-2 243 qnames in 8 bits, SignedInfo 208, eMAID 236; xmldsig alone 45, SignedInfo 32."""
    from evsev2g.exi import load_codec
    iso = load_codec("iso15118-2")
    names = [qn[1] for qn, _ in iso.grammars.fragment_elements]
    assert len(names) == 243 and iso.grammars.fragment_width == 8
    assert names.index("SignedInfo") == 208 and names.index("eMAID") == 236
    assert names.index("AuthorizationReq") == 4
    ds = iso._fragment_engine("xmldsig").gset
    assert len(ds.fragment_elements) == 45 and ds.fragment_width == 6
    assert [qn[1] for qn, _ in ds.fragment_elements].index("SignedInfo") == 32
