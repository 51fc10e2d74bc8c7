"""The page language: a cookie set by the switch, else Accept-Language (Chinese unless English is preferred)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecomflow.api.web.catalogue import CATALOGUE
from ecomflow.engine.definitions.forms import Label

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LANG_COOKIE = "ecf_lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}


def preferred_language(accept_language: str | None) -> str:
    """Return zh or en, whichever the Accept-Language header ranks first; zh when it names neither."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def page_language(cookie: str | None, accept_language: str | None) -> str:
    """Return the language chosen with the switch, else the browser's preference."""
    return cookie if cookie in LANGUAGES else preferred_language(accept_language)


class _BlankForMissing(dict):
    """Params of a run-time key: a value the caller could not supply shows as nothing, never as an error."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Translator:
    """The UI strings and flows.yaml labels in one language."""

    lang: str

    def __call__(self, key: str, **params: Any) -> str:
        """Return the catalogue string for the key, filled in with the params."""
        return CATALOGUE[self.lang][key].format(**params)

    def get(self, key: str, default: str, **params: Any) -> str:
        """Return the catalogue string for a key built at run time (an event type), or the default."""
        text = CATALOGUE[self.lang].get(key)
        return text.format_map(_BlankForMissing(params)) if text is not None else default

    def label(self, label: Label | None, default: str = "") -> str:
        """Return a flows.yaml label in this language."""
        if label is None:
            return default
        return label.zh if self.lang == "zh" else label.en

    @property
    def html_lang(self) -> str:
        """Return the value of the page's lang attribute."""
        return HTML_LANG[self.lang]
