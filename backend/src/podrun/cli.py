"""The `podrun` command: serve the API, run a worker, migrate, manage users, or all of it for development."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import click

from podrun.core.backoff import Backoff
from podrun.settings import Settings, get_settings, warn_of_unknown_variables

DEMO_EMAIL = "demo@podrun.dev"
DEMO_PASSWORD = "podrun-demo"  # noqa: S105 - development only: `podrun dev` refuses to run in production mode
RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
# A child that ran this long before it ended is restarted after the first delay again.
RESTART_RESET_S = 60.0


@click.group()
def main() -> None:
    """Podrun: run Python scripts in sandboxes and stream their output over GraphQL."""


@main.command()
def migrate() -> None:
    """Create the database if needed and apply all migrations."""
    from podrun.db.migrate import migrate as run_migrations  # noqa: PLC0415 - keeps other commands light

    run_migrations(get_settings())
    click.echo("database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def api(host: str, port: int) -> None:
    """Serve the GraphQL API."""
    import uvicorn  # noqa: PLC0415

    _start_tracing("podrun-api")

    uvicorn.run(
        "podrun.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        # The API finds the client's address itself, believing only the proxies it is told to trust
        # (client_address.py); uvicorn's own default would believe any X-Forwarded-For from 127.0.0.1.
        proxy_headers=False,
        ws="websockets-sansio",
        # A larger message closes the socket (1009) before it is read into memory whole.
        ws_max_size=get_settings().graphql.max_ws_message_bytes,
        # No permessage-deflate: its compressor and decompressor held about 55 KiB of every open socket (most of an
        # idle subscription's memory, by tracemalloc), and each message was compressed again for each watcher.
        ws_per_message_deflate=False,
    )


@main.command()
def worker() -> None:
    """Run a worker that executes queued scripts."""
    from podrun.logging import configure_logging  # noqa: PLC0415
    from podrun.worker.main import create_worker  # noqa: PLC0415

    settings = get_settings()
    configure_logging(settings)
    warn_of_unknown_variables()
    _start_tracing("podrun-worker")
    create_worker(settings).run()


def _start_tracing(service_name: str) -> None:
    """Traces per the OTEL_* variables; a setting they cannot work with stops the process before it takes work."""
    from podrun.observability.tracing import TracingConfigError, configure_tracing  # noqa: PLC0415

    try:
        configure_tracing(service_name)
    except TracingConfigError as error:
        raise click.ClickException(f"tracing is misconfigured: {error}") from error


@main.command("worker-health")
def worker_health() -> None:
    """Exit 1 unless a worker refreshed arq's health-check key lately (a container probe)."""
    import redis  # noqa: PLC0415

    from podrun.redis_client import Keys  # noqa: PLC0415

    settings = get_settings()
    with redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5) as client:
        health = client.get(Keys(settings.redis_prefix).health)
    if health is None:
        raise click.ClickException("no worker has reported to the queue lately")
    click.echo(health)


@main.command("stage-runtimes")
def stage_runtimes() -> None:
    """Stage the interpreters a sandbox's uid cannot read where they are installed (run by the setup, as root)."""
    from podrun.runners.interpreters import discover_installed, stage  # noqa: PLC0415

    settings = get_settings()
    runtimes_dir = settings.sandbox.runtimes_dir
    for interpreter in discover_installed(settings.sandbox.python_interpreters, runtimes_dir):
        try:
            staged = stage(interpreter, runtimes_dir)
        except PermissionError:
            click.echo(f"not staged (no permission for {runtimes_dir}): python {interpreter.version_text}", err=True)
            continue
        if staged is not None:
            click.echo(f"staged python {interpreter.version_text} from {interpreter.base_prefix} in {staged}")
    if settings.sandbox.scientific:
        _install_scientific(settings)


def _install_scientific(settings: Settings) -> None:
    """Install the scientific runtime's packages for every interpreter a sandbox can run."""
    from podrun.runners import scientific  # noqa: PLC0415
    from podrun.runners.interpreters import discover  # noqa: PLC0415

    runtimes_dir = settings.sandbox.runtimes_dir
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        click.echo("scientific runtime not installed: no uv (run the setup through ./taskw)", err=True)
        return
    for interpreter in discover(settings.sandbox.python_interpreters, runtimes_dir):
        began = time.monotonic()
        try:
            installed = scientific.install(interpreter, runtimes_dir, uv)
        except PermissionError:
            click.echo(f"scientific packages not installed (no permission for {runtimes_dir})", err=True)
            return
        except subprocess.SubprocessError as error:
            click.echo(f"scientific packages for python {interpreter.version_text} not installed: {error}", err=True)
            continue
        if installed is not None:
            size_mib = sum(f.stat().st_size for f in installed.rglob("*") if f.is_file()) / 1024 / 1024
            click.echo(
                f"installed the scientific packages for python {interpreter.version_text} in {installed} "
                f"({size_mib:.0f} MiB, {time.monotonic() - began:.0f} s)"
            )


