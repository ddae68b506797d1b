"""API Gateway HTTP API, locally: route requests, build payload v2.0 events, map handler results back.

The behaviour copied from API Gateway, where handlers can tell the difference:

- Route selection: a route with no path variables, then path variables, then a
  greedy ``{proxy+}`` last; at equal paths a method beats ``ANY``; then
  ``$default``. No match: 404 ``{"message":"Not Found"}``.
- Path and query parameters are URL-decoded; repeated headers and query keys are
  joined with commas; Cookie headers become ``cookies`` and leave ``headers``.
- The body is passed as text only for text/*, application/json, application/xml
  and application/javascript that is valid UTF-8; anything else (forms, binary,
  no content type, or bytes that are not UTF-8) arrives base64-encoded.
- A handler that raises, or returns a malformed response: 500
  ``{"message":"Internal Server Error"}``, as does a throttled invocation
  (reserved concurrency in use). Requests over 10 MB: 413. No execution
  environment free within the queue timeout: 503 ``{"message":"Service
  Unavailable"}``, what an HTTP API answers when its integration times out.

The served stack adds ``/_local/...`` endpoints (metrics, environments) that
are answered here, before routing; they exist only locally.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from dev.local_stack.environments import EnvironmentsBusyError, InvocationError
from dev.local_stack.runtime import FunctionTimeoutError, Invocable, LocalFunction
from dev.local_stack.template import HttpRoute

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload quota
LOCAL_API_ID = "local"
LOCAL_ACCOUNT_ID = "123456789012"

_TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
# Set by the gateway, or meaningless once the response is re-framed by this server.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

_LITERAL, _VARIABLE, _GREEDY = 0, 1, 2


class MalformedResponseError(ValueError):
    """A handler result API Gateway would reject (it answers 500)."""


@dataclass(frozen=True)
class RouteMatch:
    """The route chosen for a request and the path parameters it captured (URL-decoded)."""

    route: HttpRoute
    path_parameters: dict[str, str]


class _CompiledRoute:
    def __init__(self, route: HttpRoute) -> None:
        self.route = route
        self.is_default = route.path == "$default"
        self.segments: list[tuple[int, str]] = []
        if self.is_default:
            return
        for segment in route.path.split("/")[1:]:
            if segment.startswith("{") and segment.endswith("+}"):
                self.segments.append((_GREEDY, segment[1:-2]))
            elif segment.startswith("{") and segment.endswith("}"):
                self.segments.append((_VARIABLE, segment[1:-1]))
            else:
                self.segments.append((_LITERAL, segment))

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1][0] == _GREEDY

    def sort_key(self) -> tuple[Any, ...]:
        # $default last; greedy routes after all others; then literal before variable, segment by
        # segment from the left; then a named method before ANY.
        return (self.is_default, self.greedy, [kind for kind, _ in self.segments], self.route.method == "ANY")

    def match(self, method: str, raw_segments: Sequence[str]) -> dict[str, str] | None:
        if self.route.method not in ("ANY", method):
            return None
        if self.is_default:
            return {}
        fixed = self.segments[:-1] if self.greedy else self.segments
        if len(raw_segments) < len(fixed) + self.greedy or (not self.greedy and len(raw_segments) != len(fixed)):
            return None
        parameters: dict[str, str] = {}
        for (kind, name), raw in zip(fixed, raw_segments, strict=False):
            value = unquote(raw)
            if kind == _LITERAL and value != name:
                return None
            if kind == _VARIABLE:
                if not value:
                    return None
                parameters[name] = value
        if self.greedy:
            rest = "/".join(raw_segments[len(fixed) :])
            if not rest:
                return None
            parameters[self.segments[-1][1]] = unquote(rest)
        return parameters


class Router:
    """Chooses a route for a request the way API Gateway HTTP API does."""

    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        self._routes = sorted((_CompiledRoute(route) for route in routes), key=_CompiledRoute.sort_key)

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        """The most specific route for this method and (still URL-encoded) path, or None."""
        raw_segments = raw_path.split("/")[1:]
        for compiled in self._routes:
            parameters = compiled.match(method.upper(), raw_segments)
            if parameters is not None:
                return RouteMatch(compiled.route, parameters)
        return None


def _request_id() -> str:
    return base64.b64encode(secrets.token_bytes(11)).decode()  # API Gateway's 16-character shape


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES


def build_http_api_event(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route: HttpRoute,
    path_parameters: Mapping[str, str],
    source_ip: str,
    *,
    api_id: str = LOCAL_API_ID,
    account_id: str = LOCAL_ACCOUNT_ID,
    request_id: str | None = None,
    protocol: str = "HTTP/1.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event for one request.

    ``headers`` are (name, value) pairs as received, repeats included;
    ``raw_path`` and ``raw_query`` are still URL-encoded.
    """
    now = now or datetime.now(UTC)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        else:
            merged[key] = f"{merged[key]},{value}" if key in merged else value
    host = merged.get("host", "localhost")
    forwarded_for = merged.get("x-forwarded-for")
    merged["x-forwarded-for"] = f"{forwarded_for}, {source_ip}" if forwarded_for else source_ip
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    merged.setdefault("x-amzn-trace-id", _trace_id())

    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id or _request_id(),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp()) * 1000 + now.microsecond // 1000,
    }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        text = _as_text(body, merged.get("content-type"))
        event["body"] = text if text is not None else base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


