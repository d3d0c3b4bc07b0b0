"""How guessable a password is, estimated by zxcvbn (Dropbox's estimator; the web client runs its port)."""

from __future__ import annotations

from collections.abc import Sequence

from zxcvbn import zxcvbn

from podrun.core.errors import BadUserInput

# zxcvbn refuses longer input (its work grows with length); a longer password is judged by its start.
ESTIMATED_CHARS = 72


def check_strength(password: str, min_score: int, user_inputs: Sequence[str] = ()) -> None:
    """BAD_USER_INPUT (field `password`) when zxcvbn scores `password` below `min_score` (0 to 4).

    `user_inputs` (the email, say) count as words an attacker would try first.
    """
    result = zxcvbn(password[:ESTIMATED_CHARS], user_inputs=list(user_inputs))
    if result["score"] >= min_score:
        return
    feedback = result["feedback"]
    hint = feedback["warning"] or next(iter(feedback["suggestions"]), "")
    message = "password is too easy to guess"
    raise BadUserInput(f"{message} ({hint.rstrip('.')})" if hint else message, field="password")
