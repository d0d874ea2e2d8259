"""The validated kiosk configuration as a whole, and the lookups the dispatcher needs.

`KioskConfig` checks what no single record can: unique codes, that references
(parent region, department, category, a hut's region and matters) resolve, and that the
region tree is well formed. It raises `CatalogueError` naming the table and the exact
key, e.g. ``hut[7].matters[3]``; `server.catalogue_loader` adds the file name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from server.catalogue_records import (
    ALL_MATTERS,
    Category,
    Department,
    Hut,
    Level,
    Matter,
    PartnerCity,
    Region,
)

__all__ = [
    "ALL_MATTERS",
    "CatalogueError",
    "Category",
    "Department",
    "Hut",
    "KioskConfig",
    "Level",
    "Matter",
    "PartnerCity",
    "Region",
]

_T = TypeVar("_T")

_CODE_DIGITS = {Level.CITY: 6, Level.COUNTY: 6, Level.TOWNSHIP: 12, Level.VILLAGE: 12}
"""Code length per level, following the statistical division codes (统计用区划代码)."""
_SHARED_PREFIX = {Level.COUNTY: 4, Level.TOWNSHIP: 6, Level.VILLAGE: 9}
"""How many leading digits a region shares with its parent in those codes."""


class CatalogueError(ValueError):
    """A problem found across records; `table` is the TOML table, `key` the dotted path."""

    def __init__(self, table: str, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.table = table
        self.key = key
        self.problem = problem


def _index(
    table: str, records: Iterable[_T], key_of: Callable[[_T], str], name: str
) -> dict[str, _T]:
    index: dict[str, _T] = {}
    first_seen: dict[str, int] = {}
    for position, record in enumerate(records):
        key = key_of(record)
        if key in index:
            raise CatalogueError(
                table,
                f"{table}[{position}].{name}",
                f"duplicate {name} {key!r}; already used by {table}[{first_seen[key]}]",
            )
        index[key] = record
        first_seen[key] = position
    return index


@dataclass(frozen=True)
class KioskConfig:
    """Regions, partner cities, departments, categories, matters and huts, all checked."""

    regions: tuple[Region, ...]
    partner_cities: tuple[PartnerCity, ...]
    departments: tuple[Department, ...]
    categories: tuple[Category, ...]
    matters: tuple[Matter, ...]
    huts: tuple[Hut, ...]
    _regions: dict[str, Region] = field(init=False, repr=False, compare=False)
    _departments: dict[str, Department] = field(init=False, repr=False, compare=False)
    _categories: dict[str, Category] = field(init=False, repr=False, compare=False)
    _matters: dict[str, Matter] = field(init=False, repr=False, compare=False)
    _huts: dict[str, Hut] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regions = _index("region", self.regions, lambda r: r.code, "code")
        for position, region in enumerate(self.regions):
            _check_region(position, region, regions)
        _index("partner_city", self.partner_cities, lambda c: c.code, "code")
        for position, city in enumerate(self.partner_cities):
            if len(city.code) != 6:
                raise CatalogueError(
                    "partner_city",
                    f"partner_city[{position}].code",
                    f"a city code has 6 digits, not {len(city.code)}",
                )
        departments = _index("department", self.departments, lambda d: d.code, "code")
        categories = _index("category", self.categories, lambda c: c.code, "code")
        matters = _index("matter", self.matters, lambda m: m.code, "code")
        for position, matter in enumerate(self.matters):
            for name, known in (("department", departments), ("category", categories)):
                value = getattr(matter, name)
                if value not in known:
                    raise CatalogueError(
                        "matter", f"matter[{position}].{name}", f"unknown {name} {value!r}"
                    )
        huts = _index("hut", self.huts, lambda h: h.id, "id")
        for position, hut in enumerate(self.huts):
            _check_hut(position, hut, regions, matters)
        object.__setattr__(self, "_regions", regions)
        object.__setattr__(self, "_departments", departments)
        object.__setattr__(self, "_categories", categories)
        object.__setattr__(self, "_matters", matters)
        object.__setattr__(self, "_huts", huts)

    def region(self, code: str) -> Region:
        return _lookup(self._regions, "region", code)

    def department(self, code: str) -> Department:
        return _lookup(self._departments, "department", code)

    def category(self, code: str) -> Category:
        return _lookup(self._categories, "category", code)

    def matter(self, code: str) -> Matter:
        return _lookup(self._matters, "matter", code)

    def hut(self, hut_id: str) -> Hut:
        return _lookup(self._huts, "hut", hut_id)

    def matters_for_hut(self, hut_id: str) -> list[Matter]:
        """The matters a citizen at this hut may choose, in catalogue order."""
        hut = self.hut(hut_id)
        if hut.allows_all_matters:
            return list(self.matters)
        allowed = set(hut.matters)
        return [matter for matter in self.matters if matter.code in allowed]

    def region_chain(self, region_code: str) -> list[Region]:
        """The region and its ancestors, lowest level first, ending at the city."""
        chain = [self.region(region_code)]
        while (parent := chain[-1].parent) is not None:
            chain.append(self._regions[parent])
        return chain

    @property
    def partner_codes(self) -> frozenset[str]:
        """Codes of the partner cities in other provinces (跨省通办)."""
        return frozenset(city.code for city in self.partner_cities)

    @staticmethod
    def skill_covers(skill: str, matter: Matter) -> bool:
        """A clerk skill is a matter code, a category code, or "*" for everything."""
        return skill in (ALL_MATTERS, matter.code, matter.category)

    def is_known_skill(self, skill: str) -> bool:
        """For validating clerk accounts: a skill must name something in this catalogue."""
        return skill == ALL_MATTERS or skill in self._matters or skill in self._categories


def _lookup(index: dict[str, _T], kind: str, key: str) -> _T:
    try:
        return index[key]
    except KeyError:
        raise KeyError(f"unknown {kind} {key!r}") from None


def _check_region(position: int, region: Region, regions: dict[str, Region]) -> None:
    key = f"region[{position}]"
    digits = _CODE_DIGITS[region.level]
    if len(region.code) != digits:
        raise CatalogueError(
            "region",
            f"{key}.code",
            f"a {region.level} code has {digits} digits, not {len(region.code)}",
        )
    if region.level is Level.CITY:
        if region.parent is not None:
            raise CatalogueError("region", f"{key}.parent", "a city is the root and has no parent")
        return
    if region.parent is None:
        raise CatalogueError(
            "region", f"{key}.parent", f"required for a {region.level} (only a city has none)"
        )
    parent = regions.get(region.parent)
    if parent is None:
        raise CatalogueError("region", f"{key}.parent", f"unknown region {region.parent!r}")
    if parent.level.rank != region.level.rank - 1:
        expected = list(Level)[region.level.rank - 1]
        raise CatalogueError(
            "region",
            f"{key}.parent",
            f"parent {parent.code} ({parent.name_zh}) is a {parent.level}, "
            f"but a {region.level}'s parent must be a {expected}",
        )
    shared = _SHARED_PREFIX[region.level]
    if region.code[:shared] != parent.code[:shared]:
        raise CatalogueError(
            "region",
            f"{key}.code",
            f"code {region.code} must start with {parent.code[:shared]}, "
            f"like its parent {parent.code} ({parent.name_zh})",
        )


def _check_hut(
    position: int, hut: Hut, regions: dict[str, Region], matters: dict[str, Matter]
) -> None:
    key = f"hut[{position}]"
    region = regions.get(hut.region)
    if region is None:
        raise CatalogueError("hut", f"{key}.region", f"unknown region {hut.region!r}")
    if region.level is not hut.level:
        raise CatalogueError(
            "hut",
            f"{key}.region",
            f"region {region.code} ({region.name_zh}) is a {region.level}, "
            f"but the hut's level is {hut.level}",
        )
    if hut.allows_all_matters:
        return
    seen: set[str] = set()
    for index, code in enumerate(hut.matters):
        if code not in matters:
            raise CatalogueError("hut", f"{key}.matters[{index}]", f"unknown matter {code!r}")
        if code in seen:
            raise CatalogueError("hut", f"{key}.matters[{index}]", f"matter {code!r} listed twice")
        seen.add(code)
