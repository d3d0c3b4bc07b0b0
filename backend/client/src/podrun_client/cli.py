"""prun: run a Python script on a Podrun server as if it ran here.

    prun login [--url URL]          sign in; keeps a refresh token (never the password)
    prun run FILE [options]         submit, stream stdout/stderr live, exit with the script's code
    prun watch ID [--after SEQ]     follow a run (or replay a finished one)
    prun runs                       your recent runs
    prun tools [--search TEXT]      the tools you may run
    prun tool SLUG [options]        run a tool: --set name=value, --file field=path
    prun cancel ID                  stop a run
    prun delete ID                  delete a run with its output and files (a run still going is stopped first)
    prun kernel [options]           a Python console whose statements run in a kernel on the server (state kept);
                                    Ctrl-C interrupts a statement, Ctrl-D stops the kernel; piped code runs too
    prun kernel --attach ID         the console on a kernel of yours that runs already (Ctrl-D leaves it running)
    prun kernels                    your kernels
    prun kernel-stop ID             stop a kernel
    prun logout                     end the sign-in on the server and forget it

`--json` on each prints JSON (lines) shaped like the GraphQL API's data. Exit codes: outcome.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from podrun_client import credentials, limits, tool_inputs
from podrun_client.client import (
    ConnectionLost,
    NotSignedIn,
    PodrunClient,
    error_code,
)
from podrun_client.credentials import Credentials
from podrun_client.generated import (
    ExecutionStatus,
    ExecutionSummary,
    GraphQLClientGraphQLMultiError,
    GraphQLClientHttpError,
    LimitsInput,
    RunToolInput,
    Session,
    StartKernelInput,
    SubmitExecutionInput,
)
from podrun_client.interrupts import CancelOnInterrupt
from podrun_client.kernel import console
from podrun_client.outcome import CANCELLED, NOT_SIGNED_IN, UNREACHABLE, USAGE, outcome
from podrun_client.show import show
from podrun_client.stdin import forward_stdin
from podrun_client.views import JsonView, TextView, View, write_json

DEFAULT_URL = "http://127.0.0.1:8000"

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


class UsageError(Exception):
    """A mistake in the command line or its files; exit status 2."""


def main(argv: list[str] | None = None) -> None:
    """The `prun` console script."""
    args = parser().parse_args(argv)
    command: Command = args.command
    sys.exit(_exit_code(lambda: asyncio.run(command(args))))


def _exit_code(run: Callable[[], int]) -> int:
    """Run a command; turn what can go wrong into a message on stderr and an exit status."""
    try:
        return run()
    except KeyboardInterrupt:
        return CANCELLED
    except (UsageError, tool_inputs.FormError) as error:
        _say(str(error))
        return USAGE
    except NotSignedIn as error:
        _say(f"not signed in ({error}): run `prun login`")
        return NOT_SIGNED_IN
    except GraphQLClientGraphQLMultiError as error:
        code = error_code(error)
        _say(f"{code}: {error}" if code else str(error))
        return NOT_SIGNED_IN if code == "UNAUTHENTICATED" else USAGE
    except (ConnectionLost, httpx.TransportError, GraphQLClientHttpError) as error:
        _say(f"cannot reach the server: {error}")
        return UNREACHABLE
    except BrokenPipeError:
        # Whoever read our output has gone (`prun run x.py | head -1`): leave quietly, as a local script would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def parser() -> argparse.ArgumentParser:
    """prun's command line."""
    json_option = argparse.ArgumentParser(add_help=False)
    json_option.add_argument("--json", action="store_true", help="machine-readable output (JSON)")

    top = argparse.ArgumentParser(prog="prun", description="Run Python scripts on a Podrun server.")
    top.add_argument("--version", action="version", version=f"%(prog)s {version('podrun-client')}")
    commands = top.add_subparsers(title="commands", required=True, metavar="COMMAND")

    login_parser = commands.add_parser("login", parents=[json_option], help="sign in to a Podrun server")
    login_parser.add_argument("--url", help=f"the server (default: the last one signed in to, or {DEFAULT_URL})")
    login_parser.add_argument("--email", help="asked for when not given")
    login_parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login_parser.set_defaults(command=login)

    run_parser = commands.add_parser("run", parents=[json_option], help="run a script and stream its output")
    run_parser.add_argument("file", type=Path, help="the Python script")
    run_parser.add_argument("--runtime", help="a runtime id (default: the server's default)")
    run_parser.add_argument(
        "--stdin", type=Path, metavar="FILE", help="the script's whole stdin (default: prun's own stdin)"
    )
    _add_run_options(run_parser)
    run_parser.set_defaults(command=run)

    tools_parser = commands.add_parser("tools", parents=[json_option], help="list the tools you may run")
    tools_parser.add_argument("--search", metavar="TEXT", help="only tools whose name or description has TEXT")
    tools_parser.add_argument("--first", type=int, default=20, metavar="N", help="how many (default 20)")
    tools_parser.set_defaults(command=tools)

    tool_parser = commands.add_parser("tool", parents=[json_option], help="run a tool with its form's values")
    tool_parser.add_argument("slug", help="the tool's name in the catalog")
    tool_parser.add_argument("--version", type=int, metavar="N", help="this version (default: the latest approved)")
    tool_parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a field's value (repeat for each field)"
    )
    tool_parser.add_argument(
        "--file", action="append", default=[], metavar="FIELD=PATH", help="a file field's file (repeat for each)"
    )
    _add_run_options(tool_parser)
    tool_parser.set_defaults(command=tool)

    watch_parser = commands.add_parser("watch", parents=[json_option], help="follow or replay a run")
    watch_parser.add_argument("id", help="the run's id")
    watch_parser.add_argument("--after", type=int, default=0, metavar="SEQ", help="only events after this seq")
    watch_parser.set_defaults(command=watch)

    runs_parser = commands.add_parser("runs", parents=[json_option], help="list your recent runs")
    runs_parser.add_argument("--first", type=int, default=20, metavar="N", help="how many (default 20)")
    runs_parser.add_argument("--status", type=ExecutionStatus, choices=list(ExecutionStatus), metavar="STATUS")
    runs_parser.set_defaults(command=runs)

    cancel_parser = commands.add_parser("cancel", parents=[json_option], help="stop a run")
    cancel_parser.add_argument("id", help="the run's id")
    cancel_parser.set_defaults(command=cancel)

    delete_parser = commands.add_parser("delete", parents=[json_option], help="delete a run with its output")
    delete_parser.add_argument("id", help="the run's id")
    delete_parser.set_defaults(command=delete)

    kernel_parser = commands.add_parser(
        "kernel", parents=[json_option], help="a Python console on a kernel, which keeps its state between statements"
    )
    kernel_parser.add_argument(
        "--attach", metavar="ID", help="a kernel of yours that runs already (Ctrl-D detaches, leaving it running)"
    )
    kernel_parser.add_argument("--stop-on-exit", action="store_true", help="with --attach: stop the kernel at the end")
    kernel_parser.add_argument("--runtime", help="a runtime id (default: the server's default)")
    kernel_parser.add_argument(
        "--idle-timeout", type=limits.duration_s, metavar="TIME", help="stop it after this long idle, e.g. 10m"
    )
    _add_run_options(kernel_parser)  # wall and CPU time for each cell; memory and processes for the whole kernel
    kernel_parser.set_defaults(command=kernel)

    kernels_parser = commands.add_parser("kernels", parents=[json_option], help="list your kernels")
    kernels_parser.add_argument("--first", type=int, default=20, metavar="N", help="how many (default 20)")
    kernels_parser.set_defaults(command=kernels)

    kernel_stop_parser = commands.add_parser("kernel-stop", parents=[json_option], help="stop a kernel")
    kernel_stop_parser.add_argument("id", help="the kernel's id")
    kernel_stop_parser.set_defaults(command=kernel_stop)

    logout_parser = commands.add_parser(
        "logout", parents=[json_option], help="end the sign-in on the server and forget it"
    )
    logout_parser.set_defaults(command=logout)
    return top


