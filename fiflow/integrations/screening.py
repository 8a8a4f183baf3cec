"""Batch screening: the compiled conditions as Polars expressions over a frame of transactions.

The same AST the real-time evaluator walks (fiflow.domain.feeds) compiles here to Polars
expressions, so a file of transactions is screened column-wise with no per-row Python on the
hot path. Windowed aggregates are differences of prefix sums within each card or customer
(`_with_windows`), with the window semantics of fiflow.domain.feeds.windows:

- rows are ordered by (occurred_at in UTC, transaction_id);
- a window `within D` over row t holds the key's rows with occurred_at in [t - D, t]
  (both ends inclusive; t itself included), minus rows at t's very instant that come after
  t by transaction_id (a stream would not have seen them yet).

Numbers are exact: amounts (and every number a condition compares) are integers of
1/10,000 of a unit (`AMOUNT_SCALE`), counts are scaled the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from decimal import Decimal
from typing import Any

import polars as pl

from fiflow.domain.feeds.conditions import CompiledRules, Starts
from fiflow.domain.feeds.expressions import (
    Aggregate,
    And,
    Compare,
    FieldRef,
    InList,
    Literal,
    Node,
    Not,
    Or,
    Per,
    Value,
)
from fiflow.domain.feeds.matches import Match, MatchSource
from fiflow.domain.feeds.preferences import (
    KIND_ORDER,
    TEMPLATES,
    AlertPreferences,
    BalanceRecord,
    KindForm,
    PreferenceChannel,
    PreferenceKind,
    kind_form,
)
from fiflow.domain.feeds.transactions import AMOUNT_SCALE, FeedSettings, Transaction

KEYS: dict[Per, list[str]] = {"card": ["customer_id", "card_last4"], "customer": ["customer_id"]}
STRING_COLUMNS = ("transaction_id", "customer_id", "card_last4", "currency", "merchant", "mcc")
REQUIRED = (*STRING_COLUMNS, "amount", "country", "card_present", "status", "occurred_at")
TIME = pl.Datetime("us", "UTC")
# The columns a derived field is computed from.
DERIVED = {"international": ("country",), "foreign_currency": ("currency", "home_currency")}
MATCHES_SCHEMA = {"transaction_id": pl.String, "condition_id": pl.String}


def transactions_frame(transactions: Iterable[Transaction]) -> pl.DataFrame:
    """A screening frame from validated transactions (amounts as exact decimal strings)."""
    rows = [
        {
            **t.model_dump(mode="python", exclude={"amount", "occurred_at", "status"}),
            "amount": str(t.amount),
            "status": t.status.value,
            "occurred_at": t.instant,
        }
        for t in transactions
    ]
    schema: dict[str, Any] = {
        **{c: pl.String for c in STRING_COLUMNS},
        "amount": pl.String,
        "home_currency": pl.String,
        "country": pl.String,
        "card_present": pl.Boolean,
        "status": pl.String,
        "occurred_at": TIME,
    }
    return pl.DataFrame(rows, schema=schema)


def _amount_units(column: pl.Expr) -> pl.Expr:
    """Decimal text ("-12.5") to exact integer units of 1/10,000 (null when malformed).

    The shape is checked by a plain regex test and the value read by Polars' exact decimal
    parser: a few times cheaper than extracting the parts with capture groups.
    """
    shaped = column.str.contains(r"^-?[0-9]+(?:\.[0-9]{1,4})?$")
    units = column.cast(pl.Decimal(38, 4), strict=False).to_physical()
    return pl.when(shaped).then(units.cast(pl.Int64, strict=False))


def _check_schema(schema: Mapping[str, pl.DataType], required: Iterable[str]) -> None:
    missing = [c for c in required if c not in schema]
    if missing:
        raise ValueError(f"transaction frame lacks column(s): {', '.join(missing)}")
    time_type = schema["occurred_at"]
    if not isinstance(time_type, pl.Datetime) or time_type.time_zone is None:
        raise ValueError("occurred_at must be a time-zone-aware datetime column")
    if schema["amount"].is_float():
        raise ValueError("amount must be exact (decimal or text), not a float")


def _in_screening_order(frame: pl.DataFrame) -> bool:
    """Whether the rows already run by (occurred_at, transaction_id), strictly."""
    t, i = pl.col("occurred_at"), pl.col("transaction_id")
    after = (t > t.shift(1)) | ((t == t.shift(1)) & (i > i.shift(1)))
    return bool(frame.select(after.fill_null(True).all()).item())


def _unique(ids: pl.Series) -> bool:
    """Whether no id repeats: distinct hashes prove it; only a tie needs the strings."""
    return ids.hash().n_unique() == ids.len() or ids.n_unique() == ids.len()


def prepare(frame: pl.DataFrame, *, required: Iterable[str] = REQUIRED) -> pl.DataFrame:
    """Check and normalise a frame: UTC microsecond times, exact amounts, screening order.

    `required`: the columns that must be present and complete (every schema column unless
    the caller read only the ones its rules use).
    """
    required = tuple(required)
    _check_schema(frame.schema, required)
    if "home_currency" not in frame.columns:
        frame = frame.with_columns(home_currency=pl.lit(None, pl.String))
    frame = frame.with_columns(
        pl.col("occurred_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        amount_units=_amount_units(pl.col("amount").cast(pl.String)),
    )
    nulls = [c for c in (*required, "amount_units") if frame[c].null_count()]
    if nulls:
        raise ValueError(f"transaction frame has missing or malformed values in: {nulls}")
    if not _unique(frame["transaction_id"]):
        raise ValueError("transaction_id must be unique within a frame")
    # Files usually arrive in time order: checking it is a few times cheaper than sorting.
    if _in_screening_order(frame):
        return frame
    return frame.sort("occurred_at", "transaction_id")


def _fields(node: Node, found: set[str]) -> set[str]:
    """The transaction columns an expression reads (derived fields: their sources)."""
    if isinstance(node, FieldRef):
        found.update(DERIVED.get(node.name, (node.name,)))
    elif isinstance(node, Aggregate):
        found.update(KEYS[node.per])
        for part in (node.arg, node.where):
            if part is not None:
                _fields(part, found)
    elif isinstance(node, Compare):
        _fields(node.left, found)
        _fields(node.right, found)
    elif isinstance(node, InList):
        _fields(node.operand, found)
    elif isinstance(node, And | Or):
        for p in node.parts:
            _fields(p, found)
    elif isinstance(node, Not):
        _fields(node.part, found)
    return found


def columns_for(roots: Iterable[Node], also: Iterable[str] = ()) -> list[str]:
    """The columns screening these expressions reads (and `also`), in schema order."""
    found = {"transaction_id", "occurred_at", "amount", *also}
    for root in roots:
        _fields(root, found)
    return [c for c in (*REQUIRED, "home_currency") if c in found]


def _load(frame: pl.DataFrame | pl.LazyFrame, columns: list[str]) -> pl.DataFrame:
    """The prepared frame of the columns screening reads.

    A LazyFrame (say `pl.scan_parquet`) is collected with only those columns, so a file's
    other columns are never read; it must still have every schema column. A DataFrame is
    checked whole (its null counts are free) and then narrowed.
    """
    if isinstance(frame, pl.LazyFrame):
        schema = frame.collect_schema()
        _check_schema(schema, REQUIRED)
        present = [c for c in columns if c in schema]
        required = [c for c in present if c in REQUIRED]
        # One chunk per column: a Parquet file's row groups arrive as many, and gathering
        # from a many-chunk column looks up the chunk of every index (several times slower).
        return prepare(frame.select(present).collect().rechunk(), required=required)
    _check_schema(frame.schema, REQUIRED)
    nulls = [c for c in REQUIRED if frame[c].null_count()]
    if nulls:
        raise ValueError(f"transaction frame has missing or malformed values in: {nulls}")
    present = [c for c in columns if c in frame.columns]
    return prepare(frame.select(present).rechunk(), required=[c for c in present if c in REQUIRED])


def _literal(value: Value) -> pl.Expr:
    if isinstance(value, Decimal):
        return pl.lit(int(value * AMOUNT_SCALE), pl.Int64)
    if isinstance(value, bool):
        return pl.lit(value, pl.Boolean)
    if isinstance(value, str):
        return pl.lit(value, pl.String)
    return pl.lit(value.astimezone(UTC), TIME)


def _field(name: str, settings: FeedSettings) -> pl.Expr:
    if name == "amount":
        return pl.col("amount_units")
    if name == "international":
        return pl.col("country") != settings.home_country
    if name == "foreign_currency":
        return pl.col("currency") != pl.coalesce(
            pl.col("home_currency"), pl.lit(settings.home_currency)
        )
    return pl.col(name)


def to_polars(
    node: Node,
    settings: FeedSettings,
    columns: dict[Aggregate, str],
    params: Mapping[int, pl.Expr] | None = None,
) -> pl.Expr:
    """One node as a Polars expression; aggregates read their precomputed columns.

    `params` maps a preference template's slots (node positions) to the columns holding
    each row's value: a number literal reads the column, an `in` list tests membership in
    the row's list.
    """
    params = params or {}
    if isinstance(node, Literal):
        if node.position in params:
            return params[node.position]
        return _literal(node.value)
    if isinstance(node, FieldRef):
        return _field(node.name, settings)
    if isinstance(node, Aggregate):
        return pl.col(columns[node])
    if isinstance(node, Not):
        return ~to_polars(node.part, settings, columns, params)
    if isinstance(node, And | Or):
        parts = [to_polars(p, settings, columns, params) for p in node.parts]
        return pl.all_horizontal(parts) if isinstance(node, And) else pl.any_horizontal(parts)
    if isinstance(node, InList):
        operand = to_polars(node.operand, settings, columns, params)
        if node.position in params:
            found = operand.is_in(params[node.position])
        else:
            values = [int(v * AMOUNT_SCALE) if isinstance(v, Decimal) else v for v in node.values]
            found = operand.is_in(pl.lit(pl.Series(values)).implode())
        return ~found if node.negated else found
    assert isinstance(node, Compare)
    left = to_polars(node.left, settings, columns, params)
    right = to_polars(node.right, settings, columns, params)
    return {
        "=": left.eq,
        "!=": left.ne,
        "<": left.lt,
        "<=": left.le,
        ">": left.gt,
        ">=": left.ge,
    }[node.op](right)


def _aggregate_value(agg: Aggregate, settings: FeedSettings) -> pl.Expr:
    """What one row adds to an aggregate: its amount (sum) or 1 scaled (count, exists)."""
    if agg.function == "sum":
        value = to_polars(agg.arg, settings, {})
        if agg.where is not None:
            value = pl.when(to_polars(agg.where, settings, {})).then(value).otherwise(0)
    else:
        value = pl.when(to_polars(agg.arg, settings, {})).then(AMOUNT_SCALE).otherwise(0)
    return value.fill_null(0).cast(pl.Int64)


# The seeds of the two key hashes (the second only checks the first).
KEY_SEEDS = (0, 0x9E3779B97F4A7C15)


def _key_hash(keys: list[str], seed: int) -> pl.Expr:
    return pl.struct(keys).hash(seed)


def _key_order(data: pl.DataFrame, keys: list[str]) -> tuple[pl.Series, pl.Series]:
    """Row positions grouped by key, each key's rows in screening order; and key numbers.

    Rows are sorted by a 64-bit hash of the key (stable, so screening order holds within a
    key): several times faster than sorting by the key's strings, and the strings are never
    moved. Two keys that share the hash would interleave; the hash under a second seed
    changing inside a run of equal first hashes shows it, and then the exact sort by the
    strings is used instead. (A grouping error would need both 64-bit hashes of two keys to
    collide at once: comparing the strings themselves cost more than all the rest.)
    """
    work = (
        data.select(__h=_key_hash(keys, KEY_SEEDS[0]), __h2=_key_hash(keys, KEY_SEEDS[1]))
        .rechunk()
        .with_row_index("__pos")
        .sort("__h", maintain_order=True)
    )
    h, h2 = pl.col("__h"), pl.col("__h2")
    flags = work.select(
        __collide=((h == h.shift(1)) & (h2 != h2.shift(1))).any(),
        __key=(h != h.shift(1)).fill_null(True).cum_sum().cast(pl.Int64),
    )
    if flags["__collide"][0]:
        exact = data.select(*keys).with_row_index("__pos").sort([*keys, "__pos"])
        changed = pl.any_horizontal([pl.col(k) != pl.col(k).shift(1) for k in keys])
        key = exact.select(changed.fill_null(True).cum_sum().cast(pl.Int64)).to_series()
        return exact["__pos"], key
    return work["__pos"], flags["__key"]


def _with_windows(
    data: pl.DataFrame, aggregates: dict[Aggregate, str], per: Per, settings: FeedSettings
) -> pl.DataFrame:
    """Each aggregate over one kind of key as a column (data in screening order).

    Rows are grouped by key, each key's rows in screening order, and every aggregate is a
    difference of prefix sums: the sum up to this row (so later rows at the same instant are
    not in it) less the sum before the key's first row at or after `occurred_at - within`.
    That row is found by a search (one per window length, shared by its aggregates) over
    one sorted number per row, the key's number times a span longer than the file plus
    the window, plus the row's time: a window never reaches into the previous key. The
    results go back to screening order through the inverse permutation.
    """
    positions, key = _key_order(data, KEYS[per])
    values = data.select(
        __t=pl.col("occurred_at").dt.epoch("us"),
        **{name: _aggregate_value(agg, settings) for agg, name in aggregates.items()},
    )
    work = values.rechunk()[positions]  # one chunk: see _load
    t0, t1 = work["__t"].min(), work["__t"].max()
    assert isinstance(t0, int) and isinstance(t1, int)
    longest = max(int(a.within.total_seconds() * 1_000_000) for a in aggregates)
    span = t1 - t0 + longest + 1
    keys = int(key[-1]) + 1
    if keys * span >= 2**62:
        raise ValueError("the file spans too long a time for its number of cards and customers")
    position = key * span + (work["__t"] - t0)
    firsts: dict[int, pl.Series] = {}
    found = {}
    rows = pl.DataFrame({"__g": position}).with_row_index("__first")
    for agg, name in aggregates.items():
        within = int(agg.within.total_seconds() * 1_000_000)
        if within not in firsts:
            # A forward as-of join takes the first row at or after each window's start: the
            # left binary search, done as one merge of two sorted columns (a few times
            # cheaper than a binary search per row).
            starts = pl.DataFrame({"__g": position - within})
            firsts[within] = starts.join_asof(rows, on="__g", strategy="forward")["__first"]
        upto = work[name].cum_sum()
        total = upto - (upto - work[name]).gather(firsts[within])
        found[name] = total > 0 if agg.function == "exists" else total
    inverse = pl.zeros(data.height, pl.UInt32, eager=True).scatter(
        positions, pl.int_range(data.height, dtype=pl.UInt32, eager=True)
    )
    return data.with_columns(column.gather(inverse).alias(name) for name, column in found.items())


def screen(frame: pl.DataFrame | pl.LazyFrame, rules: CompiledRules) -> pl.DataFrame:
    """Every (transaction_id, condition_id) match of the rules over a frame of transactions.

    Rows come condition by condition (rule-file order), each condition's in screening order.
    A LazyFrame (`pl.scan_parquet(path)`) is read for the columns the rules use only.
    """
    columns_needed = columns_for(compiled.root for _, compiled in rules.conditions)
    if isinstance(frame, pl.DataFrame) and frame.is_empty():
        return pl.DataFrame(schema=MATCHES_SCHEMA)
    data = _load(frame, columns_needed)
    if data.is_empty():
        return pl.DataFrame(schema=MATCHES_SCHEMA)
    columns: dict[Aggregate, str] = {}
    for _, compiled in rules.conditions:
        for agg in compiled.windows:
            columns.setdefault(agg, f"__agg{len(columns)}")
    for per in KEYS:
        over = {agg: name for agg, name in columns.items() if agg.per == per}
        if over:
            # One rule set, one home country and currency: every condition has the same.
            data = _with_windows(data, over, per, rules.conditions[0][1].settings)
    # One lazy select: the conditions' shared parts (status = "approved", ...) run once.
    flags = (
        data.lazy()
        .select(
            to_polars(compiled.root, compiled.settings, columns).fill_null(False).alias(str(n))
            for n, (_, compiled) in enumerate(rules.conditions)
        )
        .collect()
    )
    ids = data["transaction_id"]
    # Each condition's hits as positions: only matched ids are copied, never the whole
    # (transactions x conditions) table.
    found = []
    for n, (condition, _) in enumerate(rules.conditions):
        hits = flags[str(n)].arg_true()
        found.append(
            pl.DataFrame(
                {
                    "transaction_id": ids.gather(hits),
                    "condition_id": pl.repeat(condition.id, hits.len(), eager=True),
                },
                schema=MATCHES_SCHEMA,
            )
        )
    return pl.concat(found) if found else pl.DataFrame(schema=MATCHES_SCHEMA)


def screen_matches(frame: pl.DataFrame, rules: CompiledRules) -> set[tuple[str, str]]:
    """The matches as a set of (transaction_id, condition_id)."""
    return {(t, c) for t, c in screen(frame, rules).iter_rows()}


# --- customers' alert preferences ---------------------------------------------------------------

# The long-format preferences frame: one row per customer and kind, parameters as columns
# (null where a kind has none). Prefixed so they never meet a transaction's own columns.
PREFERENCES_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "kind": pl.String,
    "p_amount": pl.Int64,  # amount_over, balance_below: units of 1/10,000
    "p_values": pl.List(pl.String),  # merchant_category: MCCs; card_activity: last fours
    "p_currency": pl.String,  # balance_below: only this currency (null: any)
    "channel": pl.String,  # sms, push; null: the customer's preferred channel
    "quiet_hours_ok": pl.Boolean,
}
# Which column fills each template slot.
SLOT_COLUMNS = {"amount": "p_amount", "mccs": "p_values", "cards": "p_values"}
PREFERENCE_MATCHES_SCHEMA: dict[str, Any] = {
    "transaction_id": pl.String,
    "customer_id": pl.String,
    "rule_id": pl.String,
    "alert_type": pl.String,
    "channel": pl.String,
    "quiet_hours_ok": pl.Boolean,
}
BALANCE_MATCHES_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "account_id": pl.String,
    "as_of": TIME,
    "rule_id": pl.String,
    "alert_type": pl.String,
    "channel": pl.String,
    "quiet_hours_ok": pl.Boolean,
}
BALANCE_REQUIRED = ("customer_id", "account_id", "balance", "currency", "as_of")


def preferences_frame(
    preferences: Mapping[str, AlertPreferences] | Iterable[tuple[str, AlertPreferences]],
) -> pl.DataFrame:
    """The long-format preferences frame of many customers (customer_id -> preferences)."""
    items = preferences.items() if isinstance(preferences, Mapping) else preferences
    cols: dict[str, list[Any]] = {name: [] for name in PREFERENCES_SCHEMA}
    for customer_id, prefs in items:
        for entry in prefs.preferences:
            amount = getattr(entry, "amount", None)
            values = getattr(entry, "mccs", None) or getattr(entry, "cards", None)
            cols["customer_id"].append(customer_id)
            cols["kind"].append(entry.kind)
            cols["p_amount"].append(None if amount is None else int(amount * AMOUNT_SCALE))
            cols["p_values"].append(values)
            cols["p_currency"].append(getattr(entry, "currency", None))
            cols["channel"].append(
                None if entry.channel is PreferenceChannel.PREFERRED else entry.channel.value
            )
            cols["quiet_hours_ok"].append(entry.quiet_hours_ok)
    return pl.DataFrame(cols, schema=PREFERENCES_SCHEMA)


def _check_preferences(preferences: pl.DataFrame) -> None:
    missing = [c for c in PREFERENCES_SCHEMA if c not in preferences.columns]
    if missing:
        raise ValueError(f"preferences frame lacks column(s): {', '.join(missing)}")
    if preferences.select(pl.struct("customer_id", "kind").is_duplicated().any()).item():
        raise ValueError("a preferences frame holds at most one row per customer and kind")


def _match_columns(kind: str) -> list[pl.Expr]:
    return [
        pl.lit(kind).alias("rule_id"),
        pl.lit(f"pref_{kind}").alias("alert_type"),
        pl.col("channel"),
        pl.col("quiet_hours_ok"),
    ]


def _wide_preferences(preferences: pl.DataFrame, forms: list[KindForm]) -> pl.DataFrame:
    """One row per customer with a transaction kind: each kind's entry as columns.

    `<kind>:has` says whether the customer holds the kind; `<kind>:<column>` are its slot
    parameters, channel and quiet-hours flag. One row per customer lets the transactions
    meet their customers' preferences in one join, whatever the number of kinds.
    """
    aggs = []
    for form in forms:
        kind = form.kind.value
        holds = pl.col("kind") == kind
        aggs.append(holds.any().alias(f"{kind}:has"))
        used = {SLOT_COLUMNS[name] for name, _ in form.slots}
        for column in (*sorted(used), "channel", "quiet_hours_ok"):
            aggs.append(pl.col(column).filter(holds).first().alias(f"{kind}:{column}"))
    kinds = [form.kind.value for form in forms]
    return preferences.filter(pl.col("kind").is_in(kinds)).group_by("customer_id").agg(aggs)


def _id_hash(ids: pl.Series) -> pl.Series:
    return ids.hash()


def _customer_rows(customers: pl.Series, wide: pl.Series) -> pl.Series:
    """Each transaction's row in the wide preferences (null: its customer holds no kind).

    Joined on 64-bit hashes of the ids, a few times cheaper than on the strings, then
    proved: the ids of every joined pair are compared. Tied hashes (among the preference
    customers, or a transaction's customer meeting another's hash) fall back to the join on
    the strings.
    """
    hashes = _id_hash(wide)
    if hashes.n_unique() == wide.len():
        row = (
            pl.DataFrame({"__h": _id_hash(customers)})
            .join(
                pl.DataFrame({"__h": hashes}).with_row_index("__w"),
                on="__h",
                how="left",
                maintain_order="left",
            )["__w"]
            .rechunk()
        )
        if (customers == wide.gather(row)).fill_null(True).all():
            return row
    return (
        pl.DataFrame({"customer_id": customers})
        .join(
            pl.DataFrame({"customer_id": wide}).with_row_index("__w"),
            on="customer_id",
            how="left",
            maintain_order="left",
        )["__w"]
        .rechunk()
    )


def _template_columns(root: Node) -> list[str]:
    """The prepared frame's columns a template reads (amounts as exact units)."""
    found = _fields(root, set())
    return sorted({"amount_units" if c == "amount" else c for c in found})


