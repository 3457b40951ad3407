"""
GenChallenge: the 16 random bytes PaymentDetailsRes sends and the signed
AuthorizationReq must return.

ISO 15118-2 wants exactly 16 bytes ([V2G2-697]) from a generator with at
least 120 bits of entropy ([V2G2-698], [V2G2-825], [V2G2-826]):
``os.urandom`` (the OS CSPRNG).  A challenge is good for one signed
AuthorizationReq: once checked, it is spent, so a replayed AuthorizationReq
fails with FAILED_ChallengeInvalid ([V2G2-475]).
"""

from __future__ import annotations

import hmac
import os

from evsev2g.responses import ChallengeInvalid

#: Bytes of a GenChallenge ([V2G2-697]).
SIZE = 16


class Challenge:
    """
    The challenge of one session.

    :param random: returns ``n`` random bytes (default ``os.urandom``).
    """

    def __init__(self, random=os.urandom):
        self._random = random
        self.current: bytes | None = None

    def issue(self) -> bytes:
        """
        :returns: a fresh 16-byte challenge, replacing any earlier one.
        """
        self.current = bytes(self._random(SIZE))
        if len(self.current) != SIZE:
            raise RuntimeError(f"the random source gave {len(self.current)} bytes, not {SIZE}")
        return self.current

    def check(self, received: bytes | None) -> None:
        """
        Compare the AuthorizationReq's GenChallenge with the one sent, in
        constant time, and spend it either way.

        :raises ChallengeInvalid: absent, not 16 bytes, none sent, or not
            the one sent (a replay included).
        """
        sent, self.current = self.current, None
        if received is None:
            raise ChallengeInvalid("AuthorizationReq carries no GenChallenge")
        if len(received) != SIZE:
            raise ChallengeInvalid(f"GenChallenge has {len(received)} bytes, not {SIZE}")
        if sent is None:
            raise ChallengeInvalid("no GenChallenge is outstanding (already used, or no PaymentDetails)")
        if not hmac.compare_digest(sent, bytes(received)):
            raise ChallengeInvalid("GenChallenge is not the one sent in PaymentDetailsRes")