def _add_run_options(command: argparse.ArgumentParser) -> None:
    """The limits and the artifacts directory, as `prun run` and `prun tool` take them."""
    command.add_argument("--wall", type=limits.duration_ms, metavar="TIME", help="wall-time limit, e.g. 5s")
    command.add_argument("--cpu", type=limits.duration_ms, metavar="TIME", help="CPU-time limit, e.g. 2s")
    command.add_argument("--memory", type=limits.memory_mib, metavar="SIZE", help="memory limit, e.g. 256M")
    command.add_argument("--output", type=limits.size_bytes, metavar="SIZE", help="output limit, e.g. 1M")
    command.add_argument("--processes", type=int, metavar="N", help="process limit")
    command.add_argument(
        "--artifacts", type=Path, metavar="DIR", help="save the run's figures and output files in DIR as they come"
    )


async def login(args: argparse.Namespace) -> int:
    """Sign in and store the refresh token."""
    stored = credentials.load()
    url = args.url or (stored.url if stored else DEFAULT_URL)
    if args.password_stdin and not args.email:
        raise UsageError("--password-stdin needs --email")
    email = args.email or await asyncio.to_thread(input, "Email: ")
    if args.password_stdin:
        password = (await asyncio.to_thread(sys.stdin.readline)).rstrip("\n")
    else:
        password = await asyncio.to_thread(getpass.getpass, "Password: ")
    async with PodrunClient(url) as client:
        session = await client.sign_in(email, password)
    path = credentials.save(Credentials(url=url, email=session.user.email, refresh_token=session.refresh_token))
    if args.json:
        write_json(_stdout(), {"url": url, "user": session.user, "credentials": str(path)})
    else:
        print(f"signed in to {url} as {session.user.email} (sign-in kept in {path})")
    return 0


