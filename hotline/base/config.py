"""One typed settings object, built once at startup (DESIGN.md §4).

Precedence: defaults ← `hotline.yaml` (or `--config FILE`) ← `HOTLINE_*` environment
variables. Nested sections use `__` in environment names, e.g.
`HOTLINE_USSD__GSM7_LIMIT=160`. A bad value raises `ConfigError` with one line naming
the key and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hotline.base.errors import ConfigError
from hotline.web.ratelimit import parse_rate
from hotline.web.security import parse_networks

__all__ = [
    "DEV_BILLING_KEY_ID",
    "DEV_BILLING_SECRET",
    "AnalyticsSettings",
    "ApiSettings",
    "BalanceSettings",
    "HttpEndpointSettings",
    "IdentitySettings",
    "IvrSettings",
    "PlansSettings",
    "RemindersSettings",
    "SecuritySettings",
    "Settings",
    "SmsSettings",
    "UssdSettings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = Path("hotline.yaml")
DEV_PSEUDONYM_SECRET = "hotline-dev-only-secret-change-me"
#: The signing pair `hotline billing-sim` uses when none is configured; the shipped
#: `http_endpoints.topup` signs with it, so `make run` can top up against the simulator.
DEV_BILLING_KEY_ID = "hotline-dev"
DEV_BILLING_SECRET = "hotline-dev-billing-secret"
_PATH_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
# ISO 4217 currencies whose minor unit is not 1/100. The v1 answer and `max_main_balance`
# count in hundredths, so one of these would show a balance 100x (or 10x) off.
_NOT_TWO_DECIMALS = frozenset(
    {
        # no decimals
        *("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"),
        *("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"),
        # three or four decimals
        *("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND", "CLF", "UYW"),
    }
)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UssdSettings(_Section):
    """USSD channel: screen budgets and session limits."""

    gsm7_limit: int = Field(182, ge=40, le=182, description="characters per screen in GSM-7")
    ucs2_limit: int = Field(80, ge=20, le=80, description="UTF-16 units per screen in UCS-2")
    session_ttl: int = Field(
        180, ge=10, le=3600, description="seconds a session lives in the store"
    )
    max_text_chars: int = Field(
        480, ge=16, le=4096, description="longest accepted `text` field (the whole transcript)"
    )
    max_inputs_per_request: int = Field(
        12, ge=1, le=64, description="inputs replayed from a first request (direct dial *100*1#)"
    )
    resume_window: int = Field(
        120,
        ge=0,
        le=3600,
        description="seconds a dropped session can be continued from a new dial (0: off)",
    )
    service_codes: dict[str, Annotated[str, Field(pattern=r"^\*[0-9*]{1,30}#$")]] = Field(
        default_factory=dict,
        description="the code each aggregator dialect that does not send it serves "
        "(arkesel, nalo), e.g. {arkesel: '*928*44#'}; unset: *100#",
    )
    path_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="secret path segment per aggregator dialect (hubtel, arkesel, nalo, "
        "beem): only /ussd/<dialect>/<token> is served; none of them signs its callbacks",
    )

    @field_validator("path_tokens")
    @classmethod
    def _path_tokens(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, token in value.items():
            if not _PATH_TOKEN.fullmatch(token.get_secret_value()):
                raise ValueError(f"{name}: expected 16-128 characters of A-Z a-z 0-9 _ -")
        return value


class IvrSettings(_Section):
    """Voice channel: sessions, public URLs, TTS."""

    session_ttl: int = Field(3600, ge=60, le=86400)
    public_base_url: str | None = Field(
        None, description="externally visible base URL, e.g. https://ivr.example.com"
    )
    agent_number: str | None = Field(None, description="`0` on the main menu dials this number")
    audio_dir: Path = Path("var/audio")
    tts_timeout: float = Field(10.0, gt=0, le=120)
    tts_rate: int = Field(150, ge=60, le=400)
    tts_system_espeak: bool = Field(
        False, description="use the system eSpeak NG library instead of the bundled one"
    )
    warm_prompts: bool = Field(
        True, description="render static prompts in the background at startup"
    )
    voices: dict[str, str] = Field(
        default_factory=dict,
        description="eSpeak voice per language (default zh-CN: cmn, en: en-us)",
    )
    audio_format: Literal["pcm16", "ulaw"] = Field(
        "pcm16", description="8 kHz WAV as 16-bit PCM or G.711 mu-law"
    )
    gather_timeout: int = Field(6, ge=1, le=60, description="seconds to wait for a key press")
    max_no_input: int = Field(3, ge=1, le=10)


class BalanceSettings(_Section):
    """Balance provider and the resilience wrapped around it."""

    provider: Literal["ledger", "http"] = "ledger"
    ledger_path: Path = Path("var/ledger.sqlite3")
    ledger_seed_demo: bool = True
    dialect: Literal["v1", "tmf654"] = "v1"
    url: str | None = None
    key_id: str | None = None
    secret: SecretStr | None = None
    connect_timeout: float = Field(0.5, gt=0, le=30)
    deadline: float = Field(2.5, gt=0, le=9.0, description="overall seconds per lookup")
    verify_tls: bool = True
    ca_file: Path | None = None
    fresh_ttl: float = Field(5.0, ge=0, le=3600)
    max_stale: float = Field(900.0, ge=0, le=86400)
    negative_ttl: float = Field(60.0, ge=0, le=3600)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_reset: float = Field(10.0, gt=0, le=600)
    max_concurrency: int = Field(64, ge=1, le=10000)
    subscriber_rate: str = Field("10/minute", description="per-subscriber lookup limit")
    read_timeout: float = Field(2.0, gt=0, le=30, description="seconds between body bytes")
    retries: int = Field(1, ge=0, le=1, description="extra attempts of a retryable failure")
    retry_backoff: float = Field(0.05, ge=0, le=5, description="max jittered wait before a retry")
    retry_min_budget: float = Field(
        0.2, ge=0, le=9, description="seconds an attempt needs; no retry with less left"
    )
    breaker_window: float = Field(30.0, gt=0, le=3600, description="failure-rate window, s")
    breaker_min_calls: int = Field(20, ge=1, le=100000, description="calls before rate counts")
    breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    bulkhead_wait: float = Field(0.1, ge=0, le=9, description="longest wait for a free slot")
    upstream_rate: float | None = Field(None, gt=0, description="upstream requests/s cap")
    cache_size: int = Field(100_000, ge=1, le=10_000_000)
    max_body_bytes: int = Field(65536, ge=1024, le=10_485_760)
    max_main_balance: int = Field(
        10**7, ge=1, description="largest believable |main balance| in major units (元)"
    )
    currencies: tuple[str, ...] = ("CNY",)
    tmf_lookup: Literal["logicalResource.id", "relatedParty.id"] = "logicalResource.id"
    gb_bytes: Literal[1_000_000_000, 1_073_741_824] = 1_073_741_824

    @field_validator("subscriber_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError("expected a rate like 10/minute or 5 per 30 seconds") from exc
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// base URL")
        return value

    @field_validator("currencies")
    @classmethod
    def _currencies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if not (len(code) == 3 and code.isalpha() and code.isupper()):
                raise ValueError("expected ISO 4217 alpha-3 codes such as CNY")
            if code in _NOT_TWO_DECIMALS:
                raise ValueError(f"{code} does not have two decimal places; amounts are in 1/100")
        return value


class AnalyticsSettings(_Section):
    """Operator analytics (docs/analytics.md): turn events rolled up in Redis, off the
    request path. Off by default; needs `redis_url` (every worker adds to the same rollups)."""

    enabled: bool = Field(
        False, description="record turns for `hotline report` and /admin/analytics"
    )
    flush_interval: float = Field(
        0.25, gt=0, le=60, description="seconds between writes of buffered turns to Redis"
    )
    buffer: int = Field(
        100_000,
        ge=100,
        le=10_000_000,
        description="turns buffered at most (more are dropped, counted)",
    )
    settle_after: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="seconds after a session's last reply closed it before it is counted",
    )
    min_group: int = Field(
        5,
        ge=1,
        le=1000,
        description="fewest subscribers a figure may describe (smaller: suppressed)",
    )
    retention_days: int = Field(400, ge=1, le=3650, description="days rollups are kept")


class HttpEndpointSettings(_Section):
    """One endpoint a flow's `http.request` may call: `http_endpoints.<name>`.

    `auth: hmac` signs like the balance provider (`hotline.balance.signing`, with
    `key_id` and `secret`), `bearer` sends `token`, `none` sends neither. `timeout` is the
    whole call's budget (the deadline layer); a POST is never retried.
    """

    url: str = Field(description="the full URL the JSON is POSTed to")
    auth: Literal["hmac", "bearer", "none"] = "none"
    key_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    secret: SecretStr | None = None
    token: SecretStr | None = None
    timeout: float = Field(3.0, gt=0, le=9.0, description="overall seconds per call")
    connect_timeout: float = Field(1.0, gt=0, le=30)
    verify_tls: bool = True
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_reset: float = Field(10.0, gt=0, le=600)
    max_concurrency: int = Field(32, ge=1, le=10000)
    subscriber_rate: str = Field("10/minute", description="calls per subscriber")
    max_body_bytes: int = Field(65536, ge=1024, le=10_485_760)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @field_validator("subscriber_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        return BalanceSettings._rate(value)

    @model_validator(mode="after")
    def _credentials(self) -> HttpEndpointSettings:
        if self.auth == "hmac" and (not self.key_id or self.secret is None):
            raise ValueError("auth hmac needs key_id and secret")
        if self.auth == "bearer" and self.token is None:
            raise ValueError("auth bearer needs token")
        return self


def _default_endpoints() -> dict[str, HttpEndpointSettings]:
    """The top-up example's endpoint: `hotline billing-sim` on its default port."""
    return {
        "topup": HttpEndpointSettings(
            url="http://127.0.0.1:8099/v1/topup",
            auth="hmac",
            key_id=DEV_BILLING_KEY_ID,
            secret=SecretStr(DEV_BILLING_SECRET),
            timeout=3.0,
        )
    }


