"""A fast fake LLM provider (OpenAI and Anthropic dialects) for the tests and the benchmark.

Pure stdlib: one asyncio loop with a raw Protocol, HTTP/1.1 keep-alive, request bodies
with Content-Length or chunked. Answers are built in memory and written in one call
unless a delay or a fault asks otherwise, so a single process serves many thousands of
requests a second and never becomes the benchmark's bottleneck.

    fp = FakeProvider(host="127.0.0.1", port=0).start()   # background thread, own loop
    fp.base_url, fp.requests, fp.disconnects, fp.wait_for_disconnects(1), fp.stop()
    fp.max_in_flight: the most answers it was writing at once since clear()

    python -m testing.fake_provider --port 9100 [--processes 2]   # for the benchmark

Endpoints: POST /v1/chat/completions, /v1/responses, /v1/messages (JSON, or SSE when the
body says "stream": true), GET /v1/models; anything else 404 in the provider's shape.
A POST body that is not a JSON object gets a 400 invalid_request_error, as real providers do.

Controls (request headers, all optional): x-fake-chunks (3), x-fake-chunk-delay-ms (0,
before each text delta), x-fake-status (error answer; 429 adds retry-after: 7),
x-fake-scenario (stall-headers, stall-mid, reset-mid, close-mid, big, gzip, echo),
x-fake-size (for big; 1 MiB), x-fake-prompt-tokens (11), x-fake-completion-tokens
(= chunks), x-fake-cache-read (0), x-fake-cache-write (0).

Per provider (several fakes as several upstreams): FakeProvider(defaults={"x-fake-status":
"503"}) answers every request 503 (GET /v1/models too), defaults={"x-fake-chunk-delay-ms":
"300"} is a slow one, models=("gpt-a", "gpt-b") is what its GET /v1/models lists; a
refused connection is simply a free port nobody listens on. GET /v1/files answers an
empty list (a GET the gateway forwards, for query-string tests).

This module is the provider's public face (FakeProvider, Received, the process entry
point); the rest reads in layers: fake_http.py (HTTP/1.1 on a raw Protocol, playing
answers), fake_answers.py (routes and the misbehaving scenarios), fake_dialects.py
(the OpenAI and Anthropic bodies and event streams).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading

from testing.fake_dialects import DEFAULT_MODELS
from testing.fake_http import Connection, Received

__all__ = ["FakeProvider", "Received", "main"]


class FakeProvider:
    """The fake provider, served from a background thread with its own asyncio loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record: bool = True,
        reuse_port: bool = False,
        defaults: dict[str, str] | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
    ):
        # defaults: control headers applied to every request that does not send its own,
        # e.g. {"x-fake-status": "503"} for an upstream that always fails, or
        # {"x-fake-chunk-delay-ms": "500"} for a slow one. models: what GET /v1/models lists.
        self.defaults = {k.lower(): v for k, v in (defaults or {}).items()}
        self.models = tuple(models)
        self.host = host
        self.port = port
        self.record = record
        self.reuse_port = reuse_port
        self.requests: list[Received] = []
        self._disconnects = 0
        self._counter = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._cond = threading.Condition()
        self._connections: set[Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def disconnects(self) -> int:
        return self._disconnects

    def clear(self) -> None:
        with self._cond:
            self.requests.clear()
            self._disconnects = 0
            self.max_in_flight = self.in_flight

    def wait_for_disconnects(self, n: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._disconnects >= n, timeout=timeout)

    def _count_disconnect(self) -> None:
        with self._cond:
            self._disconnects += 1
            self._cond.notify_all()

    def _enter(self) -> None:
        # Only the provider's own loop thread calls _enter and _leave.
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        self.in_flight -= 1

    def _next_number(self) -> int:
        self._counter += 1
        return self._counter

    async def serve(self) -> None:
        """Open the listening socket on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: Connection(self),
            self.host,
            self.port,
            backlog=4096,
            reuse_port=self.reuse_port or None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> FakeProvider:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.serve())
            except BaseException as exc:  # handed to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def shutdown() -> None:
            self._server.close()
            for conn in list(self._connections):
                if conn.task is not None:
                    conn.task.cancel()
                conn.transport.abort()
            loop.call_later(0.01, loop.stop)

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _serve_forever(host: str, port: int, reuse_port: bool) -> None:
    async def main() -> None:
        provider = FakeProvider(host, port, record=False, reuse_port=reuse_port)
        await provider.serve()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"fake provider pid {os.getpid()} listening on {provider.base_url}", flush=True)
        await stop.wait()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--processes", type=int, default=1, help="processes sharing the port through SO_REUSEPORT"
    )
    args = parser.parse_args(argv)
    if args.processes <= 1:
        _serve_forever(args.host, args.port, False)
        return
    children: list[int] = []

    def forward(signum, _frame):
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    # Signals wait until every child exists and the parent forwards them, so a stop
    # that comes early can neither kill the parent alone nor reach a half-made child.
    stops = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:
            try:
                for sig in stops:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
                _serve_forever(args.host, args.port, True)
            finally:
                os._exit(0)
        children.append(pid)
    for sig in stops:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    for pid in children:
        os.waitpid(pid, 0)
    sys.exit(0)


if __name__ == "__main__":
    main()
