"""The one settings object. Every value can be set from the environment with the `PODRUN_` prefix.

Where to connect and how to sign are top-level (`PODRUN_DATABASE_URL`, `PODRUN_JWT_SECRET`, ...);
everything else is grouped, a group's fields set with a double underscore:
`PODRUN_LIMITS__DEFAULT__WALL_TIME_MS=20000`, `PODRUN_WORKER__CONCURRENCY=8`,
`PODRUN_KUBERNETES__NAMESPACE=runs`. Reading settings changes nothing; `get_settings` makes the
development signing secret when none is configured.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_origin

import structlog
from pydantic import BaseModel, Field, IPvAnyNetwork, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from podrun.core.limits import Limits

ENV_PREFIX = "PODRUN_"
# Variables under the prefix that are no settings: the test suites' and the benchmark's own, which the API and
# worker processes they start inherit.
NOT_SETTINGS = ("PODRUN_TEST_", "PODRUN_WEB_TEST_", "PODRUN_BENCH_")
DEV_SECRET_FILE = Path.home() / ".config" / "podrun" / "jwt-secret"
REPO_ROOT = Path(__file__).resolve().parents[3]


class AuthSettings(BaseModel):
    """Token lifetimes (docs/auth.md, "Authentication")."""

    # Short: an access token is checked against its sign-in on every request, but a copy works until it expires.
    access_token_ttl_s: int = Field(default=5 * 60, gt=0)
    # Counted from the last refresh: a sign-in unused for this long is over.
    refresh_token_ttl_s: int = Field(default=14 * 24 * 3600, gt=0)
    # Whether anyone may create an account with `register` (admins can change it at run time).
    registration_open: bool = True
    # The zxcvbn score (0 to 4) a new password must reach; 3 resists an offline attack on a slow hash.
    min_password_score: int = Field(default=3, ge=0, le=4)


class LimitSettings(BaseModel):
    """What runs get when they ask for nothing, the most they may ask for, and the size of what they send."""

    default: Limits = Limits(
        wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1024 * 1024, processes=16
    )
    maximum: Limits = Limits(
        wall_time_ms=60_000, cpu_time_ms=30_000, memory_mib=1024, output_bytes=8 * 1024 * 1024, processes=64
    )
    script_bytes: int = 64 * 1024
    stdin_bytes: int = 64 * 1024
    # One sendInput call.
    input_bytes: int = 64 * 1024
    # Stdin of one run accepted by sendInput and not yet taken by its sandbox; past it sendInput is RATE_LIMITED.
    pending_input_bytes: int = Field(default=1024 * 1024, gt=0)
    # Input files of one run: how many, and their decoded bytes in all.
    files_count: int = 16
    files_bytes: int = 512 * 1024
    # Artifacts of one run: how many, and their bytes in all (they count against the output limit as well).
    artifacts_count: int = 32
    artifacts_bytes: int = 8 * 1024 * 1024
    # Saved scripts per user.
    saved_scripts: int = 500

    @field_validator("default", "maximum", mode="before")
    @classmethod
    def _keep_the_limits_not_given(cls, value: object, info: ValidationInfo) -> object:
        # PODRUN_LIMITS__MAXIMUM__MEMORY_MIB alone changes that one limit; the others keep their defaults.
        if isinstance(value, dict) and info.field_name is not None:
            default: Limits = cls.model_fields[info.field_name].default
            return {**default.model_dump(), **value}
        return value


class QuotaSettings(BaseModel):
    """Per user: runs in progress at once, submissions and sign-in attempts per minute; runs queued in all.

    The first two and the queue cap are defaults: admins change them at run time (`updateSystemSettings`).
    """

    # Within what an admin may set (policy/values.py), so a misconfigured server refuses to start.
    active_executions_per_user: int = Field(default=8, ge=1, le=10_000)
    submissions_per_minute: int = Field(default=60, ge=1, le=100_000)
    login_attempts_per_minute: int = 10
    # sendInput calls per user (all their runs together).
    input_calls_per_minute: int = Field(default=1200, gt=0)
    # Runs waiting for a worker, all users together: past it submissions are refused instead of queued.
    queued_executions_cap: int = Field(default=1000, ge=1, le=1_000_000)
    # What one user's runs may hold (script, stdin, input files, output, artifacts); past it submissions are refused.
    storage_mib_per_user: int = Field(default=1024, ge=1, le=16 * 1024 * 1024)
    # How long an ended run is kept before the workers' retention sweep deletes it.
    retention_days: int = Field(default=30, ge=1, le=36_500)


class GraphQLSettings(BaseModel):
    """What one GraphQL request or socket may ask of the API; everything beyond is refused before it runs."""

    # None: on in development, off in production (schema/schema.graphql is the schema for tools).
    introspection: bool | None = None
    # A longer query text is refused unread (scripts belong in variables, which this does not count).
    max_query_chars: int = Field(default=256 * 1024, gt=0)
    # The parser stops at this many tokens (a string literal, such as a script, is one token).
    max_tokens: int = Field(default=1000, gt=0)
    # Nested fields, counted from the operation's root field (introspection included).
    max_depth: int = Field(default=15, gt=0)
    max_aliases: int = Field(default=30, ge=0)
    # Fields an operation may resolve, each counted once per item of the lists around it.
    max_cost: int = Field(default=100_000, gt=0)
    # How many items a list field without a `first` argument is assumed to hold.
    assumed_list_size: int = Field(default=10, gt=0)
    # Operations in progress on one WebSocket (subscriptions, and queries or mutations sent over it).
    subscriptions_per_socket: int = Field(default=20, gt=0)
    # Operations one WebSocket may start per second (a burst of as many is allowed).
    operations_per_socket_per_second: int = Field(default=10, gt=0)
    # The largest WebSocket message the server reads; a larger one closes the socket (1009).
    max_ws_message_bytes: int = Field(default=1024 * 1024, gt=0)
    # Output bytes (stdout, stderr) one operation may return; None: twice the largest output limit.
    max_output_bytes: int | None = Field(default=None, gt=0)


class SignInSettings(BaseModel):
    """Protection of sign-in and registration against guessing and floods (docs/auth.md, "Sign-in protection")."""

    # Per client address (IPv6: per /64): login attempts per minute and registrations per hour.
    attempts_per_client_per_minute: int = Field(default=30, gt=0)
    registrations_per_client_per_hour: int = Field(default=20, gt=0)
    # Failed sign-ins an account takes before each further failure delays the clients that failed.
    failures_before_delay: int = Field(default=5, gt=0)
    # The first delay; each further failure doubles it, up to the maximum.
    first_delay_s: float = Field(default=1.0, gt=0)
    max_delay_s: float = Field(default=900.0, gt=0)
    # An account's failures are forgotten this long after the last one.
    failure_window_s: int = Field(default=900, gt=0)


class ProxySettings(BaseModel):
    """The reverse proxies in front of the API (client_address.py): none by default, so no header is believed."""

    # Addresses or networks (JSON list, e.g. ["10.0.0.0/8"]) whose forwarding header names the client.
    trusted: list[IPvAnyNetwork] = Field(default_factory=list)
    # Which header they set; the other one is ignored, so a client cannot slip a forged one past them.
    header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"


class SandboxSettings(BaseModel):
    """The local runner's sandboxes."""

    # Interpreters to offer; empty means "discover python3.X on this host".
    python_interpreters: list[str] = Field(default_factory=list)
    # Where `podrun stage-runtimes` puts interpreters a sandbox's uid could not read where they are installed.
    runtimes_dir: Path = Path("/var/lib/podrun/runtimes")
    # A root worker runs sandboxes as subordinate uids of this account (an unprivileged worker uses its own).
    account: str = "podrun"
    # Where every worker on the host leases sandbox uids (one locked file per uid), so no two live sandboxes
    # share one; world-writable and sticky, made by the first worker (or the setup) that needs it.
    uid_lease_dir: Path = Path("/run/podrun/sandbox-uids")
    # Whether the setup installs, and the runner offers, python-3.X-scientific beside each interpreter.
    scientific: bool = True
    # The sizes of the sandbox's two writable file systems (tmpfs), whose pages count against the run's memory.
    tmp_mib: int = Field(default=64, gt=0)
    shm_mib: int = Field(default=40, gt=0)
    # Every run's cgroup CPU weight (cgroup v2 cpu.weight, 1-10000, default 100; v1 cpu.shares = weight * 1024 / 100):
    # runs share a busy CPU by their weights, however many processes each has.
    cpu_weight: int = Field(default=100, ge=1, le=10000)
    # Sandboxes kept started and waiting for a run, per runtime in use (0: every run starts its own).
    warm_pool_size: int = Field(default=2, ge=0)
    # While runs arrive faster than a sandbox starts, up to this many wait per runtime (within the memory budget).
    warm_pool_max: int = Field(default=8, ge=0)
    # A runtime without a run for this long has its warm sandboxes stopped.
    warm_pool_idle_s: float = Field(default=300.0, gt=0)