def _as_text(body: bytes, content_type: str | None) -> str | None:
    if not _is_text(content_type):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None  # base64 keeps the bytes intact, so the handler can answer 400 itself


class _GatewayResponse(Response):
    default_mimetype = None  # API Gateway adds no content-type the handler did not set


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedResponseError(f"header {name!r} has a {type(value).__name__} value")


def http_response_from_result(result: Any) -> Response:
    """Map a handler result to an HTTP response, as API Gateway does for payload format 2.0.

    A dict with ``statusCode`` is a structured response; anything else is the
    JSON body of a 200 (a string is sent as it is).
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return _GatewayResponse(text, status=200, content_type="application/json")
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedResponseError(f"statusCode {status!r} is not an HTTP status")
    response = _GatewayResponse(status=status)
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in _HOP_BY_HOP:
            response.headers[name] = _header_value(name, value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name.lower() not in _HOP_BY_HOP:
            for value in values if isinstance(values, list) else [values]:
                response.headers.add(name, _header_value(name, value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", _header_value("cookies", cookie))
    body: Any = result.get("body")
    if body is None:
        return response
    if not isinstance(body, str):
        raise MalformedResponseError(f"body is a {type(body).__name__}, not a string")
    if result.get("isBase64Encoded"):
        try:
            response.set_data(base64.b64decode(body, validate=True))
        except binascii.Error as error:
            raise MalformedResponseError(f"body is not valid base64: {error}") from error
    else:
        response.set_data(body)
    return response


def _json_error(status: int, message: str) -> Response:
    body = json.dumps({"message": message}, separators=(",", ":"))  # byte for byte what API Gateway sends
    return _GatewayResponse(body, status=status, content_type="application/json")


class _LimitedRequest(Request):
    max_content_length = MAX_REQUEST_BYTES


class Gateway:
    """A WSGI app that serves an HTTP API's routes with the functions given (in-process or in environments)."""

    def __init__(
        self,
        routes: list[HttpRoute],
        functions: Mapping[str, Invocable],
        *,
        api_id: str = LOCAL_API_ID,
        account_id: str = LOCAL_ACCOUNT_ID,
        local_endpoints: Mapping[str, Callable[[], Any]] = {},
    ) -> None:
        """``local_endpoints`` maps a ``/_local/...`` path to what a GET of it answers (as JSON)."""
        missing = sorted({route.function for route in routes} - set(functions))
        if missing:
            raise ValueError(f"routes name functions that were not loaded: {', '.join(missing)}")
        self._router = Router(routes)
        self._functions = functions
        # An in-process LocalFunction is one execution environment, which serves one request at a time, as on
        # Lambda: Powertools' resolver keeps the request it is resolving on itself (app.context), so two
        # requests resolved at once in one environment clear each other's state. Pools of environments
        # serialise per environment themselves.
        self._one_at_a_time = {
            name: threading.Lock() for name, function in functions.items() if isinstance(function, LocalFunction)
        }
        self._local_endpoints = dict(local_endpoints)
        self._api_id = api_id
        self._account_id = account_id

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = _LimitedRequest(environ)
        request_id = _request_id()
        response = self.handle(request, request_id)
        response.headers["apigw-requestid"] = request_id
        return response(environ, start_response)

    def handle(self, request: Request, request_id: str) -> Response:
        """The response API Gateway would give to ``request``."""
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        if raw_uri:
            parts = urlsplit(raw_uri)
            raw_path, raw_query = parts.path, parts.query
        else:
            raw_path, raw_query = quote(request.path), request.query_string.decode("latin-1")
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return _json_error(413, "Request Entity Too Large")
        if raw_path in self._local_endpoints and request.method == "GET":
            return _GatewayResponse(
                json.dumps(self._local_endpoints[raw_path]()), status=200, content_type="application/json"
            )
        match = self._router.match(request.method, raw_path)
        if match is None:
            return _json_error(404, "Not Found")
        event = build_http_api_event(
            request.method,
            raw_path,
            raw_query,
            request.headers.items(),
            body,
            match.route,
            match.path_parameters,
            request.remote_addr or "127.0.0.1",
            api_id=self._api_id,
            account_id=self._account_id,
            request_id=request_id,
            protocol=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        )
        function = self._functions[match.route.function]
        serialised: AbstractContextManager[Any] = self._one_at_a_time.get(match.route.function) or nullcontext()
        try:
            with serialised:
                result = function.invoke(event)
        except EnvironmentsBusyError as error:
            logger.error("%s %s: %s", request.method, raw_path, error)
            return _json_error(503, "Service Unavailable")
        except (InvocationError, FunctionTimeoutError) as error:  # an environment logs its own traceback
            logger.error("%s %s: %s failed: %s", request.method, raw_path, match.route.function, error)
            return _json_error(500, "Internal Server Error")
        except Exception:  # API Gateway turns any failed invocation into a 500; the traceback is the log
            logger.exception("%s %s: %s failed", request.method, raw_path, match.route.function)
            return _json_error(500, "Internal Server Error")
        try:
            return http_response_from_result(result)
        except MalformedResponseError as error:
            logger.error(
                "%s %s: %s returned a malformed response: %s",
                request.method,
                raw_path,
                match.route.function,
                error,
            )
            return _json_error(500, "Internal Server Error")


