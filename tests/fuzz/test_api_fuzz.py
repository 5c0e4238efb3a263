"""Property-based fuzzing of every operation the server publishes in /openapi.json.

For each operation, as an anonymous caller, a customer and an admin, requests
come from three sources: schemathesis' valid and invalid cases drawn from the
served schema (wrong types, out-of-range numbers, missing or unknown fields,
unicode), and the schema's own examples filled with real values (a real SKU,
cart token, coupon code). Path ids are swapped for real ones now and then (a
product, a cart, an order, ...) so the deeper code runs too; then a request may
be made more hostile than any schema suggests: a body value replaced by NUL, a
lone surrogate, a 100 kB string, an integer past 64 bits or the calendar's
last instant, a field dropped, a body that is no JSON at all (then 400
`malformed_json`, whoever asks), a path segment or query value of invalid UTF-8,
`%2F` or `..`, a hand-made malformed cursor; and hostile headers ride along
(`Idempotency-Key`, `X-Cart-Token`, `If-Match`, `X-Request-ID`, a junk
`Authorization`). Every response must hold the contract:

- never a 5xx, whatever the input;
- every 4xx is `application/problem+json` with `type`, `title`, `status`,
  `detail`, `code` and `request_id`, `status` equal to the HTTP status and
  `request_id` equal to the `X-Request-ID` header (which echoes ours when valid);
  a 401 carries a `Bearer` challenge;
- no stack trace, SQL or internal module name in any body;
- the status is documented for the operation, and the body, headers and
  content type conform to what the schema documents for it (schemathesis'
  own checks);
- invalid input that schemathesis made (and nothing else changed) is refused.

Each test runs on the rolled-back `conn` (the app's requests nest as
savepoints), so runs are isolated from each other and from other tests, and
the examples of one test share its users and shop.

Bounded by default: 10 examples per operation and caller, derandomized (the
same inputs on every run, as CI needs; 30-40 s for the whole file).
`FUZZ_EXAMPLES=300` runs deeper and, outside CI, with fresh random inputs each
run (a failure is replayed from the local `.hypothesis/` database and printed
with a `@reproduce_failure` blob).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import operator
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from congocart.config import Settings
from congocart.main import create_app
from tests.conftest import TEST_JWT_PRIVATE_KEY, MakeUser

IN_CI = os.environ.get("CI") == "true"
DEEP_EXAMPLES = os.environ.get("FUZZ_EXAMPLES")
MAX_EXAMPLES = int(DEEP_EXAMPLES) if DEEP_EXAMPLES else 10
# Reproducible in CI and in the everyday suite; a deep local run explores afresh.
DERANDOMIZE = IN_CI or DEEP_EXAMPLES is None
CALLERS = ("anonymous", "customer", "admin")
PROBLEM_FIELDS = ("type", "title", "status", "detail", "code", "request_id")
# What must never reach a client: traces, SQL, driver and module names.
LEAK = re.compile(
    r"Traceback|File \"|asyncpg|psycopg|sqlalchemy|pydantic_core|starlette|"
    r"\bcongocart\.(?!dev\b)[a-z_]+|\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s"
)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SCHEMA_CONFIG = schemathesis.Config(seed=20240601)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _schema_settings() -> Settings:
    return Settings(
        env="test",
        database_url="postgresql://unused",
        redis_url=None,
        rate_limit_enabled=False,
        log_json=True,
        log_level="WARNING",
        jwt_private_key=TEST_JWT_PRIVATE_KEY,
    )


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, read from the app at collection time."""
    raw: dict[str, Any] = create_app(_schema_settings()).openapi()
    return sorted(
        (method.upper(), path)
        for path, methods in raw["paths"].items()
        for method in methods
        if method in {"get", "put", "post", "patch", "delete"}
    )


OPERATIONS = _operations()
_loaded: list[schemathesis.BaseSchema] = []
_example_strategies: dict[tuple[int, str], list[st.SearchStrategy[Any]]] = {}


