"""Everything the hotline says or writes to a person, as data: one catalogue per language
(``en.toml``, ``es.toml`` here), one table per area, one key enum per area, checked on loading.

How an operator changes wording or adds a language: ``docs/wording.md``.
"""

from __future__ import annotations

from hotline.wording.areas import (
    AREAS,
    DEFAULT_LANGUAGE,
    ENGLISH_ONLY,
    LANGUAGE_MENU,
    LANGUAGES,
    REPORTER_LANGUAGES,
    Area,
    area_of,
)
from hotline.wording.catalogue import (
    Catalogue,
    WordingError,
    all_catalogues,
    catalogue,
    staff_catalogue,
    staff_text,
)
from hotline.wording.keys import (
    AlertCallKey,
    AlertTextKey,
    EmailKey,
    PromptKey,
    SmsContactKey,
    SmsKey,
    TipTypeKey,
    WordingKey,
)

__all__ = [
    "AREAS",
    "DEFAULT_LANGUAGE",
    "ENGLISH_ONLY",
    "LANGUAGES",
    "LANGUAGE_MENU",
    "REPORTER_LANGUAGES",
    "AlertCallKey",
    "AlertTextKey",
    "Area",
    "Catalogue",
    "EmailKey",
    "PromptKey",
    "SmsContactKey",
    "SmsKey",
    "TipTypeKey",
    "WordingError",
    "WordingKey",
    "all_catalogues",
    "area_of",
    "catalogue",
    "staff_catalogue",
    "staff_text",
]
