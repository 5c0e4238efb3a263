"""The carts feature's errors, as clients see them."""

from __future__ import annotations

from congocart.core.errors import CongoError


class CartNotFound(CongoError):
    # Also what someone else's cart answers: existence never leaks.
    status_code = 404
    code = "cart_not_found"
    default_detail = "There is no such cart."


class CartItemNotFound(CongoError):
    status_code = 404
    code = "cart_item_not_found"
    default_detail = "There is no such item in this cart."


class CartClosed(CongoError):
    status_code = 409
    code = "cart_closed"
    default_detail = "This cart has been checked out and can no longer change."


class CartEmpty(CongoError):
    status_code = 409
    code = "cart_empty"
    default_detail = "The cart is empty."


class SkuNotFound(CongoError):
    status_code = 404
    code = "sku_not_found"
    default_detail = "There is no product variant with this SKU."


class SkuUnavailable(CongoError):
    status_code = 409
    code = "sku_unavailable"
    default_detail = "This product is no longer sold."


class CurrencyNotSupported(CongoError):
    status_code = 422
    code = "currency_not_supported"
    default_detail = "The shop does not sell in this currency."


class InvalidQuantity(CongoError):
    status_code = 422
    code = "invalid_quantity"
    default_detail = "A line's quantity must be between 1 and 99."


class TooManyLines(CongoError):
    status_code = 422
    code = "too_many_lines"
    default_detail = "A cart holds at most 100 lines."


class ShippingMethodInvalid(CongoError):
    status_code = 422
    code = "shipping_method_invalid"
    default_detail = "This shipping method does not exist or does not ship there."


class InvalidCountry(CongoError):
    status_code = 422
    code = "invalid_country"
    default_detail = "The country must be an ISO 3166-1 alpha-2 code."


class VersionMismatch(CongoError):
    # Optimistic concurrency: the client's `If-Match` names a version that is no longer current.
    status_code = 412
    code = "version_mismatch"
    default_detail = "The cart has changed since that version; read it again and retry."


class IfMatchInvalid(CongoError):
    status_code = 400
    code = "if_match_invalid"
    default_detail = 'If-Match must be the cart version, e.g. `If-Match: 3` or `If-Match: "3"`.'
