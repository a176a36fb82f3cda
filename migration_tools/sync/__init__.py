"""Live migration: copy a source database while it stays live, then follow its change stream.

Modules, bottom to top:

- ``state``: the lease (one run per target database) and the saved state, on the target;
- ``stream``: the source's replica-set check, its clock, and the change stream reader;
- ``apply``: change events turned into idempotent writes, paced;
- ``copy``: the initial copy of every collection, with options and indexes;
- ``verify_live``: verification while the source is live (a full pass, then rechecks);
- ``engine``: :class:`LiveSync`, which runs them in the right order.
"""

from migration_tools.sync.engine import (
    LiveSync,
    StatusPrinter,
    SyncError,
    SyncFigures,
    SyncInterrupted,
    SyncOptions,
    SyncRefused,
    format_figures,
    options_for_command,
    stop_on_signals,
    sync_run,
    write_json,
)
from migration_tools.sync.state import STATE_COLLECTION

__all__ = [
    "STATE_COLLECTION",
    "LiveSync",
    "StatusPrinter",
    "SyncError",
    "SyncFigures",
    "SyncInterrupted",
    "SyncOptions",
    "SyncRefused",
    "format_figures",
    "options_for_command",
    "stop_on_signals",
    "sync_run",
    "write_json",
]
