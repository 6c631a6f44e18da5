"""The durable tables of plan change and their numbered migrations (`hotline.store.db`).

`plan_order` is the journal of every order this service submitted, whatever the
provider; `plan_offer`, `plan_product` and `plan_password` are the embedded provider's
catalog, inventory and service passwords (scrypt digests, never the password).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from hotline.store.db import Migration

__all__ = ["MIGRATIONS", "offers", "orders", "passwords", "products"]

metadata = MetaData()

orders = Table(
    "plan_order",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("msisdn", String(32), nullable=False),
    Column("offer_id", String(64), nullable=False),
    Column("offer_name", String(128), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("effect", String(16), nullable=False),
    Column("language", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("upstream_id", String(64), nullable=True),
    Column("effective_on", String(10), nullable=True),
    Column("charged_minor", BigInteger, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("next_poll_at", Float, nullable=True),
    Column("polls", Integer, nullable=False, default=0),
    Column("notified", Boolean, nullable=False, default=False),
    Index("plan_order_due", "state", "next_poll_at"),
    Index("plan_order_msisdn", "msisdn"),
)

offers = Table(
    "plan_offer",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("effect", String(16), nullable=False),
    Column("data_bytes", BigInteger, nullable=False, default=0),
    Column("voice_seconds", BigInteger, nullable=False, default=0),
    Column("sms", Integer, nullable=False, default=0),
    Column("change", String(64), nullable=False, default=""),
    Column("requires_password", Boolean, nullable=False, default=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("sort", Integer, nullable=False, default=0),
)

products = Table(
    "plan_product",
    metadata,
    Column("msisdn", String(32), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("starts_on", String(10), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("ends_on", String(10), nullable=True),
    Column("order_id", String(64), nullable=True, unique=True),
)

passwords = Table(
    "plan_password",
    metadata,
    Column("msisdn", String(32), primary_key=True),
    Column("digest", String(200), nullable=False),
)


def _create(conn: Connection) -> None:
    metadata.create_all(conn, tables=[orders, offers, products, passwords])


MIGRATIONS: tuple[Migration, ...] = (Migration("plans-1-create", _create),)
