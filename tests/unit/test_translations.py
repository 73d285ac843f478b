"""Every interface text used in templates and views has a Chinese translation, with the same placeholders."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

WEB = Path(__file__).parents[2] / "server" / "web"
TEMPLATE_CALL = re.compile(r"""_\(\s*(['"])(.+?)\1""")
PYTHON_CALL = re.compile(r"""gettext\(\s*(['"])(.+?)\1""")
ROLES = ("admin", "police", "manager", "supervisor")  # translated through a variable in base.html


def used_messages() -> set[str]:
    found = set(ROLES)
    for path in WEB.rglob("*.html"):
        found |= {m.group(2) for m in TEMPLATE_CALL.finditer(path.read_text("utf-8"))}
    for path in WEB.rglob("*.py"):
        found |= {m.group(2) for m in PYTHON_CALL.finditer(path.read_text("utf-8"))}
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_has_a_chinese_translation():
    catalog = json.loads((WEB / "translations" / "zh.json").read_text("utf-8"))
    missing = sorted(used_messages() - catalog.keys())
    assert not missing, f"add these to server/web/translations/zh.json: {missing}"


def test_translations_keep_placeholders_and_are_not_empty():
    catalog = json.loads((WEB / "translations" / "zh.json").read_text("utf-8"))
    for english, chinese in catalog.items():
        assert chinese.strip(), english
        assert placeholders(english) == placeholders(chinese), english
