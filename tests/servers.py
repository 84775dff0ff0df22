"""A small HTTP server on 127.0.0.1 (port 0) serving canned responses, for crawler tests."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})


# A handler returning None has written (or withheld) the response itself: hostile-server tests use that
# to stall mid-body, reset the connection or stream bodies without a Content-Length.
Handler = Callable[[BaseHTTPRequestHandler], Reply | None]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hanging up are expected
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalServer:
    """Routes are exact paths (query included) mapped to a Reply or a function returning one."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Handler] = {}
        self.hits: dict[str, int] = {}
        self.request_headers: dict[str, list[dict[str, str]]] = {}
        self.closing = threading.Event()  # set on exit: handlers that stall wait on it
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                server.request_headers.setdefault(self.path, []).append(dict(self.headers.items()))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    reply = Reply(404, b"not found", {"Content-Type": "text/plain"})
                else:
                    reply = route(self) if callable(route) else route
                if reply is None:
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class StallingSmtpSink:
    """An aiosmtpd server on 127.0.0.1 collecting (recipients, raw message) tuples, which can stall once:
    ``stall="ehlo"`` never answers the first EHLO (nothing handed over yet); ``stall="data"`` keeps the
    first message it receives, then never answers its DATA (delivered, but the sender cannot know).
    ``stalled`` is set when the stall begins; ``release`` (set by ``stop``) ends it."""

    def __init__(self, stall: str | None = None) -> None:
        import asyncio

        from aiosmtpd.controller import Controller

        sink = self
        self.messages: list[tuple[list[str], bytes]] = []
        self.stall = stall
        self.stalled = threading.Event()
        self.release = threading.Event()

        async def hold() -> None:
            sink.stalled.set()
            while not sink.release.is_set():
                await asyncio.sleep(0.05)

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]  # noqa: N802
                if sink.stall == "ehlo" and not sink.stalled.is_set():
                    await hold()
                session.host_name = hostname
                return responses

            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
                sink.messages.append((list(envelope.rcpt_tos), envelope.content))
                if sink.stall == "data" and not sink.stalled.is_set():
                    await hold()
                return "250 Message accepted for delivery"

        class LoopbackController(Controller):
            def _trigger_server(self) -> None:
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        self.controller = LoopbackController(Handler(), hostname="127.0.0.1", port=0)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def message_ids(self) -> list[str]:
        from email import message_from_bytes

        return [str(message_from_bytes(raw)["Message-ID"]) for _, raw in self.messages]

    def __enter__(self) -> StallingSmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.controller.stop()
