"""What `prun login` stores, where, and who may read it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from podrun_client import credentials
from podrun_client.credentials import Credentials


@pytest.fixture(autouse=True)
def config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def test_saved_for_the_owner_only_in_the_xdg_config_directory(config_home: Path) -> None:
    path = credentials.save(Credentials(url="http://podrun.test", email="ada@example.com", refresh_token="r1"))
    assert path == config_home / "podrun" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {
        "url": "http://podrun.test",
        "email": "ada@example.com",
        "refresh_token": "r1",
    }


def test_saving_again_replaces_and_keeps_the_mode(config_home: Path) -> None:
    first = credentials.save(Credentials(url="http://a", email="a@example.com", refresh_token="r1"))
    first.chmod(0o644)
    credentials.save(Credentials(url="http://a", email="a@example.com", refresh_token="r2"))
    assert credentials.load() == Credentials(url="http://a", email="a@example.com", refresh_token="r2")
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert [p.name for p in first.parent.iterdir()] == ["credentials.json"]


@pytest.mark.parametrize("content", [None, "", "not json", "[]", '{"url": "http://a"}'])
def test_missing_or_unreadable_means_not_signed_in(config_home: Path, content: str | None) -> None:
    if content is not None:
        (config_home / "podrun").mkdir(parents=True)
        (config_home / "podrun" / "credentials.json").write_text(content)
    assert credentials.load() is None


def test_delete() -> None:
    credentials.save(Credentials(url="http://a", email="a@example.com", refresh_token="r"))
    assert credentials.delete() is True
    assert credentials.delete() is False
    assert credentials.load() is None
