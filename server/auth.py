"""Bearer tokens: verifying them into a Viewer, minting them, and the generated dev secret."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt

from schema.context import READ, WRITE, Viewer

DEFAULT_SCOPES = (READ, WRITE)
_HMAC_ALGORITHMS = ("HS256",)
# Verified tokens kept, each until its expiry: clients send the same token with every request,
# and checking its signature again cost about a sixth of a small query's CPU.
_CACHE_SIZE = 4096
_PUBLIC_KEY_ALGORITHMS = ("RS256", "ES256")


class AuthError(Exception):
    """The request carries no usable token; the message says why, without secrets."""


class TokenVerifier:
    """Checks signature, expiry and (when configured) issuer and audience of bearer tokens."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        if secret is None and public_key is None:
            raise ValueError("a JWT secret or public key is required")
        self._keys: dict[str, Any] = {}
        if secret is not None:
            self._keys.update(dict.fromkeys(_HMAC_ALGORITHMS, secret))
        if public_key is not None:
            self._keys.update(dict.fromkeys(_PUBLIC_KEY_ALGORITHMS, public_key))
        self._issuer = issuer
        self._audience = audience
        self._verified: OrderedDict[str, tuple[Viewer, float]] = OrderedDict()

    def verify(self, token: str) -> Viewer:
        """The viewer a token names, or AuthError; a token verified before is not re-checked
        until it expires (the keys, issuer and audience are fixed for the process)."""
        cached = self._verified.get(token)
        if cached is not None:
            viewer, expires = cached
            if time.time() < expires:
                self._verified.move_to_end(token)
                return viewer
            del self._verified[token]
        viewer, expires = self._verify(token)
        self._verified[token] = (viewer, expires)
        if len(self._verified) > _CACHE_SIZE:
            self._verified.popitem(last=False)
        return viewer

    def _verify(self, token: str) -> tuple[Viewer, float]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise AuthError("Malformed token.") from None
        # Only the algorithms we hold a key for: never "none", never HMAC with a public key.
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None or not isinstance(algorithm, str):
            raise AuthError("Token signed with an algorithm this server does not accept.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("Token expired.") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"Invalid token: {exc}.") from None
        # `exp` is required, so decode has checked that it is a number.
        return _viewer(claims), float(claims["exp"])

    def from_authorization(self, value: object) -> Viewer:
        """The viewer of an `Authorization: Bearer <JWT>` value (header or connection_init)."""
        if not isinstance(value, str) or not value:
            raise AuthError("Missing bearer token.")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Authorization must be 'Bearer <token>'.")
        return self.verify(token.strip())


def _viewer(claims: dict[str, Any]) -> Viewer:
    sub = claims.get("sub")
    workspaces = claims.get("workspaces", [])
    scope = claims.get("scope", "")
    if not isinstance(sub, str) or not sub:
        raise AuthError("Token has no subject.")
    if not isinstance(workspaces, list) or not all(isinstance(w, str) for w in workspaces):
        raise AuthError("Token claim 'workspaces' must be a list of workspace ids.")
    if not isinstance(scope, str):
        raise AuthError("Token claim 'scope' must be a space-separated string.")
    return Viewer(user_id=sub, workspaces=frozenset(workspaces), scopes=frozenset(scope.split()))


def mint_token(
    secret: str,
    *,
    user: str,
    workspaces: Iterable[str],
    scopes: Iterable[str] = DEFAULT_SCOPES,
    ttl_s: int = 24 * 3600,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token for `user` on `workspaces`."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "workspaces": list(workspaces),
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl_s,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


def load_or_create_secret(data_dir: Path) -> str:
    """The signing secret kept in the data directory, created on first use (mode 0600)."""
    path = data_dir / "jwt-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".jwt-secret.{os.getpid()}"
        tmp.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        # link() fails if the name exists: when several processes start at once, one secret wins.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return path.read_text(encoding="utf-8").strip()
