"""What every provider emulator shares: lifecycle, fault injection, dead targets, the ledger and the admin API.

A request reaches an emulator in this order: the admin API (`/_emulator/...`) is answered first and never
faulted; a delivery request (the provider's send endpoint) then gets its fault decision (delay, reset, no
answer, 5xx, 429, auth error) and, if none, the provider's own validation in `serve`. Only delivery answers
are counted in the ledger.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from dev.emulators import admin
from dev.emulators.admin import ADMIN_PREFIX, AdminHandler, BadAdminRequest
from dev.emulators.faults import FaultDecision, FaultKind, Faults, FaultSettings
from dev.emulators.ledger import Ledger, answer_key
from dev.emulators.server import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_STREAM_WINDOW,
    EmulatorRequest,
    EmulatorResponse,
    EmulatorServer,
)
from dev.emulators.tls import CertificateAuthority


@dataclass(frozen=True)
class DeadMark:
    """Why and since when a token (subscription, hook) is dead."""

    reason: str
    timestamp_ms: int


class Emulator(abc.ABC):
    """Base class of the four emulators. Use as a context manager, or start()/stop()."""

    kind: ClassVar[str]
    # The reasons `mark_dead` accepts; the first is the default.
    dead_reasons: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authority: CertificateAuthority | None = None,
        faults: FaultSettings | None = None,
        seed: int = 0,
        max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        ledger_keep: int | None = None,
    ) -> None:
        self.authority = authority or CertificateAuthority()
        self.faults = Faults(faults, seed)
        self.ledger = Ledger(self.kind, keep=ledger_keep)
        self._dead: dict[str, DeadMark] = {}
        self._lock = threading.RLock()
        self._admin_routes: dict[tuple[str, str], AdminHandler] = {
            ("GET", "health"): self._admin_health,
            ("GET", "ledger"): self._admin_ledger,
            ("GET", "counts"): self._admin_counts,
            ("POST", "reset"): self._admin_reset,
            ("GET", "faults"): self._admin_faults,
            ("POST", "faults"): self._admin_set_faults,
            ("POST", "dead"): self._admin_dead,
            **self.admin_routes(),
        }
        self.server = EmulatorServer(
            self._handle,
            self.authority.server_context(),
            host=host,
            port=port,
            max_concurrent_streams=max_concurrent_streams,
            stream_window=stream_window,
            connection_window=connection_window,
            name=self.kind,
        )

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; returns self once listening."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving (GOAWAY, close connections, join the thread)."""
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self.server.port

    @property
    def url(self) -> str:
        """The base URL, e.g. https://127.0.0.1:51234 (no trailing slash)."""
        return f"https://{self.server.host}:{self.server.port}"

    @property
    def ca_path(self) -> str:
        """The PEM file of the CA that signed the server certificate."""
        return self.authority.ca_path

    def client_context(self, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext:
        """A client SSL context that trusts this emulator's CA."""
        return self.authority.client_context(alpn)

    # -- dead targets and reset --------------------------------------------------------------------------

    def mark_dead(self, tokens: list[str], *, timestamp_ms: int | None = None, reason: str | None = None) -> None:
        """From now on, deliveries to `tokens` get the provider's dead answer with `reason` and timestamp."""
        chosen = reason or self.dead_reasons[0]
        if chosen not in self.dead_reasons:
            raise ValueError(f"reason must be one of {list(self.dead_reasons)}")
        mark = DeadMark(chosen, int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        with self._lock:
            for token in tokens:
                self._dead[self.dead_key(token)] = mark

    def revive(self, tokens: list[str]) -> None:
        """Undo mark_dead for `tokens`."""
        with self._lock:
            for token in tokens:
                self._dead.pop(self.dead_key(token), None)

    def dead_mark(self, token: str) -> DeadMark | None:
        """The dead mark of a token, if any."""
        return self._dead.get(self.dead_key(token))

    def dead_key(self, token: str) -> str:
        """How a token given to mark_dead is stored (Web Push also accepts full endpoint URLs)."""
        return token

    def reset(self, *, ledger: bool = True, faults: bool = True, dead: bool = True) -> None:
        """Forget the ledger, restore the constructor's fault knobs and seed, revive dead tokens.

        Credentials (keys, service accounts, subscriptions, hooks) survive: apps are configured with them.
        """
        if ledger:
            self.ledger.reset()
        if faults:
            self.faults.reset()
        if dead:
            with self._lock:
                self._dead.clear()

    # -- what each provider supplies ---------------------------------------------------------------------

    @abc.abstractmethod
    def is_delivery(self, request: EmulatorRequest) -> bool:
        """Whether the request is for the provider's send endpoint (the faulted, counted one)."""

    @abc.abstractmethod
    def serve(self, request: EmulatorRequest) -> EmulatorResponse:
        """Answer a non-admin request as the provider would (validation, dead tokens, ledger record)."""

    @abc.abstractmethod
    def fault_response(self, decision: FaultDecision, request: EmulatorRequest) -> EmulatorResponse:
        """The provider's answer for an injected 500 / 503 / 429 / auth error."""

    def fault_key(self, request: EmulatorRequest) -> str:
        """What a request is, for keyed fault decisions: a resend of the same request has the same key."""
        return request.path + "|" + hashlib.sha256(request.body).hexdigest()

    def admin_routes(self) -> dict[tuple[str, str], AdminHandler]:
        """Provider-specific admin endpoints: (method, name under /_emulator/) -> handler."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What a client needs to know about this emulator (its part of the CLI's JSON line)."""
        return {"url": self.url}

    # -- request path ------------------------------------------------------------------------------------

    async def _handle(self, request: EmulatorRequest) -> EmulatorResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        if not self.is_delivery(request):
            return self.serve(request)
        decision = self.faults.decide(self.fault_key(request))
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        kind = decision.kind
        if kind is FaultKind.NONE:
            response = self.serve(request)
        elif kind is FaultKind.HANG:
            self.ledger.count("timeout")
            # Never set: the stream reset, the client's disconnect or stop() cancels this wait.
            await asyncio.get_running_loop().create_future()
            raise AssertionError("unreachable: a hanging request is only ever cancelled")
        elif kind is FaultKind.RESET:
            response = EmulatorResponse.connection_reset()
        else:
            response = self.fault_response(decision, request)
        self.ledger.count(answer_key(response.status, response.reason))
        return response

    def _admin(self, request: EmulatorRequest) -> EmulatorResponse:
        name = request.path[len(ADMIN_PREFIX) :].strip("/")
        route = self._admin_routes.get((request.method, name))
        if route is None:
            if any(known == name for _, known in self._admin_routes):
                return EmulatorResponse.json(405, {"error": f"method {request.method} not allowed here"})
            return EmulatorResponse.json(404, {"error": f"no admin endpoint {request.path}"})
        try:
            return route(request, admin.json_object(request))
        except BadAdminRequest as exc:
            return EmulatorResponse.json(400, {"error": str(exc)})

    def _admin_health(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        return EmulatorResponse.json(200, {"emulator": self.kind, "url": self.url, "ca_path": self.ca_path})

    def _admin_ledger(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        query = request.query_params()
        try:
            since = int(query.get("since", ["0"])[0])
            limit = int(query["limit"][0]) if "limit" in query else None
        except ValueError as exc:
            raise BadAdminRequest("since and limit must be integers") from exc
        if since < 0 or (limit is not None and limit < 0):
            raise BadAdminRequest("since and limit must not be negative")
        return EmulatorResponse.json(200, self.ledger.to_json(since, limit))

    def _admin_counts(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        return EmulatorResponse.json(
            200,
            {
                "counts": self.ledger.counts(),
                "by_status": self.ledger.counts_by_status(),
                "entries": len(self.ledger),
                "next": self.ledger.next_index,
            },
        )

    def _admin_reset(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        parts = {name: admin.flag(body, name, True) for name in ("ledger", "faults", "dead")}
        self.reset(**parts)
        return EmulatorResponse.json(200, {"reset": [name for name, chosen in parts.items() if chosen]})

    def _faults_json(self) -> dict[str, Any]:
        return {"settings": self.faults.settings.to_json(), "seed": self.faults.seed, "keyed": self.faults.keyed}

    def _admin_faults(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        return EmulatorResponse.json(200, self._faults_json())

    def _admin_set_faults(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        seed = admin.optional_int(body, "seed")
        base = FaultSettings() if admin.flag(body, "defaults", False) else self.faults.settings
        keyed = admin.flag(body, "keyed", self.faults.keyed)
        knobs = {key: value for key, value in body.items() if key not in ("seed", "defaults", "keyed")}
        try:
            settings = base.changed(knobs)
        except ValueError as exc:
            raise BadAdminRequest(str(exc)) from exc
        self.faults.configure(settings, seed=seed, keyed=keyed)
        return EmulatorResponse.json(200, self._faults_json())

    def _admin_dead(self, request: EmulatorRequest, body: dict[str, Any]) -> EmulatorResponse:
        tokens = admin.text_list(body, "tokens")
        reason = admin.optional_text(body, "reason") or self.dead_reasons[0]
        if reason not in self.dead_reasons:
            raise BadAdminRequest(f"reason must be one of {list(self.dead_reasons)}")
        timestamp_ms = admin.optional_int(body, "timestamp_ms")
        if timestamp_ms is None:
            timestamp_ms = int(time.time() * 1000)
        self.mark_dead(tokens, timestamp_ms=timestamp_ms, reason=reason)
        return EmulatorResponse.json(200, {"dead": tokens, "reason": reason, "timestamp_ms": timestamp_ms})


class UrlTargetEmulator(Emulator):
    """A provider whose targets are URLs under one path (Web Push subscriptions, webhooks): deliveries
    are requests under it, a dead target may be named by id or full URL, and an injected 429 or 503
    carries Retry-After."""

    delivery_path: ClassVar[str]
    fault_reasons: ClassVar[dict[FaultKind, str]]
    errors: ClassVar[dict[str, tuple[int, str]]]

    def dead_key(self, token: str) -> str:
        """Target ids, or their full URLs."""
        return token.rsplit(self.delivery_path, 1)[-1] if self.delivery_path in token else token

    def is_delivery(self, request: EmulatorRequest) -> bool:
        """Requests to target URLs."""
        return request.path.startswith(self.delivery_path)

    def fault_response(self, decision: FaultDecision, request: EmulatorRequest) -> EmulatorResponse:
        """The service's answer for an injected fault (Retry-After on 429 and 503)."""
        reason = self.fault_reasons[decision.kind]
        headers = []
        if self.errors[reason][0] in (429, 503):
            headers.append(("retry-after", str(decision.retry_after_s)))
        return self._error(reason, headers)

    @abc.abstractmethod
    def _error(self, reason: str, headers: list[tuple[str, str]] | None = None) -> EmulatorResponse:
        """The service's error answer for reason (a key of errors)."""
