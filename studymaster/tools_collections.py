"""The migration tools' own collections, and the one rule about them.

Every collection whose name starts with ``migration_tools_`` belongs to the tools, not to the
application's data: the audit log (``migration_tools_migrationrun``), the maintenance flag
(``migration_tools_maintenance``), the live sync's state (``migration_tools_syncstate``). Each
database keeps its own. They are invisible to the emptiness check, export, snapshots, import,
verify and the live sync, so none of them ever travels with the data: restoring a snapshot
never replaces a live audit log, and the source's maintenance flag never freezes the target.
"""

from __future__ import annotations

import re

TOOLS_COLLECTION_PREFIX = "migration_tools_"
SYSTEM_COLLECTION_PREFIX = "system."
# The names is_data_collection() rejects, as a regular expression: for filters the server runs
# (the live sync's change stream leaves these events out on the source).
NOT_DATA_COLLECTION_PATTERN = (
    f"^(?:{re.escape(TOOLS_COLLECTION_PREFIX)}|{re.escape(SYSTEM_COLLECTION_PREFIX)})"
)


def is_tools_collection(name: str) -> bool:
    """Whether ``name`` is one of the migration tools' own collections (``migration_tools_*``)."""
    return name.startswith(TOOLS_COLLECTION_PREFIX)


def is_data_collection(name: str) -> bool:
    """Whether ``name`` holds the application's data: neither the tools' own nor MongoDB's ``system.*``.

    Export, snapshots, import, verify and the live sync copy and compare these collections only.
    """
    return not (name.startswith(SYSTEM_COLLECTION_PREFIX) or is_tools_collection(name))
