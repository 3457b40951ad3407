"""
Every zope interface of evsev2g, in one place.

Implementations declare them with ``@implementer`` and the tests check each
one with ``zope.interface.verify.verifyObject``.

The transport/session seam
--------------------------
The transport (TCP or TLS, ``evsev2g.transport``) owns sockets and V2GTP
framing.  For every accepted connection it asks an :class:`ISessionFactory`
for an :class:`ISession` and hands it an :class:`ISessionLink`.  From then on
the transport calls :meth:`ISession.payload_received` once per complete,
well-formed V2GTP message and :meth:`ISession.connection_lost` once at the
end; the session answers through the link.  Neither side knows the other's
internals: the transport never sees EXI, the session never sees a socket.
"""

from zope.interface import Attribute, Interface

# -- transport / session seam ----------------------------------------------


class ISessionLink(Interface):
    """
    What a V2G communication session sees of its connection.

    One link per TCP or TLS connection.  All methods are called from the
    reactor thread.
    """

    peer = Attribute(
        "The EV's address as ``(host, port)``: ``host`` is a ``str`` and "
        "carries ``%scope`` for link-local addresses, ``port`` an ``int``."
    )
    secure = Attribute("``True`` when the connection is TLS, else ``False``.")

    def send(payload, payload_type=0x8001):
        """
        Frame one message with a V2GTP header and write it.

        :param payload: the message body, ``bytes`` (EXI for 0x8001).
        :param payload_type: the V2GTP payload type, an ``int``.
        :returns: ``None``.
        """

    def close():
        """
        End the connection in an orderly way after everything written so far
        has been sent.  Calling it more than once is harmless.

        :returns: ``None``; :meth:`ISession.connection_lost` follows.
        """

    def abort():
        """
        Drop the connection at once, discarding anything not yet sent.

        :returns: ``None``; :meth:`ISession.connection_lost` follows.
        """


class ISession(Interface):
    """
    One V2G communication session, driven by its connection.

    The session decides everything above V2GTP: which schema decodes a
    payload, which state machine answers it, when to close.
    """

    handshaken = Attribute(
        "Whether the application handshake is done (a protocol was agreed): "
        "the transport's admission rule drops connections without it first."
    )
    charging = Attribute(
        "Whether the session is in its energy-transfer phase (from CableCheck "
        "or PowerDelivery to its end): the transport never drops such a "
        "session to make room for a new connection."
    )

    def payload_received(payload_type, payload):
        """
        One complete V2GTP message arrived.

        The transport has already checked the header (version, inverse
        version, payload type known, length within the configured maximum).

        :param payload_type: the V2GTP payload type, an ``int``.
        :param payload: the message body, ``bytes``.
        :returns: ``None``.  Must not raise: errors are the session's to
            log and answer.
        """

    def connection_lost(reason):
        """
        The connection is gone (closed by either side, aborted, timed out).
        Called exactly once; the link must not be used afterwards.

        :param reason: a short human-readable ``str`` for the log.
        :returns: ``None``.
        """


class ISessionFactory(Interface):
    """Makes the session for each new connection."""

    def new_session(link):
        """
        :param link: the new connection, an :class:`ISessionLink`.
        :returns: an :class:`ISession` bound to ``link``.
        """


# -- security provider ------------------------------------------------------


