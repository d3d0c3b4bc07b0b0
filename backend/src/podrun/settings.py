"""The one settings object. Every value can be set from the environment with the `PODRUN_` prefix."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_FILE = Path.home() / ".config" / "podrun" / "jwt-secret"
REPO_ROOT = Path(__file__).resolve().parents[3]


def _machine_dev_secret() -> str:
    """A signing secret generated once per machine for development; never committed."""
    if DEV_SECRET_FILE.exists():
        return DEV_SECRET_FILE.read_text().strip()
    DEV_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    DEV_SECRET_FILE.touch(mode=0o600)
    DEV_SECRET_FILE.write_text(secret)
    return secret


class Settings(BaseSettings):
    """Podrun's configuration. Defaults are the embedded development setup."""

    model_config = SettingsConfigDict(env_prefix="PODRUN_", env_nested_delimiter="__")

    mode: Literal["development", "production"] = "development"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/podrun"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every Redis key Podrun writes starts with this, so tests and dev data never meet.
    redis_prefix: str = "podrun"
    graphiql: bool | None = None
    # The built web client (`./taskw build:web`), served at `/` when the directory exists.
    web_dir: Path = REPO_ROOT / "frontend" / "build"

    jwt_secret: str = ""
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 14 * 24 * 3600

    max_script_bytes: int = 64 * 1024
    max_stdin_bytes: int = 64 * 1024
    max_input_bytes: int = 64 * 1024

    # Per user: runs in progress at once, submissions and sign-in attempts per minute.
    max_active_executions_per_user: int = 8
    submissions_per_minute: int = 60
    login_attempts_per_minute: int = 10

    runner: Literal["local", "kubernetes"] = "local"
    # Interpreters the local runner offers; empty means "discover python3.X on this host".
    python_interpreters: list[str] = Field(default_factory=list)
    # Where `podrun stage-runtimes` puts interpreters a sandbox's uid could not read where they are installed.
    sandbox_runtimes_dir: Path = Path("/var/lib/podrun/runtimes")
    # A root worker runs sandboxes as subordinate uids of this account (an unprivileged worker uses its own).
    sandbox_account: str = "podrun"
    sandbox_tmp_mib: int = 64
    sandbox_file_size_mib: int = 16
    default_wall_time_ms: int = 10_000
    max_wall_time_ms: int = 60_000
    default_cpu_time_ms: int = 5_000
    max_cpu_time_ms: int = 30_000
    default_memory_mib: int = 256
    max_memory_mib: int = 1024
    default_output_bytes: int = 1024 * 1024
    max_output_bytes: int = 8 * 1024 * 1024
    default_processes: int = 16
    max_processes: int = 64

    # Kubernetes runner (runner = "kubernetes"): one hardened pod per execution.
    # A kubeconfig file (and optional context) to use; without one, the in-cluster service account.
    kubernetes_kubeconfig: str | None = None
    kubernetes_context: str | None = None
    kubernetes_namespace: str = "podrun-exec"
    # Runtime id -> image. The image must have `python3` on its PATH.
    kubernetes_runtimes: dict[str, str] = Field(
        default_factory=lambda: {f"python-3.{minor}": f"python:3.{minor}-slim" for minor in range(10, 14)}
    )
    kubernetes_default_runtime: str = "python-3.13"
    kubernetes_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # The fixed non-root uid and gid every execution pod runs as.
    kubernetes_run_as_uid: int = 65534
    # hostUsers: false (a user namespace per pod); needs Kubernetes >= 1.30 and a runtime that supports it.
    kubernetes_user_namespaces: bool = False
    # A Localhost seccomp profile for execution pods, relative to the kubelet's seccomp directory, for example
    # "profiles/podrun-v1.json" (infra/k8s/seccomp/, made by `podrun seccomp-profile`); None: RuntimeDefault.
    kubernetes_seccomp_profile: str | None = None
    # For example "gvisor" (a RuntimeClass of that name must exist); None for the cluster's default.
    kubernetes_runtime_class: str | None = None
    kubernetes_node_selector: dict[str, str] = Field(default_factory=dict)
    # Tolerations as Kubernetes writes them: [{"key": ..., "operator": ..., "value": ..., "effect": ...}].
    kubernetes_tolerations: list[dict[str, str]] = Field(default_factory=list)
    kubernetes_cpu_request: str = "100m"
    kubernetes_cpu_limit: str = "1"
    # Time a pod may take to be scheduled and pull its image; it is never counted against the wall limit.
    kubernetes_startup_allowance_s: int = 300
    # Server-side timeout of one watch request; the runner re-watches from the last resourceVersion.
    kubernetes_watch_timeout_s: int = 60
    # How often the reaper removes execution pods nobody will come back for.
    kubernetes_reap_interval_s: float = 60.0

    # How long a finished run's output log stays in Redis before replays come from PostgreSQL.
    log_retention_s: int = 3600
    redis_max_connections: int = 32
    worker_concurrency: int = 4
    # A worker refreshes its heartbeat this often; a run whose worker is silent for
    # `worker_heartbeat_ttl_s` is ended as ERROR by the watchdog.
    worker_heartbeat_interval_s: float = 2.0
    worker_heartbeat_ttl_s: int = 10
    watchdog_interval_s: float = 3.0
    shutdown_grace_s: int = 30

    @property
    def graphiql_enabled(self) -> bool:
        """GraphiQL is on in development and off in production unless asked for."""
        return self.graphiql if self.graphiql is not None else self.mode == "development"

    @model_validator(mode="after")
    def _require_secret_in_production(self) -> Settings:
        if not self.jwt_secret:
            if self.mode == "production":
                raise ValueError("PODRUN_JWT_SECRET must be set in production mode")
            self.jwt_secret = _machine_dev_secret()
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
