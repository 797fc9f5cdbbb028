"""A TCP proxy that can cut or pause a link: a state's leaf link, without root (the fault tests
and `cifta demo --cluster` run the link through it).

``cut()`` closes every connection through it and refuses new ones (a link that went down: both
ends see it at once). ``pause()`` keeps the connections but stops moving bytes and holds new ones
(a link that went silent: the ends notice only by their pings). ``restore()`` ends either.
``delay_s`` holds every chunk that long before passing it on, in each direction (a long link's
one-way time, for the outbox's benchmark across one: bench/outbox_rtt.py).
It runs in the caller's event loop; its counters let a test wait for the link to be used again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class Proxy:
    target_host: str
    target_port: int
    host: str = "127.0.0.1"
    port: int = 0  # the listening port, once started
    delay_s: float = 0.0  # each direction's one-way time
    connections: int = 0  # accepted and connected to the target, in all
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _cut: bool = False
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        """Listen on a free port of ``host``; return it."""
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        self._close_all()
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def cut(self) -> None:
        """The link goes down: every connection closed, new ones refused until restored."""
        self._cut = True
        self._close_all()

    def pause(self) -> None:
        """The link goes silent: connections stay open, no byte moves, until restored."""
        self._flowing.clear()

    def restore(self) -> None:
        self._cut = False
        self._flowing.set()

    @property
    def is_cut(self) -> bool:
        return self._cut

    def _close_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()  # a reset, as a dropped link looks to both ends
        self._open.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._link(client_r, client_w)
        except asyncio.CancelledError:
            client_w.transport.abort()  # the proxy stops: its links end with it
        finally:
            self._handlers.discard(task)

    async def _link(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await self._flowing.wait()  # a paused link holds a new connection too
        if self._cut:
            client_w.transport.abort()
            return
        try:
            target_r, target_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        self._open.update((client_w, target_w))
        await asyncio.gather(self._pipe(client_r, target_w), self._pipe(target_r, client_w))
        for writer in (client_w, target_w):
            self._open.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.delay_s > 0:
            await self._pipe_delayed(reader, writer)
            return
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()
        writer.transport.abort()  # one side ended: end the other (a link carries both or none)

    async def _pipe_delayed(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """As :meth:`_pipe`, each chunk written ``delay_s`` after it was read, in order."""
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def write() -> None:
            while data := (chunk := await chunks.get())[1]:
                await asyncio.sleep(max(0.0, chunk[0] - loop.time()))
                await self._flowing.wait()
                if writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()

        writing = asyncio.create_task(write())
        try:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await reader.read(CHUNK):
                    chunks.put_nowait((loop.time() + self.delay_s, data))
            chunks.put_nowait((0.0, b""))  # what was read still arrives, then the end
            with contextlib.suppress(OSError):
                await writing
        finally:
            writing.cancel()
        writer.transport.abort()
