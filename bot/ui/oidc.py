"""OIDC sign-in (authorization code with PKCE) through authlib: discovery, the authorize redirect, the code
exchange, and the ID token checked with authlib's OIDC claims (issuer, audience, expiry, nonce) against the
provider's JWKS. People are matched by `[people.*] email`."""

from __future__ import annotations

import base64
import secrets
import time
import warnings
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import structlog

from core.domain.policy import Person, Policy

log = structlog.get_logger(__name__)
DISCOVERY_TTL_S = 300.0
TIMEOUT = aiohttp.ClientTimeout(total=10)


def _authlib() -> Any:
    """authlib's JOSE and OIDC pieces, imported on the first sign-in rather than before the server may listen."""
    with warnings.catch_warnings():  # authlib.jose warns that it will move to joserfc; it stays until authlib 2.0
        import authlib.deprecate  # installs an "always" filter of its own, which the next line overrides here

        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        from authlib import jose
        from authlib.jose import errors
        from authlib.oauth2 import rfc7636
        from authlib.oidc import core
    return SimpleNamespace(JsonWebKey=jose.JsonWebKey, jwt=jose.jwt, JoseError=errors.JoseError,
                           create_s256_code_challenge=rfc7636.create_s256_code_challenge,
                           CodeIDToken=core.CodeIDToken)


class SignInRefused(Exception):
    """A sign-in that did not work, with the sentence the person reads."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


class OidcClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str | None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._discovery: dict[str, Any] | None = None
        self._fetched_at = 0.0

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(url) as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("ui.oidc_unreachable", url=url, error=type(exc).__name__)
            raise SignInRefused("The sign-in provider (SIGNOFF_OIDC_ISSUER) cannot be reached right now; "
                                "try again in a minute, or sign in with the API token.") from None
        if not isinstance(data, dict):
            raise SignInRefused("The sign-in provider answered something that is not JSON; check SIGNOFF_OIDC_ISSUER.")
        return data

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None or time.monotonic() - self._fetched_at > DISCOVERY_TTL_S:
            found = await self._get_json(self.issuer + "/.well-known/openid-configuration")
            if str(found.get("issuer", "")).rstrip("/") != self.issuer:
                raise SignInRefused("The sign-in provider names another issuer than SIGNOFF_OIDC_ISSUER; "
                                    "fix the setting.")
            self._discovery, self._fetched_at = found, time.monotonic()
        return self._discovery

    async def authorize_url(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """Where to send the browser, and what to keep (state, nonce, PKCE verifier) until it comes back."""
        endpoint = str((await self.discovery())["authorization_endpoint"])
        kept = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                "verifier": secrets.token_urlsafe(48), "redirect_uri": redirect_uri}
        query = urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
            "scope": "openid email profile", "state": kept["state"], "nonce": kept["nonce"],
            "code_challenge": _authlib().create_s256_code_challenge(kept["verifier"]), "code_challenge_method": "S256",
        })
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", kept

    async def claims(self, code: str, kept: dict[str, str]) -> dict[str, Any]:
        """Exchange the code and return the ID token's checked claims."""
        found = await self.discovery()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": kept["redirect_uri"],
                "code_verifier": kept["verifier"], "client_id": self.client_id}
        headers = {}
        if self._secret is not None:  # client_secret_basic, the names form-encoded first (RFC 6749 §2.3.1)
            pair = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as http, \
                    http.post(str(found["token_endpoint"]), data=form, headers=headers) as response:
                tokens = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise SignInRefused("The sign-in provider did not answer the code exchange; "
                                "try signing in again.") from None
        if status != 200 or not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str):
            log.warning("ui.oidc_token_refused", status=status)
            raise SignInRefused("The sign-in provider refused the code exchange (check SIGNOFF_OIDC_CLIENT_ID and "
                                "SIGNOFF_OIDC_CLIENT_SECRET); try signing in again.")
        authlib = _authlib()
        keys = authlib.JsonWebKey.import_key_set(await self._get_json(str(found["jwks_uri"])))
        try:
            claims = authlib.jwt.decode(
                tokens["id_token"], keys, claims_cls=authlib.CodeIDToken,
                claims_options={"iss": {"essential": True, "value": self.issuer}},
                claims_params={"nonce": kept["nonce"], "client_id": self.client_id,
                               "access_token": tokens.get("access_token")},
            )
            claims.validate(leeway=60)
        except (authlib.JoseError, ValueError) as exc:
            log.warning("ui.oidc_id_token_refused", error=type(exc).__name__)
            raise SignInRefused("The sign-in provider's ID token did not check out (signature, issuer, audience, "
                                "expiry or nonce); try signing in again.") from None
        return dict(claims)


def person_for(policy: Policy, claims: dict[str, Any]) -> Person:
    """The person of the policy whose `email` is the token's, or a refusal that says what would work."""
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise SignInRefused("Your sign-in carries no email address; signoff matches people by email. "
                            "Ask an admin to release the `email` claim to signoff.")
    if claims.get("email_verified") is False:
        raise SignInRefused(f"Your email address {email} is not verified at the sign-in provider; verify it there "
                            "and sign in again.")
    wanted = email.casefold()
    for person in policy.people.values():
        if person.email is not None and person.email.casefold() == wanted:
            return person
    raise SignInRefused(f"{email} is not a person in the policy ({policy.source}): ask an admin to add "
                        f"`email = \"{email}\"` to your entry under [people.<name>].")
