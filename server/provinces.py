"""Province-level divisions (GB/T 2260): one spelling per province, so filings and sites can be compared."""

from __future__ import annotations

import unicodedata

# Code -> full name. Filings are compared by province, and people write 44, 440000, 广东 or 广东省
# for the same one; all of them are stored as the 6-digit code.
PROVINCES: dict[str, str] = {
    "110000": "北京市",
    "120000": "天津市",
    "130000": "河北省",
    "140000": "山西省",
    "150000": "内蒙古自治区",
    "210000": "辽宁省",
    "220000": "吉林省",
    "230000": "黑龙江省",
    "310000": "上海市",
    "320000": "江苏省",
    "330000": "浙江省",
    "340000": "安徽省",
    "350000": "福建省",
    "360000": "江西省",
    "370000": "山东省",
    "410000": "河南省",
    "420000": "湖北省",
    "430000": "湖南省",
    "440000": "广东省",
    "450000": "广西壮族自治区",
    "460000": "海南省",
    "500000": "重庆市",
    "510000": "四川省",
    "520000": "贵州省",
    "530000": "云南省",
    "540000": "西藏自治区",
    "610000": "陕西省",
    "620000": "甘肃省",
    "630000": "青海省",
    "640000": "宁夏回族自治区",
    "650000": "新疆维吾尔自治区",
    "710000": "台湾省",
    "810000": "香港特别行政区",
    "820000": "澳门特别行政区",
}

_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")
MAX_LENGTH = 64


def _short(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


_BY_NAME = {spelling: code for code, name in PROVINCES.items() for spelling in (name, _short(name))}


def normalise_province(raw: str) -> str:
    """The 6-digit code of a known province given as code or name; anything else stripped but kept.

    Unknown spellings are not refused: divisions get renamed, and a filing authority's own wording
    must still be storable. ValueError only for empty or overlong input.
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise ValueError("province is empty; give its code (e.g. 44 or 440000) or its name (e.g. 广东省)")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"province is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    if text.isdigit() and len(text) in (2, 6) and text[:2] + "0000" in PROVINCES and text[2:].strip("0") == "":
        return text[:2] + "0000"
    return _BY_NAME.get(text, text)


def province_name(value: str | None) -> str | None:
    """The full name of a stored province code; unknown values are returned unchanged."""
    if value is None:
        return None
    return PROVINCES.get(value, value)