class ISecurity(Interface):
    """
    What evsev2g needs of EVerest's ``evse_security``: the TLS server's
    chain and key (and word when they change), the CA bundles to verify
    against, contract-chain verification and the OCSP request data that
    Plug & Charge hands to the backend.

    Method names follow ``evse_security.yaml`` (``get_`` dropped); argument
    and result shapes are EVerest's types (``types/evse_security.yaml``) as
    plain dicts and strings, so a bridge passes them through unchanged.

    Implementations: ``evsev2g.security.files.FileSecurity`` reads a
    certificate directory in EvseSecurity's layout; the EVerest bridge asks
    the EvseSecurity module over MQTT.

    Threading and results: every method is called from the reactor thread.
    :meth:`tls_server_credentials` and :meth:`verify_file` answer at once
    (they run at start-up and on reload; a remote provider answers from
    what it fetched and keeps current through :meth:`subscribe_store_updates`).
    :meth:`verify_certificate`, :meth:`mo_ocsp_request_data` and
    :meth:`v2g_ocsp_request_data` run during a session and may return their
    result or a Deferred firing with it; callers wrap them with
    ``defer.maybeDeferred`` and bound the wait.  None of them may block.
    """

    def tls_server_credentials():
        """
        The SECC's TLS server chain and key, checked and ready to use
        (EvseV2G asks ``get_all_valid_certificates_info`` for type V2G).
        Called at start-up and again after every store update that concerns
        the V2G leaf or CA (:meth:`subscribe_store_updates`); the TLS server
        then serves new connections with the new chain while connections
        already running keep theirs.

        :returns: an ``evsev2g.security.credentials.TLSCredentials``.
        :raises evsev2g.errors.CertificatesUnavailable: when there is no
            usable chain; the message says which file or certificate and why.
        """

    def verify_file(ca_type):
        """
        The CA bundle to verify certificates of a kind against (EvseSecurity's
        ``get_verify_file``).  Plug & Charge reads the ``"V2G"`` and ``"MO"``
        bundles as the trust anchors of contract chains (EvseV2G does the
        same).

        :param ca_type: ``"V2G"``, ``"MO"``, ``"CSMS"`` or ``"MF"`` (EVerest's
            ``CaCertificateType``).
        :returns: the bundle's path, a ``pathlib.Path`` to a PEM file with
            one or more certificates.
        :raises evsev2g.errors.CertificatesUnavailable: when there is none.
        :raises ValueError: for an unknown ``ca_type``.
        """

    def verify_certificate(certificate_chain, certificate_types):
        """
        Verify a leaf (or leaf and Sub-CAs) against the installed roots of
        the given kinds (EvseSecurity's ``verify_certificate``).  For a
        contract chain the types are ``["MO"]`` or ``["MO", "V2G"]``: the
        chain is valid when it leads to any installed root of those kinds.

        :param certificate_chain: PEM text, the leaf first, then Sub-CAs.
        :param certificate_types: a non-empty list of ``LeafCertificateType``
            names (``"V2G"``, ``"MO"``, ``"CSMS"``, ``"MF"``).
        :returns: (or a Deferred firing with) one ``CertificateValidationResult``
            string: ``"Valid"``, ``"Expired"`` (any certificate outside its
            validity period, not yet valid included), ``"InvalidSignature"``,
            ``"IssuerNotFound"`` (no installed root of those kinds),
            ``"InvalidLeafSignature"``, ``"InvalidChain"`` (chain too long,
            a Sub-CA that is not a CA, wrong key usage, undecodable PEM/DER)
            or ``"Unknown"``.
        """

    def mo_ocsp_request_data(certificate_chain):
        """
        The OCSP request data of a contract chain (EvseSecurity's
        ``get_mo_ocsp_request_data``), which Plug & Charge passes in
        ``require_auth_pnc`` as ``iso15118CertificateHashData``.

        :param certificate_chain: PEM text, the contract leaf first, then
            the Sub-CAs (a root at the end is left out of the answer).
        :returns: (or a Deferred firing with) an ``OCSPRequestDataList``:
            ``{"ocsp_request_data_list": [{"certificate_hash_data":
            {"hash_algorithm": "SHA256", "issuer_name_hash": hex,
            "issuer_key_hash": hex, "serial_number": hex without leading
            zeroes}, "responder_url": str}, ...]}``, one entry per
            certificate whose issuer is known (the next certificate in the
            chain, else an installed MO or V2G root), in chain order;
            ``responder_url`` is the certificate's AIA OCSP URL, or absent.
        """

    def v2g_ocsp_request_data():
        """
        The OCSP request data of the SECC's own chain without the root
        (EvseSecurity's ``get_v2g_ocsp_request_data``): the same shape as
        :meth:`mo_ocsp_request_data`.

        :returns: (or a Deferred firing with) an ``OCSPRequestDataList``;
            an empty list when there is no usable chain.
        """

    def subscribe_store_updates(callback):
        """
        Be told when certificates are installed or removed (EvseSecurity's
        ``certificate_store_update`` var).  The TLS server uses it to reload
        its chain without dropping running sessions.

        :param callback: called from the reactor thread with one
            ``CertificateStoreUpdate`` dict per change: ``{"operation":
            "Installed" | "Deleted", "leaf_certificate_type": "V2G" | ...}``
            or ``{"operation": ..., "ca_certificate_type": "V2G" | "MO" |
            ...}``.  Exceptions it raises are logged, never passed on.
        :returns: a no-argument callable that ends the subscription.
        """


