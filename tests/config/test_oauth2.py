from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.config.httpclient import HTTPClientConfig
from watchkeeper.config.oauth2 import OAuth2Error, RequestAuthorizer
from watchkeeper.testing.clock import ManualClock
from watchkeeper.testing.oauth2 import TokenServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    await server.start()
    yield server
    await server.stop()


def authorizer(
    server: TokenServer, clock: ManualClock | None = None, **oauth2: Any
) -> RequestAuthorizer:
    block = {"client_id": server.client_id, "token_url": server.token_url, **oauth2}
    block.setdefault("client_secret", server.client_secret)
    cfg = HTTPClientConfig.model_validate({"oauth2": block})
    return cfg.new_authorizer(clock=clock or ManualClock(1_000_000))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_client_credentials_go_in_a_basic_auth_header_first(
    token_server: TokenServer,
) -> None:
    token_server.client_id = "my id"
    token_server.client_secret = "s&cret"
    auth = authorizer(token_server, scopes=["read", "write"], endpoint_params={"audience": "x"})
    assert await auth.authorization_header(user_agent="Prometheus/3.5.3") == "Bearer token-1"
    (req,) = token_server.requests
    # NB: x/oauth2 query-escapes the id and secret inside the basic-auth header.
    assert req.authorization == "Basic bXkraWQ6cyUyNmNyZXQ="
    assert req.user_agent == "Prometheus/3.5.3"
    assert req.form == {"grant_type": "client_credentials", "scope": "read write", "audience": "x"}


async def test_credentials_move_to_the_form_when_the_header_is_refused(
    token_server: TokenServer,
) -> None:
    token_server.accept_basic_auth = False
    clock = ManualClock(0)
    auth = authorizer(token_server, clock)
    assert await auth.authorization_header() == "Bearer token-1"
    first, second = token_server.requests
    assert first.authorization.startswith("Basic ")
    assert second.authorization == ""
    assert second.form["client_id"] == "watchkeeper"
    assert second.form["client_secret"] == "s3cret"
    clock.advance(3600_000)
    assert await auth.authorization_header() == "Bearer token-2"
    # The style that worked is remembered: no second probe with the header.
    assert len(token_server.requests) == 3
    assert token_server.requests[2].authorization == ""


async def test_token_is_reused_until_ten_seconds_before_it_expires(
    token_server: TokenServer,
) -> None:
    token_server.expires_in = 60
    clock = ManualClock(0)
    auth = authorizer(token_server, clock)
    assert await auth.authorization_header() == "Bearer token-1"
    clock.advance(50_000)
    assert await auth.authorization_header() == "Bearer token-1"
    clock.advance(1)
    assert await auth.authorization_header() == "Bearer token-2"
    assert len(token_server.requests) == 2


async def test_token_without_expiry_is_kept(token_server: TokenServer) -> None:
    token_server.expires_in = None
    clock = ManualClock(0)
    auth = authorizer(token_server, clock)
    for _ in range(3):
        assert await auth.authorization_header() == "Bearer token-1"
        clock.advance(10**9)
    assert len(token_server.requests) == 1


async def test_token_type_is_spelled_as_go_spells_it(token_server: TokenServer) -> None:
    token_server.token_type = "mac"
    assert await authorizer(token_server).authorization_header() == "MAC token-1"


async def test_secret_file_is_reread_and_a_new_secret_gets_a_new_token(
    token_server: TokenServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    auth = authorizer(token_server, client_secret="", client_secret_file=str(secret))
    assert await auth.authorization_header() == "Bearer token-1"
    assert await auth.authorization_header() == "Bearer token-1"
    token_server.client_secret = "rotated"
    secret.write_text("rotated\n")
    assert await auth.authorization_header() == "Bearer token-2"
    assert len(token_server.requests) == 2
    secret.unlink()
    with pytest.raises(OAuth2Error) as info:
        await auth.authorization_header()
    assert str(info.value) == (
        f"unable to read oauth2 client secret: unable to read file {secret}: "
        f"open {secret}: no such file or directory"
    )


async def test_oauth_error_body_is_reported_as_go_reports_it(token_server: TokenServer) -> None:
    auth = authorizer(token_server, client_secret="wrong")
    with pytest.raises(OAuth2Error) as info:
        await auth.authorization_header()
    assert str(info.value) == 'oauth2: "invalid_client" "unknown client or secret"'
    # Failures are not cached: header, then form, on every attempt.
    with pytest.raises(OAuth2Error):
        await auth.authorization_header()
    assert len(token_server.requests) == 4


async def test_unreachable_token_endpoint_is_reported_with_the_dial_error() -> None:
    port = free_port()
    cfg = HTTPClientConfig.model_validate(
        {"oauth2": {"client_id": "c", "token_url": f"http://127.0.0.1:{port}/token"}}
    )
    with pytest.raises(OAuth2Error) as info:
        await cfg.new_authorizer().authorization_header()
    assert str(info.value) == (
        f'Post "http://127.0.0.1:{port}/token": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused"
    )


async def test_endpoint_params_cannot_overwrite_the_scope(token_server: TokenServer) -> None:
    auth = authorizer(token_server, scopes=["a"], endpoint_params={"scope": "b"})
    with pytest.raises(OAuth2Error, match=r'oauth2: cannot overwrite parameter "scope"'):
        await auth.authorization_header()
    assert token_server.requests == []


async def test_token_request_goes_through_the_oauth2_proxy(token_server: TokenServer) -> None:
    # The token server is the proxy here: a forward proxy gets the absolute URL, and this
    # one answers it itself, which proves the request went to proxy_url.
    auth = authorizer(
        token_server,
        token_url="http://token.invalid/token",
        proxy_url=f"http://{token_server.address}",
    )
    assert await auth.authorization_header() == "Bearer token-1"


async def test_no_proxy_sends_the_token_request_directly(token_server: TokenServer) -> None:
    auth = authorizer(
        token_server, proxy_url=f"http://127.0.0.1:{free_port()}", no_proxy="localhost,127.0.0.0/8"
    )
    assert await auth.authorization_header() == "Bearer token-1"


async def test_static_credentials_still_come_from_their_files(tmp_path: Path) -> None:
    creds = tmp_path / "token"
    creds.write_text("abc\n")
    cfg = HTTPClientConfig.model_validate({"authorization": {"credentials_file": str(creds)}})
    auth = cfg.new_authorizer()
    assert await auth.authorization_header() == "Bearer abc"
    creds.write_text("def\n")
    assert await auth.authorization_header() == "Bearer def"
    assert await HTTPClientConfig().new_authorizer().authorization_header() is None
