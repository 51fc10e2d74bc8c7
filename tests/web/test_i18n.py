"""The UI catalogue and the choice of language."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from ecomflow.api.web.catalogue import CATALOGUE, ENTRIES
from ecomflow.api.web.i18n import Translator, page_language, preferred_language
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions

pytestmark = pytest.mark.db_independent

WEB_SOURCE = Path(__file__).resolve().parents[2] / "src" / "api" / "web"
# t("key"...) and t('key'...) in Python modules and templates, with a literal key.
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+(?:\.[A-Za-z_]+)+)["']""")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _enum_values(definitions: Definitions) -> set[str]:
    values: set[str] = set()

    def walk(spec) -> None:
        if spec.type == "enum":
            values.update(spec.attrs["values"])
        if spec.items is not None:
            walk(spec.items)
        for child in spec.fields:
            walk(child)

    for process in definitions.processes.values():
        forms = [process.start_form] + [step.form for step in process.steps if step.form is not None]
        for form in forms:
            for spec in form.fields:
                walk(spec)
    return values


class TestCatalogue:
    def test_every_key_exists_in_both_languages(self):
        assert set(CATALOGUE["zh"]) == set(CATALOGUE["en"]) == set(ENTRIES)

    def test_every_string_is_filled_in_and_takes_the_same_placeholders_in_both(self):
        for key in ENTRIES:
            zh, en = CATALOGUE["zh"][key], CATALOGUE["en"][key]
            assert zh.strip() and en.strip(), key
            assert _placeholders(zh) == _placeholders(en), key

    def test_every_key_the_pages_ask_for_is_there(self):
        sources = [*WEB_SOURCE.glob("*.py"), *WEB_SOURCE.glob("templates/*.html")]
        asked = {key for path in sources for key in LITERAL_KEY.findall(path.read_text(encoding="utf-8"))}
        assert asked, "no t(...) calls found: has the pattern gone stale?"
        assert sorted(asked - set(ENTRIES)) == []

    def test_every_choice_in_flows_yaml_has_a_name_in_both_languages(self):
        missing = sorted(v for v in _enum_values(get_definitions()) if f"enum.{v}" not in ENTRIES)
        assert missing == [], "add enum.<value> entries to api/web/catalogue.py"

    def test_a_run_time_key_falls_back_and_a_missing_param_shows_as_nothing(self):
        t = Translator("en")
        assert t.get("event.something.new", "something.new") == "something.new"
        assert t.get("problem.user.exists", "fallback") == "User  does not exist."
        with pytest.raises(KeyError):
            t("no.such.key")


class TestLanguageChoice:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            (None, "zh"),
            ("", "zh"),
            ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
            ("en-US,en;q=0.9", "en"),
            ("en-GB,zh-CN;q=0.5", "en"),
            ("fr-FR,de;q=0.8", "zh"),
            ("fr, en;q=0.3, zh;q=0.2", "en"),
            ("en;q=0, zh-TW", "zh"),
            ("en;q=abc, zh;q=0.5", "zh"),
        ],
    )
    def test_accept_language_prefers_chinese_unless_english_ranks_higher(self, header, expected):
        assert preferred_language(header) == expected

    def test_the_switch_cookie_wins_and_a_bad_cookie_is_ignored(self):
        assert page_language("en", "zh-CN") == "en"
        assert page_language("zh", "en-US") == "zh"
        assert page_language("klingon", "en-US") == "en"
