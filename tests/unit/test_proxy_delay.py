"""The link proxy's one-way delay (a long link, for the outbox's benchmark across one): every
chunk is held that long in each direction, arrives in order, and a cut still ends the link."""

from __future__ import annotations

import asyncio
import time

from services.leaf.proxy import Proxy

DELAY_S = 0.1


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_a_delayed_link_holds_each_direction_and_keeps_the_order() -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = Proxy("127.0.0.1", server.sockets[0].getsockname()[1], delay_s=DELAY_S)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        sent_at = time.monotonic()
        for part in (b"first ", b"second ", b"third"):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)
        echoed = b""
        while len(echoed) < len(b"first second third"):
            echoed += await asyncio.wait_for(reader.read(1024), 5)
        # there and back: two one-way delays at least
        assert time.monotonic() - sent_at >= 2 * DELAY_S
        assert echoed == b"first second third"
        proxy.cut()
        try:  # the link ended: an end of stream, or a reset, as a dropped link gives
            rest = await asyncio.wait_for(reader.read(1024), 5)
        except ConnectionResetError:
            rest = b""
        assert rest == b""
        writer.close()
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()
