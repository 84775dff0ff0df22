"""Multilingual topic filter: is a document about Russia–Azerbaijan relations?

A document is relevant when it names both sides: a Russia term (Russia, Kremlin, Moscow, Putin …)
and an Azerbaijan term (Azerbaijan, Baku, Aliyev …), in English, Russian, Azerbaijani,
Turkish, Ukrainian, Armenian or Georgian, inflected forms included. Irrelevant documents are stored
with the reason but never reach the encoder.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Word-start stems; each matches the inflected forms that follow it (e.g. "Азербайджан" matches
# "Азербайджана", "азербайджанцы"; "Rusiya" matches "Rusiyanın").
RUSSIA_STEMS = (
    # English
    r"russia",
    r"kremlin",
    r"moscow",
    r"putin",
    r"lavrov",
    r"peskov",
    r"zakharova",
    r"kiriyenko",
    r"kiriienko",
    r"yekaterinburg",
    r"ekaterinburg",
    # Russian / Ukrainian
    r"росси",
    r"росі",
    r"російськ",
    r"российск",
    r"рф\b",
    r"кремл",
    r"москв",
    r"московск",
    r"путин",
    r"путін",
    r"лавров",
    r"песков",
    r"захаров",
    r"кириенко",
    r"кірієнко",
    r"екатеринбург",
    r"єкатеринбург",
    # Azerbaijani / Turkish
    r"rusiya",
    r"rusya",
    r"kreml",
    r"moskva",
    r"moskov",
    r"putin",
    r"yekaterinburq",
    # Armenian (stems: Ռուսաստանի, Ռուսաստանը, ռուսական, Մոսկվայի ...)
    r"ռուսաստան",
    r"ռուսակ",
    r"ռուս\b",
    r"կրեմլ",
    r"մոսկվ",
    r"պուտին",
    r"լավրով",
    r"պեսկով",
    r"զախարով",
    r"կիրիենկո",
    r"եկատերինբուրգ",
    # Georgian (რუსეთის, რუსეთმა, რუსული, მოსკოვში ...)
    r"რუსეთ",
    r"რუსულ",
    r"კრემლ",
    r"მოსკოვ",
    r"პუტინ",
    r"ლავროვ",
    r"პესკოვ",
    r"ზახაროვ",
    r"კირიენკო",
    r"ეკატერინბურგ",
)
AZERBAIJAN_STEMS = (
    # English
    r"azerbaijan",
    r"azeri",
    r"baku",
    r"aliyev",
    r"bayramov",
    r"azal\b",
    r"azerbaijan airlines",
    r"nakhchivan",
    r"karabakh",
    # Russian / Ukrainian
    r"азербайджан",
    r"азербайдж",
    r"азерб",
    r"азері",
    r"азери",
    r"баку\b",
    r"бакин",
    r"алиев",
    r"алієв",
    r"байрамов",
    r"азал\b",
    r"нахичеван",
    r"карабах",
    # Azerbaijani / Turkish
    r"azərbaycan",
    r"azerbaycan",
    r"azərbaycanl",
    r"bakı",
    r"baki\b",
    r"əliyev",
    r"aliyev",
    r"qarabağ",
    r"karabağ",
    r"naxçıvan",
    r"nahçıvan",
    # Armenian (Ադրբեջանի, ադրբեջանցի, Բաքվում, Ալիևը ...)
    r"ադրբեջան",
    r"բաքու",
    r"բաքվ",
    r"ալիև",
    r"ալիեւ",
    r"բայրամով",
    r"ղարաբաղ",
    r"նախիջևան",
    r"նախիջեւան",
    # Georgian (აზერბაიჯანის, აზერბაიჯანელი, ბაქოში, ალიევმა ...)
    r"აზერბაიჯან",
    r"ბაქო",
    r"ალიევ",
    r"ბაირამოვ",
    r"ყარაბაღ",
    r"ნახჭევან",
)


def _compile(stems: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(
        r"(?<!\w)(?:" + "|".join(sorted(set(stems), key=len, reverse=True)) + r")\w*", re.IGNORECASE
    )


_RUSSIA = _compile(RUSSIA_STEMS)
_AZERBAIJAN = _compile(AZERBAIJAN_STEMS)


@dataclass(frozen=True)
class Relevance:
    relevant: bool
    reason: str
    russia_terms: tuple[str, ...]
    azerbaijan_terms: tuple[str, ...]

    @property
    def terms(self) -> str:
        return ", ".join(self.russia_terms + self.azerbaijan_terms)


def _distinct_terms(pattern: re.Pattern[str], text: str, limit: int = 8) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for found in pattern.finditer(text):
        seen.setdefault(found.group(0).lower(), None)
        if len(seen) >= limit:
            break
    return tuple(seen)


def assess_relevance(text: str, title: str | None = None) -> Relevance:
    """Decide whether a document is about Russia–Azerbaijan relations, with the reason."""
    haystack = f"{title or ''}\n{text or ''}"
    russia = _distinct_terms(_RUSSIA, haystack)
    azerbaijan = _distinct_terms(_AZERBAIJAN, haystack)
    if russia and azerbaijan:
        return Relevance(True, "names Russia and Azerbaijan", russia, azerbaijan)
    if not russia and not azerbaijan:
        reason = "names neither Russia nor Azerbaijan"
    elif not azerbaijan:
        reason = "names Russia but not Azerbaijan"
    else:
        reason = "names Azerbaijan but not Russia"
    return Relevance(False, reason, russia, azerbaijan)
