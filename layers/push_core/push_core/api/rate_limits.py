"""Rate limits at the API edge: a Powertools middleware that runs before every route.

It authenticates a presented key once (the route's CallerDep reuses the result), charges the key's
and the app's request windows, or the source address's failed-authentication budget, and adds the
RateLimit headers to the answer. A request without a key costs nothing here: it reads nothing.
"""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from push_core import limits
from push_core.auth import Caller, authenticate, credential_from_headers
from push_core.errors import Unauthorized

_ADMITTED = "pushlane_admitted"


def enforce_rate_limits(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Charge the request's windows before the route runs (429 when spent); describe them after."""
    event = app.current_event
    credential = credential_from_headers(event.headers)
    if credential is None:
        return next_middleware(app)
    try:
        caller = authenticate(credential)
    except Unauthorized as refusal:
        limits.charge_failed_authentication(event.request_context.http.source_ip)
        app.append_context(**{_ADMITTED: refusal})  # the route's dependency raises it (routes without keys ignore it)
        return next_middleware(app)
    standings = limits.charge_request(caller)
    app.append_context(**{_ADMITTED: caller})
    response = next_middleware(app)
    response.headers.update(limits.headers(standings))
    return response


def admitted_caller(context: Mapping[str, Any]) -> Caller | None:
    """The caller the middleware authenticated for this request; raises what authentication raised."""
    admitted = context.get(_ADMITTED)
    if isinstance(admitted, Unauthorized):
        raise admitted
    return admitted if isinstance(admitted, Caller) else None
