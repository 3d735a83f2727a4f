"""The pooled HTTP client delivery's platform clients share, made cheaper per call.

httpcore looks at every pooled connection on every request it queues or finishes
(`AsyncConnectionPool._assign_requests_to_connections`), and for each idle one asks its
stream `get_extra_info("is_readable")` — a server that closed the connection leaves it
readable. On the anyio backend each such ask rebuilds the stream's whole table of extra
attributes (anyio's `extra_attributes`, a dict of lambdas) to find the raw socket: at 64
calls in flight that was about a tenth of delivery's CPU (docs/delivery.md,
"Performance"). `pooled_client` builds an `httpx.AsyncClient` whose streams look the
socket up once; the readability check itself (a `poll` on the socket) is unchanged, so
a connection the server closed is still dropped before it is reused.
"""

# httpcore's network interface takes `timeout` arguments: the signatures are its own.
# ruff: noqa: ASYNC109

from __future__ import annotations

import socket
import ssl
import typing
from collections.abc import Iterable

import httpcore
import httpx
from httpcore._utils import is_socket_readable

# httpcore looks at every pooled connection (a readability check on each idle socket) for
# every request, so a pool grown to a burst's size costs CPU on each later call: keep at
# most 16 idle (≈ 1.9× less CPU per call at 64 in flight, docs/bench.md).
HTTP_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=16)


class _SocketCachingStream(httpcore.AsyncNetworkStream):
    """A network stream that finds its raw socket once, for httpcore's per-request checks."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # TLS wraps the stream in a new one: cache that one's socket afresh.
        return _SocketCachingStream(
            await self._stream.start_tls(ssl_context, server_hostname, timeout)
        )

    def get_extra_info(self, info: str) -> typing.Any:
        if info in ("is_readable", "socket"):
            if self._socket is None:
                self._socket = self._stream.get_extra_info("socket")
            return is_socket_readable(self._socket) if info == "is_readable" else self._socket
        return self._stream.get_extra_info(info)


class _SocketCachingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, its streams wrapped in `_SocketCachingStream`."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _SocketCachingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _SocketCachingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def pooled_client(limits: httpx.Limits = HTTP_LIMITS) -> httpx.AsyncClient:
    """One pooled `httpx.AsyncClient` for every platform (connection reuse across calls).

    Its transport is httpx's own (`AsyncHTTPTransport` with these limits: TLS, exceptions
    mapped as usual) with the socket-caching backend set on its connection pool. httpx has
    no public parameter for the pool's backend; if a future httpx lays its transport out
    differently the client keeps the default backend (same behaviour, the old cost).
    """
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _SocketCachingBackend()
    return httpx.AsyncClient(transport=transport)
