"""Transaction and settlement files: the content-addressed store, the per-source column
mapping, and reading a file into the screening schema with malformed rows separated (Polars,
column-wise).

A file is copied into `<batch_dir>/<sha256>.<ext>` before anything else happens, so it is
never lost and every worker that mounts the same directory can read it. Its SHA-256 names
the batch: the same bytes twice are one batch.

How a source's columns map onto the transaction schema (docs/feeds.md, "Batch files") is rule
data, `feed_sources.yaml`, validated by `FeedSources`. Every value is read as text and parsed
by Polars expressions; a row that fails any check is rejected with its line number and the
reasons (field names and problems only, never the value: values can be personal data).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import tempfile
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fiflow.domain.feeds.batches import DigestRules
from fiflow.domain.feeds.transactions import AMOUNT_LIMIT, AMOUNT_SCALE
from fiflow.domain.rules import RuleSetError, validate_rules

FEED_SOURCES_FILE = "feed_sources.yaml"
SOURCE_NAME = r"^[a-z][a-z0-9_]{0,31}$"
# Ids end up in alert keys and workflow inputs (SAFE_ID); the schema caps them at 64.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
TIME = pl.Datetime("us", "UTC")

# Every field of the transaction schema a file can carry, and whether it may be missing.
SCHEMA_FIELDS: dict[str, bool] = {
    "transaction_id": True,
    "customer_id": True,
    "card_last4": True,
    "amount": True,
    "currency": True,
    "home_currency": False,
    "merchant": True,
    "mcc": True,
    "country": True,
    "card_present": True,
    "status": True,
    "occurred_at": True,
}
# A settlement (balance) file's fields (fiflow.domain.feeds.preferences.BalanceRecord), all
# required.
BALANCE_FIELDS: dict[str, bool] = {
    "customer_id": True,
    "account_id": True,
    "balance": True,
    "currency": True,
    "as_of": True,
}
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


class SourceKind(StrEnum):
    """What a source's files hold."""

    TRANSACTIONS = "transactions"  # card transactions (the transaction schema)
    SETTLEMENT = "settlement"  # one balance per account (BalanceRecord)


class FileFormat(StrEnum):
    """The file formats a batch can arrive in."""

    CSV = "csv"
    PARQUET = "parquet"


CONTENT_TYPES: dict[str, FileFormat] = {
    "text/csv": FileFormat.CSV,
    "application/vnd.apache.parquet": FileFormat.PARQUET,
}
EXTENSIONS: dict[str, FileFormat] = {".csv": FileFormat.CSV, ".parquet": FileFormat.PARQUET}


class BatchFileError(ValueError):
    """The file as a whole cannot be read (not the format, a required column missing)."""


# --- the column mapping (rule data) ---------------------------------------------------------


class SourceMapping(BaseModel):
    """How one source's files map onto the transaction schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(default="", max_length=500)
    # transactions, or settlement: balance records (customer_id, account_id, balance,
    # currency, as_of), screened against the customers' balance_below preferences.
    kind: SourceKind = SourceKind.TRANSACTIONS
    # File column -> schema field; a field not named here is read from the column of its name.
    columns: dict[str, str] = Field(default_factory=dict)
    # Per field, file values -> schema values (e.g. status: {"A": "approved", "D": "declined"}).
    values: dict[Literal["status", "card_present"], dict[str, str]] = Field(default_factory=dict)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    # Times without an offset are local to this zone; None: every time must carry an offset.
    timezone: str | None = None
    # A strftime format for occurred_at (settlement: as_of); None: ISO 8601
    # ("2026-11-01T10:00:00+01:00", "...Z").
    time_format: str | None = Field(default=None, max_length=64)

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns.values()) - set(SCHEMA_FIELDS) - set(BALANCE_FIELDS))
        if unknown:
            raise ValueError(f"columns map onto unknown field(s): {', '.join(unknown)}")
        targets = list(columns.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"several columns map onto: {', '.join(twice)}")
        return columns

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and value not in zoneinfo.available_timezones():
            raise ValueError(f"unknown time zone {value!r}")
        return value

    @model_validator(mode="after")
    def _fields_of_kind(self) -> SourceMapping:
        fields = self.fields()
        unknown = sorted(set(self.columns.values()) - set(fields))
        if unknown:
            raise ValueError(
                f"columns map onto field(s) a {self.kind.value} file has not: "
                f"{', '.join(unknown)}; known: {', '.join(fields)}"
            )
        if self.kind is SourceKind.SETTLEMENT and self.values:
            raise ValueError("values: a settlement file has no status or card_present")
        return self

    def fields(self) -> dict[str, bool]:
        """The fields of this source's kind, and whether each is required."""
        return BALANCE_FIELDS if self.kind is SourceKind.SETTLEMENT else SCHEMA_FIELDS

    def column_of(self, field: str) -> str:
        """The file column that holds a schema field."""
        return next((col for col, f in self.columns.items() if f == field), field)