# -- protocol versions -------------------------------------------------------


class IProtocolVersion(Interface):
    """
    A protocol-version plugin: one application protocol the SECC can
    negotiate in supportedAppProtocol (DIN SPEC 70121, ISO 15118-2, later
    ISO 15118-20).

    Plugins are objects providing this interface and ``twisted.plugin.IPlugin``
    in a module of the :mod:`evsev2g.plugins` drop-in package; the app
    handshake finds them with :func:`evsev2g.plugin_loader.load_plugins` and
    checks each with ``verifyObject``.
    """

    name = Attribute(
        "The EVerest SupportedAppProtocol name (``str``): ``DIN70121``, "
        "``ISO15118D2`` or ``ISO15118D20``.  ``selected_protocol`` reports the plugin's "
        "``selected_protocol`` attribute when it has one (EvseV2G's ``ISO15118-2-2013``), else this."
    )
    namespace = Attribute("The protocol namespace URI offered by the EV (``str``), e.g. ``urn:din:70121:2012:MsgDef``.")
    version_major = Attribute("Major version number (``int``); must equal the EV's for a match [V2G2-170].")
    version_minor = Attribute("Minor version number (``int``); a different one gives OK_SuccessfulNegotiationWithMinorDeviation.")
    schema = Attribute("Name of the EXI schema the codec loads for this protocol (``str``, e.g. ``din70121``).")
    config_key = Attribute(
        "The configuration flag that enables it (``str``, e.g. ``supported_DIN70121``), or "
        "``None`` when it is always enabled."
    )
    allows_tls = Attribute(
        "Whether the protocol may run over TLS (``bool``): ``True`` for ISO 15118-2, ``False`` for "
        "DIN SPEC 70121, which never does ([V2G-DC-618]: the SDP answer for DIN is always TCP without "
        "TLS).  While no enabled protocol allows TLS, SDP answers an EV asking for TLS with the TCP "
        "server (0x10) when there is one."
    )

    def usable_with(charger):
        """
        Whether the charger as configured can serve this protocol (DIN 70121 is
        DC only, for instance).

        :param charger: the session's :class:`ICharger`.
        :returns: ``bool``.
        """

    def new_state_machine(context):
        """
        Make the state machine for one session that negotiated this protocol.

        :param context: an ``evsev2g.protocols.context.ProtocolContext``
            (charger, clock, settings, session-id source).
        :returns: an :class:`IProtocolStateMachine`.
        """


