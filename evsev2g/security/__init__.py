"""
Security providers: what evsev2g needs of EVerest's ``evse_security``.

:class:`~evsev2g.security.files.FileSecurity` reads a certificate directory
laid out as EVerest's EvseSecurity keeps it (:mod:`evsev2g.security.layout`);
it is the default provider.  Every provider implements
:class:`evsev2g.interfaces.ISecurity`.
"""
