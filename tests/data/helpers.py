"""Helpers for the dataset-layer tests: a local HTTP server and toy archives (no network)."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature fixed by the base class
        pass

    def do_GET(self) -> None:  # noqa: N802 - name fixed by the base class
        if self.path.startswith("/truncated/"):
            # Announce more bytes than are sent, then hang up: a connection lost mid-download.
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"0" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


class LocalServer:
    """A static file server on 127.0.0.1 serving ``root``; ``url(name)`` gives a file's address."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def make_tar(path: Path, members: dict[str, bytes], *, prefix: str = "") -> Path:
    """Write a tar.gz whose members are ``prefix + name`` with the given bytes."""
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def toy_splits() -> dict[str, bytes]:
    """A small consistent dataset: 6 entities, 2 relations, 6/2/2 triples (CRLF, like FB15k-237)."""
    train = [
        ("a", "r1", "b"),
        ("b", "r1", "c"),
        ("c", "r2", "d"),
        ("d", "r2", "e"),
        ("e", "r1", "f"),
        ("f", "r2", "a"),
    ]
    valid = [("a", "r2", "c"), ("b", "r2", "d")]
    test = [("c", "r1", "e"), ("d", "r1", "f")]
    return {
        name: "".join(f"{h}\t{r}\t{t}\r\n" for h, r, t in rows).encode()
        for name, rows in (("train.txt", train), ("valid.txt", valid), ("test.txt", test))
    }