async def served_schema(client: httpx.AsyncClient) -> schemathesis.BaseSchema:
    """The schema exactly as the app serves it at /openapi.json (fetched once a run:
    every app the fixtures build serves the same one, and building it takes a while)."""
    if not _loaded:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        _loaded.append(schemathesis.openapi.from_dict(response.json(), config=SCHEMA_CONFIG))
    return _loaded[0]


def _examples(schema: schemathesis.BaseSchema, operation: Any) -> list[st.SearchStrategy[Any]]:
    """Strategies for requests built from the examples the schema documents."""
    key = (id(schema), operation.label)
    if key not in _example_strategies:
        _example_strategies[key] = schema.get_strategies_from_examples(operation)
    return _example_strategies[key]


# ------------------------------------------------------------------ real data


@dataclass
class Shop:
    """Real resources, so generated requests reach past "not found" now and then.

    `by_collection` maps the path segment before a path parameter (`products`
    in `/products/{id}`) to ids that exist there.
    """

    by_collection: dict[str, list[str]] = field(default_factory=dict)
    cart_tokens: list[str] = field(default_factory=list)
    # Real values for body fields of these names (a SKU to add, a coupon to apply).
    by_field: dict[str, list[str]] = field(default_factory=dict)

    def real_values(self, path: str) -> dict[str, list[str]]:
        """For each parameter of `path`, the real values it may take."""
        segments = path.strip("/").split("/")
        values = {}
        for before, segment in itertools.pairwise(segments):
            if segment.startswith("{") and before in self.by_collection:
                values[segment[1:-1]] = self.by_collection[before]
        return values


