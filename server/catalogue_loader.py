"""Read `kiosk_config/*.toml` once at start-up and turn any problem into one precise message.

A bad file must stop the server with a line an operator can act on, e.g.
``kiosk_config/huts.toml: hut[4].level: Input should be 'city', … (got 'town')``.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from server.catalogue import CatalogueError, KioskConfig
from server.catalogue_records import Category, Department, Hut, Matter, PartnerCity, Region

REGIONS_FILE = "regions.toml"
MATTERS_FILE = "matters.toml"
HUTS_FILE = "huts.toml"

_Model = TypeVar("_Model", bound=BaseModel)
_TOML_POSITION = re.compile(
    r"(?P<problem>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigFileError(ValueError):
    """One problem in one configuration file: `str()` is ``"{file}: {key}: {problem}"``."""

    def __init__(self, file: Path, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")
        self.file = file
        self.key = key
        self.problem = problem


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegionsFile(_File):
    region: tuple[Region, ...] = Field(min_length=1)
    partner_city: tuple[PartnerCity, ...] = ()


class MattersFile(_File):
    department: tuple[Department, ...] = Field(min_length=1)
    category: tuple[Category, ...] = Field(min_length=1)
    matter: tuple[Matter, ...] = Field(min_length=1)


class HutsFile(_File):
    hut: tuple[Hut, ...] = Field(min_length=1)


_FILES: dict[str, type[_File]] = {
    REGIONS_FILE: RegionsFile,
    MATTERS_FILE: MattersFile,
    HUTS_FILE: HutsFile,
}
_FILE_OF_TABLE = {table: name for name, model in _FILES.items() for table in model.model_fields}


def load_kiosk_config(config_dir: Path) -> KioskConfig:
    """Load and check the three files; raise `ConfigFileError` on the first problem."""
    regions = _load(config_dir / REGIONS_FILE, RegionsFile)
    matters = _load(config_dir / MATTERS_FILE, MattersFile)
    huts = _load(config_dir / HUTS_FILE, HutsFile)
    try:
        return KioskConfig(
            regions=regions.region,
            partner_cities=regions.partner_city,
            departments=matters.department,
            categories=matters.category,
            matters=matters.matter,
            huts=huts.hut,
        )
    except CatalogueError as exc:
        path = config_dir / _FILE_OF_TABLE[exc.table]
        raise ConfigFileError(path, exc.key, exc.problem) from None


def _load(path: Path, model: type[_Model]) -> _Model:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(path, "(file)", f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigFileError(path, f"line {line}", "not valid UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        key, problem = _toml_position(str(exc), text)
        raise ConfigFileError(path, key, f"TOML syntax error: {problem}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = _most_telling(exc.errors(include_url=False))
        raise ConfigFileError(path, dotted_key(error["loc"]), _problem(error, model)) from None


def _most_telling(errors: list[ErrorDetails]) -> ErrorDetails:
    """The first error, except that a misspelt key beats the "missing" it causes."""
    first = errors[0]
    if first["type"] == "missing":
        for error in errors:
            if error["type"] == "extra_forbidden" and error["loc"][:-1] == first["loc"][:-1]:
                return error
    return first


def _toml_position(message: str, text: str) -> tuple[str, str]:
    match = _TOML_POSITION.fullmatch(message)
    if match is None:
        return "(file)", message
    if match["line"] is None:
        return f"line {text.count(chr(10)) + 1}", f"{match['problem']} (at end of file)"
    return f"line {match['line']}", f"{match['problem']} (column {match['column']})"


def dotted_key(loc: tuple[int | str, ...]) -> str:
    """Pydantic's ``('hut', 4, 'level')`` as ``hut[4].level``, the way TOML users read it."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
            continue
        name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        key += f".{name}" if key else name
    return key or "(file)"


def _problem(error: ErrorDetails, model: type[BaseModel]) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key; " + _suggest(error["loc"], model)
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "tuple_type":
        return f"should be an array [...] (got {error['input']!r})"
    if kind == "too_short":
        return f"should have at least {ctx['min_length']} item(s), got {ctx['actual_length']}"
    return f"{error['msg']} (got {error['input']!r})"


def _suggest(loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    allowed = _allowed_keys(loc[:-1], model)
    if not allowed:
        return "remove it"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "allowed keys here: " + ", ".join(allowed)


def _allowed_keys(loc: tuple[int | str, ...], model: type[BaseModel]) -> list[str]:
    """Follow `loc` through the model's field types to the model that owns the key."""
    current: object = model
    for part in loc:
        if isinstance(part, int):
            args = get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            current = field.annotation if field else None
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []
