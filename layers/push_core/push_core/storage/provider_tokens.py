"""APNs provider tokens shared by every sender of a team, so Apple sees one token per team, not one per container."""

from botocore.exceptions import ClientError

from push_core.providers.apns.auth import StoredToken
from push_core.storage.keys import PROVIDER_TOKEN_SK, apns_token_pk
from push_core.storage.table import dynamodb_table, is_conditional_failure

_TTL_S = 2 * 3600


def _key(team_id: str, key_id: str) -> dict[str, str]:
    return {"pk": apns_token_pk(team_id, key_id), "sk": PROVIDER_TOKEN_SK}


class DynamoTokenStore:
    """The ProviderTokenStore of deployed pushlane: one item per (team, key), newest token wins."""

    def load(self, team_id: str, key_id: str) -> StoredToken | None:
        """The current shared token, if any."""
        item = dynamodb_table().get_item(Key=_key(team_id, key_id), ConsistentRead=True).get("Item")
        return StoredToken(token=str(item["token"]), issued_at=int(item["issued_at"])) if item else None  # type: ignore[arg-type]

    def save_if_newer(self, team_id: str, key_id: str, token: StoredToken) -> StoredToken:
        """Store token unless a newer one is there already; returns the token everyone should use."""
        try:
            dynamodb_table().put_item(
                Item={
                    **_key(team_id, key_id),
                    "token": token.token,
                    "issued_at": token.issued_at,
                    "expires_at": token.issued_at + _TTL_S,
                },
                ConditionExpression="attribute_not_exists(pk) OR issued_at < :issued",
                ExpressionAttributeValues={":issued": token.issued_at},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return self.load(team_id, key_id) or token
        return token
