"""An OAuth 2.0 token endpoint and a protected target for tests: a real aiohttp server.

POST /token grants client-credentials tokens ("token-1", "token-2", ...) to the configured
client, with the id and secret in a basic-auth header or in the form. GET /metrics (a
target), GET /sd (HTTP service discovery) and POST /api/v2/alerts (an Alertmanager) answer
only requests bearing the latest token (earlier ones count as revoked unless
`only_latest_token` is False). Every token request and every alert post is recorded.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from aiohttp import web


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One request seen by /token."""

    authorization: str
    user_agent: str
    form: dict[str, str]


@dataclass
class TokenServer:
    """Grants tokens to one client and guards /metrics with them."""

    client_id: str = "watchkeeper"
    client_secret: str = "s3cret"
    expires_in: int | None = 3600
    accept_basic_auth: bool = True
    """False makes the server refuse credentials in the header, as some servers do."""
    token_type: str = "bearer"
    only_latest_token: bool = True
    metrics_body: str = "a 1\n"
    sd_body: str = "[]"
    alert_posts: list[bytes] = field(default_factory=list)
    requests: list[TokenRequest] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def token_url(self) -> str:
        """The URL of the token endpoint."""
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def address(self) -> str:
        """host:port of the protected target."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listens on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/sd", self._sd)
        app.router.add_post("/api/v2/alerts", self._alerts)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stops listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        authorization = request.headers.get("Authorization", "")
        self.requests.append(
            TokenRequest(authorization, request.headers.get("User-Agent", ""), form)
        )
        if authorization.startswith("Basic "):
            if not self.accept_basic_auth:
                return web.json_response({"error": "invalid_request"}, status=400)
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            credentials = (unquote_plus(user), unquote_plus(password))
        else:
            credentials = (form.get("client_id", ""), form.get("client_secret", ""))
        if credentials != (self.client_id, self.client_secret):
            return web.json_response(
                {"error": "invalid_client", "error_description": "unknown client or secret"},
                status=401,
            )
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"token-{len(self.granted) + 1}"
        self.granted.append(token)
        body: dict[str, object] = {"access_token": token, "token_type": self.token_type}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return web.json_response(body)

    def _is_authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not self.granted:
            return False
        return token == self.granted[-1] or (not self.only_latest_token and token in self.granted)

    async def _metrics(self, request: web.Request) -> web.Response:
        if not self._is_authorized(request):
            return _unauthorized()
        return web.Response(text=self.metrics_body, content_type="text/plain")

    async def _sd(self, request: web.Request) -> web.Response:
        if not self._is_authorized(request):
            return _unauthorized()
        return web.Response(text=self.sd_body, content_type="application/json")

    async def _alerts(self, request: web.Request) -> web.Response:
        if not self._is_authorized(request):
            return _unauthorized()
        self.alert_posts.append(await request.read())
        return web.Response(status=200)


def _unauthorized() -> web.Response:
    return web.Response(status=401, text="missing or unknown bearer token\n")