class FeedSources(BaseModel):
    """The batch file sources: their column mappings, and the digest rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["feed_sources"] = "feed_sources"
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    sources: dict[str, SourceMapping] = Field(min_length=1)
    digest: DigestRules = DigestRules()

    @model_validator(mode="after")
    def _names(self) -> FeedSources:
        bad = sorted(n for n in self.sources if not re.match(SOURCE_NAME, n))
        if bad:
            raise ValueError(f"source names must be of [a-z0-9_]: {', '.join(bad)}")
        return self

    def source(self, name: str) -> SourceMapping:
        """The named source's mapping; RuleSetError naming the known ones otherwise."""
        found = self.sources.get(name)
        if found is None:
            known = ", ".join(sorted(self.sources))
            raise RuleSetError(f"unknown source {name!r}; known: {known}")
        return found


def feed_sources_path(rules_dir: Path | None) -> Path:
    """The FI's feed_sources.yaml when its rules directory has one, else the packaged one."""
    if rules_dir is not None and (rules_dir / FEED_SOURCES_FILE).exists():
        return rules_dir / FEED_SOURCES_FILE
    return Path(str(resources.files("fiflow") / "rules" / FEED_SOURCES_FILE))


def load_feed_sources(rules_dir: Path | None) -> FeedSources:
    """Read and validate the feed sources; RuleSetError naming the problem."""
    path = feed_sources_path(rules_dir)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleSetError(f"cannot read {path}: {exc}") from None
    return validate_rules(FeedSources, data, source=str(path))


# --- the content-addressed store ------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """A file in the store."""

    sha256: str
    path: Path
    size: int
    format: FileFormat

    @property
    def batch_id(self) -> str:
        """The batch's id: the checksum's first 128 bits (no personal data, stable)."""
        return "b" + self.sha256[:32]


def stored_path(batch_dir: Path, sha256: str, fmt: FileFormat) -> Path:
    """Where the store keeps a file."""
    return batch_dir / f"{sha256}.{fmt.value}"


def work_dir(batch_dir: Path, batch_id: str) -> Path:
    """Where a batch's chunk files live while it is screened."""
    return batch_dir / "work" / batch_id


class TooLarge(Exception):
    """The file passed the size limit while being stored."""


