"""Bearer-token authentication for the HTTP server.

Two optional tokens: the API token guards generation and info, the admin token guards admin
routes (reload). Admin routes are never open: with no token configured at all they answer 403
and say how to configure one. Health and readiness never need a token.

Tokens are compared in constant time and never logged, echoed or hinted at.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .._exceptions import AuthenticationError, PermissionDeniedError

__all__ = ["BEARER", "TokenAuth", "require_admin_token", "require_api_token"]

#: The OpenAPI security scheme (shows the "Authorize" button in /docs). It only parses the
#: header; :class:`TokenAuth` decides.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="`Authorization: Bearer <token>`: the server's --token (or --admin-token).",
)


_Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class TokenAuth:
    """Checks bearer tokens for the two route groups.

    Args:
        api_key: Token for generation and info routes; ``None`` leaves them open.
        admin_key: Token for admin routes; ``None`` falls back to ``api_key``.

    Example:
        >>> auth = TokenAuth(api_key="s3cret")
        >>> auth.admin_configured
        True
    """

    api_key: str | None = None
    admin_key: str | None = None

    def __repr__(self) -> str:  # never show the tokens
        return (
            f"TokenAuth(api_key={'set' if self.api_key else None}, "
            f"admin_key={'set' if self.admin_key else None})"
        )

    @property
    def admin_configured(self) -> bool:
        """Whether any token can open the admin routes."""
        return bool(self.admin_key or self.api_key)

    def check_api(self, token: str | None) -> None:
        """Allow a generation/info call.

        Args:
            token: The bearer token the client sent, or ``None``.

        Raises:
            AuthenticationError: A token is configured and ``token`` is missing or wrong.
        """
        if not self.api_key:
            return
        accepted = [self.api_key] + ([self.admin_key] if self.admin_key else [])
        if token is None:
            raise AuthenticationError(
                "This server requires a bearer token: send 'Authorization: Bearer <token>'."
            )
        if not any(_matches(token, key) for key in accepted):
            raise AuthenticationError("The bearer token was not accepted.")

    def check_admin(self, token: str | None) -> None:
        """Allow an admin call.

        Args:
            token: The bearer token the client sent, or ``None``.

        Raises:
            PermissionDeniedError: No token is configured on the server (admin routes are
                then closed).
            AuthenticationError: The token is missing or wrong.
        """
        expected = self.admin_key or self.api_key
        if not expected:
            raise PermissionDeniedError(
                "Admin routes are disabled because the server has no token configured. "
                "Start it with --admin-token (or --token, or JAGUAR_SERVER_TOKEN) to enable them."
            )
        if token is None:
            raise AuthenticationError(
                "Admin routes require the admin bearer token: send 'Authorization: Bearer <token>'."
            )
        if not _matches(token, expected):
            raise AuthenticationError("The bearer token was not accepted for admin routes.")


def _auth_of(request: Request) -> TokenAuth:
    auth = request.app.state.jaguar_auth
    assert isinstance(auth, TokenAuth)
    return auth


async def require_api_token(request: Request, credentials: _Credentials) -> None:
    """FastAPI dependency: the API token, when one is configured."""
    _auth_of(request).check_api(credentials.credentials if credentials else None)


async def require_admin_token(request: Request, credentials: _Credentials) -> None:
    """FastAPI dependency: the admin token, always."""
    _auth_of(request).check_admin(credentials.credentials if credentials else None)