async def logout(args: argparse.Namespace) -> int:
    """End the stored sign-in on the server, then forget it (forgotten even when the server cannot be reached)."""
    unreachable: Exception | None = None
    revoked = False
    if credentials.load() is not None:
        try:
            async with _signed_in() as client:
                revoked = (await client.sign_out()).sign_out
        except NotSignedIn:
            pass  # over on the server already (expired, revoked): nothing left to end there
        except (httpx.TransportError, GraphQLClientHttpError) as error:
            unreachable = error
    forgotten = credentials.delete()
    if args.json:
        write_json(_stdout(), {"forgotten": forgotten, "revoked": revoked})
    else:
        print("signed out" if forgotten else "was not signed in")
    if unreachable is not None:
        _say(
            f"cannot reach the server ({unreachable}): the sign-in is forgotten here but still live there until it "
            "expires; end it from another device (mySignIns, revokeSignIn)"
        )
        return UNREACHABLE
    return 0


async def run(args: argparse.Namespace) -> int:
    """Submit a script, show its output as it comes, and return its exit status."""
    script = _read(args.file)
    stdin = _read(args.stdin) if args.stdin is not None else None
    view = _view(args)
    async with _signed_in() as client:
        with CancelOnInterrupt(client, view) as interrupts:
            submitted = await client.submit_execution(
                input=SubmitExecutionInput(script=script, runtime=args.runtime, stdin=stdin, limits=_limits(args))
            )
            execution_id = submitted.submit_execution.id
            view.submitted(submitted.submit_execution)
            interrupts.follow(execution_id)
            # Without --stdin the run's stdin stays open: prun's own stdin feeds it as it comes.
            forwarding = asyncio.create_task(_pass_stdin(client, execution_id, view)) if stdin is None else None
            try:
                final = await show(client, execution_id, 0, view, artifacts=args.artifacts)
            finally:
                if forwarding is not None:
                    forwarding.cancel()
    result = outcome(final)
    view.finished(result)
    return result.exit_code


async def tool(args: argparse.Namespace) -> int:
    """Run a tool with the values and files given, show its output as it comes, and return its exit status."""
    files = tool_inputs.files(args.file)
    view = _view(args)
    async with _signed_in() as client:
        form = (await client.tool_form(slug=args.slug)).tool
        if form is None:
            raise UsageError(f"no tool {args.slug}")
        fields = next((v.fields for v in form.versions if v.version == args.version), None) if args.version else None
        if fields is None:
            fields = form.latest.fields if form.latest is not None else []
        values = tool_inputs.values(args.set, fields)
        with CancelOnInterrupt(client, view) as interrupts:
            submitted = await client.run_tool(
                input=RunToolInput(
                    slug=args.slug, version=args.version, values=values, files=files or None, limits=_limits(args)
                )
            )
            view.submitted(submitted.run_tool, operation="runTool")
            interrupts.follow(submitted.run_tool.id)
            final = await show(client, submitted.run_tool.id, 0, view, artifacts=args.artifacts)
    result = outcome(final)
    view.finished(result)
    return result.exit_code


async def tools(args: argparse.Namespace) -> int:
    """List the tools in the catalog, newest first."""
    async with _signed_in() as client:
        result = await client.tools(first=args.first, search=args.search)
    if args.json:
        write_json(_stdout(), {"tools": result.tools})
        return 0
    rows = [("SLUG", "VERSION", "TITLE", "AUTHOR")]
    for edge in result.tools.edges:
        node = edge.node
        version = "" if node.latest is None else str(node.latest.version)
        rows.append((node.slug, version, node.title, node.author.email))
    _print_table(rows)
    return 0


async def watch(args: argparse.Namespace) -> int:
    """Follow a run (or replay a finished one) and return its exit status, as `prun run` would have."""
    view = _view(args)
    async with _signed_in() as client:
        # Asked over HTTP first: an unknown id (NOT_FOUND) or an unreachable server is reported at once.
        await client.execution(id=args.id)
        final = await show(client, args.id, args.after, view)
    result = outcome(final)
    view.finished(result)
    return result.exit_code


async def runs(args: argparse.Namespace) -> int:
    """List recent runs, newest first."""
    async with _signed_in() as client:
        result = await client.executions(first=args.first, status=args.status)
    if args.json:
        write_json(_stdout(), {"executions": result.executions})
        return 0
    rows = [("ID", "STATUS", "EXIT", "CREATED", "RUNTIME")]
    for edge in result.executions.edges:
        node = edge.node
        rows.append(
            (
                node.id,
                node.status.value,
                _exit_column(node),
                node.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                node.runtime.id,
            )
        )
    _print_table(rows)
    return 0


