"""The price tables the payoff is computed with: OpenAI's per-token prices and the guide's Redis
tiers, dated data files in reports/prices/ (`--prices FILE` replaces the OpenAI one)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from hermes_bench.errors import ConfigError
from hermes_bench.results.model import Record

PRICES_DIR = Path(__file__).resolve().parent / "prices"
OPENAI_PRICES = PRICES_DIR / "openai.json"
REDIS_TIERS = PRICES_DIR / "redis_tiers.json"
MAX_FILE_BYTES = 1_000_000


class ModelPrice(Record):
    """USD per 1M tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class PriceTable(Record):
    """OpenAI's prices by model, with the date they were read and where."""

    as_of: str
    source: str
    currency: str = "USD"
    unit: str = "per 1M tokens"
    models: dict[str, ModelPrice] = Field(min_length=1)


class RedisTier(Record):
    """One of the guide's Redis offers: by memory (per GB, a minimum), by command, or flat,
    with the free tiers' limits."""

    name: str
    label: str
    per_gb_month: float | None = Field(None, ge=0)
    min_gb: float = Field(0, ge=0)
    per_100k_commands: float | None = Field(None, ge=0)
    flat_month: float | None = Field(None, ge=0)
    max_mb: float | None = Field(None, gt=0)  # a free tier holds at most this much
    max_commands_per_day: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_way_to_pay(self) -> RedisTier:
        ways = [self.per_gb_month, self.per_100k_commands, self.flat_month]
        if sum(way is not None for way in ways) != 1:
            raise ValueError("give exactly one of per_gb_month, per_100k_commands, flat_month")
        return self


class RedisTiers(Record):
    source: str
    currency: str = "USD"
    tiers: list[RedisTier] = Field(min_length=1)


def parse_price_table(text: str, source: str) -> PriceTable:
    """A PriceTable from JSON text; ConfigError names the file and the first faults."""
    try:
        return PriceTable.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(f"{source} is not a price table: {_faults(exc)}") from None


def parse_redis_tiers(text: str, source: str) -> RedisTiers:
    try:
        return RedisTiers.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(f"{source} is not a list of Redis tiers: {_faults(exc)}") from None


def load_price_table(path: Path | None = None) -> PriceTable:
    """The OpenAI prices of `path`, or the dated table shipped with hermes-bench."""
    path = OPENAI_PRICES if path is None else path
    return parse_price_table(_read(path), str(path))


def load_redis_tiers() -> RedisTiers:
    """The guide's Redis tiers, shipped with hermes-bench."""
    return parse_redis_tiers(_read(REDIS_TIERS), str(REDIS_TIERS))


def _read(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"--prices {path}: no such file (give a JSON price table)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(f"--prices {path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--prices {path}: cannot be read ({exc})") from None


def _faults(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "the file"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