def screen_preferences(
    frame: pl.DataFrame | pl.LazyFrame, preferences: pl.DataFrame, settings: FeedSettings
) -> pl.DataFrame:
    """Every transaction's matches of its customer's preferences (one row per match).

    Columns: transaction_id, customer_id, rule_id (the kind), alert_type, channel (null:
    the customer's preferred one), quiet_hours_ok; ordered by transaction (screening order)
    and kind. Each transaction finds its customer's row of the wide preferences (one row per
    customer, each kind's entry as columns) in one join of the ids alone; each kind is then
    one expression (its template, compiled once) over the rows of the customers holding it,
    with their parameters beside them: no per-customer expressions, and only the matches'
    ids and channels are copied out.
    """
    if (isinstance(frame, pl.DataFrame) and frame.is_empty()) or preferences.is_empty():
        return pl.DataFrame(schema=PREFERENCE_MATCHES_SCHEMA)
    _check_preferences(preferences)
    forms = [kind_form(kind, settings) for kind in TEMPLATES]
    data = _load(frame, columns_for((f.condition.root for f in forms), also=["customer_id"]))
    wide = _wide_preferences(preferences, forms).rechunk()
    row = _customer_rows(data["customer_id"], wide["customer_id"])
    found = []
    for form in forms:
        kind = form.kind.value
        holders = wide[f"{kind}:has"].gather(row).fill_null(False).arg_true()
        their_row = row.gather(holders)
        params = {position: pl.col(f"{kind}:{SLOT_COLUMNS[name]}") for name, position in form.slots}
        columns = _template_columns(form.condition.root)
        rows = data.select(columns)[holders].with_columns(
            wide[f"{kind}:{SLOT_COLUMNS[name]}"].gather(their_row) for name, _ in form.slots
        )
        met = rows.select(
            to_polars(form.condition.root, settings, {}, params).fill_null(False)
        ).to_series()
        hit_rows = their_row.filter(met)
        found.append(
            pl.DataFrame(
                {
                    "__order": holders.filter(met),
                    "__rank": pl.repeat(KIND_ORDER[kind], hit_rows.len(), eager=True),
                    "rule_id": pl.repeat(kind, hit_rows.len(), eager=True),
                    "alert_type": pl.repeat(f"pref_{kind}", hit_rows.len(), eager=True),
                    "channel": wide[f"{kind}:channel"].gather(hit_rows),
                    "quiet_hours_ok": wide[f"{kind}:quiet_hours_ok"].gather(hit_rows),
                }
            )
        )
    matches = pl.concat(found).sort("__order", "__rank")
    ids = data.select("transaction_id", "customer_id")[matches["__order"]]
    return pl.concat([ids, matches.drop("__order", "__rank")], how="horizontal").cast(
        PREFERENCE_MATCHES_SCHEMA  # type: ignore[arg-type]
    )


