"""A local HTTP server that speaks the small part of the Hugging Face Hub API that downloads use.

Serves `/{repo}/resolve/{rev}/{file}` (HEAD and GET, with the hub's metadata headers and 404 error
codes) and `/api/models/{repo}/tree/{rev}`, on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlparse

COMMIT = "a" * 40


class _Handler(BaseHTTPRequestHandler):
    repos: ClassVar[dict[str, dict[str, bytes]]] = {}
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _not_found(self, code: str) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _route(self, with_body: bool) -> None:
        path = urlparse(self.path).path
        self.requests.append(f"{self.command} {path}")
        if path.startswith("/api/models/"):
            repo, _, _rev = path.removeprefix("/api/models/").partition("/tree/")
            if repo not in self.repos:
                return self._not_found("RepoNotFound")
            listing = [
                {
                    "type": "file",
                    "path": name,
                    "size": len(data),
                    "oid": hashlib.sha1(data).hexdigest(),
                }
                for name, data in self.repos[repo].items()
            ]
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._not_found("EntryNotFound")
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        if repo not in self.repos:
            return self._not_found("RepoNotFound")
        data = self.repos[repo].get(filename)
        if data is None:
            return self._not_found("EntryNotFound")
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)
        return None

    def do_HEAD(self) -> None:
        self._route(with_body=False)

    def do_GET(self) -> None:
        self._route(with_body=True)


@contextmanager
def fake_hub(repos: dict[str, dict[str, bytes]]) -> Iterator[tuple[str, list[str]]]:
    """Yield the endpoint URL and the list of requests the server received."""
    handler = type("Handler", (_Handler,), {"repos": repos, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def populate_cache(cache: Path, repo: str, files: dict[str, bytes | Path]) -> None:
    """Lay files out the way huggingface_hub does: blobs, a snapshot of symlinks, refs/main.
    A Path stands for a big file already on disk (a model): its blob links to it."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    for name, data in files.items():
        blob = root / "blobs" / f"blob-{abs(hash(name))}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            blob.symlink_to(data)
        else:
            blob.write_bytes(data)
        link = root / "snapshots" / COMMIT / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
