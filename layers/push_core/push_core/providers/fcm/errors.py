"""What each FCM HTTP v1 error code means for pushlane: the one table the provider consults."""

from push_core.providers.contract import ErrorMeaning, InvalidTarget, Rejected, Transient

FCM_ERRORS: dict[str, ErrorMeaning] = {
    "UNREGISTERED": ErrorMeaning(InvalidTarget),
    "SENDER_ID_MISMATCH": ErrorMeaning(InvalidTarget),
    # INVALID_ARGUMENT about the token itself means the token is malformed: as dead as an unregistered one.
    "INVALID_ARGUMENT:token": ErrorMeaning(InvalidTarget),
    "INVALID_ARGUMENT": ErrorMeaning(Rejected),
    "THIRD_PARTY_AUTH_ERROR": ErrorMeaning(Rejected),
    "PERMISSION_DENIED": ErrorMeaning(Rejected),
    "NOT_FOUND": ErrorMeaning(Rejected),
    # Our access token expired or was revoked: it is re-minted and the send retried.
    "UNAUTHENTICATED": ErrorMeaning(Transient, min_retry_after_s=0),
    # FCM asks for at least about a minute of back-off on quota errors.
    "QUOTA_EXCEEDED": ErrorMeaning(Transient, min_retry_after_s=60),
    "UNAVAILABLE": ErrorMeaning(Transient, min_retry_after_s=5),
    "INTERNAL": ErrorMeaning(Transient, min_retry_after_s=5),
}


def fallback_for_status(status: int) -> ErrorMeaning:
    """The meaning of an undocumented error, by HTTP status."""
    if status == 429 or status >= 500:
        return FCM_ERRORS["UNAVAILABLE"]
    if status == 401:
        return FCM_ERRORS["UNAUTHENTICATED"]
    return FCM_ERRORS["INVALID_ARGUMENT"]
