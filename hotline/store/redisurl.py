"""Redis client from one URL: a single server, a Sentinel-managed master, or a Cluster.

- `redis://[user:pass@]host:6379/0`, `rediss://…`, `unix:///run/redis.sock`: one server
  (redis-py's own `from_url`; the session store speaks to `redis://` and `unix://` servers
  over `hotline.store.redislink` instead).
- `redis+sentinel://[user:pass@]s1:26379,s2:26379/<master name>[/<db>]`: ask the Sentinels
  for the current master of `<master name>`; redis-py follows a failover by itself. The
  credentials are the master's; `?sentinel_password=…` authenticates to the Sentinels.
- `redis+cluster://[user:pass@]n1:7000,n2:7001`: a Redis Cluster, startup nodes listed
  (any one suffices; the client learns the rest). Cluster has no database number.

The same form is what the `limits` package uses for Sentinel, so one convention serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from hotline.store.redislink import link_address

__all__ = ["RedisTarget", "check_redis_url", "open_redis", "parse_redis_url"]

PLAIN_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
AnyRedis = aioredis.Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a `redis+sentinel://` or `redis+cluster://` URL names."""

    kind: str  # "sentinel" | "cluster"
    hosts: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    service: str | None = None
    db: int = 0
    options: dict[str, str] = field(default_factory=dict)


def _hosts(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in netloc.rpartition("@")[2].split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest.lstrip(":")
        else:
            host, _, port_text = item.partition(":")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError as exc:
            raise ValueError(f"bad port in {item!r}") from exc
        if not host or not 0 < port < 65536:
            raise ValueError(f"bad host:port {item!r}")
        hosts.append((host, port))
    if not hosts:
        raise ValueError("no host:port given")
    return tuple(hosts)


def parse_redis_url(url: str) -> RedisTarget | None:
    """The Sentinel/Cluster target of a URL, or None for a plain `redis://` URL."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        return None
    userinfo = parts.netloc.rpartition("@")[0]
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    common: dict[str, Any] = {
        "tls": parts.scheme.startswith("rediss"),
        "username": unquote(username) or None,
        "password": unquote(password) or None,
        "options": options,
    }
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme in SENTINEL_SCHEMES:
        if not segments:
            raise ValueError("redis+sentinel URL needs the master name: …/<master name>[/<db>]")
        db = (
            int(segments[1])
            if len(segments) > 1 and segments[1].isascii() and segments[1].isdigit()
            else 0
        )
        return RedisTarget(
            "sentinel", _hosts(parts.netloc, 26379), service=unquote(segments[0]), db=db, **common
        )
    if segments:
        raise ValueError("redis+cluster URL takes no path (Cluster has only database 0)")
    return RedisTarget("cluster", _hosts(parts.netloc, 6379), **common)


def check_redis_url(url: str) -> None:
    """Raise `ValueError` (never echoing credentials) unless `open_redis` can use the URL."""
    if urlsplit(url).scheme not in PLAIN_SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        raise ValueError(
            "expected redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://"
        )
    parse_redis_url(url)
    link_address(url)


def open_redis(url: str, **client_options: Any) -> AnyRedis:
    """A client for any supported URL; the caller owns it and must `aclose()` it."""
    target = parse_redis_url(url)
    if target is None:
        client: aioredis.Redis = aioredis.from_url(url, **client_options)
        return client
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        sentinel_auth: dict[str, Any] = {}
        if "sentinel_password" in target.options:
            sentinel_auth["password"] = target.options["sentinel_password"]
        timeout = client_options.get("socket_timeout")
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.hosts),
            sentinel_kwargs={"socket_timeout": timeout, **sentinel_auth},
            ssl=target.tls,
            **auth,
            **client_options,
        )
        master: aioredis.Redis = sentinel.master_for(target.service or "", db=target.db)
        return master
    options: dict[str, Any] = {
        k: v for k, v in client_options.items() if k != "health_check_interval"
    }
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
        ssl=target.tls,
        **auth,
        **options,
    )
