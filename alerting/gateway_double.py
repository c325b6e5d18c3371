"""A local SMS gateway double: a real HTTP server on loopback that records instead of sending.

Tests, ``radmon demo`` and benchmarks point SMS channels at it so nothing reaches a phone. It
speaks the ``http`` contract (``POST /send`` with ``{"to", "text", "id"}``), takes webhooks
(``POST /webhook``) and, on their own paths, answers shaped like eSMS, SpeedSMS and Twilio::

    double = GatewayDouble().start()        # port 0: an ephemeral port
    double.send_url                          # http://127.0.0.1:PORT/send
    double.esms_base_url, double.speedsms_url, double.twilio_base_url
    double.fail(503, times=2)                # then recovers by itself
    double.wait_for(1, timeout=2)
    double.stop()

It deduplicates on the idempotency key (``id``; eSMS's ``RequestId``; a webhook's
``Idempotency-Key`` header): a repeated key is answered as success (eSMS: code 124) but counted
in ``duplicates``, not delivered again, so a test can prove that a retry never reaches the
phone twice. SpeedSMS and Twilio take no key, so
there every accepted request is a delivery, as with the real services.

Faults queue up and apply to the next requests in order, whatever the route: ``fail`` and
``respond`` answer without delivering; ``reset`` closes the connection without an answer (and
without delivering); ``hang`` waits, then handles the request normally -- like a slow gateway
that accepts the message after the client gave up.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

_TWILIO_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[0-9]{6,15}$")


class GatewayDouble:
    """An SMS gateway on 127.0.0.1 with controllable faults; see the module docstring."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, log_path: str | Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.log_path = Path(log_path) if log_path else None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()  # interrupts hangs (recover, stop)
        self._faults: list[list[Any]] = []  # [kind, arg, body, remaining]
        self._delivered: list[dict[str, Any]] = []
        self._calls: list[dict[str, Any]] = []
        self._seen_ids: set[str] = set()
        self._requests = 0
        self._duplicates = 0
        self._open: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> GatewayDouble:
        server = _Server((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.double = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server, self._stopping = server, False
        self._wake.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="gateway-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections (clients see them closed)."""
        if self._server is None:
            return
        self._stopping = True
        self._wake.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_now = list(self._open)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> GatewayDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def send_url(self) -> str:
        """The ``http`` provider's ``url`` option."""
        return self.url + "/send"

    @property
    def webhook_url(self) -> str:
        """Accepts any JSON object; deduplicates on the ``Idempotency-Key`` header."""
        return self.url + "/webhook"

    @property
    def esms_base_url(self) -> str:
        return self.url + "/esms/MainService.svc/json/"

    @property
    def speedsms_url(self) -> str:
        return self.url + "/speedsms/index.php/sms/send"

    @property
    def twilio_base_url(self) -> str:
        return self.url + "/twilio"

    # -- faults ------------------------------------------------------------------------------

    def fail(self, status: int, times: int = 1, body: dict[str, Any] | None = None) -> None:
        """Answer the next *times* requests with *status* (and a small JSON error body)."""
        self.respond(status, body or {"error": f"simulated failure {status}"}, times)

    def respond(self, status: int, body: dict[str, Any], times: int = 1) -> None:
        """Answer the next *times* requests with *status* and *body* (a provider's error)."""
        self._add("answer", status, body, times)

    def hang(self, seconds: float, times: int = 1) -> None:
        """Wait *seconds* before handling each of the next *times* requests."""
        self._add("hang", seconds, None, times)

    def reset(self, times: int = 1) -> None:
        """Close the next *times* connections abruptly (RST), answering nothing."""
        self._add("reset", None, None, times)

    def recover(self) -> None:
        """Forget pending faults and cut short any hang in progress."""
        with self._lock:
            self._faults.clear()
        self._wake.set()
        self._wake = threading.Event()

    def _add(self, kind: str, arg: Any, body: Any, times: int) -> None:
        with self._lock:
            self._faults.append([kind, arg, body, times])

    def _next_fault(self) -> tuple[str, Any, Any] | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault[3] -= 1
            if fault[3] <= 0:
                self._faults.pop(0)
            return fault[0], fault[1], fault[2]

    # -- what happened -----------------------------------------------------------------------

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """Messages that reached "the phone": provider, to, text, id, received_at."""
        with self._lock:
            return list(self._delivered)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every request received, faults included: provider, path, headers, body, raw."""
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    @property
    def duplicates(self) -> int:
        with self._lock:
            return self._duplicates

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Block until *n* messages are delivered; False if *timeout* passes first."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._delivered) >= n, timeout)

    def _deliver(self, provider: str, to: str, text: str, key: str | None) -> bool:
        """Record one message; False (and a duplicate counted) when *key* was seen before."""
        record = {"provider": provider, "to": to, "text": text, "id": key}
        record["received_at"] = time.time()
        with self._changed:
            if key is not None and key in self._seen_ids:
                self._duplicates += 1
                return False
            if key is not None:
                self._seen_ids.add(key)
            self._delivered.append(record)
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as log:
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._changed.notify_all()
        return True

    # -- routes: each returns (status, JSON body) --------------------------------------------

    def _route(self, path: str, raw: bytes) -> tuple[str, Any]:
        if path.endswith("/SendMultipleMessage_V4_post_json/") or path.endswith(
            "/SendMultipleMessage_V4_post_json"
        ):
            return "esms", _json(raw)
        if path.endswith("/index.php/sms/send"):
            return "speedsms", _json(raw)
        if _TWILIO_PATH.search(path):
            form = parse_qs(raw.decode("utf-8", "replace"))
            return "twilio", {k: v[0] for k, v in form.items()}
        if path == "/send":
            return "http", _json(raw)
        if path.startswith("/webhook"):
            return "webhook", _json(raw)
        return "unknown", None

    def _handle(self, provider: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        if provider == "unknown":
            return 404, {"error": "no such route"}
        if not isinstance(body, dict):
            return 400, {"error": "expected a JSON object"}
        return getattr(self, f"_{provider}")(body, headers)

    def _http(self, body: dict, headers: dict[str, str]) -> tuple[int, Any]:
        to, text, key = body.get("to"), body.get("text"), body.get("id")
        if not all(isinstance(v, str) and v for v in (to, text, key)):
            return 400, {"error": "to, text and id must be non-empty strings"}
        fresh = self._deliver("http", to, text, key)
        return 200, {"id": key, "status": "accepted" if fresh else "duplicate"}

    def _webhook(self, body: dict, headers: dict[str, str]) -> tuple[int, Any]:
        key = headers.get("idempotency-key") or None
        fresh = self._deliver("webhook", "", str(body.get("text", "")), key)
        return 200, {"status": "accepted" if fresh else "duplicate"}

    def _esms(self, body: dict, headers: dict[str, str]) -> tuple[int, Any]:
        if not body.get("ApiKey") or not body.get("SecretKey"):
            return 200, {"CodeResult": "101", "ErrorMessage": "Authorize Failed"}
        if not str(body.get("Phone", "")).isdigit():
            return 200, {"CodeResult": "108", "ErrorMessage": "Phone number is invalid"}
        key = body.get("RequestId") or None
        if not self._deliver("esms", body["Phone"], str(body.get("Content", "")), key):
            return 200, {"CodeResult": "124", "ErrorMessage": "Request exist 1", "SendStatus": "5"}
        return 200, {"CodeResult": "100", "CountRegenerate": 0, "SMSID": uuid.uuid4().hex}

    def _speedsms(self, body: dict, headers: dict[str, str]) -> tuple[int, Any]:
        if not _basic_user(headers):
            return 401, {"status": "error", "code": "401", "message": "Unauthorized"}
        phones = body.get("to")
        if not isinstance(phones, list) or not phones:
            return 200, {"status": "error", "code": "101", "message": "Invalid parameters"}
        for phone in phones:
            self._deliver("speedsms", str(phone), str(body.get("content", "")), None)
        with self._lock:
            tran_id = len(self._calls)
        data = {"tranId": tran_id, "totalSMS": len(phones), "totalPrice": 0, "invalidPhone": []}
        return 200, {"status": "success", "code": "00", "data": data}

    def _twilio(self, body: dict, headers: dict[str, str]) -> tuple[int, Any]:
        if not _basic_user(headers):
            message = "Authentication Error - invalid username"
            return 401, {"code": 20003, "message": message, "status": 401}
        to = body.get("To", "")
        if not _E164.match(to):
            message = f"The 'To' number {to} is not a valid phone number."
            return 400, {"code": 21211, "message": message, "status": 400}
        self._deliver("twilio", to, body.get("Body", ""), None)
        sid = "SM" + uuid.uuid4().hex
        return 201, {"sid": sid, "status": "queued", "to": to, "body": body.get("Body", "")}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def _basic_user(headers: dict[str, str]) -> str:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(value).decode("utf-8").partition(":")[0]
    except ValueError:
        return ""


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default 5 resets connections under a burst


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway and httpx's pool expect
    # headers and body go out in two writes: without this, Nagle holds the body for the
    # client's delayed ACK (~40 ms a request on a kept-alive connection)
    disable_nagle_algorithm = True
    server: ThreadingHTTPServer

    def setup(self) -> None:
        super().setup()
        with self.double._lock:
            self.double._open.add(self.connection)

    def finish(self) -> None:
        with self.double._lock:
            self.double._open.discard(self.connection)
        super().finish()

    @property
    def double(self) -> GatewayDouble:
        return self.server.double  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the demo read ``delivered``, not an access log."""

    def do_POST(self) -> None:
        double = self.double
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        provider, body = double._route(self.path, raw)
        with double._lock:
            double._requests += 1
            double._calls.append(
                {
                    "provider": provider,
                    "path": self.path,
                    "headers": headers,
                    "body": body,
                    "raw": raw,
                }
            )
        fault = double._next_fault()
        if fault is not None:
            kind, arg, answer = fault
            if kind == "reset":
                self._reset()
                return
            if kind == "answer":
                self._answer(arg, answer)
                return
            double._wake.wait(arg)  # hang, then carry on
            if double._stopping:
                self._reset()
                return
        self._answer(*double._handle(provider, body, headers))

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (e.g. after a hang)
            self.close_connection = True

    def _reset(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # with linger 0: RST, no FIN, no answer


def main() -> None:
    """``python -m alerting.gateway_double [port] [log.jsonl]``: serve until Ctrl-C."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    double = GatewayDouble(port=port, log_path=sys.argv[2] if len(sys.argv) > 2 else None)
    double.start()
    print(f"SMS gateway double on {double.send_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        double.stop()


if __name__ == "__main__":
    main()