def screen_preference_matches(
    frame: pl.DataFrame, preferences: pl.DataFrame, settings: FeedSettings
) -> set[tuple[str, str]]:
    """The preference matches as a set of (transaction_id, kind)."""
    result = screen_preferences(frame, preferences, settings)
    return {(t, k) for t, k in result.select("transaction_id", "rule_id").iter_rows()}


def balances_frame(records: Iterable[BalanceRecord]) -> pl.DataFrame:
    """A balance frame from validated records (balances as exact decimal strings)."""
    rows = [
        {
            "customer_id": r.customer_id,
            "account_id": r.account_id,
            "balance": format(r.balance, "f"),
            "currency": r.currency,
            "as_of": r.as_of.astimezone(UTC),
        }
        for r in records
    ]
    schema: dict[str, Any] = {
        "customer_id": pl.String,
        "account_id": pl.String,
        "balance": pl.String,
        "currency": pl.String,
        "as_of": TIME,
    }
    return pl.DataFrame(rows, schema=schema)


def screen_balances(frame: pl.DataFrame, preferences: pl.DataFrame) -> pl.DataFrame:
    """Every balance record below its customer's balance_below amount (one row per match).

    The frame holds settlement/balance records (customer_id, account_id, balance as exact
    decimal text, currency, as_of); the result names each record by customer_id,
    account_id and as_of, in the frame's order. Below means strictly below, and only in
    the preference's currency when it names one (fiflow.domain.feeds.preferences).
    """
    if frame.is_empty() or preferences.is_empty():
        return pl.DataFrame(schema=BALANCE_MATCHES_SCHEMA)
    _check_preferences(preferences)
    missing = [c for c in BALANCE_REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"balance frame lacks column(s): {', '.join(missing)}")
    if frame.schema["balance"].is_float():
        raise ValueError("balance must be exact (decimal or text), not a float")
    data = frame.select(
        *BALANCE_REQUIRED[:2],
        "currency",
        pl.col("as_of").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        balance_units=_amount_units(pl.col("balance").cast(pl.String)),
    )
    nulls = [c for c in data.columns if data[c].null_count()]
    if nulls:
        raise ValueError(f"balance frame has missing or malformed values in: {nulls}")
    kind = PreferenceKind.BALANCE_BELOW.value
    rows = preferences.lazy().filter(pl.col("kind") == kind)
    below = (pl.col("balance_units") < pl.col("p_amount")) & (
        pl.col("p_currency").is_null() | (pl.col("p_currency") == pl.col("currency"))
    )
    return (
        data.with_row_index("__order")
        .lazy()
        .join(rows, on="customer_id", how="inner")
        .filter(below)
        .sort("__order")
        .select("customer_id", "account_id", "as_of", *_match_columns(kind))
        .collect()
        .cast(BALANCE_MATCHES_SCHEMA)  # type: ignore[arg-type]
    )


def preference_match(row: Mapping[str, Any]) -> Match:
    """The Match of one result row of screen_preferences or screen_balances."""
    return Match(
        source=MatchSource.PREFERENCE,
        rule_id=row["rule_id"],
        starts=Starts.INFORMATIONAL_ALERT,
        alert_type=row["alert_type"],
        channel=row["channel"],
        quiet_hours_ok=row["quiet_hours_ok"],
    )


def preference_matches_by_transaction(result: pl.DataFrame) -> dict[str, list[Match]]:
    """screen_preferences' rows as each transaction's Matches, in kind order."""
    found: dict[str, list[Match]] = {}
    for row in result.iter_rows(named=True):
        found.setdefault(row["transaction_id"], []).append(preference_match(row))
    return found
