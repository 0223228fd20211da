"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests: real HTTP, canned replies.

    with ScriptedServer(['{"reasoning": "r", "suggestion": {}}']) as server:
        LLMClient("openai/scripted", api_base=server.url).complete(messages)
        server.requests[0]["messages"]      # every request body, decoded, in arrival order
        server.headers[0]["authorization"]  # and its HTTP headers (names lower-cased)

A reply is a string (the assistant message), a Failure (answered with that HTTP status and an OpenAI-style
error body), or produced by a callable(request_dict) -> str | Failure. When a list of replies runs out the
server answers 500 "no scripted reply left", so a test that calls more often than it meant to fails loudly.
Token counts in `usage` are whitespace-separated words, deterministic and easy to assert.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence, Union

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
MODEL_PATHS = ("/v1/models", "/models")


@dataclass(frozen=True)
class Failure:
    status: int
    message: str = "scripted failure"


Reply = Union[str, Failure]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # a client that went away (a test interrupting tracec mid-call) is expected, not a server bug
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def count_words(text: object) -> int:
    return len(str(text or "").split())


class ScriptedServer:
    def __init__(self, replies: Sequence[Reply] | Callable[[dict], Reply], *, model_id: str = "scripted"):
        self._script = replies if callable(replies) else list(replies)
        self._next = 0
        self._lock = threading.Lock()
        self.model_id = model_id
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ScriptedServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "ScriptedServer":
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll interval: stop() (shutdown) waits for the loop to notice, once per test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="scripted-llm",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- replies ----------------------------------------------------------------------------------------
    def _reply_for(self, request: dict, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
            if callable(self._script):
                script = self._script
            elif self._next < len(self._script):
                reply = self._script[self._next]
                self._next += 1
                return reply
            else:
                return Failure(500, f"no scripted reply left (request {len(self.requests)})")
        return script(request)   # outside the lock: a callable may be slow or block on purpose


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):   # keep pytest output clean
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "scripted_error", "code": status}})

        def do_GET(self):
            if self.path.rstrip("/") in MODEL_PATHS:
                self._send(200, {"object": "list",
                                 "data": [{"id": server.model_id, "object": "model", "owned_by": "tests"}]})
            else:
                self._error(404, f"no route GET {self.path}")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?")[0].rstrip("/") not in CHAT_PATHS:
                self._error(404, f"no route POST {self.path}")
                return
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                self._error(400, "request body is not JSON")
                return
            try:
                reply = server._reply_for(request, {k.lower(): v for k, v in self.headers.items()})
            except Exception as exc:   # a broken test callable: show it in the client's error
                reply = Failure(500, f"scripted reply raised {type(exc).__name__}: {exc}")
            if isinstance(reply, Failure):
                self._error(reply.status, reply.message)
                return
            prompt_tokens = sum(count_words(message.get("content")) for message in request.get("messages", []))
            completion_tokens = count_words(reply)
            self._send(200, {
                "id": f"chatcmpl-scripted-{len(server.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", server.model_id),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            })

    return Handler
