"""web-config.yml: validation errors, basic auth, headers, TLS and client certificates."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from pytest_aiohttp import AiohttpClient

from watchkeeper.config.webconfig import build_ssl_context, load_web_config
from watchkeeper.config.yamlsource import ConfigError
from watchkeeper.testing.peers import peer_binary
from watchkeeper.testing.process import ServerProcess, free_port
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
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "stranger.ext").write_text("subjectAltName=DNS:stranger.example,email:s@example.org\n")
    for name in ("server", "client", "stranger"):
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
            f"{name}.ext",
            cwd=d,
        )
    return d


def _client_context(
    certs: Path,
    *,
    with_cert: bool,
    name: str = "client",
    tls_version: ssl.TLSVersion | None = None,
    curve: str = "",
) -> ssl.SSLContext:
    """A client context trusting the test CA; `tls_version` pins the only version it speaks."""
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    if with_cert:
        ctx.load_cert_chain(certs / f"{name}.crt", certs / f"{name}.key")
    if tls_version is not None:
        ctx.minimum_version = ctx.maximum_version = tls_version
    if curve:
        ctx.set_ecdh_curve(curve)
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


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  curve_preferences: [X25519MLKEM768]\n",
            "web-config.yml:4: tls_server_config.curve_preferences: unknown curve: X25519MLKEM768",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [RC4]\n",
            "web-config.yml:4: tls_server_config.cipher_suites: unknown cipher: RC4",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  prefer_server_cipher_suites: sometimes\n",
            "web-config.yml:4: tls_server_config.prefer_server_cipher_suites: expected a boolean",
        ),
        (
            "rate_limit:\n  interval: 1d\n",
            "web-config.yml:2: rate_limit.interval: cannot unmarshal !!str `1d` into time.Duration",
        ),
        (
            "rate_limit:\n  interval: 1s\n  burst: x\n",
            "web-config.yml:3: rate_limit.burst: cannot unmarshal `x` into int",
        ),
        (
            "rate_limit:\n  interval: 1s\n  limit: 3\n",
            "web-config.yml:3: rate_limit.limit: field limit not found in type",
        ),
    ],
)
def test_invalid_tls_and_rate_limit_options_are_refused_with_file_and_line(
    tmp_path: Path, text: str, error: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_web_config(_write(tmp_path, text))
    assert error in str(info.value)


def test_a_tls_section_without_certificates_or_client_policy_means_plain_http(
    tmp_path: Path,
) -> None:
    config = load_web_config(_write(tmp_path, "tls_server_config:\n  min_version: TLS13\n"))
    assert config.tls is None


def test_rate_limit_options_are_read_as_go_durations(tmp_path: Path) -> None:
    config = load_web_config(_write(tmp_path, "rate_limit:\n  interval: 1m30s\n  burst: 5\n"))
    assert config.rate_limit is not None
    assert (config.rate_limit.interval_s, config.rate_limit.burst) == (90.0, 5)
    assert load_web_config(_write(tmp_path, "rate_limit:\n  burst: 5\n")).rate_limit is None


async def test_the_rate_limit_answers_429_past_the_burst_and_recovers_after_the_interval(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    path = _write(
        tmp_path,
        "rate_limit:\n  interval: 1s\n  burst: 2\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    app = create_app(make_api_deps(), WebOptions(web_config_file=str(path)))
    client = await aiohttp_client(app)
    origin = {"Origin": "https://app.example"}
    first = await client.get("/api/v1/query", params={"query": "1"}, headers=origin)
    assert (first.status, first.headers["X-Frame-Options"]) == (200, "deny")
    assert (await client.get("/-/healthy")).status == 200
    refused = await client.get("/api/v1/query", params={"query": "1"}, headers=origin)
    assert refused.status == 429
    assert await refused.text() == "Too Many Requests\n"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    # NB: as the toolkit, the 429 is answered before any configured or CORS header is set.
    assert "X-Frame-Options" not in refused.headers
    assert "Access-Control-Allow-Origin" not in refused.headers
    await asyncio.sleep(1.05)
    assert (await client.get("/-/healthy")).status == 200, "one token came back"
    assert (await client.get("/-/healthy")).status == 429, "only one"


def _tls_config(certs: Path, extra: str = "") -> str:
    return (
        f"tls_server_config:\n  cert_file: {certs}/server.crt\n  key_file: {certs}/server.key\n"
        + extra
    )


async def _outcome(url: str, ctx: ssl.SSLContext) -> int | str:
    """The status a client with `ctx` gets, or "refused" when the connection fails."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, ssl=ctx, timeout=aiohttp.ClientTimeout(total=10)) as resp,
        ):
            await resp.read()
            return resp.status
    except aiohttp.ClientError:
        return "refused"


