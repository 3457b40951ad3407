"""Tests for L{evsev2g.exi.message}: the message tree API."""

import pytest

from evsev2g.exi.message import Message, Shape


def build_session_setup():
    """A hand-built DIN SessionSetupReq message."""
    return Message(
        "V2G_Message",
        Header=Message("Header", SessionID=b"\x00"),
        Body=Message("Body", SessionSetupReq=Message("SessionSetupReq", EVCCID=b"\x01\x02")),
    )


def test_attribute_and_item_access():
    """Children are reached by local name as attributes and as items."""
    msg = build_session_setup()
    assert msg.Body.SessionSetupReq.EVCCID == b"\x01\x02"
    assert msg["Header"]["SessionID"] == b"\x00"
    assert "Body" in msg and "Nope" not in msg
    assert msg.keys() == ["Header", "Body"]


def test_unknown_name_raises_and_get_defaults():
    """A name that is neither present nor declared raises; get() defaults."""
    msg = build_session_setup()
    with pytest.raises(AttributeError, match="Header, Body"):
        msg.Notification
    with pytest.raises(KeyError):
        msg["Notification"]
    assert msg.get("Notification") is None
    assert msg.get("Notification", 5) == 5


def test_shape_gives_none_and_empty_list_for_absent_children():
    """With the schema's shape, absent optional is None, absent repeated is []."""
    shape = Shape(declared=["Notification", "SessionID"], repeated=["AppProtocol"])
    node = Message("X", SessionID=b"\x01", shape=shape)
    assert node.Notification is None
    assert node.AppProtocol == []
    node.append("AppProtocol", 1)
    assert node.AppProtocol == [1]
    with pytest.raises(AttributeError):
        node.Bogus


def test_repeated_children_keep_document_order():
    """Interleaved repeated children keep their order; lookups group them."""
    node = Message("KeyInfo", [("KeyName", "a"), ("X509Data", 1), ("KeyName", "b")])
    assert node.KeyName == ["a", "b"]
    assert node.getlist("X509Data") == [1]
    assert [k for k, _ in node] == ["KeyName", "X509Data", "KeyName"]


def test_list_keyword_marks_repeated_and_none_is_skipped():
    """A list passed by keyword is a repeated child; None leaves a field out."""
    node = Message("supportedAppProtocolReq", AppProtocol=[Message("AppProtocol")], Other=None)
    assert node.AppProtocol == [Message("AppProtocol")]
    assert node.children == [("AppProtocol", Message("AppProtocol"))]


def test_set_replaces_in_place():
    """set() keeps the first occurrence's place and can remove a child."""
    node = Message("X", A=1, B=2, C=3)
    node.set("B", [4, 5])
    assert node.children == [("A", 1), ("B", 4), ("B", 5), ("C", 3)]
    node.set("A", None)
    assert node.keys() == ["B", "C"]


def test_equality_ignores_unknown_namespace():
    """Nodes are equal by content; a namespace counts only when both know it."""
    a = Message("Body", ns="urn:din:70121:2012:MsgDef", X=1)
    b = Message("Body", X=1)
    c = Message("Body", ns="urn:other", X=1)
    assert a == b and b == c and a != c
    assert Message("Body", X=1) != Message("Body", X=2)


def test_attributes_and_simple_content():
    """Attributes are read by name; simple content with attributes is .value."""
    node = Message("SignatureValue", attrs={"Id": "s1"}, value=b"\x00" * 64)
    assert node.Id == "s1"
    assert node.to_dict() == {"@Id": "s1", "#value": b"\x00" * 64}


def test_to_dict_groups_repeats():
    """to_dict() gives plain nested data with lists for repeats."""
    node = Message("L", [("E", Message("E", V=1)), ("E", Message("E", V=2))])
    assert node.to_dict() == {"E": [{"V": 1}, {"V": 2}]}


def test_decoded_node_matches_a_built_node():
    """decoded_node(), the decoders' fast constructor, gives the same node as Message()."""
    from evsev2g.exi.message import decoded_node

    shape = Shape(declared=["B"], repeated=["A"])
    fast = decoded_node("X", "urn:x", [("A", 1)], {"Id": "i"}, None, shape)
    slow = Message("X", [("A", 1)], ns="urn:x", attrs={"Id": "i"}, shape=shape)
    assert fast == slow and fast.A == [1] and fast.B is None and fast.Id == "i"
