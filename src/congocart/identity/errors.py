"""Identity's errors: each a status and a stable code."""

from __future__ import annotations

from congocart.core.errors import CongoError


class EmailTaken(CongoError):
    status_code = 409
    code = "email_taken"
    default_detail = "An account with this email already exists."


class InvalidCredentials(CongoError):
    status_code = 401
    code = "invalid_credentials"
    default_detail = "The email or password is incorrect."


class RefreshTokenReused(CongoError):
    status_code = 401
    code = "refresh_token_reused"
    default_detail = (
        "This refresh token was already used; the session has been revoked. Log in again."
    )
    # The family revocation must be committed even though the request fails.
    keeps_changes = True


class UserNotFound(CongoError):
    status_code = 404
    code = "user_not_found"
    default_detail = "No user has this id."


class OwnAdminRoleRequired(CongoError):
    status_code = 409
    code = "own_admin_role_required"
    default_detail = "An admin cannot remove their own admin role."