class IncomingFile:
    """A file being copied into the store, hashed as it is written (for streamed uploads)."""

    def __init__(self, batch_dir: Path, fmt: FileFormat, max_bytes: int | None = None):
        batch_dir.mkdir(parents=True, exist_ok=True)
        self._dir = batch_dir
        self._fmt = fmt
        self._max = max_bytes
        self._digest = hashlib.sha256()
        self.size = 0
        fd, tmp = tempfile.mkstemp(dir=batch_dir, prefix=".incoming-")
        self._tmp = Path(tmp)
        self._out = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        """Append bytes; TooLarge past the limit."""
        self.size += len(chunk)
        if self._max is not None and self.size > self._max:
            raise TooLarge
        self._digest.update(chunk)
        self._out.write(chunk)

    def finish(self) -> StoredFile:
        """Flush to disk and move into place under the checksum's name."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        return _settle(self._dir, self._tmp, self._digest.hexdigest(), self.size, self._fmt)

    def discard(self) -> None:
        """Drop what was written (a refused upload)."""
        if not self._out.closed:
            self._out.close()
        self._tmp.unlink(missing_ok=True)


def store_stream(
    batch_dir: Path, chunks: Iterable[bytes], fmt: FileFormat, max_bytes: int | None = None
) -> StoredFile:
    """Copy bytes into the store while hashing them; the same bytes land on the same path."""
    incoming = IncomingFile(batch_dir, fmt, max_bytes)
    try:
        for chunk in chunks:
            incoming.write(chunk)
        return incoming.finish()
    finally:
        incoming.discard()


def store_file(batch_dir: Path, source: Path, fmt: FileFormat, *, move: bool = False) -> StoredFile:
    """Copy (or move, from an inbox on the same volume) a file into the store."""
    if not move:
        with source.open("rb") as f:
            return store_stream(batch_dir, iter(lambda: f.read(1 << 20), b""), fmt)
    digest = hashlib.sha256()
    with source.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    batch_dir.mkdir(parents=True, exist_ok=True)
    size = source.stat().st_size
    return _settle(batch_dir, source, digest.hexdigest(), size, fmt)


def _settle(batch_dir: Path, tmp: Path, sha256: str, size: int, fmt: FileFormat) -> StoredFile:
    dest = stored_path(batch_dir, sha256, fmt)
    if dest.exists():
        tmp.unlink(missing_ok=True)  # the same bytes are already kept
    else:
        try:
            tmp.replace(dest)  # atomic on one volume: a reader never sees half a file
        except OSError:
            shutil.move(str(tmp), dest)
    return StoredFile(sha256=sha256, path=dest, size=size, format=fmt)


# --- reading and validating ------------------------------------------------------------------


@dataclass(frozen=True)
class ReadFile:
    """A file read into the screening schema: its valid rows and its rejected ones."""

    valid: pl.DataFrame  # the screening columns plus `line`
    rejects: pl.DataFrame  # line, reason

    @property
    def rows_read(self) -> int:
        """Every data row of the file."""
        return self.valid.height + self.rejects.height


def _raw_frame(path: Path, fmt: FileFormat, mapping: SourceMapping) -> pl.DataFrame:
    """The file with every column as text and a `line` column (1-based, the file's own)."""
    try:
        if fmt is FileFormat.CSV:
            frame = pl.read_csv(
                path,
                separator=mapping.delimiter,
                infer_schema=False,
                truncate_ragged_lines=True,
            )
            # Line 1 is the header. (A quoted field spanning lines shifts later numbers.)
            return frame.with_row_index("line", offset=2)
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise BatchFileError(f"not a readable {fmt.value} file ({type(exc).__name__})") from None
    # Parquet columns are typed: aware datetimes stay instants, everything else becomes text.
    columns = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            columns.append(pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
        elif isinstance(dtype, pl.Datetime):
            columns.append(pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S%.f"))
        else:
            columns.append(pl.col(name).cast(pl.String))
    return frame.select(columns).with_row_index("line", offset=1)


def _text(name: str) -> pl.Expr:
    value = pl.col(name).str.strip_chars()
    return pl.when(value == "").then(None).otherwise(value)


def _amount_units(text: pl.Expr) -> pl.Expr:
    # A plain regex test for the shape and Polars' exact decimal parser for the value: a few
    # times cheaper than extracting the parts with capture groups.
    shaped = text.str.contains(r"^-?[0-9]{1,13}(?:\.[0-9]{1,4})?$")
    units = text.cast(pl.Decimal(38, 4), strict=False).to_physical()
    return pl.when(shaped).then(units.cast(pl.Int64, strict=False))


def _occurred_at(raw: pl.Expr, dtype: pl.DataType, mapping: SourceMapping) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        return raw  # an aware Parquet timestamp, already UTC
    text = raw.str.strip_chars()
    if mapping.time_format is not None:
        aware = "%z" in mapping.time_format or "%:z" in mapping.time_format
        parsed = text.str.to_datetime(
            mapping.time_format, time_zone="UTC" if aware else None, strict=False, time_unit="us"
        )
        if aware:
            return parsed
        if mapping.timezone is None:
            return pl.lit(None, TIME)
        return parsed.dt.replace_time_zone(
            mapping.timezone, ambiguous="null", non_existent="null"
        ).dt.convert_time_zone("UTC")
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T").str.replace(r"[Zz]$", "+00:00")
    with_offset = iso.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC", strict=False, time_unit="us"
    )
    if mapping.timezone is None:
        return with_offset
    local = (
        iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        .dt.replace_time_zone(mapping.timezone, ambiguous="null", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return pl.coalesce(with_offset, local)


def _mapped(name: str, mapping: SourceMapping) -> pl.Expr:
    value = _text(name)
    table = mapping.values.get(name)  # type: ignore[call-overload]
    if table:
        value = value.replace(table)
    return value


def read_transactions(path: Path, fmt: FileFormat, mapping: SourceMapping) -> ReadFile:
    """Read a stored file: the valid rows in the screening schema, and every rejected row."""
    raw = _raw_frame(path, fmt, mapping)
    renames = {mapping.column_of(f): f for f in SCHEMA_FIELDS if mapping.column_of(f) in raw}
    missing = [f for f, required in SCHEMA_FIELDS.items() if required and f not in renames.values()]
    if missing:
        columns = ", ".join(mapping.column_of(f) for f in missing)
        raise BatchFileError(f"the file lacks column(s): {columns}")
    raw = raw.select("line", *[pl.col(c).alias(f) for c, f in renames.items()])
    if "home_currency" not in raw.columns:
        raw = raw.with_columns(home_currency=pl.lit(None, pl.String))

    status = _mapped("status", mapping).str.to_lowercase()
    present = _mapped("card_present", mapping).str.to_lowercase()
    parsed = raw.with_columns(
        *[_text(f).alias(f) for f in SCHEMA_FIELDS if f not in ("occurred_at",)],
        __units=_amount_units(_text("amount")),
        __status=status,
        __present=pl.when(present.is_in(TRUE_WORDS))
        .then(True)
        .when(present.is_in(FALSE_WORDS))
        .then(False),
        __at=_occurred_at(pl.col("occurred_at"), raw.schema["occurred_at"], mapping),
    )
    limit = int(AMOUNT_LIMIT) * AMOUNT_SCALE
    checks: list[tuple[pl.Expr, str]] = []
    for field, required in SCHEMA_FIELDS.items():
        if required:
            checks.append((pl.col(field).is_null(), f"{field} is missing"))

    def shape(field: str, pattern: str, what: str) -> tuple[pl.Expr, str]:
        value = pl.col(field)
        return value.is_not_null() & ~value.str.contains(pattern), f"{field} is not {what}"

    checks += [
        shape("transaction_id", ID_PATTERN, "an id of A-Z a-z 0-9 . _ : - (at most 64)"),
        shape("customer_id", ID_PATTERN, "an id of A-Z a-z 0-9 . _ : - (at most 64)"),
        shape("card_last4", r"^[0-9]{4}$", "four digits"),
        shape("currency", r"^[A-Z]{3}$", "an ISO 4217 code in capitals"),
        shape("home_currency", r"^[A-Z]{3}$", "an ISO 4217 code in capitals"),
        shape("mcc", r"^[0-9]{4}$", "four digits"),
        shape("country", r"^[A-Z]{2}$", "an ISO 3166 alpha-2 code in capitals"),
        (
            pl.col("amount").is_not_null() & pl.col("__units").is_null(),
            "amount is not a decimal number with at most 4 decimal places",
        ),
        (pl.col("__units").abs() > limit, "amount is out of range"),
        (pl.col("merchant").str.len_chars() > 200, "merchant is longer than 200 characters"),
        (
            pl.col("status").is_not_null() & ~pl.col("__status").is_in(["approved", "declined"]),
            "status is not approved or declined",
        ),
        (
            pl.col("card_present").is_not_null() & pl.col("__present").is_null(),
            "card_present is not true or false",
        ),
        (
            pl.col("occurred_at").is_not_null() & pl.col("__at").is_null(),
            "occurred_at is not a time with an offset"
            if mapping.timezone is None
            else "occurred_at is not a valid time",
        ),
    ]
    reasons = pl.concat_str(
        [pl.when(bad.fill_null(False)).then(pl.lit(reason)) for bad, reason in checks],
        separator="; ",
        ignore_nulls=True,
    )
    checked = parsed.with_columns(__reason=reasons)
    # A transaction id seen on an earlier valid row makes this row a duplicate, not a second
    # transaction (screening and alerts are keyed by it).
    ok = pl.col("__reason") == ""
    first = pl.col("transaction_id").is_first_distinct().over(ok)
    checked = checked.with_columns(
        __reason=pl.when(ok & ~first)
        .then(pl.lit("transaction_id repeats an earlier row"))
        .otherwise(pl.col("__reason"))
    )
    rejects = checked.filter(pl.col("__reason") != "").select(
        "line", pl.col("__reason").alias("reason")
    )
    valid = checked.filter(pl.col("__reason") == "").select(
        "line",
        "transaction_id",
        "customer_id",
        "card_last4",
        pl.col("amount"),
        "currency",
        "home_currency",
        "merchant",
        "mcc",
        "country",
        pl.col("__present").alias("card_present"),
        pl.col("__status").alias("status"),
        pl.col("__at").cast(TIME).alias("occurred_at"),
    )
    return ReadFile(valid=valid, rejects=rejects)


def _reasons(checks: list[tuple[pl.Expr, str]]) -> pl.Expr:
    return pl.concat_str(
        [pl.when(bad.fill_null(False)).then(pl.lit(reason)) for bad, reason in checks],
        separator="; ",
        ignore_nulls=True,
    )


def read_balances(path: Path, fmt: FileFormat, mapping: SourceMapping) -> ReadFile:
    """Read a stored settlement file: its valid balance records, and every rejected row.

    Valid rows: line, customer_id, account_id, balance (exact decimal text), currency, as_of
    (UTC). A record repeating an earlier valid row's customer, account and as_of is rejected:
    it is the same balance (and would be the same notice).
    """
    raw = _raw_frame(path, fmt, mapping)
    renames = {mapping.column_of(f): f for f in BALANCE_FIELDS if mapping.column_of(f) in raw}
    missing = [f for f in BALANCE_FIELDS if f not in renames.values()]
    if missing:
        columns = ", ".join(mapping.column_of(f) for f in missing)
        raise BatchFileError(f"the file lacks column(s): {columns}")
    raw = raw.select("line", *[pl.col(c).alias(f) for c, f in renames.items()])
    parsed = raw.with_columns(
        *[_text(f).alias(f) for f in BALANCE_FIELDS if f != "as_of"],
        __units=_amount_units(_text("balance")),
        __at=_occurred_at(pl.col("as_of"), raw.schema["as_of"], mapping),
    )
    limit = int(AMOUNT_LIMIT) * AMOUNT_SCALE
    an_id = "an id of A-Z a-z 0-9 . _ : - (at most 64)"
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col(f).is_null(), f"{f} is missing") for f in BALANCE_FIELDS
    ]
    for field, pattern, what in (
        ("customer_id", ID_PATTERN, an_id),
        ("account_id", ID_PATTERN, an_id),
        ("currency", r"^[A-Z]{3}$", "an ISO 4217 code in capitals"),
    ):
        value = pl.col(field)
        checks.append(
            (value.is_not_null() & ~value.str.contains(pattern), f"{field} is not {what}")
        )
    checks += [
        (
            pl.col("balance").is_not_null() & pl.col("__units").is_null(),
            "balance is not a decimal number with at most 4 decimal places",
        ),
        (pl.col("__units").abs() > limit, "balance is out of range"),
        (
            pl.col("as_of").is_not_null() & pl.col("__at").is_null(),
            "as_of is not a time with an offset"
            if mapping.timezone is None
            else "as_of is not a valid time",
        ),
    ]
    checked = parsed.with_columns(__reason=_reasons(checks))
    ok = pl.col("__reason") == ""
    first = pl.struct("customer_id", "account_id", "__at").is_first_distinct().over(ok)
    checked = checked.with_columns(
        __reason=pl.when(ok & ~first)
        .then(pl.lit("account_id and as_of repeat an earlier row"))
        .otherwise(pl.col("__reason"))
    )
    rejects = checked.filter(pl.col("__reason") != "").select(
        "line", pl.col("__reason").alias("reason")
    )
    valid = checked.filter(pl.col("__reason") == "").select(
        "line",
        "customer_id",
        "account_id",
        "balance",
        "currency",
        pl.col("__at").cast(TIME).alias("as_of"),
    )
    return ReadFile(valid=valid, rejects=rejects)


def read_batch_file(path: Path, fmt: FileFormat, mapping: SourceMapping) -> ReadFile:
    """Read a stored file by its source's kind (transactions or settlement balances)."""
    if mapping.kind is SourceKind.SETTLEMENT:
        return read_balances(path, fmt, mapping)
    return read_transactions(path, fmt, mapping)


def chunk_count(rows: int, chunk_rows: int) -> int:
    """How many chunks `rows` valid rows make (at least one)."""
    return max(1, math.ceil(rows / chunk_rows))


def partition(valid: pl.DataFrame, chunks: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """The valid rows split into chunks by customer: each customer's rows in one chunk.

    Windows are per card or per customer, and a card belongs to one customer, so every window
    a row needs is inside its own chunk: exact whatever the file's row order and however long
    the rule set's windows, with no overlap to read. A customer's notices are in one chunk too,
    so its digest is built in one place. Customers are dealt out by their rank (not a hash,
    whose values may change between Polars versions), which is deterministic.
    """
    dealt = valid.with_columns(
        __chunk=((pl.col("customer_id").rank("dense") - 1) % chunks).cast(pl.Int64)
    )
    for n in range(chunks):
        yield n, dealt.filter(pl.col("__chunk") == n).drop("__chunk")


def chunk_path(batch_dir: Path, batch_id: str, chunk: int) -> Path:
    """The Parquet file of one chunk of a batch's valid rows."""
    return work_dir(batch_dir, batch_id) / f"chunk-{chunk:05d}.parquet"


def write_chunks(batch_dir: Path, batch_id: str, valid: pl.DataFrame, chunks: int) -> None:
    """Write every chunk file (atomically each, so a retried step rewrites them whole)."""
    directory = work_dir(batch_dir, batch_id)
    directory.mkdir(parents=True, exist_ok=True)
    for n, frame in partition(valid, chunks):
        dest = chunk_path(batch_dir, batch_id, n)
        tmp = dest.with_suffix(".tmp")
        frame.write_parquet(tmp)
        tmp.replace(dest)


def read_chunk(batch_dir: Path, batch_id: str, chunk: int) -> pl.DataFrame:
    """One chunk's valid rows."""
    return pl.read_parquet(chunk_path(batch_dir, batch_id, chunk))


def remove_work(batch_dir: Path, batch_id: str) -> None:
    """Delete a finished batch's chunk files (the stored file itself stays)."""
    shutil.rmtree(work_dir(batch_dir, batch_id), ignore_errors=True)


def format_of(name: str) -> FileFormat | None:
    """A file's format from its extension."""
    return EXTENSIONS.get(Path(name).suffix.lower())
