"""/openapi.json documents every error the server answers as problem+json."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = {"$ref": "#/components/schemas/Problem"}


async def served_operations(client: httpx.AsyncClient) -> tuple[dict[str, Any], list[Any]]:
    schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    operations = [
        (method, path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    return schema, operations


async def test_every_error_response_is_documented_as_a_problem(client: httpx.AsyncClient) -> None:
    schema, operations = await served_operations(client)
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "request_id",
    }
    for method, path, operation in operations:
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                    method,
                    path,
                    status,
                )


async def test_framework_validation_errors_are_not_documented_since_never_sent(
    client: httpx.AsyncClient,
) -> None:
    schema, _ = await served_operations(client)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "HTTPValidationError" not in str(schema["paths"])


async def test_statuses_every_operation_can_answer_are_documented_on_each(
    client: httpx.AsyncClient,
) -> None:
    _, operations = await served_operations(client)
    for method, path, operation in operations:
        statuses = set(operation["responses"])
        assert {"400", "413", "429", "500", "503"} <= statuses, (method, path)
        if method in ("post", "put", "patch"):
            assert "415" in statuses, (method, path)
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in statuses, (method, path)
        if operation.get("security"):
            assert "401" in statuses, (method, path)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        if "{" in path:
            assert "404" in statuses, (method, path)


async def test_a_route_keeps_its_own_description_of_an_error(client: httpx.AsyncClient) -> None:
    schema, _ = await served_operations(client)
    checkout = schema["paths"]["/api/v1/carts/{cart_id}/checkout"]["post"]["responses"]
    assert "out_of_stock" in checkout["409"]["description"]
    assert checkout["409"]["content"] == {"application/problem+json": {"schema": PROBLEM}}


async def test_every_admin_operation_documents_its_403(client: httpx.AsyncClient) -> None:
    # tests/test_authorization.py proves each of them answers 403 to a customer.
    _, operations = await served_operations(client)
    admin = [(m, p, o) for m, p, o in operations if p.startswith("/api/v1/admin/")]
    assert admin
    for method, path, operation in admin:
        assert "403" in operation["responses"], (method, path)
