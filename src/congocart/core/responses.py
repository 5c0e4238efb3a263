"""JSON responses for read models that are plain dicts and lists, not Pydantic models.

A hot read route can return `json_response(document)` (or `json_body(bytes)`
for a body rendered already) and keep its schema in the OpenAPI document with
`response_model=`: FastAPI passes a returned `Response` through untouched (no
validation, no second serialisation), and documents the route from
`response_model` as usual. The route's tests prove that the document
validates against that model and equals what the model would render.
"""

from __future__ import annotations

from fastapi.responses import Response

from congocart.core.rendering import json_bytes


def json_body(body: bytes, *, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


def json_response(document: object, *, status_code: int = 200) -> Response:
    return json_body(json_bytes(document), status_code=status_code)
