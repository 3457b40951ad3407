"""
The ISO 15118-2 EV simulator against a scripted SECC, on our real codec:
every request the EV sends (and every response the script answers with) is
encoded, decoded, and its XML validated with lxml against the official
schemas in ``../shared/xsd``.  This checks the EV's messages against the
standard's schema independently of our SECC; the sessions with the real
SECC are in ``test_ev_iso2_secc.py``.
"""

import pytest
from lxml import etree
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from evsev2g.exi import Message, load_codec
from evsev2g.exi.codec import SCHEMA_SETS
from evsev2g.protocols.physical import physical_value
from evsev2g.sim.ev import EVSettings, SimulatedEV

SESSION_ID = bytes.fromhex("0102030405060708")


@pytest.fixture(scope="module")
def schemas(shared_dir):
    """lxml schemas of the official ISO 15118-2 and handshake XSDs."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return {
        name: etree.XMLSchema(etree.parse(str(shared_dir / "xsd" / SCHEMA_SETS[name][0]), parser))
        for name in ("appHandshake", "iso15118-2")
    }


def _ac_status(notification="None"):
    return Message("AC_EVSEStatus", NotificationMaxDelay=0, EVSENotification=notification, RCD=False)


def _dc_status(notification="None", code="EVSE_Ready"):
    return Message("DC_EVSEStatus", NotificationMaxDelay=0, EVSENotification=notification, EVSEIsolationStatus="Valid", EVSEStatusCode=code)


def _pv(value, unit):
    return physical_value(value, unit)


class ScriptedSECC:
    """
    Answers each ISO-2 request with a minimal valid response; records every
    request, validates every document both ways against the XSDs.

    :ivar requests: ``(name, body)`` of each request, in order.
    :ivar notify: ``{loop request number: EVSENotification}`` to send.
    """

    def __init__(self, schemas, ac, receipt=False, notify=None):
        self.handshake = load_codec("appHandshake")
        self.codec = load_codec("iso15118-2")
        self.schemas = schemas
        self.ac = ac
        self.receipt = receipt
        self.notify = notify or {}
        self.requests = []
        self.loop = 0
        self.stored_id = None
        self.paused = False
        self.closed = True
        self._handshake_next = False

    # the V2GTPClient surface the EV uses
    def request(self, payload, timeout):
        """Decode, validate, answer (encoded and validated too)."""
        if self._handshake_next:
            self._handshake_next = False
            request = self.handshake.decode(payload)
            self._validate(self.handshake, "appHandshake", request)
            (offer,) = request.AppProtocol
            assert offer.ProtocolNamespace == "urn:iso:15118:2:2013:MsgDef" and offer.VersionNumberMajor == 2
            answer = Message("supportedAppProtocolRes", ResponseCode="OK_SuccessfulNegotiation", SchemaID=offer.SchemaID)
            self._validate(self.handshake, "appHandshake", answer)
            return succeed(self.handshake.encode(answer))
        message = self.codec.decode(payload)
        self._validate(self.codec, "iso15118-2", message)
        assert self.codec.encode(message) == payload
        (name, body), = message.Body.children
        self.requests.append((name, body))
        header_id, response = self.answer(name, body, message.Header.SessionID)
        reply = Message("V2G_Message", Header=Message("Header", SessionID=header_id),
                        Body=Message("Body", [(name[:-3] + "Res", response)]))
        data = self.codec.encode(reply)
        self._validate(self.codec, "iso15118-2", self.codec.decode(data))
        return succeed(data)

    def close(self):
        """The EV closes the connection."""
        self.closed = True
        return succeed(None)

    def connect(self):
        """A new connection: the handshake comes first."""
        self.closed = False
        self._handshake_next = True

    def _validate(self, codec, schema, message):
        document = etree.fromstring(codec.to_xml(message))
        assert self.schemas[schema].validate(document), (message.name, self.schemas[schema].error_log.last_error)

    # the SECC's answers
    def answer(self, name, body, session_id):
        """:returns: ``(header SessionID, response body)``."""
        ok = Message(name[:-3] + "Res", ResponseCode="OK")
        status = _ac_status() if self.ac else _dc_status()
        if name == "SessionSetupReq":
            if self.paused and session_id == self.stored_id:
                code = "OK_OldSessionJoined"
            else:
                code, self.stored_id = "OK_NewSessionEstablished", SESSION_ID
            self.paused = False
            return self.stored_id, Message("SessionSetupRes", ResponseCode=code, EVSEID="DE*EVS*E0001")
        assert session_id == self.stored_id
        if name == "ServiceDiscoveryReq":
            modes = ["AC_three_phase_core"] if self.ac else ["DC_extended"]
            return session_id, Message(
                "ServiceDiscoveryRes", ResponseCode="OK",
                PaymentOptionList=Message("PaymentOptionList", PaymentOption=["ExternalPayment"]),
                ChargeService=Message("ChargeService", ServiceID=1, ServiceCategory="EVCharging", FreeService=False,
                                      SupportedEnergyTransferMode=Message("SupportedEnergyTransferMode", EnergyTransferMode=modes)),
                ServiceList=Message("ServiceList", Service=[Message("Service", ServiceID=3, ServiceName="InternetAccess",
                                                                    ServiceCategory="Internet", FreeService=True)]),
            )
        if name == "ServiceDetailReq":
            sets = [Message("ParameterSet", ParameterSetID=i, Parameter=[
                Message("Parameter", attrs={"Name": "Protocol"}, stringValue=protocol),
                Message("Parameter", attrs={"Name": "Port"}, intValue=port)]) for i, protocol, port in ((3, "http", 80), (4, "https", 443))]
            return session_id, Message("ServiceDetailRes", ResponseCode="OK", ServiceID=body.ServiceID,
                                       ServiceParameterList=Message("ServiceParameterList", ParameterSet=sets))
        if name == "PaymentServiceSelectionReq":
            return session_id, ok
        if name in ("AuthorizationReq", "CableCheckReq"):
            ok.set("EVSEProcessing", "Finished")
            if name == "CableCheckReq":
                ok.set("DC_EVSEStatus", status)
            return session_id, ok
        if name == "ChargeParameterDiscoveryReq":
            schedule = Message("SAScheduleList", SAScheduleTuple=[Message(
                "SAScheduleTuple", SAScheduleTupleID=1, PMaxSchedule=Message("PMaxSchedule", PMaxScheduleEntry=[Message(
                    "PMaxScheduleEntry", RelativeTimeInterval=Message("RelativeTimeInterval", start=0, duration=86400),
                    PMax=_pv(22080, "W"))]))])
            if self.ac:
                evse = ("AC_EVSEChargeParameter", Message("AC_EVSEChargeParameter", AC_EVSEStatus=status,
                                                          EVSENominalVoltage=_pv(230, "V"), EVSEMaxCurrent=_pv(16, "A")))
            else:
                evse = ("DC_EVSEChargeParameter", Message(
                    "DC_EVSEChargeParameter", DC_EVSEStatus=status, EVSEMaximumCurrentLimit=_pv(200, "A"),
                    EVSEMaximumPowerLimit=_pv(100000, "W"), EVSEMaximumVoltageLimit=_pv(900, "V"),
                    EVSEMinimumCurrentLimit=_pv(0, "A"), EVSEMinimumVoltageLimit=_pv(150, "V"), EVSEPeakCurrentRipple=_pv(2, "A")))
            return session_id, Message("ChargeParameterDiscoveryRes", [
                ("ResponseCode", "OK"), ("EVSEProcessing", "Finished"), ("SAScheduleList", schedule), evse])
        if name == "PreChargeReq":
            return session_id, Message("PreChargeRes", ResponseCode="OK", DC_EVSEStatus=status,
                                       EVSEPresentVoltage=body.EVTargetVoltage)
        if name in ("PowerDeliveryReq", "MeteringReceiptReq"):
            ok.set("AC_EVSEStatus" if self.ac else "DC_EVSEStatus", status)
            return session_id, ok
        if name in ("ChargingStatusReq", "CurrentDemandReq"):
            self.loop += 1
            notification = self.notify.get(self.loop, "None")
            meter = Message("MeterInfo", MeterID="SIM-METER-1", MeterReading=100 * self.loop)
            receipt = self.receipt and self.loop == 2
            if self.ac:
                return session_id, Message(
                    "ChargingStatusRes", ResponseCode="OK", EVSEID="DE*EVS*E0001", SAScheduleTupleID=1,
                    EVSEMaxCurrent=_pv(16, "A"), MeterInfo=meter, ReceiptRequired=receipt, AC_EVSEStatus=_ac_status(notification))
            return session_id, Message(
                "CurrentDemandRes", ResponseCode="OK", DC_EVSEStatus=_dc_status(notification),
                EVSEPresentVoltage=body.EVTargetVoltage, EVSEPresentCurrent=body.EVTargetCurrent,
                EVSECurrentLimitAchieved=False, EVSEVoltageLimitAchieved=False, EVSEPowerLimitAchieved=False,
                EVSEID="DE*EVS*E0001", SAScheduleTupleID=1, MeterInfo=meter, ReceiptRequired=receipt)
        if name == "WeldingDetectionReq":
            return session_id, Message("WeldingDetectionRes", ResponseCode="OK", DC_EVSEStatus=status, EVSEPresentVoltage=_pv(0, "V"))
        if name == "SessionStopReq":
            self.paused = body.ChargingSession == "Pause"
            return session_id, ok
        raise AssertionError(f"unexpected {name}")


def run_scripted(secc, **settings):
    """Run the EV against ``secc`` on a Clock; :returns: the EVResult."""
    clock = Clock()
    values = dict(host="::1", port=1, protocol="iso15118-2", capacity_wh=1000, start_soc=50, target_soc=90,
                  max_current_demands=6, poll_interval=0.01, current_demand_interval=0.5, pause_seconds=0.1)
    values.update(settings)
    ev = SimulatedEV(clock, EVSettings(**values), (secc.handshake, secc.codec), lambda report: None)

    async def connect():
        secc.connect()
        ev.link = secc
        await ev.handshake()

    ev.open = connect
    outcome = []
    from twisted.internet.defer import ensureDeferred

    ensureDeferred(ev.run()).addCallback(outcome.append)
    while not outcome:
        clock.advance(0.05)
    return outcome[0]


def names(secc):
    """The request names with ChargeProgress / ChargingSession where they have one."""
    out = []
    for name, body in secc.requests:
        detail = body.get("ChargeProgress") or body.get("ChargingSession")
        out.append(f"{name}({detail})" if detail else name)
    return out


def test_ac_session_with_a_service_and_receipts_is_schema_valid(schemas):
    """AC EIM: every request is XSD-valid; the EV picks service 3 set 4, sends MeteringReceipt when asked, reads MeterInfo, counts energy."""
    secc = ScriptedSECC(schemas, ac=True, receipt=True)
    result = run_scripted(secc, mode="ac", service_id=3, parameter_set_id=4)
    assert result.code == 0, result.reason
    assert names(secc) == [
        "SessionSetupReq", "ServiceDiscoveryReq", "ServiceDetailReq", "PaymentServiceSelectionReq", "AuthorizationReq",
        "ChargeParameterDiscoveryReq", "PowerDeliveryReq(Start)", "ChargingStatusReq", "ChargingStatusReq",
        "MeteringReceiptReq", "ChargingStatusReq", "ChargingStatusReq", "ChargingStatusReq", "ChargingStatusReq",
        "PowerDeliveryReq(Stop)", "SessionStopReq(Terminate)"]
    selection = secc.requests[3][1]
    assert [(s.ServiceID, s.get("ParameterSetID")) for s in selection.SelectedServiceList.SelectedService] == [(1, None), (3, 4)]
    assert result.selected_services == [(3, 4)] and result.receipts == 1
    assert result.meter_readings == [100, 200, 300, 400, 500, 600]
    parameter = secc.requests[5][1].AC_EVChargeParameter
    assert parameter.EVMaxCurrent.Value and secc.requests[5][1].RequestedEnergyTransferMode == "AC_three_phase_core"
    assert result.energy_wh > 0 and result.session_setups == [("OK_NewSessionEstablished", SESSION_ID)]


def test_dc_pause_resume_and_renegotiation_are_schema_valid(schemas):
    """DC: renegotiation redoes CPD, CableCheck, PreCharge; pause ends with SessionStop(Pause), the resume presents the old SessionID."""
    secc = ScriptedSECC(schemas, ac=False)
    result = run_scripted(secc, renegotiate_after=2, pause_after=4, max_current_demands=6)
    assert result.code == 0, result.reason
    sequence = names(secc)
    setup = ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq", "AuthorizationReq"]
    start = ["ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq(Start)"]
    assert sequence == (
        setup + start + ["CurrentDemandReq"] * 2 + ["PowerDeliveryReq(Renegotiate)"] + start + ["CurrentDemandReq"] * 2
        + ["PowerDeliveryReq(Stop)", "WeldingDetectionReq", "SessionStopReq(Pause)"]
        + setup + start + ["CurrentDemandReq"] * 2 + ["PowerDeliveryReq(Stop)", "WeldingDetectionReq", "SessionStopReq(Terminate)"])
    assert result.session_setups == [("OK_NewSessionEstablished", SESSION_ID), ("OK_OldSessionJoined", SESSION_ID)]
    assert "paused" in result.states


def test_stop_charging_notification_ends_the_dc_session(schemas):
    """EVSENotification StopCharging: PowerDelivery(Stop), WeldingDetection, SessionStop(Terminate); exit 3."""
    secc = ScriptedSECC(schemas, ac=False, notify={2: "StopCharging"})
    result = run_scripted(secc)
    assert result.code == 3 and "StopCharging" in result.reason
    assert names(secc)[-5:] == ["CurrentDemandReq", "CurrentDemandReq", "PowerDeliveryReq(Stop)", "WeldingDetectionReq",
                                "SessionStopReq(Terminate)"]
    assert result.notifications == ["StopCharging"]


def test_renegotiation_notification_and_pause_on_stop(schemas):
    """AC: ReNegotiation → PowerDelivery(Renegotiate) and CPD again; StopCharging with on_stop_charging=pause → SessionStop(Pause), resume."""
    secc = ScriptedSECC(schemas, ac=True, notify={1: "ReNegotiation", 3: "StopCharging"})
    result = run_scripted(secc, mode="ac", on_stop_charging="pause", max_current_demands=5)
    assert result.code == 0, result.reason
    sequence = names(secc)
    assert sequence[5:12] == ["PowerDeliveryReq(Start)", "ChargingStatusReq", "PowerDeliveryReq(Renegotiate)",
                              "ChargeParameterDiscoveryReq", "PowerDeliveryReq(Start)", "ChargingStatusReq", "ChargingStatusReq"]
    assert sequence[12:15] == ["PowerDeliveryReq(Stop)", "SessionStopReq(Pause)", "SessionSetupReq"]
    assert result.session_setups[-1][0] == "OK_OldSessionJoined"
    assert result.notifications == ["ReNegotiation", "StopCharging"]
