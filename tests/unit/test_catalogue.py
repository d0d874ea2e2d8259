"""The shipped kiosk configuration, its lookups, and one precise error per kind of mistake.

Broken configurations are the demo files, parsed, changed in one place and written back
to `tmp_path`, so each test states the one change it makes and the key it expects.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from server.catalogue import KioskConfig, Level
from server.catalogue_loader import ConfigFileError, dotted_key, load_kiosk_config
from server.opening_hours import CHINA_TZ, parse_opening_range

DEMO_DIR = Path(__file__).resolve().parents[2] / "kiosk_config"
FILES = ("regions.toml", "matters.toml", "huts.toml")

Demo = dict[str, dict[str, Any]]


def demo_data() -> Demo:
    return {name: tomllib.loads((DEMO_DIR / name).read_text("utf-8")) for name in FILES}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(directory: Path, data: Demo) -> Path:
    for name, tables in data.items():
        lines: list[str] = []
        for table, rows in tables.items():
            for row in rows:
                lines.append(f"[[{table}]]")
                lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in row.items())
                lines.append("")
        (directory / name).write_text("\n".join(lines), "utf-8")
    return directory


def load_error(directory: Path, data: Demo) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as caught:
        load_kiosk_config(write_config(directory, data))
    return caught.value


@pytest.fixture(scope="module")
def demo() -> KioskConfig:
    return load_kiosk_config(DEMO_DIR)


# ---- the shipped demo ----


def test_demo_has_the_reported_shape(demo: KioskConfig) -> None:
    assert len(demo.matters) >= 22
    assert len(demo.huts) == 21
    assert {hut.level for hut in demo.huts} == set(Level)
    venues = {"government_hall", "bank", "post_office", "power_service", "community"}
    assert {hut.venue.value for hut in demo.huts} == venues
    assert len(demo.partner_cities) >= 1
    assert "130900" in demo.partner_codes


def test_every_hut_region_chain_ends_at_dongying(demo: KioskConfig) -> None:
    for hut in demo.huts:
        chain = demo.region_chain(hut.region)
        assert chain[0].level is hut.level
        assert chain[-1].code == "370500"


def test_teacher_qualification_needs_the_reported_materials(demo: KioskConfig) -> None:
    matter = demo.matter("EDU-TQ-CONFIRM")
    required = {m.kind.value for m in matter.materials if m.required}
    assert required == {"id_card_front", "id_card_back", "household_register", "diploma", "photo"}
    assert demo.department(matter.department).name_zh == "教育局"


def test_written_copy_loads_equal_to_demo(tmp_path: Path, demo: KioskConfig) -> None:
    assert load_kiosk_config(write_config(tmp_path, demo_data())) == demo


# ---- lookups ----


def test_region_chain_runs_lowest_level_first(demo: KioskConfig) -> None:
    chain = demo.region_chain("370505104201")
    assert [r.name_zh for r in chain] == ["杨庙社区", "董集镇", "垦利区", "东营市"]
    assert [r.level for r in chain] == [Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY, Level.CITY]
    assert demo.region_chain("370500") == [demo.region("370500")]


def test_unknown_codes_raise_key_error(demo: KioskConfig) -> None:
    with pytest.raises(KeyError, match="unknown region '999999'"):
        demo.region_chain("999999")
    with pytest.raises(KeyError, match="unknown hut 'nowhere-01'"):
        demo.hut("nowhere-01")


def test_matters_for_hut(demo: KioskConfig) -> None:
    assert demo.matters_for_hut("hk-hall-01") == list(demo.matters)
    bank = demo.matters_for_hut("dy-ccb-01")
    assert 0 < len(bank) < len(demo.matters)
    assert all(demo.hut("dy-ccb-01").allows(m.code) for m in bank)
    assert [m.code for m in bank] == [m.code for m in demo.matters if m in bank]


def test_skill_covers_code_category_and_star(demo: KioskConfig) -> None:
    matter = demo.matter("HPF-WITHDRAW")
    assert KioskConfig.skill_covers("HPF-WITHDRAW", matter)
    assert KioskConfig.skill_covers("housing_fund", matter)
    assert KioskConfig.skill_covers("*", matter)
    assert not KioskConfig.skill_covers("education", matter)
    assert demo.is_known_skill("housing_fund")
    assert not demo.is_known_skill("housing")


def test_is_open_in_china_time(demo: KioskConfig) -> None:
    hall = demo.hut("dy-hall-01")  # Mon-Fri 08:30-12:00, 13:30-17:30; Sat 09:00-12:00
    monday = datetime(2024, 6, 3, tzinfo=CHINA_TZ)
    assert hall.is_open(monday.replace(hour=8, minute=30))
    assert hall.is_open(monday.replace(hour=11, minute=59))
    assert not hall.is_open(monday.replace(hour=12))
    assert not hall.is_open(monday.replace(hour=13))
    assert hall.is_open(monday.replace(day=8, hour=10))  # Saturday
    assert not hall.is_open(monday.replace(day=9, hour=10))  # Sunday
    assert hall.is_open(datetime(2024, 6, 3, 1, 0, tzinfo=UTC))  # 09:00 in Dongying
    assert not hall.is_open(datetime(2024, 6, 2, 23, 0, tzinfo=UTC))  # Monday 07:00
    with pytest.raises(ValueError, match="naive datetime"):
        hall.is_open(datetime(2024, 6, 3, 9, 0))


def test_opening_range_parsing() -> None:
    window = parse_opening_range("Mon-Wed,Fri 08:30-12:00")
    assert window.days == frozenset({0, 1, 2, 4})
    assert (window.start, window.end) == (time(8, 30), time(12, 0))
    assert str(window) == "Mon-Wed,Fri 08:30-12:00"
    assert str(parse_opening_range("Sat,Sun 09:00-12:00")) == "Sat-Sun 09:00-12:00"
    for text, problem in [
        ("Mon-Fri", "is not an opening range"),
        ("Mo-Fr 08:30-12:00", "unknown day 'Mo'"),
        ("Fri-Mon 08:30-12:00", "runs backwards"),
        ("Mon 8:30-12:00", "'8:30' is not a time of day"),
        ("Mon 08:30-24:00", "'24:00' is not a time of day"),
        ("Mon 12:00-08:30", "closing time 08:30 is not after opening time 12:00"),
    ]:
        with pytest.raises(ValueError, match=problem):
            parse_opening_range(text)


def test_dotted_key() -> None:
    assert dotted_key(("matter", 2, "materials", 0, "kind")) == "matter[2].materials[0].kind"
    assert dotted_key(("hut", 7, "odd key")) == 'hut[7]."odd key"'
    assert dotted_key(()) == "(file)"


# ---- one precise error per kind of mistake ----


def test_error_message_names_file_key_and_problem(tmp_path: Path) -> None:
    data = demo_data()
    data["huts.toml"]["hut"][4]["level"] = "town"
    err = load_error(tmp_path, data)
    assert isinstance(err, ValueError)
    assert str(err) == f"{tmp_path / 'huts.toml'}: hut[4].level: {err.problem}"


def test_unknown_level(tmp_path: Path) -> None:
    data = demo_data()
    data["huts.toml"]["hut"][4]["level"] = "town"
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "huts.toml", "hut[4].level")
    assert "'township'" in err.problem
    assert "(got 'town')" in err.problem


def test_hut_allowing_unknown_matter(tmp_path: Path) -> None:
    data = demo_data()
    huts = data["huts.toml"]["hut"]
    index = next(i for i, hut in enumerate(huts) if isinstance(hut["matters"], list))
    huts[index]["matters"].append("EDU-NO-SUCH-MATTER")
    err = load_error(tmp_path, data)
    assert err.file == tmp_path / "huts.toml"
    assert err.key == f"hut[{index}].matters[{len(huts[index]['matters']) - 1}]"
    assert err.problem == "unknown matter 'EDU-NO-SUCH-MATTER'"


def test_duplicate_hut_id(tmp_path: Path) -> None:
    data = demo_data()
    huts = data["huts.toml"]["hut"]
    huts[7]["id"] = huts[2]["id"]
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "huts.toml", "hut[7].id")
    assert err.problem == f"duplicate id {huts[2]['id']!r}; already used by hut[2]"


def test_missing_required_key(tmp_path: Path) -> None:
    data = demo_data()
    del data["matters.toml"]["matter"][2]["department"]
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "matters.toml", "matter[2].department")
    assert err.problem == "required key is missing"


def test_misspelt_key_is_reported_as_unknown_not_missing(tmp_path: Path) -> None:
    data = demo_data()
    matter = data["matters.toml"]["matter"][3]
    matter["expected_minute"] = matter.pop("expected_minutes")
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "matters.toml", "matter[3].expected_minute")
    assert err.problem == "unknown key; did you mean 'expected_minutes'?"


def test_unknown_nested_key_lists_allowed_keys(tmp_path: Path) -> None:
    data = demo_data()
    data["huts.toml"]["hut"][0]["devices"]["scanner"] = True
    err = load_error(tmp_path, data)
    assert err.key == "hut[0].devices.scanner"
    assert "face_camera, document_camera, printer" in err.problem


def test_toml_syntax_error(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(DEMO_DIR / name, tmp_path / name)
    lines = (tmp_path / "regions.toml").read_text("utf-8").splitlines()
    number = lines.index('name_zh = "孤岛镇"') + 1
    lines[number - 1] = 'name_zh = "孤岛镇'
    (tmp_path / "regions.toml").write_text("\n".join(lines), "utf-8")
    with pytest.raises(ConfigFileError) as caught:
        load_kiosk_config(tmp_path)
    assert (caught.value.file, caught.value.key) == (tmp_path / "regions.toml", f"line {number}")
    assert "TOML syntax error" in caught.value.problem


def test_bad_opening_hours(tmp_path: Path) -> None:
    data = demo_data()
    data["huts.toml"]["hut"][5]["opening_hours"][1] = "Mon-Fri 8:30-12:00"
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "huts.toml", "hut[5].opening_hours[1]")
    assert "'8:30' is not a time of day" in err.problem


def test_region_with_parent_at_wrong_level(tmp_path: Path) -> None:
    data = demo_data()
    regions = data["regions.toml"]["region"]
    index = next(i for i, r in enumerate(regions) if r["name_zh"] == "孤岛镇")
    regions[index]["parent"] = "370500"
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "regions.toml", f"region[{index}].parent")
    assert "a township's parent must be a county" in err.problem


def test_region_with_unknown_parent(tmp_path: Path) -> None:
    data = demo_data()
    data["regions.toml"]["region"][1]["parent"] = "370600"
    err = load_error(tmp_path, data)
    assert (err.key, err.problem) == ("region[1].parent", "unknown region '370600'")


def test_hut_region_at_another_level(tmp_path: Path) -> None:
    data = demo_data()
    huts = data["huts.toml"]["hut"]
    index = next(i for i, hut in enumerate(huts) if hut["id"] == "hk-gudao-01")
    huts[index]["region"] = "370503"
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "huts.toml", f"hut[{index}].region")
    assert "is a county, but the hut's level is township" in err.problem


def test_matter_with_unknown_department(tmp_path: Path) -> None:
    data = demo_data()
    data["matters.toml"]["matter"][1]["department"] = "NOPE"
    err = load_error(tmp_path, data)
    assert (err.file, err.key) == (tmp_path / "matters.toml", "matter[1].department")
    assert err.problem == "unknown department 'NOPE'"


def test_wrong_type(tmp_path: Path) -> None:
    data = demo_data()
    data["matters.toml"]["matter"][0]["expected_minutes"] = "5"
    err = load_error(tmp_path, data)
    assert err.key == "matter[0].expected_minutes"
    assert "valid integer" in err.problem


def test_unknown_material_kind(tmp_path: Path) -> None:
    data = demo_data()
    data["matters.toml"]["matter"][2]["materials"][0]["kind"] = "passport"
    err = load_error(tmp_path, data)
    assert err.key == "matter[2].materials[0].kind"
    assert "(got 'passport')" in err.problem


def test_aspect_ratio_only_for_free_shapes(tmp_path: Path) -> None:
    data = demo_data()
    data["matters.toml"]["matter"][0]["materials"][0]["aspect_ratio"] = 1.6
    err = load_error(tmp_path, data)
    assert err.key == "matter[0].materials[0].aspect_ratio"
    assert "'id_card_front' has a standard shape" in err.problem


def test_missing_file(tmp_path: Path) -> None:
    write_config(tmp_path, demo_data())
    (tmp_path / "matters.toml").unlink()
    with pytest.raises(ConfigFileError) as caught:
        load_kiosk_config(tmp_path)
    assert (caught.value.file, caught.value.key) == (tmp_path / "matters.toml", "(file)")
