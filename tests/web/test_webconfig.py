"""web-config.yml: validation errors, basic auth, headers, TLS and client certificates."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from pytest_aiohttp import AiohttpClient

from watchkeeper.config.webconfig import build_ssl_context, load_web_config
from watchkeeper.config.yamlsource import ConfigError
from watchkeeper.testing.web import make_api_deps
from watchkeeper.web.app import WebOptions, create_app, serve


def _auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web-config.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "basic_auth_users:\n  a: x\nfoo: 1\n",
            "web-config.yml:3: foo: field foo not found in type",
        ),
        (
            "http_server_config:\n  headers:\n    Server: x\n",
            "web-config.yml:3: "
            'http_server_config.headers.Server: HTTP header "Server" can not be configured',
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "web-config.yml:3: http_server_config.headers.X-Frame-Options: invalid value",
        ),
        (
            "tls_server_config:\n  cert_file: a.crt\n",
            "web-config.yml:2: tls_server_config: missing key_file",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n",
            "web-config.yml:4: tls_server_config.client_auth_type: Invalid ClientAuth: Sometimes",
        ),
        (
            "basic_auth_users:\n  alice: plaintext\n",
            "web-config.yml:2: basic_auth_users.alice: not a bcrypt hash",
        ),
    ],
)
def test_invalid_web_configs_are_refused_with_file_and_line(
    tmp_path: Path, text: str, error: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_web_config(_write(tmp_path, text))
    assert error in str(info.value)


def test_an_empty_web_config_means_plain_http_without_auth(tmp_path: Path) -> None:
    config = load_web_config(_write(tmp_path, ""))
    assert config.tls is None
    assert build_ssl_context(config) is None


async def test_basic_auth_refuses_wrong_passwords_and_headers_are_added(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    path = _write(
        tmp_path,
        f"basic_auth_users:\n  alice: {hashed}\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny"
        "\n    X-Content-Type-Options: nosniff\n",
    )
    app = create_app(make_api_deps(), WebOptions(web_config_file=str(path)))
    client = await aiohttp_client(app)
    resp = await client.get("/api/v1/labels", headers=_auth("alice", "wrong"))
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Basic"
    assert (await client.get("/-/healthy")).status == 401
    resp = await client.get("/api/v1/labels", headers=_auth("bob", "s3cret"))
    assert resp.status == 401
    resp = await client.get("/api/v1/labels", headers=_auth("alice", "s3cret"))
    assert resp.status == 200
    assert resp.headers["X-Frame-Options"] == "deny"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed: cannot make test certificates")
    d = tmp_path_factory.mktemp("certs")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            cwd=d,
        )
    return d


def _client_context(certs: Path, *, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    if with_cert:
        ctx.load_cert_chain(certs / "client.crt", certs / "client.key")
    return ctx


@pytest.mark.integration
async def test_tls_is_served_and_plain_http_is_refused(certs: Path, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {certs}/server.crt\n  key_file: {certs}/server.key\n",
    )
    options = WebOptions(listen_address="127.0.0.1:0", web_config_file=str(path))
    runner, port = await serve(create_app(make_api_deps(), options), options)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"https://127.0.0.1:{port}/-/healthy", ssl=_client_context(certs, with_cert=False)
            ) as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/-/healthy") as resp:
                    assert resp.status != 200
    finally:
        await runner.cleanup()


@pytest.mark.integration
async def test_client_certificates_are_required_when_configured(
    certs: Path, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {certs}/server.crt\n  key_file: {certs}/server.key\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {certs}/ca.crt\n"
        "  min_version: TLS12\n",
    )
    options = WebOptions(listen_address="127.0.0.1:0", web_config_file=str(path))
    runner, port = await serve(create_app(make_api_deps(), options), options)
    url = f"https://127.0.0.1:{port}/-/healthy"
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url, ssl=_client_context(certs, with_cert=False)) as resp:
                    await resp.read()
            async with session.get(url, ssl=_client_context(certs, with_cert=True)) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()
