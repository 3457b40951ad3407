"""
Where files lie in a certificate directory, as EVerest's EvseSecurity
module keeps them (``etc/everest/certs`` by default), plus the extras a
test PKI needs for the simulated backend.

Every path is relative to the directory (the ``certs_dir`` key).  The test
PKI writer (:mod:`evsev2g.pki`) and the file-based provider
(:mod:`evsev2g.security.files`) both use these names and nothing else.
"""

from pathlib import PurePosixPath as _P

# -- trust anchors (EvseSecurity's *_ca_bundle keys) ------------------------
V2G_ROOT = _P("ca/v2g/V2G_ROOT_CA.pem")
MO_ROOT = _P("ca/mo/MO_ROOT_CA.pem")
CSMS_ROOT = _P("ca/csms/CSMS_ROOT_CA.pem")
MF_ROOT = _P("ca/mf/MF_ROOT_CA.pem")

#: The CA bundle for each ``CaCertificateType`` of EVerest's evse_security.
CA_BUNDLES = {"V2G": V2G_ROOT, "MO": MO_ROOT, "CSMS": CSMS_ROOT, "MF": MF_ROOT}

# -- the CPO chain: V2G root -> CPO Sub-CA 1 -> CPO Sub-CA 2 -> SECC leaf ----
CPO_SUB_CA1 = _P("ca/cso/CPO_SUB_CA1.pem")
CPO_SUB_CA2 = _P("ca/cso/CPO_SUB_CA2.pem")
SECC_LEAF = _P("client/cso/SECC_LEAF.pem")
SECC_LEAF_KEY = _P("client/cso/SECC_LEAF.key")
SECC_LEAF_PASSWORD = _P("client/cso/SECC_LEAF_PASSWORD.txt")
#: Leaf + Sub-CA 2 + Sub-CA 1: the chain the TLS server sends.
CPO_CERT_CHAIN = _P("client/cso/CPO_CERT_CHAIN.pem")

# -- the MO chain: MO root -> MO Sub-CA 1 -> MO Sub-CA 2 -> contract leaf ---
MO_SUB_CA1 = _P("ca/mo/MO_SUB_CA1.pem")
MO_SUB_CA2 = _P("ca/mo/MO_SUB_CA2.pem")
MO_SUB_CA2_KEY = _P("ca/mo/MO_SUB_CA2.key")
CONTRACT_LEAF = _P("client/mo/CONTRACT_LEAF.pem")
CONTRACT_LEAF_KEY = _P("client/mo/CONTRACT_LEAF.key")
CONTRACT_CERT_CHAIN = _P("client/mo/CONTRACT_CERT_CHAIN.pem")

# -- the OEM chain: OEM root -> OEM Sub-CA 1 -> Sub-CA 2 -> provisioning leaf
OEM_ROOT = _P("ca/oem/OEM_ROOT_CA.pem")
OEM_SUB_CA1 = _P("ca/oem/OEM_SUB_CA1.pem")
OEM_SUB_CA2 = _P("ca/oem/OEM_SUB_CA2.pem")
OEM_CERT_CHAIN = _P("ca/oem/OEM_CERT_CHAIN.pem")
OEM_LEAF = _P("client/oem/OEM_LEAF.pem")
OEM_LEAF_KEY = _P("client/oem/OEM_LEAF.key")

# -- the provisioning chain: V2G root -> CPS Sub-CA 1 -> Sub-CA 2 -> CPS leaf
CPS_SUB_CA1 = _P("ca/cps/CPS_SUB_CA1.pem")
CPS_SUB_CA2 = _P("ca/cps/CPS_SUB_CA2.pem")
CPS_LEAF = _P("client/cps/CPS_LEAF.pem")
CPS_LEAF_KEY = _P("client/cps/CPS_LEAF.key")
CPS_CERT_CHAIN = _P("client/cps/CPS_CERT_CHAIN.pem")
