"""What each documented APNs error reason means for pushlane: the one table the provider consults."""

from push_core.providers.contract import ErrorMeaning, InvalidTarget, Rejected, Transient

DEAD = ErrorMeaning(InvalidTarget)
FIX_REQUEST = ErrorMeaning(Rejected)
RETRY = ErrorMeaning(Transient, min_retry_after_s=5)

APNS_ERRORS: dict[str, ErrorMeaning] = {
    # The token is dead (for a 410, only if it was registered before the 410's timestamp: feedback decides).
    "BadDeviceToken": DEAD,
    "DeviceTokenNotForTopic": DEAD,
    "Unregistered": DEAD,
    "ExpiredToken": DEAD,
    # The request itself is wrong: retrying the same request cannot help.
    "BadCollapseId": FIX_REQUEST,
    "BadExpirationDate": FIX_REQUEST,
    "BadMessageId": FIX_REQUEST,
    "BadPriority": FIX_REQUEST,
    "BadTopic": FIX_REQUEST,
    "DuplicateHeaders": FIX_REQUEST,
    "InvalidPushType": FIX_REQUEST,
    "MissingDeviceToken": FIX_REQUEST,
    "MissingTopic": FIX_REQUEST,
    "PayloadEmpty": FIX_REQUEST,
    "TopicDisallowed": FIX_REQUEST,
    "BadPath": FIX_REQUEST,
    "MethodNotAllowed": FIX_REQUEST,
    "PayloadTooLarge": FIX_REQUEST,
    # Credentials are wrong: the app must fix its configuration.
    "BadCertificate": FIX_REQUEST,
    "BadCertificateEnvironment": FIX_REQUEST,
    "Forbidden": FIX_REQUEST,
    "InvalidProviderToken": FIX_REQUEST,
    "MissingProviderToken": FIX_REQUEST,
    # Our token aged out: it is re-minted and the send retried at once.
    "ExpiredProviderToken": ErrorMeaning(Transient, min_retry_after_s=0),
    # Back off.
    "TooManyRequests": ErrorMeaning(Transient, min_retry_after_s=60),
    "TooManyProviderTokenUpdates": ErrorMeaning(Transient, min_retry_after_s=60),
    "IdleTimeout": ErrorMeaning(Transient, min_retry_after_s=0),
    "InternalServerError": RETRY,
    "ServiceUnavailable": RETRY,
    "Shutdown": ErrorMeaning(Transient, min_retry_after_s=1),
}


# The dead reasons that come with the time APNs learned the token was dead: a device registered again
# after that time is alive (feedback compares).
TIMESTAMPED_REASONS = frozenset({"Unregistered", "ExpiredToken"})


def fallback_for_status(status: int) -> ErrorMeaning:
    """The meaning of an undocumented reason, by HTTP status."""
    if status == 429 or status >= 500:
        return RETRY
    if status == 410:
        return DEAD
    return FIX_REQUEST
