"""A TCP proxy on 127.0.0.1 that holds every chunk it forwards for a fixed delay, each way.

It puts a server "farther away" (an Atlas cluster 10-80 ms off, say) for benches and tests:
a request and its reply each wait ``delay_ms``, so a round trip costs at least twice that.
Order is kept per direction, and chunks are not held back behind one another: while one waits,
the next is already being read, so the delay adds latency, not a throughput limit. Half-closes
and closes are passed on after the same delay.

From Python (the proxy runs its own event loop in a thread)::

    with DelayProxy(("127.0.0.1", server_port), delay_ms=10) as proxy:
        client = MongoClient(proxy.mongodb_uri())        # directConnection=true: see there

From a shell, until Ctrl-C::

    python -m bench.delay_proxy --listen-port 27018 --target 127.0.0.1:27017 --delay-ms 10
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading

CHUNK_BYTES = 256 * 1024
# Chunks waiting out their delay per direction: with 256 KB chunks, 64 MB in flight at most.
QUEUED_CHUNKS = 256


class DelayProxy:
    """Forward connections from ``listen_host:listen_port`` (0: any free port) to ``target``,
    delaying each chunk by ``delay_ms`` milliseconds in each direction."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        delay_ms: float,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must be 0 or more")
        self.target = (target[0], int(target[1]))
        self.delay = delay_ms / 1000
        self.listen = (listen_host, listen_port)
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task] = set()

    # -- lifecycle, from any thread -----------------------------------------------------------
    def start(self) -> DelayProxy:
        """Listen (in a thread of its own) and return once connections are accepted."""
        ready, failure = threading.Event(), []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, *self.listen, limit=CHUNK_BYTES)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="delay-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop listening, close every proxied connection, and end the thread."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._thread = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``host:port`` to connect to instead of the target."""
        return f"{self.listen[0]}:{self.port}"

    def mongodb_uri(self, options: str = "") -> str:
        """A MongoDB URI through the proxy. ``directConnection=true`` keeps the driver on this address:
        a replica-set member announces its own ``host:port``, and the driver would go there instead."""
        extra = f"&{options}" if options else ""
        return f"mongodb://{self.address}/?directConnection=true{extra}"

    # -- the event loop's side -----------------------------------------------------------------
    async def _shutdown(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader, client_writer) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target, limit=CHUNK_BYTES)
            try:
                await asyncio.gather(
                    self._pipe(client_reader, target_writer), self._pipe(target_reader, client_writer)
                )
            finally:
                target_writer.close()
        except (OSError, asyncio.CancelledError):
            pass  # the target refused, or stop(): this connection simply ends
        finally:
            client_writer.close()
            self._connections.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read chunks as they come; write each ``delay`` after it was read, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(QUEUED_CHUNKS)
        broken = asyncio.Event()  # the writing side went away: read no more, drop what is queued

        async def forward() -> None:
            while True:
                due, data = await queue.get()
                if broken.is_set():
                    if data is None:
                        return
                    continue
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    if data is None:
                        if writer.can_write_eof() and not writer.is_closing():
                            writer.write_eof()
                        return
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    broken.set()

        forwarding = asyncio.create_task(forward())
        try:
            try:
                while not broken.is_set() and (data := await reader.read(CHUNK_BYTES)):
                    await queue.put((loop.time() + self.delay, data))
            except (ConnectionError, OSError):
                pass  # the reading side went away: pass the close on after the delay, like the data
            await queue.put((loop.time() + self.delay, None))
            await forwarding
        finally:
            forwarding.cancel()


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delay_proxy",
        description="Forward TCP connections to a target, delaying every chunk each way.",
    )
    parser.add_argument("--listen-port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
    parser.add_argument("--target", type=_host_port, required=True, help="host:port to forward to.")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="Delay each way, in ms (default 10).")
    args = parser.parse_args(argv)
    if args.delay_ms < 0:
        parser.error("--delay-ms must be 0 or more")
    try:
        proxy = DelayProxy(args.target, delay_ms=args.delay_ms, listen_port=args.listen_port).start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.listen_port} ({exc.strerror})", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(
        f"Forwarding {proxy.address} -> {args.target[0]}:{args.target[1]} with {args.delay_ms:g} ms each way; "
        "Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