class SecuritySettings(_Section):
    """Gateway authentication and abuse limits (docs/operations.md)."""

    twilio_auth_token: SecretStr | None = Field(
        None, description="verify X-Twilio-Signature on /ivr/twilio/ when set"
    )
    at_allowed_cidrs: tuple[str, ...] = Field(
        (), description="Africa's Talking source networks allowed; empty = no IP check"
    )
    at_path_token: SecretStr | None = Field(
        None,
        description="when set, AT calls /ussd/africastalking/<token>… and /ivr/africastalking/<token>…",
    )
    trusted_proxies: tuple[str, ...] = Field(
        (), description="proxies whose X-Forwarded-For (and -Proto/-Host) is believed"
    )
    admin_token: SecretStr | None = Field(
        None, description="bearer token for POST /admin/reload; unset = no admin endpoint"
    )
    subscriber_rate: str = Field("30/minute", description="requests per subscriber, per worker")
    gateway_rate: str = Field("2000/second", description="requests per gateway, per worker")
    max_field_chars: int = Field(1024, ge=16, le=65536, description="longest accepted form field")

    @field_validator("at_allowed_cidrs", "trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(value)
        return value

    @field_validator("subscriber_rate", "gateway_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("at_path_token")
    @classmethod
    def _path_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _PATH_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("expected 16-128 characters of A-Z a-z 0-9 _ -")
        return value


class SmppSettings(_Section):
    """The SMPP 3.4 session to the SMSC (`sms.transport: smpp`): hotline binds as a
    transceiver ESME; MOs and delivery receipts arrive on the same session."""

    host: str = Field("127.0.0.1", min_length=1, max_length=253)
    port: int = Field(2775, ge=1, le=65535)
    system_id: str = Field(..., min_length=1, max_length=15)
    password: SecretStr = Field(..., description="never logged")
    system_type: str = Field("", max_length=12)
    window: int = Field(10, ge=1, le=1000, description="submit_sm PDUs outstanding at most")
    enquire_link: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="seconds between checks that the session is alive (smpp34 itself "
        "sends an enquire_link every 30 s; its Python API does not take an interval)",
    )
    reconnect_min: float = Field(0.5, gt=0, le=60, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, le=3600, description="longest reconnect delay")
    submit_timeout: float = Field(10.0, gt=0, le=120, description="seconds for a submit_sm_resp")

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) > 8:
            raise ValueError("SMPP 3.4 passwords are at most 8 characters")
        return value