class KubernetesSettings(BaseModel):
    """The Kubernetes runner (runner = "kubernetes"): one hardened pod per execution."""

    # A kubeconfig file (and optional context) to use; without one, the in-cluster service account.
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "podrun-exec"
    # Runtime id -> image. The image must have `python3` on its PATH.
    runtimes: dict[str, str] = Field(
        default_factory=lambda: {f"python-3.{minor}": f"python:3.{minor}-slim" for minor in range(10, 14)}
    )
    default_runtime: str = "python-3.13"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # The fixed non-root uid and gid every execution pod runs as.
    run_as_uid: int = 65534
    # hostUsers: false (a user namespace per pod); needs Kubernetes >= 1.30 and a runtime that supports it.
    user_namespaces: bool = False
    # A Localhost seccomp profile for execution pods, relative to the kubelet's seccomp directory, for example
    # "profiles/podrun-v1.json" (infra/k8s/seccomp/, made by `podrun seccomp-profile`); None: RuntimeDefault.
    seccomp_profile: str | None = None
    # For example "gvisor" (a RuntimeClass of that name must exist); None for the cluster's default.
    runtime_class: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    # Tolerations as Kubernetes writes them: [{"key": ..., "operator": ..., "value": ..., "effect": ...}].
    tolerations: list[dict[str, str]] = Field(default_factory=list)
    cpu_request: str = "100m"
    cpu_limit: str = "1"
    # Time a pod may take to be scheduled and pull its image; it is never counted against the wall limit.
    startup_allowance_s: int = 300
    # Server-side timeout of one watch request; the runner re-watches from the last resourceVersion.
    watch_timeout_s: int = 60
    # How often the reaper removes execution pods nobody will come back for.
    reap_interval_s: float = 60.0
    # Pods created ahead of their run and waiting for it, per runtime in use. Off by default: each one holds
    # the largest limits on a node while it waits (docs/kubernetes.md, "Warm pods").
    warm_pool_size: int = Field(default=0, ge=0)
    # While runs arrive faster than a pod starts, up to this many wait per runtime.
    warm_pool_max: int = Field(default=4, ge=0)
    # A runtime without a run for this long has its warm pods deleted.
    warm_pool_idle_s: float = Field(default=300.0, gt=0)
    # A warm pod nobody claimed for this long is replaced; one that no worker looks after any more is ended
    # by the kubelet once this, the largest wall limit and the start-up allowance have passed.
    warm_pool_max_wait_s: int = Field(default=3600, gt=0)


