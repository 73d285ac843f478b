"""Field mapping: our snapshot fields become the province's items with date formats, zones, masks and value maps."""

from __future__ import annotations

import pytest

from server.reporting.config import KindMapping
from server.reporting.mapping import MappingError, key_items, render_record

NUMBER = {"masked": "440106********1235", "encrypted": "dG9rZW4="}
GUARD = {
    "guard_id": "G-1",
    "name": "李娜",
    "id_number": NUMBER,
    "sex": "female",
    "birth_date": "1990-01-01",
    "company_id": "C-01",
    "face_consent": True,
    "registered_at": "2026-03-31T17:30:00",
    "certificate_number": None,
}


def mapping(**items) -> KindMapping:
    return KindMapping.model_validate({"items": items})


def test_plain_fields_constants_and_missing_values():
    spec = mapping(XM="name", RYBH="guard_id", SJLY={"constant": "GP"}, ZH="certificate_number")
    items = render_record("guards", spec, GUARD, "UTC")
    assert items == {"XM": "李娜", "RYBH": "G-1", "SJLY": "GP", "ZH": None}
    assert list(items) == ["XM", "RYBH", "SJLY", "ZH"]  # the mapping's order


def test_dates_and_times_take_formats_and_the_zone():
    spec = mapping(
        CSRQ={"field": "birth_date", "format": "%Y%m%d"},
        CSRQ_ISO="birth_date",
        DJSJ={"field": "registered_at", "format": "%Y%m%d%H%M%S"},
        DJSJ_UTC={"field": "registered_at", "timezone": "UTC", "format": "%Y-%m-%d %H:%M"},
        DJSJ_ISO="registered_at",
    )
    items = render_record("guards", spec, GUARD, "Asia/Shanghai")
    assert items["CSRQ"] == "19900101" and items["CSRQ_ISO"] == "1990-01-01"
    # 17:30 UTC on 31 March is 01:30 the next day in Shanghai: the date rolls over with the zone.
    assert items["DJSJ"] == "20260401013000"
    assert items["DJSJ_UTC"] == "2026-03-31 17:30"
    assert items["DJSJ_ISO"] == "2026-04-01T01:30:00+08:00"


def test_numbers_are_masked_unless_the_mapping_asks_for_them_in_full():
    revealed = []

    def reveal(token: str) -> str:
        revealed.append(token)
        return "440106199001011235"

    spec = mapping(MASKED="id_number", FULL={"field": "id_number", "number": "full"})
    items = render_record("guards", spec, GUARD, "UTC", reveal)
    assert items == {"MASKED": "440106********1235", "FULL": "440106199001011235"}
    assert revealed == ["dG9rZW4="]  # decrypted once, only for the item that asked

    # The copy kept in the database and shown on the page is masked even where the province gets it in full.
    assert render_record("guards", spec, GUARD, "UTC", reveal, masked=True)["FULL"] == "440106********1235"
    with pytest.raises(MappingError, match="needs the server key"):
        render_record("guards", spec, GUARD, "UTC", None)
    with pytest.raises(MappingError, match="only its masked form"):
        render_record("guards", spec, {**GUARD, "id_number": {"masked": "x", "encrypted": None}}, "UTC", reveal)


def test_value_maps_cover_enums_and_booleans_with_an_optional_default():
    spec = mapping(
        XB={"field": "sex", "map": {"male": "1", "female": "2"}},
        RLTY={"field": "face_consent", "map": {"true": "1", "false": "0"}},
    )
    assert render_record("guards", spec, GUARD, "UTC") == {"XB": "2", "RLTY": "1"}
    unknown = {**GUARD, "sex": "other"}
    with pytest.raises(MappingError) as caught:
        render_record("guards", spec, unknown, "UTC")
    assert str(caught.value) == "guards item XB (from sex): value 'other' is not in the map; add it or set a default"
    with_default = mapping(XB={"field": "sex", "map": {"male": "1"}, "default": "9"})
    assert render_record("guards", with_default, unknown, "UTC") == {"XB": "9"}


def test_a_deleted_record_carries_only_the_items_that_name_it():
    spec = mapping(RYBH="guard_id", ZJHM="id_number", RQ="date", KQZT="status", SJLY={"constant": "GP"})
    assert key_items("duty_logs", spec) == ["RYBH", "ZJHM", "RQ", "SJLY"]
