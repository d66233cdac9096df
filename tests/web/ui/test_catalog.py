"""Every UI string comes from the message catalog, complete in English and Chinese."""

from __future__ import annotations

import re
from pathlib import Path

UI_SRC = Path(__file__).resolve().parents[3] / "src/watchkeeper/web/ui/src"


def _catalog_keys() -> dict[str, set[str]]:
    text = (UI_SRC / "i18n.js").read_text(encoding="utf-8")
    en_block = text.split("  en: {", 1)[1].split('  "zh-CN": {', 1)[0]
    zh_block = text.split('  "zh-CN": {', 1)[1].split("\n  },\n};", 1)[0]
    key_re = re.compile(r'^\s+"([a-zA-Z]+\.[a-zA-Z]+)":', re.MULTILINE)
    return {"en": set(key_re.findall(en_block)), "zh-CN": set(key_re.findall(zh_block))}


def test_english_and_chinese_catalogs_have_the_same_keys() -> None:
    keys = _catalog_keys()
    assert len(keys["en"]) > 100
    assert keys["en"] == keys["zh-CN"]


def test_every_key_the_ui_uses_is_in_the_catalog() -> None:
    known = _catalog_keys()["en"]
    used: set[str] = set()
    for path in UI_SRC.glob("*.js"):
        used.update(re.findall(r'\bt\("([a-zA-Z]+\.[a-zA-Z]+)"', path.read_text(encoding="utf-8")))
    # Alert states are looked up as t(`alerts.${state}`).
    used.update({"alerts.inactive", "alerts.pending", "alerts.firing"})
    missing = sorted(used - known)
    assert not missing, f"keys used by the UI but missing from the catalog: {missing}"


def test_chinese_strings_are_translated_not_copied() -> None:
    text = (UI_SRC / "i18n.js").read_text(encoding="utf-8")
    zh_block = text.split('  "zh-CN": {', 1)[1]
    assert "执行" in zh_block
    assert '"nav.query": "Query"' not in zh_block
