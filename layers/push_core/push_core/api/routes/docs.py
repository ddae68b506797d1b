"""The API's own OpenAPI document, covering every route of every function."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from push_core.api.resolver import API_TITLE, API_VERSION, SECURITY_SCHEMES

DOCS_PATH = "/v1/docs"
DESCRIPTION = (
    "Self-hosted push notifications. Create an app with the admin key, register devices with the app's "
    "public key, publish with its secret key, and let inbox devices poll and confirm with their device key."
)


def openapi_options() -> dict[str, Any]:
    """What every rendering of the document shares (the JSON route and the Swagger UI)."""
    return {
        "title": API_TITLE,
        "version": API_VERSION,
        "description": DESCRIPTION,
        "security_schemes": SECURITY_SCHEMES,
    }


def install_docs(app: APIGatewayHttpResolver) -> None:
    """Serve /v1/openapi.json and the Swagger UI at /v1/docs from a resolver that has every router."""
    app.enable_swagger(path=DOCS_PATH, **openapi_options())

    @app.get("/v1/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[str]:
        return Response(200, "application/json", app.get_openapi_json_schema(**openapi_options()))