@main.command("seccomp-profile")
def seccomp_profile() -> None:
    """Print the sandbox's seccomp filter as an OCI profile (a Kubernetes node's Localhost profile)."""
    from podrun.runners.seccomp import oci_profile_json  # noqa: PLC0415

    click.echo(oci_profile_json(), nl=False)


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="Give the user the ADMIN role.")
def create_user(email: str, password: str, admin: bool) -> None:
    """Create an account (use --admin for the first administrator)."""
    user = asyncio.run(_create_user(email, password, admin))
    click.echo(f"created {user}")


async def _create_user(email: str, password: str, admin: bool) -> str:
    from podrun.accounts.models import Role  # noqa: PLC0415
    from podrun.container import Container  # noqa: PLC0415

    async with Container.running(get_settings(), "cli") as container, container.users() as users:
        user = await users.create_user(email, password, Role.ADMIN if admin else Role.USER)
        return f"{user.email} ({user.role.value})"


async def _ensure_demo_user() -> None:
    from podrun.core.errors import Conflict  # noqa: PLC0415

    with contextlib.suppress(Conflict):
        await _create_user(DEMO_EMAIL, DEMO_PASSWORD, admin=False)


@main.command()
@click.option("--port", default=8000, show_default=True)
def dev(port: int) -> None:
    """Migrate, make sure the demo user exists, and run the API and a worker (restarted if they end) until Ctrl+C."""
    settings = get_settings()
    if settings.mode == "production":
        raise click.UsageError("`podrun dev` is for development; run `podrun api` and `podrun worker` instead")
    from podrun.db.migrate import migrate as run_migrations  # noqa: PLC0415

    run_migrations(settings)
    asyncio.run(_ensure_demo_user())
    metrics = settings.metrics
    # The children read it from the environment: the worker serves its metrics on a port of its own.
    worker_metrics_port = metrics.worker_port or _free_port(metrics.host)
    os.environ["PODRUN_METRICS__WORKER_PORT"] = str(worker_metrics_port)
    api_metrics = f"http://{metrics.host}:{metrics.api_port}" if metrics.api_port else f"http://127.0.0.1:{port}"
    children = [Supervised("api", "api", "--port", str(port)), Supervised("worker", "worker")]
    click.echo(
        f"\n  Podrun is starting on http://127.0.0.1:{port}/  (GraphiQL: http://127.0.0.1:{port}/graphql)\n"
        f"  demo login: email {DEMO_EMAIL}  password {DEMO_PASSWORD}\n"
        f"  metrics: API {api_metrics}/metrics  worker http://{metrics.host}:{worker_metrics_port}/metrics\n"
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            for child in children:
                child.keep_running()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.stop()


class Supervised:
    """A `podrun` child process that `podrun dev` restarts when it ends, waiting longer after each quick crash."""

    def __init__(self, name: str, *args: str) -> None:
        self.name = name
        self.args = args
        self.restarts = Backoff(RESTART_FIRST_DELAY_S, RESTART_MAX_DELAY_S)
        self.restart_at: float | None = None
        self.started = time.monotonic()
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self.started = time.monotonic()
        return subprocess.Popen([sys.executable, "-m", "podrun.cli", *self.args])  # noqa: S603 - our own CLI

    def keep_running(self) -> None:
        """Notice that the child ended and restart it after its back-off."""
        now = time.monotonic()
        if self.restart_at is None:
            code = self.process.poll()
            if code is None:
                return
            # A child that ran for a while before it ended gets a quick restart; one that keeps crashing, slower ones.
            if now - self.started > RESTART_RESET_S:
                self.restarts.reset()
            delay_s = self.restarts.next()
            self.restart_at = now + delay_s
            click.echo(f"podrun dev: the {self.name} ended (exit code {code}); restarting in {delay_s:.0f} s", err=True)
        elif now >= self.restart_at:
            self.restart_at = None
            self.process = self._start()

    def stop(self) -> None:
        """SIGTERM, then wait (a worker finishes its runs first)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait()


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