class SmsSettings(_Section):
    """SMS channel: wording, sessions, the Kannel gateway and the outbox (docs/sms.md)."""

    signature: str = Field(
        "【hotline】", max_length=24, description="appended to every SMS (operators require one)"
    )
    signatures: dict[str, str] = Field(
        default_factory=dict, description="per-language signature, e.g. {en: ' [hotline]'}"
    )
    max_parts: int = Field(3, ge=1, le=10, description="parts one SMS may take at most")
    session_ttl: int = Field(
        600, ge=30, le=86400, description="seconds a reply digit continues a menu sent by SMS"
    )
    max_text_chars: int = Field(
        640, ge=10, le=4096, description="longest incoming message accepted, in characters"
    )
    service_numbers: tuple[str, ...] = Field(
        (),
        description="numbers subscribers write to (10086, 1065…); an MO to another is refused; "
        "empty = any",
    )
    mo_dedupe_ttl: int = Field(
        900,
        ge=10,
        le=86400,
        description="seconds a gateway's redelivery of the same MO (same id) gets no second answer",
    )
    kannel_allowed_cidrs: tuple[str, ...] = Field(
        ("127.0.0.0/8", "::1/128"), description="smsbox addresses allowed on /sms/kannel"
    )
    kannel_path_token: SecretStr | None = Field(
        None, description="when set, smsbox calls /sms/kannel/<token>…"
    )
    kannel_sendsms_url: str | None = Field(
        None,
        description="smsbox sendsms URL for outgoing messages, e.g. http://127.0.0.1:13013/cgi-bin/sendsms",
    )
    kannel_username: str | None = None
    kannel_password: SecretStr | None = None
    kannel_smsc: str | None = Field(None, description="smsc-id to route outgoing messages")
    public_base_url: str | None = Field(
        None, description="hotline's base URL as smsbox reaches it, for delivery reports"
    )
    sender: Literal["none", "kannel", "smpp"] = Field(
        "none", description="who delivers the outbox; none = messages queue until one is set"
    )
    transport: Literal["kannel", "smpp"] = Field(
        "kannel", description="the SMSC link: smsbox over HTTP, or hotline's own SMPP session"
    )
    smpp: SmppSettings | None = Field(None, description="the SMPP session (transport: smpp)")
    source_address: str = Field(
        "10086", pattern=r"^\+?[0-9A-Za-z]{1,20}$", description="the sender of outgoing SMS"
    )
    outbox_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the outbox (postgresql+psycopg://…); unset = outbox_path",
    )
    outbox_path: Path = Field(Path("var/outbox.sqlite3"), description="the embedded outbox")
    send_rate: float = Field(50.0, gt=0, le=10000, description="messages per second to the SMSC")
    send_window: int = Field(
        1,
        ge=1,
        le=100,
        description="messages submitted at once; a crash leaves at most this many in doubt",
    )
    max_attempts: int = Field(6, ge=1, le=50)
    retry_base: float = Field(2.0, gt=0, le=600, description="first retry delay, seconds")
    retry_max: float = Field(300.0, gt=0, le=86400, description="longest retry delay, seconds")
    lease_seconds: float = Field(30.0, ge=1, le=3600, description="a claim's lifetime")
    doubt_grace: float = Field(
        60.0, ge=1, le=86400, description="seconds to wait for a report of an in-doubt send"
    )
    outbox_keep_days: float = Field(
        30.0,
        ge=0,
        le=3650,
        description="days a delivered or failed message is kept; 0 = forever (`hotline sms purge`)",
    )

    @field_validator("kannel_allowed_cidrs")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _transport(self) -> SmsSettings:
        if self.transport == "smpp" and self.smpp is None:
            raise ValueError("transport smpp needs an smpp section (host, port, system_id, …)")
        if self.sender not in ("none", self.transport):
            raise ValueError(f"sender {self.sender} does not match transport {self.transport}")
        return self


