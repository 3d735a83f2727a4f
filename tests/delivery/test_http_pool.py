"""The pooled client checks a kept-alive connection only before reusing it, and never
reuses one the server closed: the request goes out once, on a new connection."""

from __future__ import annotations

import asyncio

from services.platforms.http import _LinearPool, pooled_client

RESPONSE = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


async def _calls_after_server_closes() -> tuple[list[int], int, list[int]]:
    requests = 0
    connections = 0
    close_first = asyncio.Event()
    first_closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests, connections
        connections += 1
        mine = connections
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            requests += 1
            writer.write(RESPONSE)
            await writer.drain()
            if mine == 1:
                await close_first.wait()  # keep-alive, then the server closes it while idle
                writer.close()
                await writer.wait_closed()
                first_closed.set()
                return
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    statuses = []
    async with server, pooled_client() as http:
        url = f"http://127.0.0.1:{port}/bot/deleteMessage"
        statuses.append((await http.post(url, json={"n": 1})).status_code)
        close_first.set()
        await first_closed.wait()
        statuses.append((await http.post(url, json={"n": 2})).status_code)
        statuses.append((await http.post(url, json={"n": 3})).status_code)
    return statuses, requests, [connections]


def test_a_connection_the_server_closed_is_not_reused() -> None:
    statuses, requests, (connections,) = asyncio.run(_calls_after_server_closes())
    assert statuses == [200, 200, 200]
    assert requests == 3  # every call reached the server once: none was written to the dead one
    assert connections == 2  # the second call moved to a new connection, the third reused it


def test_the_pool_is_the_linear_one_on_the_httpcore_it_was_copied_from() -> None:
    # A new httpcore keeps its own pool class (correct, the old cost): check that
    # _LinearPool still repeats its `_assign_requests_to_connections`, then list the version.
    transport = pooled_client()._transport
    assert type(getattr(transport, "_pool", None)) is _LinearPool