class WorkerSettings(BaseModel):
    """Worker processes."""

    # Runs one worker holds at most at once, whatever their size (each costs a task and a few file descriptors);
    # the memory budget is what usually bounds them, and a sleeping run costs no CPU slot.
    concurrency: int = Field(default=256, ge=1)
    # The memory limits of one worker's runs, summed, stay within this (MiB); None: 3/4 of the host's memory.
    # A worker running nothing still takes a run larger than its budget.
    memory_mib: int | None = Field(default=None, gt=0)
    # A worker refreshes its heartbeat this often; a run whose worker is silent for `heartbeat_ttl_s`
    # is ended (or handed over) by the watchdog of a live worker.
    heartbeat_interval_s: float = 2.0
    heartbeat_ttl_s: int = 10
    watchdog_interval_s: float = 3.0
    # How long a stopping worker waits for its runs.
    shutdown_grace_s: int = 30
    # How often a worker deletes runs past their retention, and at most how many per transaction.
    retention_sweep_interval_s: float = Field(default=60.0, gt=0)
    retention_batch: int = Field(default=200, gt=0)


class KernelSettings(BaseModel):
    """Kernels (runInKernel): how long one waits for its next cell before it is stopped."""

    # A kernel with no cell for this long is stopped and its sandbox freed; a client may ask for less, or more
    # up to the maximum.
    idle_timeout_s: int = Field(default=600, gt=0)
    max_idle_timeout_s: int = Field(default=3600, gt=0)
    # A kernel lives at most this long, however busy (its worker job's timeout).
    max_lifetime_s: int = Field(default=8 * 3600, gt=0)


