"""Reading a request's JSON body with the limits the standard library leaves out.

Python's json accepts NaN and Infinity, turns `1e999` into inf, raises ValueError (not JSONDecodeError) for
integers over 4,300 digits and RecursionError for deep nesting: each of those was a 500. Every body the native
API takes is one JSON object, so anything else (an array included) is refused here, before validation, where
Powertools would otherwise take a list's first element for a single-object body.
"""

import json
import math
from typing import Any

from push_core.errors import BadRequest, UnprocessableEntity

# DynamoDB documents nest at most 32 levels; no pushlane body needs more than that.
MAX_DEPTH = 32
# Integers up to 64 bits (snowflake ids, epoch nanoseconds) pass; longer ones are not data anyone sends.
MAX_INTEGER_DIGITS = 20


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise UnprocessableEntity(f"Integers may have at most {MAX_INTEGER_DIGITS} digits.", code="number_out_of_range")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise UnprocessableEntity(f"The number {text[:40]} is out of range.", code="number_out_of_range")
    return value


def _constant(name: str) -> Any:
    raise BadRequest(f"{name} is not JSON.", code="malformed_json")


def _check_structure(value: Any) -> None:
    """Depth within MAX_DEPTH, and every string encodable as UTF-8 (json accepts lone surrogates such as
    "\\ud800", which no payload builder can send). Iterative: the document may be as deep as json allowed."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnprocessableEntity(f"The body nests deeper than {MAX_DEPTH} levels.", code="body_too_deep")
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            for text in (key, child):
                if isinstance(text, str):
                    try:
                        text.encode()
                    except UnicodeEncodeError as error:
                        raise BadRequest(
                            "The body has a lone UTF-16 surrogate escape (\\ud800-\\udfff); it is not text.",
                            code="malformed_json",
                        ) from error
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def parse_json_object(text: str) -> dict[str, Any]:
    """The body as a JSON object, or a 400 (not JSON) / 422 (JSON, but not a body any route takes)."""
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise BadRequest(f"The body is not valid JSON ({error.msg} at {error.pos}).", code="malformed_json") from error
    except RecursionError as error:
        raise UnprocessableEntity(f"The body nests deeper than {MAX_DEPTH} levels.", code="body_too_deep") from error
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else f"a {type(value).__name__}"
        raise UnprocessableEntity(f"The body must be a JSON object, not {kind}.", code="body_not_object")
    _check_structure(value)
    return value
