"""Collection options and index specs in the form that compares equal when MongoDB treats them alike.

Field order inside a BSON document is part of its value, and in some options it is meaning:
an index key ``{a: 1, b: -1}`` or a view's ``{$sort: {price: 1, weight: 1}}`` is another index,
another view, with its fields swapped. Elsewhere it is not: a collation is a set of named
settings, a query's fields are ANDed, ``{$gt: 1, $lt: 9}`` is one range whichever comes first,
and a ``$jsonSchema`` is a JSON Schema, whose keywords and ``properties`` are unordered maps.

mongodump before 100.9.1 rewrites the nested documents of collection options in random order
(TOOLS-3411: 8 of 12 runs of 100.8.0 gave another order here). So the comparisons of import and
verify ignore order exactly where MongoDB does, and keep it everywhere else, and
:func:`order_sensitive_documents` names the documents of a dump's options whose order such a
mongodump may have changed, with effect.

Unordered: ``collation``, ``timeseries``, ``storageEngine``, ``indexOptionDefaults``,
``changeStreamPreAndPostImages``, ``clusteredIndex`` (but its ``key``), an index's ``weights``;
a ``validator`` or ``partialFilterExpression`` as a query: its fields and operator documents
(``$and``/``$or``/``$nor`` lists keep their order, being lists), ``$jsonSchema`` keywords and
property maps. Ordered (literal): view pipelines, index keys, ``$expr``, the values compared by
``$eq``, ``$in``, ``enum``..., an equality on an embedded document, everything not named here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SETTINGS_OPTIONS = {
    "collation",
    "timeseries",
    "storageEngine",
    "indexOptionDefaults",
    "changeStreamPreAndPostImages",
}
QUERY_OPTIONS = {"validator", "partialFilterExpression"}
LOGICAL = {"$and", "$or", "$nor"}
# Operators whose value is itself a query or an operator document, not a literal.
NESTED_QUERY = {"$not", "$elemMatch"}
# JSON Schema keywords whose value is a schema, a list of schemas, or a map of name to schema.
SCHEMA_VALUED = {"items", "additionalItems", "additionalProperties", "not"}  # a schema (or a boolean)
SCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
SCHEMA_MAPS = {"properties", "patternProperties", "dependencies"}

Report = Callable[[str], None]


def _literal(value, path: str, report: Report | None):
    """Order-preserving form; ``report`` hears of every document of 2+ fields (order matters there)."""
    if isinstance(value, dict):
        if report is not None and len(value) > 1:
            report(path)
        return ("doc", tuple((key, _literal(item, f"{path}.{key}", report)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(_literal(item, f"{path}[{n}]", report) for n, item in enumerate(value)))
    return ("value", type(value).__name__ if isinstance(value, bool) else "", value)


def _unordered(pairs) -> tuple:
    return ("map", tuple(sorted(pairs, key=lambda pair: pair[0])))


def _settings(value, path: str, report: Report | None):
    if not isinstance(value, dict):
        return _literal(value, path, report)
    return _unordered((key, _settings(item, f"{path}.{key}", report)) for key, item in value.items())


def _query(value, path: str, report: Report | None):
    """A query document: its fields are ANDed, so their order is not part of its meaning."""
    if not isinstance(value, dict):
        return _literal(value, path, report)
    form = []
    for key, item in value.items():
        where = f"{path}.{key}"
        if key in LOGICAL and isinstance(item, list):
            form.append(
                (key, ("list", tuple(_query(q, f"{where}[{n}]", report) for n, q in enumerate(item))))
            )
        elif key == "$jsonSchema":
            form.append((key, _schema(item, where, report)))
        elif key.startswith("$"):  # $expr, $where, $text, $comment...: taken literally
            form.append((key, _literal(item, where, report)))
        else:
            form.append((key, _condition(item, where, report)))
    return _unordered(form)


def _condition(value, path: str, report: Report | None):
    """A field's condition: an operator document (unordered), or a value matched by equality (literal)."""
    if not (isinstance(value, dict) and value and all(key.startswith("$") for key in value)):
        return _literal(value, path, report)
    form = []
    for key, item in value.items():
        nested = key in NESTED_QUERY and isinstance(item, dict)
        if nested and all(k.startswith("$") for k in item):
            form.append((key, _condition(item, f"{path}.{key}", report)))
        elif nested:
            form.append((key, _query(item, f"{path}.{key}", report)))
        else:
            form.append((key, _literal(item, f"{path}.{key}", report)))
    return _unordered(form)