async def _ok(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def open_shop(
    client: httpx.AsyncClient, *, admin: Mapping[str, str], customer: Mapping[str, str]
) -> Shop:
    tag = uuid.uuid4().hex[:8]
    sku = f"FUZZ-{tag}".upper()
    product = await _ok(
        await client.post(
            "/api/v1/admin/products",
            headers=admin,
            json={
                "name": f"Fuzz {tag}",
                "slug": f"fuzz-{tag}",
                "category": "fuzz",
                "variants": [
                    {"sku": sku, "price": {"amount": "12.50", "currency": "USD"}, "stock": 50}
                ],
            },
        ),
        201,
    )
    coupon = await _ok(
        await client.post(
            "/api/v1/admin/coupons", headers=admin, json={"code": f"FUZZ{tag}", "percent_off": "10"}
        ),
        201,
    )
    cart = await _ok(await client.post("/api/v1/carts", headers=customer, json={}), 201)
    cart = await _ok(
        await client.post(
            f"/api/v1/carts/{cart['id']}/items",
            headers=customer,
            json={"sku": sku, "quantity": 2},
        ),
        201,
    )
    guest = await _ok(await client.post("/api/v1/carts", json={}), 201)
    token = guest["cart_token"]
    guest_cart = await _ok(
        await client.post(
            f"/api/v1/carts/{guest['id']}/items",
            headers={"X-Cart-Token": token},
            json={"sku": sku, "quantity": 1},
        ),
        201,
    )
    paid_cart = await _ok(await client.post("/api/v1/carts", headers=customer, json={}), 201)
    await _ok(
        await client.post(
            f"/api/v1/carts/{paid_cart['id']}/items",
            headers=customer,
            json={"sku": sku, "quantity": 1},
        ),
        201,
    )
    order = await _ok(
        await client.post(
            f"/api/v1/carts/{paid_cart['id']}/checkout",
            headers={**customer, "Idempotency-Key": f"fuzz-{tag}"},
            json={
                "shipping_address": {
                    "name": "Fuzz Tester",
                    "line1": "1 Main St",
                    "city": "Springfield",
                    "postal_code": "12345",
                    "country": "US",
                },
                "payment": {"token": "tok_visa"},
            },
        ),
        201,
    )
    webhook = await _ok(
        await client.post(
            "/api/v1/admin/webhooks",
            headers=admin,
            json={"url": "https://example.com/hooks/fuzz", "events": ["order.paid"]},
        ),
        201,
    )
    me = await _ok(await client.get("/api/v1/me", headers=customer), 200)
    return Shop(
        by_collection={
            "products": [product["id"], product["slug"]],
            "variants": [sku],
            "inventory": [sku],
            "carts": [cart["id"], guest["id"]],
            "items": [cart["items"][0]["id"], guest_cart["items"][0]["id"]],
            "orders": [order["id"]],
            "webhooks": [webhook["id"]],
            "users": [me["id"]],
        },
        cart_tokens=[token],
        by_field={"sku": [sku], "cart_token": [token], "code": [coupon["code"]]},
    )


# ------------------------------------------------------------------ hostile input

# Printable latin-1 (what HTTP allows in a header value), plus the odd oversized
# one; servers strip the whitespace around a value, so it has none.
header_text = (
    st.one_of(
        st.text(
            st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
            min_size=1,
        ),
        st.sampled_from(["null", "0", "-1", "' OR 1=1 --", "%00", "\u00e9t\u00e9", "A" * 10_000]),
    )
    .map(str.strip)
    .filter(bool)
)


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


# What real cursors hold (sort names, times, ids), and just past it.
cursor_values = st.sampled_from(
    [
        "newest",
        "name",
        "price_asc",
        "price_desc",
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T00:00:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "infinity",
        str(uuid.uuid4()),
        "a\x00b",
        2**63,
        -(2**63),
    ]
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    # Picked half the time: the values that sit at an edge.
    cursor_values,
    cursor_values,
    cursor_values,
    cursor_values,
    cursor_values,
)
# Keyset cursors that decode to a list of the right or wrong length, with wrong
# types inside, and strings that are no cursor at all.
SORTS = ("newest", "name", "price_asc", "price_desc")
_ids = st.uuids().map(str)
# Shaped like the real ones, `[time, id]` and `[sort, key, id]`, one part hostile.
shaped_cursors = st.one_of(
    st.tuples(json_scalars, _ids),
    st.tuples(st.just("2024-01-01T00:00:00+00:00"), json_scalars),
    st.tuples(st.sampled_from(SORTS), json_scalars, _ids),
).map(list)
malformed_cursors = st.one_of(
    shaped_cursors.map(lambda values: _b64(json.dumps(values).encode())),
    st.lists(json_scalars, max_size=4).map(lambda values: _b64(json.dumps(values).encode())),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=2).map(
        lambda value: _b64(json.dumps(value).encode())
    ),
    st.binary(max_size=40).map(_b64),
    st.text(max_size=60),
)


# Beyond what the schema's constraints suggest: NUL, a lone surrogate (valid
# JSON, not valid UTF-8), huge and right-to-left strings, numbers past 64 bits,
# containers where scalars belong.
hostile_values = st.one_of(
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\ud800",
            "x" * 100_000,
            "\U0001d54f" * 2_000,
            "\u202e\u0301",
            "' OR 1=1 --",
            "../../etc/passwd",
            "",
            " ",
            2**63,
            -(2**63) - 1,
            2**100,
            1e308,
            -0.0,
            None,
            True,
            [],
            {},
        ]
    ),
    st.text(),
)
# In place of a date-time: the calendar's first and last instants, and past
# its ends once the offset applies.
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT")
edge_instants = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59-01:00",
        "1970-01-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00+24:00",
    ]
)
# Already percent-encoded path segments and query values: invalid UTF-8, an
# overlong slash, a surrogate's bytes, dot segments, NUL, sizes and SQL.
raw_url_values = st.sampled_from(
    [
        "%FF",
        "%C0%AF",
        "%ED%A0%80",
        "..",
        "%2E%2E",
        "%2F",
        "a%00b",
        "x" * 5_000,
        "%F0%9F%92%A9",
        "-1",
        "0",
        "99999999999999999999",
        "1e400",
        "null",
        "%27%20OR%20%271%27%3D%271",
    ]
)