class _RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, logging plainly through this module's logger (moto's server uses "werkzeug")."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.info('%s "%s" %s %s', self.address_string(), self.requestline, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        getattr(logger, type, logger.info)("%s " + message.rstrip(), self.address_string(), *args)


@dataclass
class RunningServer:
    """A WSGI server running in a background thread."""

    server: BaseWSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when asked for port 0)."""
        return int(self.server.port)

    @property
    def url(self) -> str:
        """Its base URL, e.g. http://127.0.0.1:3000."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def shutdown(self) -> None:
        """Stop accepting requests, close the socket and wait for the serving thread."""
        self.server.shutdown()
        self.thread.join()


def serve(app: Gateway | WSGIApplication, host: str, port: int) -> RunningServer:
    """Serve ``app`` on host:port (0 picks a free port), one thread per request, in the background.

    Raises OSError at once when the address cannot be bound.
    """
    # Bound here because werkzeug, binding itself, answers a busy port with sys.exit(1).
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(socket.SOMAXCONN)
        server = make_server(
            host,
            listener.getsockname()[1],
            app,
            threaded=True,
            request_handler=_RequestHandler,
            fd=listener.fileno(),
        )
    finally:
        listener.close()  # the server keeps its own duplicate of the socket
    # A short poll interval makes shutdown() prompt (the default waits up to half a second).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"http-{server.port}", daemon=True
    )
    thread.start()
    return RunningServer(server=server, thread=thread, host=host)