async def cancel(args: argparse.Namespace) -> int:
    """Ask the server to stop a run."""
    async with _signed_in() as client:
        execution = (await client.cancel_execution(id=args.id)).cancel_execution
    if args.json:
        write_json(_stdout(), {"cancelExecution": execution})
    else:
        print(f"{execution.id} {execution.status.value}")
    return 0


async def delete(args: argparse.Namespace) -> int:
    """Delete a run with its output, events and artifacts."""
    async with _signed_in() as client:
        deleted = (await client.delete_execution(id=args.id)).delete_execution
    if args.json:
        write_json(_stdout(), {"deleteExecution": deleted})
    else:
        print(f"{deleted} deleted")
    return 0


async def kernel(args: argparse.Namespace) -> int:
    """A console on a new kernel (stopped at the end) or on one of yours (`--attach`); piped code runs in it."""
    if args.attach is not None and (args.runtime or args.idle_timeout or _limits(args)):
        raise UsageError("--runtime, --idle-timeout and the limits are set when a kernel starts, not with --attach")
    view = _view(args)
    stop_at_end = args.attach is None or args.stop_on_exit
    async with _signed_in() as client:
        if args.attach is None:
            options = StartKernelInput(runtime=args.runtime, limits=_limits(args), idle_timeout_s=args.idle_timeout)
            started = (await client.start_kernel(input=options)).start_kernel
            view.kernel(started, "startKernel")
        else:
            found = (await client.kernel(id=args.attach)).kernel
            if found is None:
                raise UsageError(f"no kernel {args.attach}")
            started = found
            view.kernel(started, "kernel")
        return await console(
            client, started, view, artifacts=args.artifacts, stop_at_end=stop_at_end, prompts=not args.json
        )


async def kernels(args: argparse.Namespace) -> int:
    """List your kernels, newest first."""
    async with _signed_in() as client:
        result = await client.kernels(first=args.first)
    if args.json:
        write_json(_stdout(), {"kernels": result.kernels})
        return 0
    rows = [("ID", "STATUS", "RUNTIME", "CREATED", "IDLE TIMEOUT", "WHY IT ENDED")]
    for edge in result.kernels.edges:
        node = edge.node
        created = node.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        idle = limits.format_ms(node.idle_timeout_s * 1000)
        rows.append((node.id, node.status.value, node.runtime.id, created, idle, node.error or ""))
    _print_table(rows)
    return 0


async def kernel_stop(args: argparse.Namespace) -> int:
    """Stop a kernel (its running cell is interrupted, waiting ones cancelled)."""
    async with _signed_in() as client:
        stopped = (await client.stop_kernel(id=args.id)).stop_kernel
    if args.json:
        write_json(_stdout(), {"stopKernel": stopped})
    else:
        print(f"{stopped.id} {stopped.status.value}")
    return 0


async def _pass_stdin(client: PodrunClient, execution_id: str, view: View) -> None:
    """prun's stdin to the run; a failure is told, not fatal: the run's output still matters."""
    try:
        await forward_stdin(client, execution_id)
    except Exception as error:
        view.message(f"stopped passing stdin to the run: {error}")


@contextlib.asynccontextmanager
async def _signed_in() -> AsyncIterator[PodrunClient]:
    """A client with the stored sign-in; every renewed refresh token is stored in turn."""
    stored = credentials.load()
    if stored is None:
        raise NotSignedIn("no stored sign-in")

    def keep(session: Session) -> None:
        credentials.save(replace(stored, refresh_token=session.refresh_token))

    async with PodrunClient(
        stored.url, refresh_token=stored.refresh_token, on_session=keep, refresh_turn=credentials.refreshing
    ) as client:
        yield client


def _view(args: argparse.Namespace) -> View:
    if args.json:
        return JsonView(_stdout(), _stderr())
    return TextView(_stdout(), _stderr(), progress=sys.stderr.isatty())


def _limits(args: argparse.Namespace) -> LimitsInput | None:
    values = {
        "wall_time_ms": args.wall,
        "cpu_time_ms": args.cpu,
        "memory_mi_b": args.memory,
        "output_bytes": args.output,
        "processes": args.processes,
    }
    given = {name: value for name, value in values.items() if value is not None}
    return LimitsInput(**given) if given else None


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _exit_column(execution: ExecutionSummary) -> str:
    if execution.signal is not None:
        return f"sig {execution.signal}"
    return "" if execution.exit_code is None else str(execution.exit_code)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from error


def _say(message: str) -> None:
    print(f"prun: {message}", file=sys.stderr)


def _stdout() -> BinaryIO:
    return sys.stdout.buffer


def _stderr() -> BinaryIO:
    return sys.stderr.buffer


if __name__ == "__main__":
    main()