class IProtocolStateMachine(Interface):
    """
    The state machine of one protocol in one session: a plain object, request
    message in, reply out, time from the injected clock.  It never touches a
    socket; the session encodes, sends and closes.
    """

    last_request = Attribute(
        "Body element name (``str``) of the last request handled, or ``None``; the session "
        "names it when a connection ends early."
    )

    def handle(request):
        """
        Answer one decoded request.

        :param request: the ``V2G_Message`` as an
            :class:`evsev2g.exi.message.Message`.
        :returns: an ``evsev2g.protocols.context.Reply`` (response message,
            whether to close the connection after sending it), or a
            ``Deferred`` firing with one for answers that must wait.
        """

    def end_energy_transfer():
        """
        The session is ending: tell the charger at once to stop the energy
        transfer (``current_demand_finished`` if energy flows,
        ``dc_open_contactor`` if the output may be on), before the
        connection's orderly close, which may take seconds.  Harmless when
        nothing flows or when called again.

        :returns: ``None``.
        """

    def finish(reason):
        """
        The session is over and its connection is gone: publish what the
        charger must hear at the end (``current_demand_finished`` and
        ``dc_open_contactor`` unless :meth:`end_energy_transfer` already did,
        ``hlc_session_failed``, one of ``dlink_*``).  Called exactly once,
        after the connection closed, as EvseV2G's teardown does: a data link
        torn down at ``dlink_terminate`` must not cut the EV off before it
        has closed TCP.

        :param reason: a short ``str`` for the log.
        :returns: ``None``.
        """


# -- charger seam ------------------------------------------------------------