def _schema(value, path: str, report: Report | None):
    """A JSON Schema: an unordered map of keywords; ``enum`` and the like stay literal."""
    if not isinstance(value, dict):
        return _literal(value, path, report)
    form = []
    for key, item in value.items():
        where = f"{path}.{key}"
        if key in SCHEMA_MAPS and isinstance(item, dict):
            form.append((key, _unordered((n, _schema(s, f"{where}.{n}", report)) for n, s in item.items())))
        elif isinstance(item, list) and (key in SCHEMA_LISTS or key == "items"):
            form.append(
                (key, ("list", tuple(_schema(s, f"{where}[{n}]", report) for n, s in enumerate(item))))
            )
        elif key in SCHEMA_VALUED:
            form.append((key, _schema(item, where, report)))
        else:
            form.append((key, _literal(item, where, report)))
    return _unordered(form)


def _option(name: str, value, report: Report | None = None):
    if name in SETTINGS_OPTIONS:
        return _settings(value, name, report)
    if name in QUERY_OPTIONS:
        return _query(value, name, report)
    if name == "clusteredIndex" and isinstance(value, dict):
        return _unordered(
            (key, (_literal if key == "key" else _settings)(item, f"{name}.{key}", report))
            for key, item in value.items()
        )
    if name == "weights":
        return _settings(value, name, report)
    return _literal(value, name, report)


def comparable_option(name: str, value):
    """The form of one collection option (or index field) that equals another's when MongoDB
    gives both the same meaning."""
    return _option(name, value)


def same_options(a: dict, b: dict) -> bool:
    """Whether two documents of options (a collection's, or an index spec) mean the same."""
    return set(a) == set(b) and all(
        comparable_option(name, a[name]) == comparable_option(name, b[name]) for name in a
    )


def order_sensitive_documents(options: dict) -> list[str]:
    """Paths (``pipeline[0].$sort``...) of the documents with two or more fields whose order is
    part of the options' meaning: where a mongodump affected by TOOLS-3411 may have changed it."""
    found: list[str] = []
    for name, value in options.items():
        _option(name, value, found.append)
    return found


# mongodump keeps the order of option fields from this version on (TOOLS-3411).
MONGODUMP_FIXED = (100, 9, 1)


def reordering_warning(name_options: dict[str, dict], *, tool_version: str | None) -> str | None:
    """A warning for a mongodump dump (no manifest of ours) naming, per collection or view, the
    options whose field order a mongodump before 100.9.1 may have changed, with effect.

    None when nothing is at risk, or ``tool_version`` (an archive's header says it) is fixed.
    """
    numbers = tuple(int(part) for part in re.findall(r"\d+", tool_version or "")[:3])
    if len(numbers) == 3 and numbers >= MONGODUMP_FIXED:
        return None
    at_risk = [
        f"{name} ({', '.join(paths)})"
        for name, options in sorted(name_options.items())
        if (paths := order_sensitive_documents(options))
    ]
    if not at_risk:
        return None
    made_by = (
        f"mongodump {tool_version}" if tool_version else "if a mongodump before 100.9.1 made this dump, it"
    )
    return (
        f"{made_by} may have changed the order of fields where it changes their meaning (TOOLS-3411): "
        f"{'; '.join(at_risk)}. They are imported as the dump holds them; compare them with the "
        "source (verify_migration against the live source reports any difference)."
    )
