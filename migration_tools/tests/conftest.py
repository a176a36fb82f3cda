import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from migration_tools.dump import dump_database, load_dump
from migration_tools.restore import import_dump
from migration_tools.verify import LiveSide, verify


@pytest.fixture
def django_db_left_as_found():
    """The Django test database, shared by every test, without the collections a test added.

    The live sync tests write their own collections there (40,000 filler documents, the raw
    writer's) beside the application's; the flush after a test empties only the models'. Left
    behind, they slow every later dbStats (the health report's) on the embedded server.
    """
    before = set(connection.database.list_collection_names())
    yield
    for name in set(connection.database.list_collection_names()) - before:
        connection.database.drop_collection(name)


@pytest.fixture
def export(tmp_path):
    """Export a MongoDatabase fixture to a fresh folder; returns the dump folder."""
    counter = iter(range(100))

    def run(source, **kwargs):
        out = tmp_path / f"dump{next(counter)}"
        dump_database(source.client, source.name, out, source_uri=source.uri, **kwargs)
        return out

    return run


@pytest.fixture
def migrate(export):
    """Export ``source`` and import it into ``target``; returns (dump folder, import report)."""

    def run(source, target, *, compress=False, **kwargs):
        out = export(source, compress=compress)
        kwargs.setdefault("snapshot_dir", None)
        report = import_dump(
            target.client, load_dump(out), target_db=target.name, target_uri=target.uri, **kwargs
        )
        return out, report

    return run


def compare(source, target, **kwargs):
    """verify() between two MongoDatabase fixtures."""
    return verify(
        LiveSide(source.db),
        target.db,
        source_label="source",
        target_label="target",
        source_db=source.name,
        **kwargs,
    )


def run_command(*args, binary: bool = False, **options) -> tuple[int, str | bytes, str]:
    """(exit code, stdout, stderr) of a command, its CommandError's message ending stderr; stdout as
    bytes with ``binary`` (a text stream over a byte buffer, as a real standard output is)."""
    out = io.TextIOWrapper(io.BytesIO(), write_through=True) if binary else io.StringIO()
    err = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err, **options)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return code, out.buffer.getvalue() if binary else out.getvalue(), err.getvalue()
