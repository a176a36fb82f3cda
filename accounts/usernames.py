"""Usernames as people read them: one normalised key per account, and a skeleton for look-alikes.

- :func:`username_key`: NFKC, trimmed, then case-folded. ``"Learner09"``, ``"learner０９"``
  (full-width digits) and ``" learner09"`` all have the key ``"learner09"``. The key is unique
  (``accounts_user_username_key``); authentication looks accounts up by it and the login
  throttle counts by it, so every spelling of one name is one account and one count.
- :func:`username_skeleton`: the name with every character replaced by the prototype Unicode's
  confusables table (UTS #39) gives it, then case-folded: ``"lеarner09"`` with a Cyrillic ``е``,
  ``"Iearner09"`` with a capital I and ``"leamer09"`` (``rn`` looks like ``m``) have the skeleton
  of ``"learner09"``. The skeleton is unique too, so refusing a name confusable with any existing
  one is a lookup on an index, never a comparison with every account.

The table comes from ``confusable-homoglyphs`` (a copy of Unicode's confusables.txt). That library
answers "which characters of this string have homoglyphs", not "are these two strings
confusable", and it stores each source -> prototype line in both directions; :func:`_prototypes`
turns it back into the one-way map UTS #39's skeleton needs.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import defaultdict

from confusable_homoglyphs.confusables import confusables_data

# The library keeps the bidi marks Unicode's comments put around right-to-left characters.
_BIDI_MARKS = str.maketrans("", "", "\u200e\u200f")


def username_key(username: str) -> str:
    """The account's identity: NFKC, surrounding white space removed, case-folded."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


@functools.cache
def _prototypes() -> dict[str, str]:
    """``{character: prototype}`` for every character Unicode maps to another (UTS #39).

    In confusables.txt every source is one character and every prototype maps to itself, so
    each group is a star: the prototype is the member linked to all others (or the one that is
    several characters, such as ``rn``). A pair of single characters linked only to each other
    does not say which is the prototype; the smaller code point stands for both.
    """
    linked: dict[str, set[str]] = defaultdict(set)
    for source, homoglyphs in confusables_data.items():
        for homoglyph in homoglyphs:
            a, b = source.translate(_BIDI_MARKS), homoglyph["c"].translate(_BIDI_MARKS)
            if a != b:
                linked[a].add(b)
                linked[b].add(a)
    table = {}
    for character, others in linked.items():
        if len(character) != 1 or len(others) != 1:
            continue  # a prototype (linked to several), or a sequence such as "rn"
        (other,) = others
        if len(other) > 1 or len(linked[other]) > 1 or other < character:
            table[character] = other
    return table


def username_skeleton(username: str) -> str:
    """What the name looks like: each character mapped to its prototype, case-folded, in NFD.

    Mapping comes before case-folding as well as after it, because some capitals look like
    another letter in lower case (``I`` and ``l``); it repeats until nothing changes.
    """
    prototypes = _prototypes()
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", username).strip())
    for _ in range(4):
        mapped = "".join(prototypes.get(character, character) for character in text).casefold()
        mapped = unicodedata.normalize("NFD", mapped)
        if mapped == text:
            break
        text = mapped
    return text


def username_fields(username: str) -> dict[str, str]:
    """The stored fields derived from ``username``: for code that writes users without ``save()``
    (``bulk_create``, raw inserts)."""
    return {"username_key": username_key(username), "username_skeleton": username_skeleton(username)}
