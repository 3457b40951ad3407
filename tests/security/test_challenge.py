"""GenChallenge (:mod:`evsev2g.security.challenge`): 16 OS-random bytes, good for one check."""

import pytest

from evsev2g.responses import ChallengeInvalid, ISO15118_2, response_code
from evsev2g.security.challenge import SIZE, Challenge


def test_sixteen_fresh_bytes():
    """Each challenge is 16 bytes and a new one differs from the last."""
    challenge = Challenge()
    first, second = challenge.issue(), challenge.issue()
    assert len(first) == len(second) == SIZE == 16 and first != second


def test_the_right_challenge_passes_once():
    """The challenge sent passes once; the same AuthorizationReq replayed fails."""
    challenge = Challenge()
    sent = challenge.issue()
    challenge.check(sent)
    with pytest.raises(ChallengeInvalid, match="no GenChallenge is outstanding") as caught:
        challenge.check(sent)
    assert response_code(caught.value, ISO15118_2) == "FAILED_ChallengeInvalid"


@pytest.mark.parametrize("received, words", [
    (None, "carries no GenChallenge"),
    (bytes(15), "15 bytes, not 16"),
    (bytes(16), "not the one sent"),
])
def test_wrong_challenges(received, words):
    """Absent, short or different challenges fail with FAILED_ChallengeInvalid, and the outstanding one is spent."""
    challenge = Challenge(random=lambda n: b"\x01" * n)
    challenge.issue()
    with pytest.raises(ChallengeInvalid, match=words):
        challenge.check(received)
    assert challenge.current is None
