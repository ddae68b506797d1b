"""Waiting for many HTTP/2 requests at once and turning each answer into an outcome, for every provider.

Providers queue every target's request with Http2Client.submit (a future each, no Task per target,
which costs several microseconds apiece at 20,000 targets) and settle them together here; transport
failures mean the same thing for every provider, so they are mapped once.
"""

import asyncio
from collections.abc import Callable

from push_core.http2 import ConnectError, ConnectionLost, Http2Error, Response, StreamReset
from push_core.http2.frames import REFUSED_STREAM
from push_core.providers.contract import Outcome, Transient

Pending = asyncio.Future[Response] | Outcome


def transport_outcome(error: BaseException) -> Outcome:
    """What a failed request means: connection trouble and stream errors are retried later.

    Only a request that was never sent (ConnectError, or a stream the server refused unprocessed) is
    certainly undelivered; after a lost connection, a timeout or a reset the provider may have taken it.
    """
    if isinstance(error, ConnectError):
        return Transient(type(error).__name__, 1.0)
    if isinstance(error, ConnectionLost):
        return Transient(type(error).__name__, 1.0, ambiguous=True)
    if isinstance(error, StreamReset) and error.error_code == REFUSED_STREAM:
        return Transient(type(error).__name__, None)
    if isinstance(error, Http2Error):
        return Transient(type(error).__name__, None, ambiguous=True)
    raise error  # not a delivery outcome: a bug, surface it


async def settle(pending: list[Pending], on_response: Callable[[Response], Outcome]) -> list[Outcome]:
    """Outcomes in target order: answered requests through on_response, failed ones as transient,
    and outcomes decided before sending (a refused endpoint, say) as they are."""
    futures = [item for item in pending if isinstance(item, asyncio.Future)]
    answers = iter(await asyncio.gather(*futures, return_exceptions=True))
    outcomes: list[Outcome] = []
    for item in pending:
        if isinstance(item, asyncio.Future):
            answer = next(answers)
            outcomes.append(on_response(answer) if isinstance(answer, Response) else transport_outcome(answer))
        else:
            outcomes.append(item)
    return outcomes
