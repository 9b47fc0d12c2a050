"""A real HTTP server on 127.0.0.1 that misbehaves on request, for download tests.

The download code must survive what real hosts do: connections cut mid-file,
stalls, 5xx bursts, servers that ignore ``Range``, 404s and HTML interstitials.
Instead of mocking urllib, the tests talk to this server over loopback, so the
whole HTTP stack (headers, redirects, sockets, timeouts) is exercised.

Usage::

    with LoopbackServer(folder) as server:
        server.behave("/big.bin", drop_after=1000)
        fetch(server.url("/big.bin"), dest)
        server.requests  # what the client actually asked for
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

INTERSTITIAL = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
    b"<p>Google Drive can't scan this file for viruses.</p>"
    b'<form action="/download"><input type="submit" value="Download anyway"></form></body></html>'
)
_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Behaviour:
    """How the server treats one path; each fault is independent of the others.

    drop_after: send the headers of the whole answer, then only this many body
        bytes and close the connection (``drops`` times; later requests behave).
    drops: how many requests ``drop_after`` cuts.
    status: answer this status (e.g. 404, 403) on every request.
    stall: sleep this many seconds before answering (longer than the client's timeout).
    fail_times: answer 500 this many times, then behave.
    ignore_range: answer 200 with the whole file even to a Range request.
    html: answer 200 with an HTML page (a Google Drive virus-scan interstitial).
    """

    drop_after: int | None = None
    drops: int = 1
    status: int | None = None
    stall: float = 0.0
    fail_times: int = 0
    ignore_range: bool = False
    html: bool = False


class LoopbackServer:
    """ThreadingHTTPServer on an ephemeral loopback port, serving files from ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.behaviours: dict[str, Behaviour] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="loopback-http", daemon=True
        )

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Wake stalled handlers, stop serving, close the socket."""
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    @property
    def port(self) -> int:
        """The ephemeral port the server listens on."""
        return self.httpd.server_address[1]

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (e.g. ``/images_001.tar.gz``)."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add(self, name: str, data: bytes) -> Path:
        """Write ``data`` as a served file and return its path."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def behave(self, path: str, **faults: Any) -> Behaviour:
        """Set how ``path`` misbehaves (see Behaviour); replaces earlier settings."""
        behaviour = Behaviour(**faults)
        with self.lock:
            self.behaviours["/" + path.lstrip("/")] = behaviour
        return behaviour

    def log(self, path: str) -> list[dict[str, Any]]:
        """The requests made for ``path``: method, Range header and the status answered."""
        wanted = "/" + path.lstrip("/")
        with self.lock:
            return [entry for entry in self.requests if entry["path"] == wanted]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; the request log is kept in LoopbackServer.requests."""

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        with owner.lock:
            behaviour = owner.behaviours.get(path, Behaviour())
            fail = behaviour.fail_times > 0
            if fail:
                behaviour.fail_times -= 1
            drop = behaviour.drop_after
            behaviour.drops -= 1
            if behaviour.drops <= 0:
                behaviour.drop_after = None
        if behaviour.stall and owner.stopping.wait(behaviour.stall):
            return
        if behaviour.status is not None or fail:
            self._error(path, behaviour.status or 500)
            return
        if behaviour.html:
            self._send(path, 200, {"Content-Type": "text/html; charset=utf-8"}, INTERSTITIAL if body else b"")
            return
        file = (owner.root / path.lstrip("/")).resolve()
        if not file.is_file() or not file.is_relative_to(owner.root.resolve()):
            self._error(path, 404)
            return
        size = file.stat().st_size
        start, end, status = 0, size - 1, 200
        requested = self.headers.get("Range")
        match = _RANGE_RE.fullmatch(requested or "")
        if match and not behaviour.ignore_range:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self._send(path, 416, {"Content-Range": f"bytes */{size}"}, b"")
                return
            status = 206
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        count = end - start + 1
        self._record(path, status)
        self._head(status, headers, count)
        if not body:
            return
        with open(file, "rb") as handle:
            if drop is not None and drop < count:
                handle.seek(start)
                self.wfile.write(handle.read(drop))
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            with contextlib.suppress(ConnectionError):
                self.connection.sendfile(handle, offset=start, count=count)

    def _record(self, path: str, status: int) -> None:
        with self.server.owner.lock:
            self.server.owner.requests.append(
                {"method": self.command, "path": path, "range": self.headers.get("Range"), "status": status}
            )

    def _head(self, status: int, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, path: str, status: int, headers: dict[str, str], payload: bytes) -> None:
        self._record(path, status)
        self._head(status, headers, len(payload))
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _error(self, path: str, status: int) -> None:
        text = f"{status} {HTTPStatus(status).phrase}\n".encode()
        self._send(path, status, {"Content-Type": "text/plain"}, text)
