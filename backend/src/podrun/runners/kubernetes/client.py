"""The Kubernetes API as the runner uses it: one client per worker, made on first use, closed with the worker.

The REST client serves every call but pods/attach, which needs a WebSocket client of its own (same
configuration, its own connection pool). Log follows are raw streaming requests (see `open_log`).
"""

from __future__ import annotations

import asyncio

import aiohttp
import structlog
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient

from podrun.settings import Settings

log = structlog.get_logger(__name__)

REQUEST_TIMEOUT_S = 30.0
# The Accept header of a log follow, as kubectl sends it: Kubernetes 1.20 answers 406 Not Acceptable
# to `text/plain` alone (it offers only JSON, YAML and protobuf, then streams the log whatever was asked).
LOG_ACCEPT = "application/json, */*"


class Api:
    """The worker's API clients for one namespace, from the configured kubeconfig or the in-cluster account."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.namespace = settings.kubernetes.namespace
        self._core: client.CoreV1Api | None = None
        self._client: client.ApiClient | None = None
        self._ws_core: client.CoreV1Api | None = None
        self._ws_client: WsApiClient | None = None
        self._configuration: client.Configuration | None = None
        self._lock = asyncio.Lock()
        self._deletions: set[asyncio.Task[None]] = set()

    async def core(self) -> client.CoreV1Api:
        """The core API over REST."""
        async with self._lock:
            if self._core is None:
                configuration = client.Configuration()
                if self.settings.kubernetes.kubeconfig:
                    await config.load_kube_config(
                        config_file=self.settings.kubernetes.kubeconfig,
                        context=self.settings.kubernetes.context,
                        client_configuration=configuration,
                    )
                else:
                    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                self._configuration = configuration
                self._client = client.ApiClient(configuration)
                self._core = client.CoreV1Api(self._client)
            return self._core

    async def ws(self) -> client.CoreV1Api:
        """The core API over WebSockets, for pods/attach."""
        await self.core()
        async with self._lock:
            if self._ws_core is None:
                self._ws_client = WsApiClient(self._configuration)
                self._ws_core = client.CoreV1Api(self._ws_client)
            return self._ws_core

    async def close(self) -> None:
        """Finish the deletions under way (bounded), then close both clients' connections; a later call opens them."""
        if self._deletions:
            await asyncio.wait(self._deletions, timeout=REQUEST_TIMEOUT_S)
        async with self._lock:
            for api_client in (self._ws_client, self._client):
                if api_client is not None:
                    await api_client.close()
            self._core = self._ws_core = self._ws_client = self._client = None

    async def open_log(self, name: str, query: list[tuple[str, str]]) -> aiohttp.ClientResponse:
        """A streaming request for the pod's log (the caller reads and releases it)."""
        await self.core()
        assert self._client is not None
        response: aiohttp.ClientResponse = await self._client.call_api(
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "GET",
            path_params={"namespace": self.namespace, "name": name},
            query_params=query,
            header_params={"Accept": LOG_ACCEPT},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(connect=REQUEST_TIMEOUT_S, sock_connect=REQUEST_TIMEOUT_S),
        )
        return response

    async def delete(self, name: str) -> None:
        """Delete the pod `name` and its ConfigMap now. Idempotent."""
        api = await self.core()
        body = client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background")
        for delete in (api.delete_namespaced_pod, api.delete_namespaced_config_map):
            try:
                await delete(name, self.namespace, body=body, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def delete_soon(self, name: str) -> None:
        """Delete the pod `name` and its ConfigMap in the background: a run ends without waiting for it.

        One that fails (or a worker that dies first) leaves the pod to the reaper, as for any ended run.
        """
        task = asyncio.create_task(self._delete_quietly(name), name=f"delete {name}")
        self._deletions.add(task)
        task.add_done_callback(self._deletions.discard)

    async def _delete_quietly(self, name: str) -> None:
        try:
            await self.delete(name)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("pod not deleted, left to the reaper", sandbox=name, error=type(exc).__name__)