# Bodies that are no JSON at all: not UTF-8, cut short, a trailing comma, NUL.
MALFORMED_JSON = (
    b'{"name": "\xff"}',
    b"\xff\xfe{}",
    b'{"name": ',
    b'{"a": 1,}',
    b"\x00",
    b"{'a': 1}",
)


def _leaves(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value inside a JSON document, the document itself included."""
    if isinstance(value, dict):
        return [at, *(leaf for key, item in value.items() for leaf in _leaves(item, (*at, key)))]
    if isinstance(value, list):
        return [at, *(leaf for i, item in enumerate(value) for leaf in _leaves(item, (*at, i)))]
    return [at]


def _replaced(document: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    copy = document.copy()
    copy[at[0]] = _replaced(document[at[0]], at[1:], value)
    return copy


def mutate(
    data: st.DataObject,
    kwargs: dict[str, Any],
    *,
    path: str,
    case: Any,
    query: set[str],
    kinds: list[str],
) -> str | None:
    """Make the serialised request more hostile than the schema asks: what was changed."""
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    if kind == "body" and "json" in kwargs:
        leaves = _leaves(kwargs["json"])
        at = data.draw(st.sampled_from(leaves), label="body leaf")
        current = functools.reduce(operator.getitem, at, kwargs["json"])
        is_instant = (isinstance(current, str) and DATE_TIME.match(current)) or (
            at and str(at[-1]).endswith("_at")
        )
        value = data.draw(edge_instants if is_instant else hostile_values, label="value")
        kwargs["json"] = _replaced(kwargs["json"], at, value)
        return "body"
    if kind == "raw" and "json" in kwargs:
        kwargs["data"] = data.draw(st.sampled_from(MALFORMED_JSON), label="raw body")
        del kwargs["json"]
        return "raw"
    if kind == "drop" and isinstance(kwargs.get("json"), dict) and kwargs["json"]:
        # Dropping a field can also make an example valid (one of two exclusive ones).
        name = data.draw(st.sampled_from(sorted(kwargs["json"])), label="drop")
        kwargs["json"] = {k: v for k, v in kwargs["json"].items() if k != name}
        return "body"
    if kind == "path" and case.path_parameters:
        url = "http://testserver" + path
        for name, value in case.path_parameters.items():
            raw = data.draw(st.one_of(raw_url_values, st.just(None)), label=f"raw {name}")
            url = url.replace("{" + name + "}", raw or quote(str(value), safe=""))
        kwargs["url"] = url
        return "path"
    if kind == "query" and query:
        name = data.draw(st.sampled_from(sorted(query)), label="query name")
        params = httpx.QueryParams(kwargs.get("params") or {})
        raw = data.draw(raw_url_values, label=f"raw {name}")
        encoded = "&".join(filter(None, [str(params.remove(name)), f"{quote(name)}={raw}"]))
        kwargs["url"] = f"{kwargs['url'].split('?')[0]}?{encoded}"
        kwargs["params"] = None
        return "query"
    return None


def _request_ids() -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.from_regex(REQUEST_ID, fullmatch=True), header_text)


def _authorization(caller: str, tokens: Mapping[str, Mapping[str, str]]) -> Any:
    real = tokens.get(caller, {}).get("Authorization")
    junk = st.one_of(
        header_text,
        header_text.map(lambda text: f"Bearer {text}"),
        st.just("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
        st.just("Basic dXNlcjpwYXNz"),
    )
    if real is None:
        return st.one_of(st.none(), st.none(), junk)
    return st.one_of(st.just(real), st.just(real), st.just(real), junk)


def _documented_headers(operation: Any) -> set[str]:
    return {parameter.name.lower() for parameter in operation.headers}


def _header_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


def _to_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """requests-style keyword arguments (what schemathesis serialises) for httpx."""
    out: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": {
            name: _header_bytes(value)
            for name, value in kwargs.get("headers", {}).items()
            if value is not None
        },
        "params": kwargs.get("params") or None,
    }
    if "json" in kwargs:
        # The stdlib, as requests would: integers beyond 64 bits are fair game.
        out["content"] = json.dumps(kwargs["json"]).encode()
    elif isinstance(kwargs.get("data"), bytes | str):
        out["content"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        out["data"] = kwargs["data"]
    return out


# ------------------------------------------------------------------ the properties


def assert_problem(response: httpx.Response) -> None:
    """Every 4xx is problem+json, with `status` and `request_id` matching the response."""
    assert response.headers.get("content-type", "").startswith("application/problem+json"), (
        response.headers.get("content-type"),
        response.text[:500],
    )
    body = response.json()
    missing = [name for name in PROBLEM_FIELDS if name not in body]
    assert not missing, (missing, body)
    assert body["status"] == response.status_code, body
    assert body["request_id"] == response.headers.get("x-request-id"), body
    assert isinstance(body["detail"], str), body
    assert body["detail"], body
    assert isinstance(body["code"], str), body
    assert body["code"], body
    if response.status_code == 401:
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), body
    if response.status_code == 405:
        assert response.headers.get("allow"), body


def assert_no_leak(response: httpx.Response, sent: bytes) -> None:
    """No trace, SQL or module name in the body, unless the request itself held it."""
    sent_text = sent.decode("utf-8", "replace")
    leaked = [m.group() for m in LEAK.finditer(response.text) if m.group() not in sent_text]
    assert not leaked, (leaked, response.text[:1000])


def assert_request_id(response: httpx.Response, sent: str | None) -> None:
    echoed = response.headers.get("x-request-id")
    assert echoed, "every response carries X-Request-ID"
    if sent is not None and REQUEST_ID.match(sent):
        assert echoed == sent


@dataclass(frozen=True)
class Fuzz:
    schema: schemathesis.BaseSchema
    tokens: dict[str, Mapping[str, str]]
    shop: Shop


@pytest.fixture
async def fuzz(client: httpx.AsyncClient, make_user: MakeUser) -> Fuzz:
    """The served schema, an admin's and a customer's tokens, and a small shop."""
    admin = await make_user(roles=("admin",))
    customer = await make_user(roles=("customer",))
    return Fuzz(
        schema=await served_schema(client),
        tokens={"admin": admin.headers, "customer": customer.headers},
        shop=await open_shop(client, admin=admin.headers, customer=customer.headers),
    )


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=DERANDOMIZE,
    database=None if DERANDOMIZE else settings.default.database,
    deadline=None,
    print_blob=True,
    # The fixtures (app, users, shop) are made once per operation and caller on
    # purpose: the examples share them, and the test's rollback undoes them all.
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_hostile_requests_get_documented_answers_and_never_a_5xx(
    fuzz: Fuzz,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    caller: str,
    data: st.DataObject,
) -> None:
    operation = fuzz.schema[path][method]
    documented = _documented_headers(operation)
    shop = fuzz.shop
    examples = _examples(fuzz.schema, operation)
    sources = ["positive", "negative", "examples"] if examples else ["positive", "negative"]
    source = data.draw(st.sampled_from(sources), label="source")
    mode = GenerationMode.NEGATIVE if source == "negative" else GenerationMode.POSITIVE
    real_ids = {
        name: data.draw(st.sampled_from(values), label=name)
        for name, values in shop.real_values(path).items()
        if data.draw(st.booleans(), label=f"real {name}")
    }
    fixed_headers: dict[str, str] = {}
    if "x-cart-token" in documented and data.draw(st.booleans(), label="real cart token"):
        fixed_headers["X-Cart-Token"] = data.draw(st.sampled_from(shop.cart_tokens))
    fixed_query: dict[str, str] = {}
    if "cursor" in {p.name for p in operation.query} and data.draw(st.booleans(), label="bad"):
        values = data.draw(st.one_of(shaped_cursors, st.just(None)), label="shaped")
        if values is None:
            fixed_query["cursor"] = data.draw(malformed_cursors, label="cursor")
        else:
            fixed_query["cursor"] = _b64(json.dumps(values).encode())
            if "sort" in {p.name for p in operation.query} and values[0] in SORTS:
                fixed_query["sort"] = values[0]  # a cursor is only read for its own sort
    if source == "examples":
        # The schema's own examples, with real ids and values: valid requests
        # that reach the database, mutated below more often than not.
        case = data.draw(st.one_of(examples), label="example")
        case.path_parameters = {**(case.path_parameters or {}), **real_ids}
        case.headers = {**(case.headers or {}), **fixed_headers}
        if "idempotency-key" in documented and data.draw(st.booleans(), label="key"):
            case.headers["Idempotency-Key"] = data.draw(st.uuids(), label="uuid").hex
        if isinstance(case.body, dict):
            case.body = {
                name: data.draw(st.sampled_from([value, *shop.by_field[name]]), label=name)
                if name in shop.by_field
                else value
                for name, value in case.body.items()
            }
    else:
        case = data.draw(
            operation.as_strategy(
                generation_mode=mode,
                path_parameters=real_ids or None,
                headers=fixed_headers or None,
                query=fixed_query or None,
            ),
            label="case",
        )
    extra: dict[str, str] = {}
    authorization = data.draw(_authorization(caller, fuzz.tokens), label="Authorization")
    if authorization is not None:
        extra["Authorization"] = authorization
    for name in ("Idempotency-Key", "X-Cart-Token", "If-Match"):
        if name.lower() not in documented and data.draw(st.booleans(), label=f"add {name}"):
            extra[name] = data.draw(header_text, label=name)
    request_id = data.draw(_request_ids(), label="X-Request-ID")
    if request_id is not None:
        extra["X-Request-ID"] = request_id

    transport_kwargs = case.as_transport_kwargs(base_url="http://testserver")
    query_names = {parameter.name for parameter in operation.query}
    kinds = ["none", "none", "none", "body", "path", "query", "raw"]
    if source == "examples":
        kinds = ["none", "body", "body", "drop", "path", "query"]
    # One change at a time, or a few on an example (drop one of two exclusive
    # fields, then put a hostile value in another).
    rounds = data.draw(st.integers(1, 3), label="rounds") if source == "examples" else 1
    changes = {
        mutate(data, transport_kwargs, path=path, case=case, query=query_names, kinds=kinds)
        for _ in range(rounds)
    }
    mutated = "path" if "path" in changes else next(iter(changes - {None}), None)
    kwargs = _to_httpx(transport_kwargs)
    kwargs["headers"].update({name: _header_bytes(value) for name, value in extra.items()})
    response = await client.request(**kwargs)
    # What the request itself held (a request id is echoed in the body, for one).
    sent = b" ".join(
        [
            response.request.url.raw_path,
            response.request.content,
            *(value for _, value in response.request.headers.raw),
        ]
    )

    assert response.status_code < 500, (response.status_code, response.text[:1000])
    assert_request_id(response, request_id)
    assert_no_leak(response, sent)
    if response.status_code >= 400:
        assert_problem(response)
    checks = list(CHECKS)
    if source == "negative" and mutated is None:
        # A mutation may have made the request valid: only unmutated ones must be refused.
        checks.append(negative_data_rejection)
    if "raw" in changes and not changes & {"path", "query"} and b"%00" not in sent:
        # The body is read before anything but the URL's NUL check looks at the
        # request (token, ids, query).
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "malformed_json", response.text
    if mutated == "path":
        # `%2F` or `..` in a segment can lead to another route, to none, or to
        # the framework's redirect of a path with a trailing slash.
        checks.remove(status_code_conformance)
        documented_statuses = {int(s) for s in operation.responses.status_codes}
        assert response.status_code in documented_statuses | {307, 404, 405}, response.text
    case.validate_response(response, checks=checks)
