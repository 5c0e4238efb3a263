"""Every error, the framework's own included, is problem+json with a request id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from congocart.config import Settings
from congocart.core.db import Database
from congocart.core.errors import Conflict
from congocart.core.schemas import RequestModel
from congocart.main import create_app


class WidgetCreate(RequestModel):
    name: str
    quantity: int


probe = APIRouter()


@probe.post("/probe/widgets", status_code=201)
async def create_widget(body: WidgetCreate) -> dict[str, str]:
    return {"name": body.name}


@probe.get("/probe/conflict")
async def conflict() -> None:
    raise Conflict("Something else got there first.")


@probe.get("/probe/crash")
async def crash() -> None:
    raise RuntimeError("asyncpg.exceptions.UniqueViolationError: secret SQL SELECT * FROM users")


@pytest.fixture
def probe_app(settings: Settings, db: Database) -> FastAPI:
    app = create_app(settings, database=db)
    app.include_router(probe)
    return app


@pytest.fixture
async def probe_client(probe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"]
    assert body["title"]
    assert body["type"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nowhere"), 404, "not_found")


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_request_id_is_echoed_when_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nowhere", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


async def test_hostile_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": 'x" onmouseover=1 ' * 20})
    assert response.headers["x-request-id"].isalnum()


async def test_malformed_json_is_400(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/probe/widgets", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")


async def test_a_json_body_that_is_not_utf8_is_400_malformed_json(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.post(
        "/probe/widgets", content=b'{"name": "\xff"}', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")


async def test_unknown_fields_are_rejected_with_field_errors(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.post(
        "/probe/widgets", json={"name": "a", "quantity": 1, "role": "admin"}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert {"field": "role", "message": "Extra inputs are not permitted"} in body["errors"]  # type: ignore[operator]


async def test_invalid_field_is_422_with_field_name(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/probe/widgets", json={"name": "a", "quantity": "many"})
    body = assert_problem(response, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["quantity"]  # type: ignore[attr-defined]


async def test_body_over_one_mebibyte_is_413(probe_client: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"a" * (1024 * 1024) + b'", "quantity": 1}'
    response = await probe_client.post(
        "/probe/widgets", content=big, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


async def test_streamed_body_over_the_limit_is_413(probe_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'", "quantity": 1}'

    response = await probe_client.post(
        "/probe/widgets", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


async def test_non_json_body_is_415(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/probe/widgets", content=b"name=a", headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported_media_type")


async def test_congo_error_renders_its_status_and_code(probe_client: httpx.AsyncClient) -> None:
    body = assert_problem(await probe_client.get("/probe/conflict"), 409, "conflict")
    assert body["detail"] == "Something else got there first."


async def test_unexpected_error_is_generic_500_without_internals(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.get("/probe/crash")
    assert_problem(response, 500, "internal_error")
    for leak in ("asyncpg", "SELECT", "Traceback", "RuntimeError", "users"):
        assert leak not in response.text


async def test_nul_in_a_body_string_is_422_not_500(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/probe/widgets", json={"name": "a\x00b", "quantity": 1})
    body = assert_problem(response, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["name"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/api/v1/products/%00", "/api/v1/products?q=%00"])
async def test_nul_in_path_or_query_is_400(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(path), 400, "bad_request")
