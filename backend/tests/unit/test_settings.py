"""Settings: grouped environment variables, partial limit overrides, and no side effects when read."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from pydantic import ValidationError

from podrun import settings as settings_module
from podrun.core.limits import Limits
from podrun.settings import Settings, unknown_variables, warn_of_unknown_variables


def test_grouped_settings_come_from_double_underscore_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODRUN_WORKER__CONCURRENCY", "7")
    monkeypatch.setenv("PODRUN_KUBERNETES__NAMESPACE", "runs")
    monkeypatch.setenv("PODRUN_KUBERNETES__RUNTIMES", '{"python-3.12": "registry.example/python:3.12"}')
    monkeypatch.setenv("PODRUN_AUTH__ACCESS_TOKEN_TTL_S", "60")
    settings = Settings()
    assert (settings.worker.concurrency, settings.kubernetes.namespace, settings.auth.access_token_ttl_s) == (
        7,
        "runs",
        60,
    )
    assert settings.kubernetes.runtimes == {"python-3.12": "registry.example/python:3.12"}


def test_one_limit_can_be_changed_and_the_others_keep_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODRUN_LIMITS__MAXIMUM__MEMORY_MIB", "2048")
    monkeypatch.setenv("PODRUN_LIMITS__DEFAULT__WALL_TIME_MS", "20000")
    limits = Settings().limits
    defaults = Settings.model_fields["limits"].default_factory()  # type: ignore[misc]
    assert limits.maximum == defaults.maximum.model_copy(update={"memory_mib": 2048})
    assert limits.default == defaults.default.model_copy(update={"wall_time_ms": 20000})
    assert isinstance(limits.default, Limits)


def test_reading_settings_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt-secret"
    monkeypatch.setattr(settings_module, "DEV_SECRET_FILE", secret_file)
    monkeypatch.delenv("PODRUN_JWT_SECRET", raising=False)
    assert Settings().jwt_secret == ""
    assert not secret_file.exists()
    assert settings_module.machine_dev_secret() == secret_file.read_text()
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_production_needs_a_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODRUN_JWT_SECRET", raising=False)
    with pytest.raises(ValidationError, match="PODRUN_JWT_SECRET must be set in production mode"):
        Settings(mode="production")


def test_variables_that_name_no_setting_are_found_and_each_warned_of() -> None:
    environ = {
        "PODRUN_DATABASE_URL": "postgresql+asyncpg://db/podrun",
        "PODRUN_LIMITS__DEFAULT__WALL_TIME_MS": "20000",
        "podrun_worker__concurrency": "8",
        "PODRUN_KUBERNETES__NODE_SELECTOR__ZONE": "a",
        "PODRUN_TEST_DATABASE_URL": "the test suite's own",
        "PODRUN_WORKER_CONCURRENCY": "8",  # the flat name used until November 2026
        "PODRUN_SANDBOX__FILE_SIZE_MIB": "16",  # removed
        "PODRUN_LIMITS__DEFAULT__WALLTIME_MS": "1",  # a typo
        "PODRUN_MODE__X": "1",
        "OTHER_PODRUN_THING": "1",
    }
    unknown = [
        "PODRUN_LIMITS__DEFAULT__WALLTIME_MS",
        "PODRUN_MODE__X",
        "PODRUN_SANDBOX__FILE_SIZE_MIB",
        "PODRUN_WORKER_CONCURRENCY",
    ]
    assert unknown_variables(environ) == unknown
    with structlog.testing.capture_logs() as logs:
        warn_of_unknown_variables(environ)
    assert [(entry["log_level"], entry["variable"]) for entry in logs] == [("warning", name) for name in unknown]
