"""Card transactions and settlement balances for the seeded customers, generated column-wise.

The FI's card system stands behind a real feed; the sandbox stands in for it. Everything is
drawn from hashes of the row number and the seed (Polars' `hash`), so the same seed and
size always give the same file, a million rows take about a second, and no per-row Python
runs (the 10-million-row benchmark file uses the same generator).

The mix, per row: a merchant from a table of everyday ones (its MCC and typical amount), a
card of a seeded customer, mostly card-present and domestic, some online, some abroad in a
foreign currency, a share declined. `alert_share` of the rows are made to alert under the
FI's default conditions (fiflow/rules/conditions.yaml, `large_card_not_present`): a
card-not-present purchase of 5,000 to 9,999 in the home currency. Their ids are returned so
a test or a benchmark knows which transactions should become alerts. Ordinary rows stay
below every default condition's threshold except where declines cluster by chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from fiflow.sandbox.seed import Customer

HOME_COUNTRY = "US"
HOME_CURRENCY = "USD"
# (merchant, mcc, typical amount in cents): everyday card spending.
MERCHANTS: tuple[tuple[str, str, int], ...] = (
    ("CORNER GROCERY", "5411", 4_200),
    ("CITY FUEL", "5541", 5_500),
    ("BLUE BEAN CAFE", "5814", 650),
    ("METRO TRANSIT", "4111", 275),
    ("HOMEWARE DEPOT", "5200", 8_900),
    ("PHARMA PLUS", "5912", 2_300),
    ("STREAM MEDIA ONLINE", "4899", 1_599),
    ("BOOKS AND MORE", "5942", 2_800),
    ("ACME ELECTRONICS", "5732", 31_900),
    ("SKYWAY AIRLINES", "4511", 42_000),
    ("HARBOR HOTEL", "7011", 18_900),
    ("QUICK BITES", "5812", 2_450),
)
# Where international rows happen, with their currency.
ABROAD: tuple[tuple[str, str], ...] = (
    ("FR", "EUR"),
    ("GB", "GBP"),
    ("MX", "MXN"),
    ("JP", "JPY"),
    ("CA", "CAD"),
)
ALERT_MERCHANT = ("GLOBAL GADGETS ONLINE", "5732")
CANARY_PREFIX = "cust-canary-"


@dataclass(frozen=True)
class FeedMix:
    """The shares that shape generated transactions (each a fraction of all rows)."""

    alert_share: float = 0.01
    decline_share: float = 0.03
    card_not_present_share: float = 0.25
    international_share: float = 0.05

    def __post_init__(self) -> None:
        for name in ("alert_share", "decline_share", "card_not_present_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if not 0 <= self.international_share <= 1:
            raise ValueError("international_share must be between 0 and 1")


def cards_frame(customers: list[Customer]) -> pl.DataFrame:
    """One row per seeded card: the customers' ids and last four digits (no canaries)."""
    # The PII canaries exist for one test's planted data; a feed never touches them.
    customers = [c for c in customers if not c.customer_id.startswith(CANARY_PREFIX)]
    return pl.DataFrame(
        {
            "customer_id": [c.customer_id for c in customers for _ in c.cards],
            "card_last4": [card.last4 for c in customers for card in c.cards],
        },
        schema={"customer_id": pl.String, "card_last4": pl.String},
    )


def _draw(seed: int, salt: int) -> pl.Expr:
    """A uniform draw in [0, 1) per row, fixed by the seed, the salt and the row number."""
    return (pl.col("__row").hash(seed * 1_000_003 + salt) % 1_000_000_007).cast(
        pl.Float64
    ) / 1_000_000_007


def _pick(table: pl.Series, draw: pl.Expr) -> pl.Expr:
    """An element of `table` chosen by a draw in [0, 1)."""
    index = (draw * len(table)).cast(pl.UInt32)
    return pl.lit(table).implode().list.get(index)