class ICharger(Interface):
    """
    The charger seam of one V2G session, shaped like EVerest's
    ``ISO15118_charger`` and ``iso15118_extensions``: commands are methods
    taking the EVerest types as JSON-like values (checked; a bad one raises
    ``ValueError``), vars are events delivered to subscribers.  The stored
    command values are attributes (see ``evsev2g.charger.Charger``).

    Every command of the interfaces is a method of the same name:
    ``setup``, ``set_charging_parameters``, ``session_setup``, ``bpt_setup``,
    ``set_powersupply_capabilities``, ``authorization_response``,
    ``ac_contactor_closed``, ``dlink_ready``, ``cable_check_finished``,
    ``receipt_is_required``, ``stop_charging``, ``pause_charging``,
    ``no_energy_pause_charging``, ``update_supported_app_protocols``,
    ``update_energy_transfer_modes``, ``update_ac_max_current``,
    ``update_ac_parameters``, ``update_ac_maximum_limits``,
    ``update_ac_minimum_limits``, ``update_ac_target_values``,
    ``update_ac_present_power``, ``update_dc_maximum_limits``,
    ``update_dc_minimum_limits``, ``update_isolation_status``,
    ``update_dc_present_values``, ``update_meter_info``, ``send_error``,
    ``reset_error``, ``set_get_certificate_response``.
    """

    clock = Attribute("The ``IReactorTime`` the seam stamps commands with.")
    name = Attribute("A label for log lines (the session's peer).")
    evse = Attribute(
        "The ``evsev2g.evse.EVSEState`` the session runs on: the EVSE-level values below are its, "
        "read and written through the charger under the same names."
    )
    # EVSE-level values (``evsev2g.evse.EVSEState``) the state machines read:
    link_ready = Attribute("``bool``: the last ``dlink_ready`` value.")
    evse_id = Attribute("``setup``'s EVSEID object, or ``None``.")
    sae_j2847_mode = Attribute("``setup``'s SaeJ2847BidiMode string.")
    debug_mode = Attribute("``setup``'s debug mode: the debug vars go to every subscriber.")
    physical_values = Attribute("``set_charging_parameters``' SetupPhysicalValues dict.")
    capabilities = Attribute("``set_powersupply_capabilities``' Capabilities dict, or ``None``.")
    energy_transfer_modes = Attribute("``update_energy_transfer_modes``' list.")
    supported_app_protocols = Attribute("``update_supported_app_protocols``' list, or ``None``: as configured.")
    dc_maximum_limits = Attribute("DcEvseMaximumLimits dict, or ``None``.")
    dc_minimum_limits = Attribute("DcEvseMinimumLimits dict, or ``None``.")
    dc_present_values = Attribute("DcEvsePresentVoltageCurrent dict.")
    isolation_status = Attribute("IsolationStatus string, or ``None``.")
    ac_contactor_is_closed = Attribute("``ac_contactor_closed``' last ``status``.")
    ac_max_current = Attribute("``update_ac_max_current``' value (A), or ``None``.")
    ac_maximum_limits = Attribute("AcEvseMaximumPower dict, or ``None``.")
    receipt_required = Attribute("``receipt_is_required``' value.")
    meter_info = Attribute("``update_meter_info``' Powermeter dict, or ``None``.")
    meter_info_fresh = Attribute("``bool``: ``meter_info`` not yet sent to the EV (the state machine clears it).")
    errors = Attribute("The active EvseError strings (``send_error``).")
    emergency = Attribute("``bool``: Error_EmergencyShutdown is active.")
    # Session values (this car only):
    payment_options = Attribute("``session_setup``'s PaymentOption list.")
    supported_certificate_service = Attribute("``session_setup``'s flag.")
    central_contract_validation_allowed = Attribute("``session_setup``'s flag.")
    authorization_status = Attribute("``authorization_response``' AuthorizationStatus, or ``None``: not answered.")
    certificate_status = Attribute("``authorization_response``' CertificateStatus, or ``None``.")
    authorized = Attribute("``None`` while unanswered, else whether the authorization was Accepted.")
    cable_check_ok = Attribute("``cable_check_finished``' status, or ``None``: still running.")
    stop_requested_at = Attribute("Clock time of ``stop_charging(true)``, or ``None``.")
    pause_requested = Attribute("``pause_charging``' value.")
    no_energy_pause_mode = Attribute("``no_energy_pause_charging``' mode for this car, or ``None``.")
    certificate_response = Attribute("``set_get_certificate_response``' ResponseExiStreamStatus dict, or ``None``.")
    superseded = Attribute("``bool``: a newer session took the EVSE from this one.")

    def dc_limit(capability, limit=None, table="max"):
        """
        A DC limit: the present limit when known, else the power supply's
        capability (its ``nominal_`` value preferred); ``None`` when unknown.
        """

    def take_evse(release):
        """
        The session reached SessionSetup and takes its EVSE; an older session
        holding it is ended first (its ``release(reason)`` runs).  Session
        commands EvseManager sent before this session existed are applied.
        """

    def release_evse():
        """The session is over: the EVSE is free for the next one."""

    def command(name, **arguments):
        """
        Run a command by name.

        :param name: the command's name in the EVerest interface.
        :param arguments: its arguments by name.
        :returns: the command's result (``bool`` for
            ``update_supported_app_protocols``, else ``None``).
        :raises ValueError: unknown command or arguments of the wrong shape.
        """

    def subscribe(callback, names=None):
        """
        Receive vars as ``callback(name, payload)``.

        :param callback: called synchronously from the reactor thread.
        :param names: var names to receive, or ``None`` for all.
        :returns: a no-argument function that ends the subscription.
        """

    def observe(callback):
        """
        Be told of every command after it took effect, as
        ``callback(name, arguments)``.

        :returns: a no-argument function that ends the observation.
        """

    def publish(name, payload=None):
        """
        Emit a var (used by the state machines).

        :param name: the var's name in the EVerest interface.
        :param payload: the payload in EVerest's JSON shape.
        :raises ValueError: unknown var or a payload of the wrong shape.
        """

    def publish_on_change(name, payload):
        """
        Emit a var unless the last value published this session was equal.

        :returns: ``True`` when it was published.
        """

    def wants(name):
        """
        :returns: whether publishing var ``name`` would reach a subscriber.
        """


class IChargerBackend(Interface):
    """
    What sits behind the charger seam: the embedded simulator, or the
    bridge to EVerest (EvseManager, EvseSecurity, OCPP over MQTT).

    The backend is told of each V2G session's :class:`ICharger` when the
    session starts and when it ends.  It configures the new charger
    (``setup``, capabilities, limits, ``session_setup`` …), subscribes to its
    vars, and sends later commands to it.  A backend serving one EVSE routes
    its commands to that EVSE's active session; the simulator gives every
    session its own simulated EVSE.
    """

    link_ready = Attribute(
        "``bool``: whether the data link is up (``dlink_ready``); SDP answers "
        "only while it is ``True``."
    )

    def session_started(charger):
        """
        A V2G session begins (a TCP/TLS connection was accepted).

        :param charger: that session's :class:`ICharger`, not yet used by the
            state machines.
        :returns: ``None``.
        """

    def session_ended(charger):
        """
        The session of ``charger`` is over; its final vars have been
        published.  The backend drops every reference to it.

        :returns: ``None``.
        """


