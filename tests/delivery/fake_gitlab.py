"""A fake GitLab notes API (list with pagination, create, edit) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "glpat-fake-project-token"


class FakeGitLab:
    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                status, body = fake.serve(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        url = urlsplit(h.path)
        with self.lock:
            self.requests.append((h.command, url.path))
            if h.headers.get("PRIVATE-TOKEN") != TOKEN:
                return 401, {"message": "401 Unauthorized"}
            match = re.match(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?$", url.path)
            if not match:
                return 404, {"message": "404 Not Found"}
            raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            if h.command == "GET":
                query = parse_qs(url.query)
                per_page, page = int(query["per_page"][0]), int(query["page"][0])
                mine = [n for n in self.notes if n["mr"] == match.group(2)]
                return 200, mine[(page - 1) * per_page:page * per_page]
            if h.command == "POST":
                note = {"id": 1000 + len(self.notes), "mr": match.group(2), "body": json.loads(raw)["body"]}
                self.notes.append(note)
                return 201, note
            for note in self.notes:
                if str(note["id"]) == match.group(3):
                    note["body"] = json.loads(raw)["body"]
                    return 200, note
            return 404, {"message": "404 Note Not Found"}