def generate_transactions(
    cards: pl.DataFrame,
    rows: int,
    *,
    seed: int = 7,
    start: datetime | None = None,
    span: timedelta = timedelta(hours=24),
    mix: FeedMix | None = None,
    id_prefix: str = "sbx",
) -> pl.DataFrame:
    """`rows` transactions over `span` from `start`, in time order, with an `alerts` flag."""
    if rows < 0:
        raise ValueError("rows must not be negative")
    if cards.is_empty():
        raise ValueError("no cards to generate transactions for")
    mix = mix or FeedMix()
    start = (start or datetime(2026, 1, 5, tzinfo=UTC)).astimezone(UTC)
    span_us = max(int(span.total_seconds() * 1_000_000), 1)
    merchants = pl.DataFrame(
        MERCHANTS, schema=["merchant", "mcc", "typical_cents"], orient="row"
    ).with_row_index("__m")
    abroad = pl.DataFrame(ABROAD, schema=["abroad_country", "abroad_currency"], orient="row")
    cards = cards.select("customer_id", "card_last4").with_row_index("__c")
    base = pl.DataFrame({"__row": pl.int_range(rows, eager=True, dtype=pl.UInt64)})
    alert = _draw(seed, 1) < mix.alert_share
    declined = _draw(seed, 2) < mix.decline_share
    online = _draw(seed, 3) < mix.card_not_present_share
    international = _draw(seed, 4) < mix.international_share
    # Amounts spread around the merchant's typical one: 0.2x to about 2.2x, in cents.
    spread = 0.2 + 2 * _draw(seed, 5) * _draw(seed, 6)
    frame = (
        base.with_columns(
            __c=(_draw(seed, 7) * cards.height).cast(pl.UInt32),
            __m=(_draw(seed, 8) * merchants.height).cast(pl.UInt32),
            __a=(_draw(seed, 9) * abroad.height).cast(pl.UInt32),
            __offset=(_draw(seed, 10) * span_us).cast(pl.Int64),
            __alert=alert,
            __declined=declined & ~alert,
            __online=online | alert,
            __international=international & ~alert,
            __alert_cents=(500_000 + _draw(seed, 11) * 499_900).cast(pl.Int64),
            __spread=spread,
        )
        .join(cards, on="__c", how="left")
        .join(merchants, on="__m", how="left")
        .join(abroad.with_row_index("__a"), on="__a", how="left")
    )
    cents = (
        pl.when(pl.col("__alert"))
        .then(pl.col("__alert_cents"))
        .otherwise((pl.col("typical_cents") * pl.col("__spread")).cast(pl.Int64).clip(100))
    )
    whole = (cents // 100).cast(pl.String)
    frac = (cents % 100).cast(pl.String).str.pad_start(2, "0")
    result = frame.select(
        transaction_id=pl.lit(f"{id_prefix}-{seed}-") + pl.col("__row").cast(pl.String),
        customer_id="customer_id",
        card_last4="card_last4",
        amount=whole + pl.lit(".") + frac,
        currency=pl.when("__international")
        .then("abroad_currency")
        .otherwise(pl.lit(HOME_CURRENCY)),
        merchant=pl.when("__alert").then(pl.lit(ALERT_MERCHANT[0])).otherwise("merchant"),
        mcc=pl.when("__alert").then(pl.lit(ALERT_MERCHANT[1])).otherwise("mcc"),
        country=pl.when("__international").then("abroad_country").otherwise(pl.lit(HOME_COUNTRY)),
        card_present=~pl.col("__online"),
        status=pl.when("__declined").then(pl.lit("declined")).otherwise(pl.lit("approved")),
        occurred_at=pl.lit(start).dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        + pl.duration(microseconds=pl.col("__offset")),
        alerts=pl.col("__alert"),
    )
    return result.sort("occurred_at", "transaction_id")


def generate_balances(
    customers: list[Customer], *, seed: int = 7, as_of: datetime | None = None
) -> pl.DataFrame:
    """One settlement balance per seeded account (some low), as an FI's end-of-day file has."""
    as_of = (as_of or datetime(2026, 1, 5, 23, 59, tzinfo=UTC)).astimezone(UTC)
    accounts = pl.DataFrame(
        {
            "customer_id": [c.customer_id for c in customers for _ in c.accounts],
            "account_id": [a.account_id for c in customers for a in c.accounts],
            "currency": [a.currency for c in customers for a in c.accounts],
        },
        schema={"customer_id": pl.String, "account_id": pl.String, "currency": pl.String},
    ).with_row_index("__row")
    cents = (_draw(seed, 21) * _draw(seed, 22) * 1_500_000).cast(pl.Int64)
    return accounts.select(
        "customer_id",
        "account_id",
        balance=(cents // 100).cast(pl.String)
        + pl.lit(".")
        + (cents % 100).cast(pl.String).str.pad_start(2, "0"),
        currency="currency",
        as_of=pl.lit(as_of).dt.replace_time_zone("UTC").dt.cast_time_unit("us"),
    )


def to_ndjson_lines(frame: pl.DataFrame) -> list[bytes]:
    """The transactions as one JSON document each (the stream's message shape)."""
    body = frame.drop("alerts", strict=False).with_columns(
        pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    )
    return [line.encode() for line in body.write_ndjson().splitlines() if line]
