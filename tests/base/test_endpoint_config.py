"""`http_endpoints` in the configuration: typed, and a bad value is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.base.config import load_settings
from hotline.base.errors import ConfigError


def test_the_shipped_default_declares_the_topup_endpoint_of_the_billing_simulator() -> None:
    topup = load_settings(None).http_endpoints["topup"]
    assert topup.url == "http://127.0.0.1:8099/v1/topup"
    assert topup.auth == "hmac" and topup.timeout == 3.0


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "http_endpoints: {topup: {url: ftp://x}}",
            "config http_endpoints.topup.url (HOTLINE_HTTP_ENDPOINTS__TOPUP__URL): Value error, "
            "expected an http:// or https:// URL, got 'ftp://x'",
        ),
        (
            "http_endpoints: {topup: {url: 'http://x', auth: hmac}}",
            "config http_endpoints.topup (HOTLINE_HTTP_ENDPOINTS__TOPUP): Value error, "
            "auth hmac needs key_id and secret",
        ),
        (
            "http_endpoints: {topup: {url: 'http://x', auth: bearer, token: t, timeout: 30}}",
            "config http_endpoints.topup.timeout (HOTLINE_HTTP_ENDPOINTS__TOPUP__TIMEOUT): "
            "Input should be less than or equal to 9, got 30",
        ),
        (
            "http_endpoints: {topup: {url: 'http://x', auth: basic}}",
            "config http_endpoints.topup.auth (HOTLINE_HTTP_ENDPOINTS__TOPUP__AUTH): "
            "Input should be 'hmac', 'bearer' or 'none', got 'basic'",
        ),
        (
            "http_endpoints: {topup: {url: 'http://x', auth: hmac, key_id: k, secret: s3cret, "
            "timeout: -1}}",
            "config http_endpoints.topup.timeout (HOTLINE_HTTP_ENDPOINTS__TOPUP__TIMEOUT): "
            "Input should be greater than 0, got -1",
        ),
    ],
)
def test_a_bad_endpoint_is_one_line_naming_the_key(tmp_path: Path, yaml: str, message: str) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text(yaml + "\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == message
    assert "s3cret" not in str(caught.value)