class ISingleEVSEBackend(IChargerBackend):
    """
    A backend serving one physical EVSE (the EVerest bridge: one EVSE per
    module instance).  Every session runs on its :attr:`evse`, so commands
    EvseManager sends between sessions reach the next one, and a session
    reaching SessionSetup ends an older one still holding the EVSE
    (``evsev2g.evse.EVSEState.take``).  Backends without it (the simulator)
    give every session an EVSE of its own.
    """

    evse = Attribute("The ``evsev2g.evse.EVSEState`` every session of this backend runs on.")


class IBackendRuntime(Interface):
    """
    What a backend plugin makes for one service: the backend itself and
    what it brings along.
    """

    backend = Attribute("The :class:`IChargerBackend` sessions talk to.")
    security = Attribute(
        "The backend's own :class:`ISecurity` (the EVerest bridge asks EvseSecurity), or ``None`` "
        "for the files under ``certs_dir``."
    )
    service = Attribute(
        "An ``IService`` to run beside the V2G servers (the MQTT connection), or ``None``.  With one, "
        "the servers start only once :meth:`when_ready` fired, and start-up failures are reported "
        "through :meth:`servers_failed` and retried rather than ending the process."
    )

    def when_ready():
        """
        :returns: a ``Deferred`` firing (with anything) when the V2G servers
            may start: at once for the simulator; after EVerest's global
            ready and the first certificates for the bridge.
        """

    def servers_failed(problem):
        """
        The V2G servers could not start (no such device, port taken, no
        certificate while TLS is forced); they are retried.

        :param problem: one line saying why, a ``str``.
        """

    def servers_running():
        """The V2G servers run (again): a fault reported before is over."""

    def use_services(registry):
        """
        The value-added-service registry the sessions use
        (``evsev2g.vas.ServiceRegistry``): a backend adds the providers it
        brings (the EVerest bridge: one per connected ISO15118_vas module).
        """


class IChargerBackendFactory(Interface):
    """
    A charger-backend plugin: a module-level object providing this and
    ``twisted.plugin.IPlugin`` in the :mod:`evsev2g.plugins` drop-in package
    (:mod:`evsev2g.plugins.evsev2g_backends` ships ``simulator`` and
    ``everest``), found with :func:`evsev2g.plugin_loader.load_plugins`.
    The ``backend`` key names which one runs; a third backend (a REST or
    OCPP-side one) is one more such file, not an edit of the session code.
    """

    name = Attribute("The value of the ``backend`` key that selects it (``str``).")
    description = Attribute("One line for the README and ``--help`` (``str``).")
    retries_servers = Attribute(
        "``bool``: its runtime has a service and the V2G servers start through it, retried while they "
        "cannot (a ``device`` missing at start is then reported by the backend, not fatal to twistd)."
    )

    def make(config, reactor):
        """
        :param config: the checked ``evsev2g.config.Config``.
        :param reactor: the reactor (clock, sockets).
        :returns: an :class:`IBackendRuntime`.
        :raises evsev2g.errors.ConfigError: when its part of the
            configuration cannot work.
        """


# -- value-added services ----------------------------------------------------


