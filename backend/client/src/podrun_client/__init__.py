"""Typed Python client for Podrun, and the `prun` command.

    async with PodrunClient("http://127.0.0.1:8000") as client:
        await client.sign_in("you@example.com", "password")
        run = (await client.submit_execution(input=SubmitExecutionInput(script="print('hi')"))).submit_execution
        async for event in client.follow(run.id):
            ...

Every operation in `operations/*.graphql` is a typed method of the client (generated into
`podrun_client.generated`); `follow` resumes after a dropped connection and tokens renew themselves.
"""

from podrun_client.client import (
    TERMINAL,
    ArtifactCreated,
    ConnectionLost,
    DownloadFailed,
    Event,
    NotSignedIn,
    OutputChunk,
    OutputLine,
    PodrunClient,
    StatusChange,
    Tokens,
    error_code,
)
from podrun_client.generated import (
    ExecutionStatus,
    GraphQLClientError,
    GraphQLClientGraphQLMultiError,
    InputFile,
    KernelStatus,
    LimitKind,
    LimitsInput,
    OutputStream,
    StartKernelInput,
    SubmitExecutionInput,
)

__all__ = [
    "TERMINAL",
    "ArtifactCreated",
    "ConnectionLost",
    "DownloadFailed",
    "Event",
    "ExecutionStatus",
    "GraphQLClientError",
    "GraphQLClientGraphQLMultiError",
    "InputFile",
    "KernelStatus",
    "LimitKind",
    "LimitsInput",
    "NotSignedIn",
    "OutputChunk",
    "OutputLine",
    "OutputStream",
    "PodrunClient",
    "StartKernelInput",
    "StatusChange",
    "SubmitExecutionInput",
    "Tokens",
    "error_code",
]