@contextlib.asynccontextmanager
async def _serving(config_path: Path) -> AsyncIterator[str]:
    """Serves our app with the web config on 127.0.0.1; yields the /-/healthy URL."""
    options = WebOptions(listen_address="127.0.0.1:0", web_config_file=str(config_path))
    runner, port = await serve(create_app(make_api_deps(), options), options)
    try:
        yield f"https://127.0.0.1:{port}/-/healthy"
    finally:
        await runner.cleanup()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("allowed", "accepted"),
    [
        ("[localhost]", {"client"}),
        ("[127.0.0.1]", {"client"}),
        ("[nobody.example, s@example.org]", {"stranger"}),
        ("[]", set()),
    ],
)
async def test_client_certificates_outside_client_allowed_sans_are_refused(
    certs: Path, tmp_path: Path, allowed: str, accepted: set[str]
) -> None:
    path = _write(
        tmp_path,
        _tls_config(
            certs,
            "  client_auth_type: RequireAndVerifyClientCert\n"
            f"  client_ca_file: {certs}/ca.crt\n  client_allowed_sans: {allowed}\n",
        ),
    )
    async with _serving(path) as url:
        for name in ("client", "stranger"):
            expected = 200 if name in accepted else "refused"
            ctx = _client_context(certs, with_cert=True, name=name)
            assert await _outcome(url, ctx) == expected, name
        assert await _outcome(url, _client_context(certs, with_cert=False)) == "refused"


@pytest.mark.integration
async def test_max_version_tls12_refuses_a_tls13_only_client(certs: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, _tls_config(certs, "  max_version: TLS12\n"))
    async with _serving(path) as url:
        only_13 = _client_context(certs, with_cert=False, tls_version=ssl.TLSVersion.TLSv1_3)
        assert await _outcome(url, only_13) == "refused"
        only_12 = _client_context(certs, with_cert=False, tls_version=ssl.TLSVersion.TLSv1_2)
        assert await _outcome(url, only_12) == 200


@pytest.mark.integration
async def test_cipher_suites_and_the_first_supported_curve_are_offered(
    certs: Path, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        _tls_config(
            certs,
            "  curve_preferences: [CurveP384, CurveP256]\n"
            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n"
            "  prefer_server_cipher_suites: false\n",
        ),
    )
    async with _serving(path) as url:
        p256 = _client_context(certs, with_cert=False, curve="prime256v1")
        assert await _outcome(url, p256) == "refused", "only the first curve is offered"
        p384 = _client_context(certs, with_cert=False, curve="secp384r1")
        assert await _outcome(url, p384) == 200
        tls12 = _client_context(certs, with_cert=False, tls_version=ssl.TLSVersion.TLSv1_2)
        tls12.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
        assert await _outcome(url, tls12) == "refused", "a suite outside cipher_suites"
        tls12.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")
        assert await _outcome(url, tls12) == 200


@pytest.mark.integration
async def test_inline_certificate_key_and_client_ca_are_served(certs: Path, tmp_path: Path) -> None:
    def block(name: str) -> str:
        return "|\n" + "".join(f"    {line}\n" for line in (certs / name).read_text().splitlines())

    path = _write(
        tmp_path,
        f"tls_server_config:\n  cert: {block('server.crt')}  key: {block('server.key')}"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca: {block('ca.crt')}",
    )
    async with _serving(path) as url:
        assert await _outcome(url, _client_context(certs, with_cert=True)) == 200
        assert await _outcome(url, _client_context(certs, with_cert=False)) == "refused"


@contextlib.asynccontextmanager
async def _serving_prometheus(config_path: Path, certs: Path) -> AsyncIterator[str]:
    """Runs the real Prometheus with the web config; yields its /-/healthy URL."""
    binary = peer_binary("prometheus")
    if binary is None:
        pytest.skip("the prometheus peer binary is not installed")
    workdir = config_path.parent
    (workdir / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    args = [
        "--config.file=prometheus.yml",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.config.file={config_path}",
    ]
    with ServerProcess(args, workdir, command=[str(binary)]) as proc:
        # NB: wait for the socket only: a request now would take a token of the rate limit.
        async with asyncio.timeout(30):
            while True:
                assert proc.proc is not None
                assert proc.proc.poll() is None, proc.log()
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                await writer.wait_closed()
                break
        yield f"https://127.0.0.1:{port}/-/healthy"


@pytest.mark.integration
@pytest.mark.parametrize(
    "implementation", ["watchkeeper", pytest.param("prometheus", marks=pytest.mark.peers)]
)
async def test_tls_client_policy_and_rate_limit_match_prometheus(
    certs: Path, tmp_path: Path, implementation: str
) -> None:
    path = _write(
        tmp_path,
        _tls_config(
            certs,
            "  client_auth_type: RequireAndVerifyClientCert\n"
            f"  client_ca_file: {certs}/ca.crt\n  client_allowed_sans: [localhost]\n"
            "  max_version: TLS12\n"
            "rate_limit:\n  interval: 1m\n  burst: 3\n",
        ),
    )
    serving = (
        _serving(path) if implementation == "watchkeeper" else _serving_prometheus(path, certs)
    )
    async with serving as url:
        # NB: refused handshakes take no token: only requests count against the burst.
        outcomes = [
            await _outcome(url, _client_context(certs, with_cert=True, name="stranger")),
            await _outcome(url, _client_context(certs, with_cert=False)),
            await _outcome(
                url,
                _client_context(certs, with_cert=True, tls_version=ssl.TLSVersion.TLSv1_3),
            ),
        ]
        client = _client_context(certs, with_cert=True)
        outcomes += [await _outcome(url, client) for _ in range(4)]
    assert outcomes == ["refused", "refused", "refused", 200, 200, 200, 429]
