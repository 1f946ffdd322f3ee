"""A static file server on 127.0.0.1 standing in for raw.githubusercontent.com (or a mirror) in tests.

It serves a folder (the release's tree) over real HTTP with ``Range: bytes=N-`` support (206 and
``Content-Range``, 416 past the end), and can be told to misbehave for one path:

* ``replace(path, data)``: serve other bytes (a flipped byte, a truncated file, another file);
* ``drop(path, after, times=1)``: announce the full ``Content-Length``, send ``after`` bytes, close the
  connection (a dropped download);
* ``forget(path)``: answer 404;
* ``fail(path, status, times=1)``: answer ``status`` (e.g. 503) the next ``times`` requests;
* ``ignore_range = True``: answer 200 with the whole file even to a Range request, as some proxies do.

``requests`` records ``(method, path, Range header or None, bytes sent)`` for every request, so a test
can count downloads and check that a resume asked only for the rest.
"""
from __future__ import annotations

import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a client that hung up is normal here
            super().handle_error(request, client_address)


class ReleaseServer:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.requests: list[tuple[str, str, str | None, int]] = []
        self._replaced: dict[str, bytes] = {}
        self._drops: dict[str, list[int]] = {}
        self._gone: set[str] = set()
        self._failures: dict[str, list[int]] = {}
        self.ignore_range = False
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server._serve(self)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    # -- misbehaviour

    def replace(self, path: str, data: bytes) -> None:
        self._replaced[path.strip("/")] = bytes(data)

    def drop(self, path: str, after: int, times: int = 1) -> None:
        self._drops.setdefault(path.strip("/"), []).extend([after] * times)

    def forget(self, path: str) -> None:
        self._gone.add(path.strip("/"))

    def fail(self, path: str, status: int, times: int = 1) -> None:
        self._failures.setdefault(path.strip("/"), []).extend([status] * times)

    def reset(self) -> None:
        self._replaced.clear()
        self._drops.clear()
        self._gone.clear()
        self._failures.clear()
        self.ignore_range = False
        self.requests.clear()

    def gets(self, suffix: str) -> list[tuple[str, str, str | None, int]]:
        """The GET requests whose path ends with ``suffix``."""
        return [r for r in self.requests if r[0] == "GET" and r[1].endswith(suffix)]

    # -- serving

    def _content(self, path: str) -> bytes | None:
        if path in self._gone:
            return None
        if path in self._replaced:
            return self._replaced[path]
        file = (self.root / path).resolve()
        if self.root.resolve() not in file.parents or not file.is_file():
            return None
        return file.read_bytes()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(h.path).path).strip("/")
        wanted = h.headers.get("Range")
        data = self._content(path)
        with self._lock:
            failures = self._failures.get(path)
            status = failures.pop(0) if failures else (404 if data is None else None)
        if status is not None:
            self._log(h.command, path, wanted, 0)
            body = f"{status}: error".encode()
            h.send_response(status)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        start = 0
        m = None if self.ignore_range else re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self._log(h.command, path, wanted, 0)
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        body = data[start:]
        with self._lock:
            drops = self._drops.get(path)
            cut = drops.pop(0) if drops else None
        h.send_response(206 if m else 200)
        if m:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        sent = body if cut is None else body[:cut]
        # logged before the bytes go out: a client that has read them all may look at `requests` at once
        self._log(h.command, path, wanted, len(sent))
        try:
            h.wfile.write(sent)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        if cut is not None:
            h.close_connection = True
            h.connection.shutdown(2)

    def _log(self, method, path, wanted, sent) -> None:
        with self._lock:
            self.requests.append((method, path, wanted, sent))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
