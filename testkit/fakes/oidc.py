"""A small OpenID Connect provider on loopback: discovery, JWKS, authorize (consents at once for its one
signed-in user) and token, issuing real RS256-signed ID tokens made with authlib.jose.

It checks what a real provider checks: the client's id and secret (client_secret_basic), the registered
redirect URI, that a code is used once, and the PKCE verifier against the challenge.
"""

from __future__ import annotations

import base64
import secrets
import time
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp import web

with warnings.catch_warnings():
    import authlib.deprecate

    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, jwt
    from authlib.oauth2.rfc7636 import create_s256_code_challenge


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    email: str


@dataclass
class FakeOidcProvider:
    client_id: str = "signoff-web"
    client_secret: str = "oidc-client-secret-0123456789"
    email: str = "alice@example.com"  # who is signed in at the provider
    email_verified: bool = True
    rogue_key: bool = False  # sign ID tokens with a key that is not in the JWKS
    issued: list[dict[str, Any]] = field(default_factory=list)  # the claims of every ID token issued
    _grants: dict[str, Grant] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    issuer: str = ""

    def __post_init__(self) -> None:
        self._key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "fake-1"})
        self._rogue = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "fake-1"})

    async def start(self) -> str:
        http = web.Application()
        http.router.add_get("/.well-known/openid-configuration", self._discovery)
        http.router.add_get("/jwks", self._jwks)
        http.router.add_get("/authorize", self._authorize)
        http.router.add_post("/token", self._token)
        self._runner = web.AppRunner(http, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.issuer = f"http://127.0.0.1:{port}"
        return self.issuer

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self._key.as_dict(is_private=False)]})

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return web.Response(status=400, text="unknown client or response type")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("nonce"):
            return web.Response(status=400, text="PKCE (S256) and a nonce are required")
        code = secrets.token_urlsafe(16)
        self._grants[code] = Grant(self.client_id, q["redirect_uri"], q["nonce"], q["code_challenge"], self.email)
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            given_id, _, given_secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            given_id = given_secret = ""
        if scheme != "Basic" or (unquote(given_id), unquote(given_secret)) != (self.client_id, self.client_secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self._grants.pop(str(form.get("code", "")), None)
        if (grant is None or form.get("grant_type") != "authorization_code"
                or form.get("redirect_uri") != grant.redirect_uri):
            return web.json_response({"error": "invalid_grant"}, status=400)
        if create_s256_code_challenge(str(form.get("code_verifier", ""))) != grant.challenge:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": grant.email.split("@")[0], "aud": self.client_id, "iat": now,
                  "exp": now + 300, "nonce": grant.nonce, "email": grant.email, "email_verified": self.email_verified}
        key = self._rogue if self.rogue_key else self._key
        id_token = jwt.encode({"alg": "RS256", "kid": "fake-1"}, claims, key).decode()
        self.issued.append(claims)
        return web.json_response({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                  "expires_in": 300, "id_token": id_token})
