"""The quickstart `make run` prints: shell commands that walk the whole flow against the running stack."""

QUICKSTART = r"""
# pushlane quickstart: paste into another shell (needs curl and python3).
export PUSHLANE={base_url}
export ADMIN_KEY={admin_key}
jget() {{ python3 -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1:]: d = d[k]
print(d)' "$@"; }}
# A publication's report; it fills in as the fan-out jobs finish, so wait (up to 10 s) until it completes.
report() {{ for _ in $(seq 20); do R=$(curl -sS "$PUSHLANE/v1/messages/$1" -H "Authorization: Bearer $SECRET_KEY")
  case "$R" in *'"status":"completed"'*) break;; esac; sleep 0.5; done; echo "$R"; }}

# 1. Create an app with the admin key; keep its secret key (publish) and public key (register devices).
APP=$(curl -sS -X POST "$PUSHLANE/v1/apps" -H "Authorization: Bearer $ADMIN_KEY" \
  -H 'Content-Type: application/json' -d '{{"name": "Quickstart"}}')
SECRET_KEY=$(printf '%s' "$APP" | jget secret_key key)
PUBLIC_KEY=$(printf '%s' "$APP" | jget public_key key)

# 2. Register an inbox device with the public key; it gets its own device key.
DEVICE=$(curl -sS -X POST "$PUSHLANE/v1/devices" -H "Authorization: Bearer $PUBLIC_KEY" \
  -H 'Content-Type: application/json' -d '{{"platform": "inbox", "name": "my-laptop"}}')
DEVICE_ID=$(printf '%s' "$DEVICE" | jget device id)
DEVICE_KEY=$(printf '%s' "$DEVICE" | jget device_key)

# 3. Subscribe the device to the topic "news".
curl -sS -X PUT "$PUSHLANE/v1/devices/$DEVICE_ID/topics/news" -H "Authorization: Bearer $DEVICE_KEY"; echo

# 4. Publish to "news" with the secret key: 202 and a message id.
MESSAGE_ID=$(curl -sS -X POST "$PUSHLANE/v1/messages" -H "Authorization: Bearer $SECRET_KEY" \
  -H 'Content-Type: application/json' \
  -d '{{"topics": ["news"], "title": "Hello", "body": "First message through pushlane"}}' | jget id)
echo "published $MESSAGE_ID"

# 5. Poll as the device (long-polls up to 10 s while the fan-out runs).
curl -sS "$PUSHLANE/v1/devices/$DEVICE_ID/messages?wait=10" -H "Authorization: Bearer $DEVICE_KEY"; echo

# 6. Confirm it.
curl -sS -X POST "$PUSHLANE/v1/devices/$DEVICE_ID/messages/confirm" -H "Authorization: Bearer $DEVICE_KEY" \
  -H 'Content-Type: application/json' -d "{{\"ids\": [\"$MESSAGE_ID\"]}}"; echo

# 7. The publication's report: total 1, passed 1, confirmed 1.
report "$MESSAGE_ID"
{providers}
# The whole API: $PUSHLANE/v1/docs (Swagger UI) and $PUSHLANE/v1/openapi.json
"""

PROVIDERS = r"""
# 8. Phones, browsers and webhooks, through the loopback emulators of APNs, FCM and a Web Push service.
#    Give the app its provider credentials (the emulators issued them; files in {directory}).
APP_ID=$(printf '%s' "$APP" | jget app id)
for platform in apns fcm webpush webhook; do
  curl -sS -X PUT "$PUSHLANE/v1/apps/$APP_ID/credentials" -H "Authorization: Bearer $SECRET_KEY" \
    -H 'Content-Type: application/json' -d @{directory}/$platform.json; echo
done

# 9. Register an iPhone, an Android phone, a browser and a webhook, and subscribe them all to "deals".
for platform in apns fcm webpush webhook; do
  REGISTERED=$(curl -sS -X POST "$PUSHLANE/v1/devices" -H "Authorization: Bearer $PUBLIC_KEY" \
    -H 'Content-Type: application/json' -d @{directory}/$platform-device.json)
  curl -sS -X PUT "$PUSHLANE/v1/devices/$(printf '%s' "$REGISTERED" | jget device id)/topics/deals" \
    -H "Authorization: Bearer $SECRET_KEY"; echo
done

# 10. Publish to "deals"; the report shows total 4, passed 4.
DEAL_ID=$(curl -sS -X POST "$PUSHLANE/v1/messages" -H "Authorization: Bearer $SECRET_KEY" \
  -H 'Content-Type: application/json' \
  -d '{{"topics": ["deals"], "title": "Deal", "body": "Half price today", "importance": 4}}' | jget id)
report "$DEAL_ID"

# 11. What each service received (the Web Push one decrypted it, as the browser would):
{ledgers}
"""


def render_providers(directory: str, ca_path: str, ledger_urls: dict[str, str]) -> str:
    """The quickstart section for the emulated providers."""
    ledgers = "\n".join(f"#   curl -sS --cacert {ca_path} {url}" for url in ledger_urls.values())
    return PROVIDERS.format(directory=directory, ledgers=ledgers)


def render(base_url: str, admin_key: str, providers: str = "") -> str:
    """The quickstart for a stack listening at base_url, using this run's admin key (and providers section)."""
    return QUICKSTART.format(base_url=base_url, admin_key=admin_key, providers=providers)
