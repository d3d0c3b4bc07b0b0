"""A user's settings: defaults for what was never saved, and changes checked field by field."""

from __future__ import annotations

import pytest

from podrun.accounts.preferences import Preferences, Theme
from podrun.core.errors import BadUserInput


def test_stored_settings_fill_in_the_defaults_of_fields_never_saved() -> None:
    assert Preferences.stored({"theme": "DARK"}) == Preferences(theme=Theme.DARK)


def test_a_change_keeps_the_fields_not_given() -> None:
    before = Preferences(font_size=18)
    assert before.changed({"tab_size": 2, "theme": None}) == Preferences(font_size=18, tab_size=2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"font_size": 7}, "settings.fontSize: Input should be greater than or equal to 8"),
        ({"font_size": 33}, "settings.fontSize: Input should be less than or equal to 32"),
        ({"tab_size": 3}, "settings.tabSize: must be one of 2, 4, 8"),
    ],
)
def test_invalid_values_are_refused_by_their_client_name(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BadUserInput) as error:
        Preferences().changed(changes)
    assert error.value.message == message
