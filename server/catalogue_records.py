"""Records of the kiosk configuration: regions, departments, matters (事项) and huts (晓屋).

Each record validates its own fields; references between records (a hut's region, a
matter's department) are checked by `server.catalogue.KioskConfig`, which sees them all.
Every model is frozen and forbids unknown keys, so a misspelt key in a TOML file fails
loudly instead of silently falling back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from server.opening_hours import OpeningRangeField

ALL_MATTERS = "*"
"""A hut's `matters` value, and a clerk skill, meaning every matter in the catalogue."""


def _has_han(text: str) -> bool:
    return any("\u3400" <= char <= "\u9fff" for char in text)


def _chinese(text: str) -> str:
    if not _has_han(text):
        raise ValueError(f"{text!r} must be written in Chinese (汉字)")
    return text


def _english(text: str) -> str:
    if _has_han(text):
        raise ValueError(f"{text!r} must be English, without Chinese characters")
    return text


def _matching(pattern: str, hint: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if compiled.fullmatch(text) is None:
            raise ValueError(f"{text!r} {hint}")
        return text

    return check


_Str = StringConstraints(strict=True, strip_whitespace=True, min_length=1)
ZhText = Annotated[str, _Str, AfterValidator(_chinese)]
EnText = Annotated[str, _Str, AfterValidator(_english)]
_region_code = _matching(
    r"[0-9]{6}|[0-9]{12}", "must be 6 digits (city, county) or 12 digits (township, village)"
)
RegionCode = Annotated[str, _Str, AfterValidator(_region_code)]
_CODE = r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)*"
_matter_code = _matching(_CODE, "must be A-Z and 0-9 joined by '-', e.g. 'EDU-TQ-CONFIRM'")
DepartmentCode = Annotated[
    str, _Str, AfterValidator(_matching(_CODE, "must be A-Z and 0-9 joined by '-', e.g. 'HPF'"))
]
MatterCode = Annotated[str, _Str, AfterValidator(_matter_code)]
CategoryCode = Annotated[
    str,
    _Str,
    AfterValidator(
        _matching(r"[a-z][a-z0-9_]*", "must be a-z, 0-9 and '_', e.g. 'social_security'")
    ),
]
HutId = Annotated[
    str,
    _Str,
    AfterValidator(
        _matching(r"[a-z0-9]+(-[a-z0-9]+)*", "must be a lower-case slug, e.g. 'hk-gudao-01'")
    ),
]
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
Flag = Annotated[bool, Field(strict=True)]


class Level(StrEnum):
    """Administrative level, highest first: 市, 县（区）, 乡镇（街道）, 村（社区）."""

    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"

    @property
    def rank(self) -> int:
        """0 for city, 3 for village; a region's parent has rank one less than its own."""
        return list(Level).index(self)


class MaterialKind(StrEnum):
    ID_CARD_FRONT = "id_card_front"
    ID_CARD_BACK = "id_card_back"
    HOUSEHOLD_REGISTER = "household_register"
    DIPLOMA = "diploma"
    PHOTO = "photo"
    BUSINESS_LICENCE = "business_licence"
    CERTIFICATE = "certificate"
    FORM = "form"
    OTHER = "other"


FREE_SHAPE_KINDS = frozenset({MaterialKind.CERTIFICATE, MaterialKind.OTHER})
"""Material kinds without a standard shape; only these may state an aspect ratio."""


class Venue(StrEnum):
    GOVERNMENT_HALL = "government_hall"
    BANK = "bank"
    POST_OFFICE = "post_office"
    POWER_SERVICE = "power_service"
    COMMUNITY = "community"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Region(_Record):
    """A jurisdiction in Dongying; `parent` is the code of the region one level up."""

    code: RegionCode
    level: Level
    parent: RegionCode | None = None
    name_zh: ZhText
    name_en: EnText


class PartnerCity(_Record):
    """A city in another province whose matters can be handled here (跨省通办)."""

    code: RegionCode
    name_zh: ZhText
    name_en: EnText
    province_zh: ZhText
    province_en: EnText


class Department(_Record):
    code: DepartmentCode
    name_zh: ZhText
    name_en: EnText


class Category(_Record):
    """A group of matters; clerks' skills name either a matter code or a category code."""

    code: CategoryCode
    name_zh: ZhText
    name_en: EnText


class Material(_Record):
    """A document the citizen shows to the document camera (or uploads) for a matter."""

    kind: MaterialKind
    name_zh: ZhText
    name_en: EnText
    required: Flag
    aspect_ratio: Annotated[float, Field(strict=True, gt=0)] | None = None
    """Width / height of the physical document, for cropping; only for free-shape kinds."""

    @field_validator("aspect_ratio")
    @classmethod
    def _only_free_shapes(cls, value: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("kind")
        if value is not None and kind is not None and kind not in FREE_SHAPE_KINDS:
            raise ValueError(
                f"only 'certificate' and 'other' materials take an aspect ratio; "
                f"{kind.value!r} has a standard shape"
            )
        return value


class Matter(_Record):
    """A government service item (事项) a citizen can queue for."""

    code: MatterCode
    department: DepartmentCode
    category: CategoryCode
    levels: Annotated[tuple[Level, ...], Field(min_length=1)]
    """Levels whose clerks can handle this matter."""
    name_zh: ZhText
    name_en: EnText
    expected_minutes: PositiveInt
    escalation_seconds: PositiveInt
    """How long a citizen may wait for this matter before the queue escalates the ticket."""
    fully_remote: Flag
    """True if the matter is completed in the video session, with no later counter visit."""
    materials: tuple[Material, ...] = ()

    @field_validator("levels")
    @classmethod
    def _levels_unique(cls, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        for level in levels:
            if levels.count(level) > 1:
                raise ValueError(f"level {level.value!r} is listed twice")
        return levels


class Devices(_Record):
    face_camera: Flag
    document_camera: Flag
    printer: Flag


def _all_matters_as_tuple(value: object) -> object:
    if value == ALL_MATTERS:
        return (ALL_MATTERS,)
    if isinstance(value, str):
        raise ValueError(f'must be a list of matter codes or the string "*", not {value!r}')
    return value


def _matter_code_or_all(code: str) -> str:
    return code if code == ALL_MATTERS else _matter_code(code)


class Hut(_Record):
    """A 政务晓屋 booth; `matters` is a list of matter codes, or ("*",) for all of them."""

    id: HutId
    level: Level
    region: RegionCode
    venue: Venue
    name_zh: ZhText
    name_en: EnText
    address_zh: ZhText
    devices: Devices
    opening_hours: Annotated[tuple[OpeningRangeField, ...], Field(min_length=1)]
    matters: Annotated[
        tuple[Annotated[str, _Str, AfterValidator(_matter_code_or_all)], ...],
        BeforeValidator(_all_matters_as_tuple),
        Field(min_length=1),
    ]

    @field_validator("matters")
    @classmethod
    def _star_stands_alone(cls, matters: tuple[str, ...]) -> tuple[str, ...]:
        if ALL_MATTERS in matters and len(matters) > 1:
            raise ValueError('"*" means every matter; write matters = "*" on its own')
        return matters

    @property
    def allows_all_matters(self) -> bool:
        return self.matters == (ALL_MATTERS,)

    def allows(self, matter_code: str) -> bool:
        return self.allows_all_matters or matter_code in self.matters

    def is_open(self, at: datetime) -> bool:
        """Whether the hut is open at `at` (an aware datetime), judged in China time."""
        return any(window.contains(at) for window in self.opening_hours)
