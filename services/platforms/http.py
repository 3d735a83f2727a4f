"""The pooled HTTP client delivery's platform clients share, made cheaper per call.

httpcore looks at every pooled connection on every request it queues or finishes
(`AsyncConnectionPool._assign_requests_to_connections`), and for each idle one asks its
stream `get_extra_info("is_readable")` — a server that closed the connection leaves it
readable — so each call paid a `poll` per idle connection, twice. On the anyio backend
each such ask also rebuilt the stream's whole table of extra attributes (anyio's
`extra_attributes`, a dict of lambdas) to find the raw socket: at 64 calls in flight that
was about a tenth of delivery's CPU, and the polls as much again (docs/delivery.md,
"Performance"). `pooled_client` builds an `httpx.AsyncClient` whose streams look the
socket up once and check it where it matters: right before a kept-alive connection's next
request is written. A connection the server closed is still never reused — the pool is
told it is not available (`ConnectionNotAvailable`, nothing written), closes it and
assigns the request another — and one `poll` per reused connection replaces one per idle
connection per pool pass. A closed connection nobody picks stays in the pool until its
keep-alive expiry, as a connection the server had not closed would.
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
from httpcore._async.interfaces import AsyncConnectionInterface
from httpcore._utils import is_socket_readable

# httpcore looks at every pooled connection (a readability check on each idle socket) for
# every request, so a pool grown to a burst's size costs CPU on each later call: keep at
# most 16 idle (≈ 1.9× less CPU per call at 64 in flight, docs/bench.md).
HTTP_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=16)


class _SocketCachingStream(httpcore.AsyncNetworkStream):
    """A network stream that finds its raw socket once and checks it only before reuse."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = None
        # A response was read: the next write starts a request on a kept-alive connection.
        self._reused = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._reused = True
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._reused:
            self._reused = False
            if is_socket_readable(self._raw_socket()):
                # Idle and readable: the server closed it (or sent what no request asked
                # for). Nothing is written; the pool closes it and uses another connection.
                raise httpcore.ConnectionNotAvailable()
        await self._stream.write(buffer, timeout)

    def _raw_socket(self) -> socket.socket | None:
        if self._socket is None:
            self._socket = self._stream.get_extra_info("socket")
        return self._socket

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
        if info == "is_readable":
            return False  # checked by `write`, for the connection actually reused
        if info == "socket":
            return self._raw_socket()
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


# The httpcore releases whose `_assign_requests_to_connections` `_LinearPool` repeats.
LINEAR_POOL_VERSIONS = frozenset({"1.0.9"})


class _LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's pool with its bookkeeping pass linear in the number of connections.

    httpcore 1.0.9 counts the pool's connections for every connection it looks at (a list
    of every connection's `is_idle()`, of which only the length is used): at 16 kept-alive
    connections, 256 calls twice per request. This is its method as released, with that
    length taken directly; the decisions are the same.
    """

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing_connections = []
        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(self._connections) > self._max_keepalive_connections
            ):
                self._connections.remove(connection)
                closing_connections.append(connection)

        queued_requests = [request for request in self._requests if request.is_queued()]
        for pool_request in queued_requests:
            origin = pool_request.request.url.origin
            available_connections = [
                connection
                for connection in self._connections
                if connection.can_handle_request(origin) and connection.is_available()
            ]
            idle_connections = [
                connection for connection in self._connections if connection.is_idle()
            ]
            if available_connections:
                connection = available_connections[0]
                pool_request.assign_to_connection(connection)
            elif len(self._connections) < self._max_connections:
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
            elif idle_connections:
                connection = idle_connections[0]
                self._connections.remove(connection)
                closing_connections.append(connection)
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)

        return closing_connections


def pooled_client(limits: httpx.Limits = HTTP_LIMITS) -> httpx.AsyncClient:
    """One pooled `httpx.AsyncClient` for every platform (connection reuse across calls).

    Its transport is httpx's own (`AsyncHTTPTransport` with these limits: TLS, exceptions
    mapped as usual) with the socket-caching backend set on its connection pool. httpx has
    no public parameter for the pool's backend; if a future httpx lays its transport out
    differently the client keeps the default backend (same behaviour, the old cost); an
    httpcore other than LINEAR_POOL_VERSIONS keeps its own pool class.
    """
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _SocketCachingBackend()
        if (
            type(pool) is httpcore.AsyncConnectionPool
            and httpcore.__version__ in LINEAR_POOL_VERSIONS
        ):
            pool.__class__ = _LinearPool  # the same object and state; one method differs
    return httpx.AsyncClient(transport=transport)