class IValueAddedService(Interface):
    """
    A provider of value-added services (ISO 15118-2 ServiceList entries other
    than charging: internet access, use-case information, vendor services),
    shaped like EVerest's ``ISO15118_vas`` interface so that a local plugin
    and an ISO15118_vas module reached over MQTT are the same thing to the
    session: one provider announces any number of services
    (``offered_vas``), hands out their parameter sets on request
    (``get_service_parameters``, possibly asynchronously) and is told what the
    EV selected (``selected_services``).

    Local providers are module-level objects that also provide
    ``twisted.plugin.IPlugin`` in the :mod:`evsev2g.plugins` drop-in package,
    found with :func:`evsev2g.plugin_loader.load_plugins` and checked with
    ``verifyObject``; one that is broken, raises or answers with the wrong
    shape is logged by name and left out, and the session goes on.  DIN
    70121 offers no such services.

    Every method may answer with a plain value, raise, or return a
    ``Deferred``, a coroutine or an asyncio future;
    :class:`evsev2g.vas.ServiceRegistry` normalises them with ``txaio``,
    bounds each answer by its timeout and checks its shape
    (:mod:`evsev2g.vas_types`).
    """

    name = Attribute("The provider's name for the log (``str``).")

    def offered_services():
        """
        The services offered now (EVerest's ``offered_vas`` var).

        :returns: a ``list`` of EVerest ``OfferedService`` dicts:
            ``service_id`` (``int``, 2–65535; 1 is charging) and optionally
            ``service_name`` (``str`` ≤ 32), ``service_scope`` (``str`` ≤ 64),
            ``free_service`` (``bool``, ``True`` when absent), plus evsev2g's
            ``service_category`` (``"Internet"``, ``"ContractCertificate"`` or
            ``"OtherCustom"``); a missing name or category comes from ISO
            15118-2 Table 105 for ids 2–4 (Certificate, InternetAccess,
            UseCaseInformation), else ``OtherCustom``.  Or a ``Deferred``
            firing with one.  The registry asks again on ``refresh()``.
        """

    def get_service_parameters(service_id):
        """
        The parameter sets of one service (ServiceDetailRes).

        :param service_id: the ``int`` ServiceID.
        :returns: a ``list`` of EVerest ``ParameterSet`` dicts
            (``{"set_id": int, "parameters": [{"name": str, "value":
            ParameterValue}]}``, ``ParameterValue`` being one of
            ``finite_string``, ``rational_number``, ``byte_value``,
            ``short_value``, ``int_value``, ``bool_value``), possibly empty,
            or a ``Deferred`` / asyncio future firing with one.  What an
            ISO 15118-2 ServiceDetailRes can carry: at most 255 sets,
            ``set_id`` values unique and within a short, 1–16 parameters
            each.
        """

    def selected_services(selected_services):
        """
        The EV selected some of this provider's services in
        PaymentServiceSelectionReq (called once per request).

        :param selected_services: a ``list`` of EVerest ``SelectedService``
            dicts (``service_id``, ``parameter_set_id``; the latter ``0``
            when the EV named no set).
        :returns: ``None`` or a ``Deferred`` / asyncio future.
        """


class IServiceRegistry(Interface):
    """
    The value-added services as one ISO 15118-2 state machine sees them:
    every :class:`IValueAddedService` provider behind one list
    (:class:`evsev2g.vas.ServiceRegistry`; a set-up without any has
    :class:`evsev2g.protocols.context.NoServices`).  A provider's failure
    never reaches the caller as an exception from these methods.
    """

    def offered():
        """
        The services for ServiceDiscoveryRes's ServiceList, at once.

        :returns: a ``list`` of records with ``service_id``,
            ``service_name``, ``service_category``, ``service_scope`` and
            ``free_service`` (:class:`evsev2g.vas_types.OfferedService`).
        """

    def parameter_sets(service_id):
        """
        The parameter sets of an offered service (ServiceDetailRes).

        :param service_id: the ``int`` ServiceID.
        :returns: a ``Deferred`` firing with a ``list`` of EVerest
            ``ParameterSet`` dicts that fit a ServiceDetailRes, or failing
            with :class:`evsev2g.errors.ServiceUnavailable` (``unknown``:
            no provider offers it) within the message's performance time.
        """

    def select(selected_services):
        """
        Hand the EV's selection (PaymentServiceSelectionReq) to the
        providers concerned.

        :param selected_services: EVerest ``SelectedService`` dicts
            (``parameter_set_id`` ``None`` or missing when the EV named no
            set).
        :returns: a ``Deferred`` firing ``None``; it never fails.
        """
