"""The `http` provider over TLS: a private CA file works, an unknown CA is refused."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from hotline.balance.http import HttpProvider
from hotline.balance.sim import create_sim_app
from hotline.base.config import Settings
from hotline.base.errors import ConfigError, UpstreamUnavailable
from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Money
from tests.balance.conftest import KEY_ID, SECRET


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_url(certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = TestServer(
        create_sim_app(key_id=KEY_ID, secret=SECRET), scheme="https", host="127.0.0.1"
    )
    await server.start_server(ssl=context, access_log=None)
    yield str(server.make_url("/"))
    await server.close()


async def test_private_ca_file(
    tls_url: str,
    certificate: tuple[Path, Path],
    make_settings: Callable[..., Settings],
    pseudonym: Pseudonymizer,
) -> None:
    assert tls_url.startswith("https://")
    trusted = HttpProvider(make_settings(tls_url, ca_file=certificate[0]).balance, pseudonym)
    assert (await trusted.fetch("13800138000")).main_balance == Money(1250)
    await trusted.close()
    untrusted = HttpProvider(make_settings(tls_url).balance, pseudonym)
    with pytest.raises(UpstreamUnavailable):
        await untrusted.fetch("13800138000")
    await untrusted.close()
    unverified = HttpProvider(make_settings(tls_url, verify_tls=False).balance, pseudonym)
    assert (await unverified.fetch("13800138000")).main_balance == Money(1250)
    await unverified.close()


def test_an_unreadable_ca_file_is_a_config_error_at_startup(
    tmp_path: Path, make_settings: Callable[..., Settings], pseudonym: Pseudonymizer
) -> None:
    not_pem = tmp_path / "not-a-cert.pem"
    not_pem.write_text("hello", encoding="utf-8")
    for ca_file in (tmp_path / "missing.pem", not_pem):
        settings = make_settings("https://127.0.0.1:9/", ca_file=ca_file)
        with pytest.raises(ConfigError, match=r"balance\.ca_file"):
            HttpProvider(settings.balance, pseudonym)
