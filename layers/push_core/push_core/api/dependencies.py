"""Route dependencies: who is calling, resolved from their key before a route runs."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Depends, Request

from push_core.api.rate_limits import admitted_caller
from push_core.auth import Caller, authenticate, credential_from_headers


def current_caller(request: Request) -> Caller:
    """The authenticated caller of this request (401 if the key is missing or wrong).

    The rate-limit middleware has already authenticated a presented key; that answer is reused.
    """
    return admitted_caller(request.context) or authenticate(credential_from_headers(request.headers))


CallerDep = Annotated[Caller, Depends(current_caller)]
