import pytest

from podrun.accounts.strength import check_strength
from podrun.core.errors import BadUserInput


@pytest.mark.parametrize("password", ["correct horse battery", "admin horse battery staple", "Tr0ub4dor&3 zebra"])
def test_a_hard_to_guess_password_passes(password: str) -> None:
    check_strength(password, 3)


@pytest.mark.parametrize(("password", "min_score"), [("password", 1), ("letmein1", 3), ("ann.lee@example.com", 3)])
def test_a_guessable_password_is_bad_input_on_the_password_field(password: str, min_score: int) -> None:
    with pytest.raises(BadUserInput) as refused:
        check_strength(password, min_score, ["ann.lee@example.com", "ann.lee"])
    assert refused.value.extensions == {"code": "BAD_USER_INPUT", "field": "password"}


def test_the_threshold_is_the_setting() -> None:
    check_strength("letmein1", 0)
    check_strength("x" * 10_000 + "correct horse battery", 0)
