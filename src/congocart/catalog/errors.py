"""The catalog's errors: each an HTTP status and a stable code."""

from __future__ import annotations

from collections.abc import Sequence

from congocart.core.errors import CongoError


class ProductNotFound(CongoError):
    status_code = 404
    code = "product_not_found"
    default_detail = "No such product."


class SkuNotFound(CongoError):
    status_code = 404
    code = "sku_not_found"
    default_detail = "No variant has this SKU."


class SlugTaken(CongoError):
    status_code = 409
    code = "slug_taken"
    default_detail = "Another product already uses this slug."


class SkuTaken(CongoError):
    status_code = 409
    code = "sku_taken"

    def __init__(self, skus: Sequence[str]) -> None:
        self.skus = sorted(skus)
        super().__init__(f"SKU already in use: {', '.join(self.skus)}.")


class InsufficientStock(CongoError):
    status_code = 409
    code = "insufficient_stock"
    default_detail = "On-hand stock cannot drop below what is reserved."


class StockLimitExceeded(CongoError):
    status_code = 409
    code = "stock_limit_exceeded"
    default_detail = "On-hand stock cannot exceed 1,000,000,000 units."


class OutOfStock(CongoError):
    """Some lines cannot be reserved; `skus` names them (ascending)."""

    status_code = 409
    code = "out_of_stock"

    def __init__(self, skus: Sequence[str]) -> None:
        self.skus = sorted(skus)
        super().__init__(f"Not enough stock for: {', '.join(self.skus)}.")


class StockNotReserved(CongoError):
    """Releasing or selling more than is reserved: a bookkeeping error of the caller."""

    status_code = 409
    code = "stock_not_reserved"

    def __init__(self, skus: Sequence[str]) -> None:
        self.skus = sorted(skus)
        super().__init__(f"Less stock is reserved than requested for: {', '.join(self.skus)}.")


class WrongCurrency(CongoError):
    status_code = 422
    code = "validation_failed"

    def __init__(self, *, field: str, currency: str) -> None:
        super().__init__(
            "The request failed validation; see `errors`.",
            errors=[
                {"field": field, "message": f"prices must be in {currency}, the shop currency"}
            ],
        )


class InvalidPriceRange(CongoError):
    status_code = 422
    code = "validation_failed"

    def __init__(self, *, field: str, message: str) -> None:
        super().__init__(
            "The request failed validation; see `errors`.",
            errors=[{"field": field, "message": message}],
        )