class PlansSettings(_Section):
    """Plan change (`plans`): the catalog and ordering provider, and how orders are told.

    `embedded` keeps offers, subscriptions and orders in `store_url` (SQLite at
    `store_path` by default) and charges the balance ledger; `http` speaks TMF622/TMF637
    to `url`, signed like the balance provider. `answer_window` is how long a confirmation
    waits for an order to complete before the subscriber is told "已受理，结果将短信通知".
    """

    provider: Literal["embedded", "http"] = "embedded"
    store_url: str | None = Field(None, description="SQLAlchemy URL; unset = store_path")
    store_path: Path = Path("var/plans.sqlite3")
    seed_demo: bool = True
    url: str | None = None
    key_id: str | None = None
    secret: SecretStr | None = None
    require_password: bool = Field(False, description="ask the service password on every order")
    password_tries: int = Field(3, ge=1, le=10, description="wrong passwords before a lock")
    page_size: int = Field(
        2,
        ge=1,
        le=3,
        description="offers per screen (the flow has 3 slots; a Chinese USSD "
        "screen of 80 UTF-16 units holds 2)",
    )
    answer_window: float = Field(2.0, gt=0, le=8.0, description="seconds a confirmation waits")
    poll_interval: float = Field(0.2, gt=0, le=60, description="order status polls, seconds")
    reconcile_interval: float = Field(5.0, gt=0, le=3600, description="background polls, s")
    reconcile_give_up: float = Field(
        3600.0, gt=0, le=604800, description="an order unknown upstream this long has failed"
    )
    deadline: float = Field(2.0, gt=0, le=9.0, description="overall seconds per upstream call")
    connect_timeout: float = Field(0.5, gt=0, le=30)
    read_timeout: float = Field(2.0, gt=0, le=30)
    fresh_ttl: float = Field(0.0, ge=0, le=3600, description="reads cached this long")
    max_stale: float = Field(300.0, ge=0, le=86400)
    negative_ttl: float = Field(0.0, ge=0, le=3600)
    retries: int = Field(1, ge=0, le=1, description="extra attempts of a failed read")
    retry_backoff: float = Field(0.05, ge=0, le=5)
    retry_min_budget: float = Field(0.2, ge=0, le=9)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_window: float = Field(30.0, gt=0, le=3600)
    breaker_min_calls: int = Field(20, ge=1, le=100000)
    breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    breaker_reset: float = Field(10.0, gt=0, le=600)
    max_concurrency: int = Field(32, ge=1, le=10000)
    bulkhead_wait: float = Field(0.1, ge=0, le=9)
    upstream_rate: float | None = Field(None, gt=0)
    subscriber_rate: str = Field("30/minute", description="plan calls per subscriber")
    cache_size: int = Field(100_000, ge=1, le=10_000_000)
    max_body_bytes: int = Field(65536, ge=1024, le=10_485_760)

    @field_validator("subscriber_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        return BalanceSettings._rate(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return BalanceSettings._url(value)

    @model_validator(mode="after")
    def _http(self) -> PlansSettings:
        if self.provider == "http" and (not self.url or not self.key_id or self.secret is None):
            raise ValueError("provider http needs url, key_id and secret")
        return self


class UssdSmppSettings(_Section):
    """USSD over SMPP (docs/ussd-operators.md): hotline as an ESME of the operator's USSD
    gateway, on its own bind; the vendor profile names the op codes and session TLVs."""

    profile: Literal["3gpp", "sixdee"] = Field(
        "3gpp", description="3gpp: ussd_service_op 1/2/17/18; sixdee: the 6D vendor scheme"
    )
    link: SmppSettings | None = Field(
        None, description="the bind to the USSD gateway (its own system id)"
    )
    share_sms_bind: bool = Field(
        False,
        description="use the SMS channel's SMSC bind (sms.transport: smpp) instead of one of "
        "its own: deliver_sm carrying ussd_service_op come here",
    )
    service_type: str = Field("USSD", max_length=5, description="service_type of replies")
    source_address: str = Field("100", max_length=20, description="source_addr of replies")
    abort_op: int | None = Field(
        None,
        ge=0,
        le=255,
        description="3gpp profile: the vendor ussd_service_op the gateway sends for a "
        "subscriber's abort (SMPP 3.4 defines none); sixdee aborts with 0x81",
    )
    gsm7_limit: int = Field(
        182, ge=40, le=182, description="GSM-7 characters per screen (no CON/END to reserve)"
    )
    ucs2_limit: int = Field(80, ge=20, le=80, description="UCS-2 units per screen")

    @model_validator(mode="after")
    def _one_bind(self) -> UssdSmppSettings:
        if (self.link is None) == (not self.share_sms_bind):
            raise ValueError("set either ussd_smpp.link or ussd_smpp.share_sms_bind: true")
        return self


class UssdGsupSettings(_Section):
    """Osmocom (docs/ussd-operators.md): hotline as an External USSD Entity of osmo-hlr,
    over GSUP. osmo-hlr's GSUP, VTY and CTRL ports are fixed; bind it to its own
    loopback address when NATS holds 127.0.0.1:4222."""

    host: str = Field("127.0.0.1", min_length=1, max_length=253)
    port: int = Field(4222, ge=1, le=65535, description="osmo-hlr's GSUP port")
    euse: str = Field(
        "hotline",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="the name in osmo-hlr's `euse NAME` (we identify as EUSE-NAME)",
    )
    ctrl_port: int = Field(
        4259, ge=0, le=65535, description="osmo-hlr's CTRL port: IMSI → MSISDN (0: off)"
    )
    reconnect_min: float = Field(0.5, gt=0, le=60)
    reconnect_max: float = Field(10.0, gt=0, le=3600)
    gsm7_limit: int = Field(
        128,
        ge=40,
        le=182,
        description="GSM-7 characters per screen: libosmocore drops a reply over 112 octets",
    )
    ucs2_limit: int = Field(56, ge=20, le=80, description="UCS-2 units per screen (112 octets)")


class IdentitySettings(_Section):
    """One identity exchange of the API (`api.identity.<name>`): a WeChat mini-program's
    getPhoneNumber code or an operator one-tap token, exchanged for the number."""

    kind: Literal["wechat", "onetap"]
    url: str = Field(description="base URL (WeChat API, or the one-tap exchange endpoint)")
    app_id: str = Field(min_length=1, max_length=64, description="appid / key id")
    secret: SecretStr
    timeout: float = Field(3.0, gt=0, le=9.0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


class ApiSettings(_Section):
    """The open API for apps, mini-programs and the portal (`api/`, docs/api.md)."""

    db_url: str | None = Field(
        None, description="SQLAlchemy URL of clients, revocations and audit; unset = db_path"
    )
    db_path: Path = Field(Path("var/api.sqlite3"), description="the embedded API store")
    token_secret: SecretStr | None = Field(
        None, description="signs API tokens; unset = derived from pseudonym_secret"
    )
    client_token_ttl: int = Field(900, ge=60, le=86400, description="client token lifetime, s")
    subscriber_token_ttl: int = Field(
        1800, ge=60, le=86400, description="subscriber token lifetime, s"
    )
    otp_ttl: int = Field(300, ge=60, le=3600, description="seconds an SMS code is valid")
    otp_max_tries: int = Field(5, ge=1, le=20, description="wrong codes before the lock")
    otp_resend: int = Field(60, ge=10, le=3600, description="seconds between two codes")
    otp_lock: int = Field(900, ge=60, le=86400, description="seconds a locked number waits")
    client_rate: str = Field("600/minute", description="requests per client, all workers")
    subscriber_rate: str = Field("60/minute", description="requests per subscriber, all workers")
    max_body_bytes: int = Field(4096, ge=256, le=65536, description="largest request body")
    audit_backlog: int = Field(
        100_000,
        ge=10,
        le=10_000_000,
        description="audit rows kept while the API store is down; past it requests get 503",
    )
    h5: bool = Field(True, description="serve the mobile page /h5 (the built-in public client)")
    h5_rate: str = Field("120/minute", description="requests of the H5 page's client")
    identity: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], IdentitySettings] = (
        Field(default_factory=dict, description="identity exchanges by name (POST /auth/exchange)")
    )

    @field_validator("client_rate", "subscriber_rate", "h5_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value


class RemindersSettings(_Section):
    """Top-up reminders (`hotline.reminders`, docs/reminders.md)."""

    enabled: bool = Field(True, description="offer reminders and watch balance events")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the reminders store; unset = the embedded SQLite"
    )
    database_path: Path = Field(Path("var/reminders.sqlite3"), description="the embedded store")
    thresholds: tuple[int, ...] = Field(
        (5, 10, 20, 50), min_length=1, description="whole 元 a subscriber may choose"
    )
    percents: tuple[int, ...] = Field(
        (10, 20), min_length=1, description="data/voice reminders: percent left to choose from"
    )
    expiry_days: tuple[int, ...] = Field(
        (1, 3, 7), min_length=1, description="bundle-expiry reminders: days ahead to choose from"
    )
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")
    keyword_off: str = Field(
        "QXTX", pattern=r"^[0-9A-Za-z]{1,10}$", description="said in the SMS: reply it to opt out"
    )
    quiet_start: str = Field("21:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    quiet_end: str = Field("08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    daily_cap: int = Field(3, ge=1, le=100, description="reminder SMS per subscriber per day")
    nats_url: str | None = Field(None, description="NATS server; unset = no JetStream intake")
    stream: str = Field("BILLING", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    subjects: str = Field("billing.balance.>", description="the stream's and consumer's subjects")
    durable: str = Field("hotline-reminders", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    ack_wait: float = Field(30.0, ge=1, le=3600, description="seconds before a redelivery")
    max_deliver: int | None = Field(
        None, ge=1, le=100000, description="deliveries of one event at most; unset = no limit"
    )
    duplicate_window: float = Field(
        120.0, ge=1, le=86400, description="seconds JetStream drops a repeated Nats-Msg-Id"
    )
    batch: int = Field(100, ge=1, le=10000, description="messages fetched per pull")
    consume_in_app: bool = Field(
        False, description="run the JetStream consumer inside `hotline serve` too"
    )
    event_token: SecretStr | None = Field(
        None, description="bearer token of POST /reminders/events; unset = route not mounted"
    )
    sweep_every: float = Field(30.0, gt=0, le=3600, description="seconds between deferred sweeps")
    stuck_after: float = Field(60.0, gt=0, le=86400, description="a decided crossing is resumed")


# Where each durable store keeps its own URL: (section, field).
_STORE_URLS = (
    ("sms", "outbox_url"),
    ("reminders", "database_url"),
    ("plans", "store_url"),
    ("api", "db_url"),
)


class Settings(BaseSettings):
    """Everything hotline can be told; frozen once built."""

    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    env: str = Field("dev", pattern=r"^[a-z0-9_-]{1,16}$", description="namespaces Redis keys")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    redis_url: str | None = Field(None, description="sessions in Redis; unset = in-process")
    redis_timeout: float = Field(
        0.5,
        gt=0,
        le=30,
        description="seconds to wait for a session read or write (or a connection) before "
        "the subscriber gets the busy sentence",
    )
    database_url: str | None = Field(
        None,
        description="one SQLAlchemy URL for every durable store (SMS outbox, reminders, plans, "
        "API); a section's own URL wins; unset = each store's embedded SQLite file",
    )
    pseudonym_secret: SecretStr = SecretStr(DEV_PSEUDONYM_SECRET)
    default_language: str = "zh-CN"
    languages: tuple[str, ...] = ("zh-CN", "en")
    flows_dir: Path = Path("flows")
    prompts_dir: Path = Path("prompts")
    default_flow: str = "balance"
    timezone: str = Field("Asia/Shanghai", description="local time for 'as of HH:MM' and dates")
    max_body_bytes: int = Field(8192, ge=512, le=1_048_576)
    json_logs: bool | None = Field(None, description="JSON log lines; default: when not a TTY")
    log_level: str = "INFO"
    simulator: bool = Field(False, description="serve the web phone simulator at /simulator")
    channels: tuple[str, ...] | None = Field(
        None,
        description="channel plug-ins to mount, e.g. [ussd]; unset = every installed one",
    )
    ussd: UssdSettings = UssdSettings()
    ivr: IvrSettings = IvrSettings()
    balance: BalanceSettings = BalanceSettings()
    security: SecuritySettings = SecuritySettings()
    sms: SmsSettings = SmsSettings()
    plans: PlansSettings = PlansSettings()
    ussd_smpp: UssdSmppSettings | None = Field(None, description="USSD over SMPP (unset: no bind)")
    ussd_gsup: UssdGsupSettings | None = Field(
        None, description="the Osmocom EUSE link to osmo-hlr (unset: none)"
    )
    analytics: AnalyticsSettings = AnalyticsSettings()
    reminders: RemindersSettings = RemindersSettings()
    http_endpoints: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], HttpEndpointSettings
    ] = Field(
        default_factory=_default_endpoints,
        description="endpoints flows may call with `http.request`, by name",
    )
    api: ApiSettings = ApiSettings()

    @model_validator(mode="before")
    @classmethod
    def _shared_database(cls, data: Any) -> Any:
        """Give every durable store without a URL of its own the shared `database_url`.

        The stores keep their tables apart (`sms_outbox*`, `reminder_*`, `plan_*`, `api_*`)
        and record their migrations by id in one `hotline_migrations`, so one PostgreSQL
        database serves them all; operators set one URL, not four.
        """
        if not isinstance(data, dict) or not data.get("database_url"):
            return data
        shared = data["database_url"]
        data = dict(data)
        for section, key in _STORE_URLS:
            value = data.get(section)
            if value is None:
                data[section] = {key: shared}
            elif isinstance(value, dict) and not value.get(key):
                data[section] = {**value, key: shared}
            elif isinstance(value, BaseModel) and not getattr(value, key):
                data[section] = value.model_copy(update={key: shared})
        return data

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            from hotline.store.redisurl import check_redis_url  # imports redis: only when needed

            check_redis_url(value)
        return value

    @model_validator(mode="after")
    def _ussd_smpp_shares(self) -> Settings:
        if self.ussd_smpp and self.ussd_smpp.share_sms_bind and self.sms.transport != "smpp":
            raise ValueError("ussd_smpp.share_sms_bind needs sms.transport: smpp")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the config file (passed as init kwargs), which beats defaults.
        return (env_settings, init_settings)

    @property
    def uses_dev_secret(self) -> bool:
        return self.pseudonym_secret.get_secret_value() == DEV_PSEUDONYM_SECRET


def _describe(error: ErrorDetails) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(root)"
    env_name = "HOTLINE_" + "__".join(str(part).upper() for part in error["loc"])
    got = error.get("input")
    # Never echo a secret (a Redis URL may carry a password).
    secret = any(
        word in key
        for word in (
            "token",
            "secret",
            "redis_url",
            "password",
            "outbox_url",
            "db_url",
            "database_url",
        )
    )
    shown = "" if isinstance(got, dict) or secret else f", got {got!r}"
    return f"config {key} ({env_name}): {error['msg']}{shown}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings once: file (if any) ← environment; overrides win over both."""
    file_values: dict[str, Any] = {}
    path = config_file if config_file is not None else DEFAULT_CONFIG_FILE
    if config_file is not None and not path.exists():
        raise ConfigError(f"config file {path}: does not exist")
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"config file {path}: {exc}".splitlines()[0]) from exc
        except RecursionError as exc:
            raise ConfigError(f"config file {path}: nested too deeply") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        file_values = loaded or {}
    try:
        settings = Settings(**file_values)
        if overrides:
            settings = settings.model_copy(update=overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from exc
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"config timezone (HOTLINE_TIMEZONE): unknown time zone {settings.timezone!r}"
        ) from exc
    if settings.default_language not in settings.languages:
        raise ConfigError(
            f"config default_language (HOTLINE_DEFAULT_LANGUAGE): {settings.default_language!r} "
            f"is not one of languages {list(settings.languages)}"
        )
    return settings