class MetricsSettings(BaseModel):
    """Where Prometheus metrics are served (docs/operating.md). Nothing there names a user or a run."""

    # The address the metrics ports below listen on (0.0.0.0 in a container, for the scraper).
    host: str = "127.0.0.1"
    # The API's /metrics on a port of its own instead of beside /graphql, so the public ingress never has it.
    api_port: int | None = Field(default=None, ge=1, le=65535)
    # A worker's /metrics; off unless set (`podrun dev` and the manifests set it).
    worker_port: int | None = Field(default=None, ge=1, le=65535)


class Settings(BaseSettings):
    """Podrun's configuration. Defaults are the embedded development setup."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__")

    mode: Literal["development", "production"] = "development"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/podrun"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every Redis key Podrun writes starts with this, so tests and dev data never meet.
    redis_prefix: str = "podrun"
    redis_max_connections: int = 32
    # Signs access and refresh tokens; required in production (development makes one per machine).
    jwt_secret: str = ""
    graphiql: bool | None = None
    # The built web client (`./taskw build:web`), served at `/` when the directory exists.
    web_dir: Path = REPO_ROOT / "frontend" / "build"
    # The address people open Podrun at (e.g. https://podrun.example.org), for links the API hands out (a shared
    # run's URL); unset, the request's own base URL, which behind a proxy may be an internal one.
    public_url: str | None = None
    runner: Literal["local", "kubernetes"] = "local"
    # How long a finished run's output log stays in Redis before replays come from PostgreSQL.
    log_retention_s: int = 3600

    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    graphql: GraphQLSettings = Field(default_factory=GraphQLSettings)
    signin: SignInSettings = Field(default_factory=SignInSettings)
    proxies: ProxySettings = Field(default_factory=ProxySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    kernels: KernelSettings = Field(default_factory=KernelSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @property
    def graphiql_enabled(self) -> bool:
        """GraphiQL is on in development and off in production unless asked for."""
        return self.graphiql if self.graphiql is not None else self.mode == "development"

    @property
    def output_budget_bytes(self) -> int:
        """Output bytes one GraphQL operation may return (graphql/output_budget.py)."""
        configured = self.graphql.max_output_bytes
        return configured if configured is not None else 2 * self.limits.maximum.output_bytes

    @property
    def introspection_enabled(self) -> bool:
        """Introspection is on in development and off in production unless asked for."""
        introspection = self.graphql.introspection
        return introspection if introspection is not None else self.mode == "development"

    @model_validator(mode="after")
    def _require_secret_in_production(self) -> Settings:
        if self.mode == "production" and not self.jwt_secret:
            raise ValueError("PODRUN_JWT_SECRET must be set in production mode")
        return self


def machine_dev_secret() -> str:
    """A signing secret made once per machine for development (in ~/.config/podrun); never committed."""
    if DEV_SECRET_FILE.exists():
        return DEV_SECRET_FILE.read_text().strip()
    DEV_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    DEV_SECRET_FILE.touch(mode=0o600)
    DEV_SECRET_FILE.write_text(secret)
    return secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; in development without a secret, the machine's own."""
    settings = Settings()
    if not settings.jwt_secret:
        settings = settings.model_copy(update={"jwt_secret": machine_dev_secret()})
    return settings


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """The `PODRUN_*` variables in `environ` that name no setting (an old name, a typo), which Settings ignores."""
    ours = [
        name for name in environ if name.upper().startswith(ENV_PREFIX) and not name.upper().startswith(NOT_SETTINGS)
    ]
    return sorted(name for name in ours if not _names_a_setting(Settings, name[len(ENV_PREFIX) :].lower().split("__")))


def _names_a_setting(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _names_a_setting(annotation, path[1:])
    # A mapping setting takes its keys from the rest of the name (PODRUN_KUBERNETES__NODE_SELECTOR__ZONE).
    return get_origin(annotation) is dict and len(path) == 2


def warn_of_unknown_variables(environ: Mapping[str, str] = os.environ) -> None:
    """Log a warning for each `PODRUN_*` variable that names no setting: without it, it would be ignored silently."""
    log = structlog.get_logger(__name__)
    for name in unknown_variables(environ):
        log.warning("environment variable names no setting; ignored", variable=name, see="docs/operating.md")
