"""GraphQL over HTTP at /graphql, as the GraphQL-over-HTTP specification has it.

- `application/graphql-response+json` when the client accepts it (request errors: 400 and no
  `data`), `application/json` for legacy clients (200 for any GraphQL result); 406 when the
  client accepts neither.
- POST takes `application/json` only: form-encoded and multipart bodies, which a browser can
  send cross-site without a preflight, are refused with 415 (CSRF).
- GET runs queries only; a mutation over GET is 405. One operation per request: batches are
  refused.
- A missing or invalid token is 401, before any parsing.

Strawberry still executes the operation, and serves GraphiQL and the WebSockets.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from db.replicas import parse_lsn
from server import pages
from server.auth import AuthError
from server.middleware import error_body
from server.runtime import Runtime

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# Wildcards get the legacy type: a client that names no type is treated as a legacy client.
_ACCEPTED_RANGES = {
    GRAPHQL_RESPONSE: GRAPHQL_RESPONSE,
    JSON: JSON,
    "application/*": JSON,
    "*/*": JSON,
}


class RequestError(Exception):
    """The HTTP request cannot carry a GraphQL operation; `status` says how."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def response_media_type(accept: str | None) -> str:
    """The media type to answer with, or RequestError(406)."""
    if not accept or not accept.strip():
        return JSON  # the spec's rule for clients that state no preference
    best: tuple[float, int, str] | None = None
    for position, media_range in enumerate(accept.split(",")):
        name, _, params = media_range.strip().partition(";")
        media = _ACCEPTED_RANGES.get(name.strip().lower())
        if media is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        # The highest quality wins; on a tie, the earlier range, then graphql-response+json.
        candidate = (quality, -position, media)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        raise RequestError(406, f"Acceptable response types: {GRAPHQL_RESPONSE}, {JSON}.")
    return best[2]


def _json_param(value: str | None, name: str) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise RequestError(400, f"{name} must be a JSON object.") from None
    return _object_or_none(parsed, name)


def _object_or_none(value: Any, name: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise RequestError(400, f"{name} must be an object or null.")
    return value


async def request_params(request: Request) -> dict[str, Any]:
    """query, variables, operationName and extensions of a GET or POST request."""
    if request.method == "GET":
        query = request.query_params.get("query")
        params: dict[str, Any] = {
            "query": query,
            "variables": _json_param(request.query_params.get("variables"), "variables"),
            "operationName": request.query_params.get("operationName"),
            "extensions": _json_param(request.query_params.get("extensions"), "extensions"),
        }
    else:
        content_type, _, parameters = request.headers.get("content-type", "").partition(";")
        charset = parameters.lower().replace(" ", "")
        if content_type.strip().lower() != JSON or (
            "charset=" in charset and "charset=utf-8" not in charset
        ):
            raise RequestError(415, "POST bodies must be application/json (UTF-8).")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise RequestError(400, "The body is not valid JSON.") from None
        if isinstance(body, list):
            raise RequestError(400, "Batched operations are not supported: send one per request.")
        if not isinstance(body, dict):
            raise RequestError(400, "The body must be a JSON object.")
        params = {
            "query": body.get("query"),
            "variables": _object_or_none(body.get("variables"), "variables"),
            "operationName": body.get("operationName"),
            "extensions": _object_or_none(body.get("extensions"), "extensions"),
        }
    if not isinstance(params["query"], str) or not params["query"]:
        raise RequestError(400, "A `query` string is required.")
    if params["operationName"] is not None and not isinstance(params["operationName"], str):
        raise RequestError(400, "operationName must be a string or null.")
    return params


def _is_request_error(result: ExecutionResult) -> bool:
    # Nothing executed: the document failed to parse or validate, or its variables to coerce.
    if isinstance(result, PreExecutionError):
        return True
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def _body(result: ExecutionResult, *, include_data: bool) -> bytes:
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    if include_data:
        body = {"data": result.data, **body}
    if result.extensions:
        body["extensions"] = result.extensions
    return orjson.dumps(body)


class GraphQLHTTP:
    """The HTTP side of /graphql, and the GraphiQL page for browsers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return _error(405, "Use GET (queries) or POST.", {"Allow": "GET, POST"})
        accept = request.headers.get("accept", "")
        if (
            request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in accept
        ):
            return pages.graphiql(request, self.runtime.settings.dev_token)
        try:
            media_type = response_media_type(accept)
            viewer = self._viewer(request)
            params = await request_params(request)
            min_lsn = _min_lsn(request)
        except RequestError as exc:
            return _error(exc.status, str(exc), exc.headers)
        context = self.runtime.context(request, viewer=viewer, min_lsn=min_lsn)
        allowed = (
            {OperationType.QUERY}
            if request.method == "GET"
            else {OperationType.QUERY, OperationType.MUTATION}
        )
        try:
            result = await self.runtime.schema.execute(
                params["query"],
                variable_values=params["variables"],
                context_value=context,
                operation_name=params["operationName"],
                allowed_operation_types=allowed,
                operation_extensions=params["extensions"],
            )
        except InvalidOperationTypeError as exc:
            if request.method == "GET" and exc.operation_type is OperationType.MUTATION:
                return _error(405, "Mutations need POST.", {"Allow": "POST"})
            return _error(400, "Subscriptions are served over WebSocket at this URL.")
        except CannotGetOperationTypeError as exc:
            return _error(400, exc.as_http_error_reason())
        except MissingQueryError:
            return _error(400, "A `query` string is required.")
        if media_type == GRAPHQL_RESPONSE and _is_request_error(result):
            return Response(_body(result, include_data=False), 400, media_type=GRAPHQL_RESPONSE)
        return Response(_body(result, include_data=True), 200, media_type=media_type)

    def _viewer(self, request: Request) -> Any:
        try:
            return self.runtime.verifier.from_authorization(request.headers.get("authorization"))
        except AuthError as exc:
            raise RequestError(
                401, str(exc), {"WWW-Authenticate": 'Bearer realm="workflow-runs"'}
            ) from None


def _min_lsn(request: Request) -> int | None:
    """The position a read must see (`X-Min-LSN`, from a mutation's `extensions.lsn`)."""
    header = request.headers.get("x-min-lsn")
    if header is None:
        return None
    lsn = parse_lsn(header)
    if lsn is None:
        raise RequestError(400, "X-Min-LSN must be a WAL position such as 0/3000148.")
    return lsn


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    code = "UNAUTHENTICATED" if status == 401 else "BAD_USER_INPUT"
    return Response(
        error_body(message, code), status, headers=headers, media_type="application/json"
    )
