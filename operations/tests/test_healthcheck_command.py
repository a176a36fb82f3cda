"""manage.py healthcheck: the ping, the detail, and the exit code when the database is down."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from studymaster.embedded import free_port


def test_detail_reports_storage_and_connections(local_db):
    out = StringIO()
    call_command("healthcheck", "--uri", local_db.uri, "--db", local_db.name, "--detail", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("OK ")
    assert lines[1].startswith("storage: ") and "of 512 MB" in lines[1]
    assert lines[2].startswith("connections: ")


def test_detail_as_json_says_what_a_read_write_user_cannot_see(atlas_db):
    out = StringIO()
    call_command(
        "healthcheck", "--uri", atlas_db.uri, "--db", atlas_db.name, "--detail", "--json", stdout=out
    )
    result = json.loads(out.getvalue())
    assert result["storage"]["known"] is True
    assert "app-" not in out.getvalue()  # the password of the app user never shows
    if not result["connections"]["known"]:
        assert result["connections"]["reason"] == "serverStatus refused (authorization)"


@pytest.mark.embedded_only("needs a local port where nothing listens")
def test_unreachable_database_exits_2_with_the_classified_message(settings):
    settings.MONGODB_SERVER_SELECTION_TIMEOUT_MS = 500
    with pytest.raises(CommandError) as raised:
        call_command("healthcheck", "--uri", f"mongodb://127.0.0.1:{free_port()}/", "--detail")
    assert raised.value.returncode == 2
    assert str(raised.value).startswith("unreachable: ")


def test_the_library_reports_and_formats_without_call_command(local_db):
    from operations.health import format_healthcheck, healthcheck

    result = healthcheck(local_db.uri, local_db.name, detail=True)
    assert result["database"] == local_db.name and result["status"] == "ok"
    lines = format_healthcheck(result, detail=True).splitlines()
    assert lines[0] == (
        f"OK {result['uri']} db={local_db.name} version={result['server_version']} "
        f"latency={result['latency_ms']}ms"
    )
    assert len(lines) == 3
    assert format_healthcheck(result).splitlines() == lines[:1]


def test_unknown_parts_say_why():
    from operations.health import format_healthcheck

    result = {
        "uri": "mongodb://h/",
        "database": "d",
        "server_version": "8.0.0",
        "latency_ms": 1.5,
        "storage": {"known": True, "used_bytes": 3 * 2**20, "quota_bytes": 512 * 2**20},
        "connections": {"known": False, "reason": "serverStatus refused (authorization)"},
    }
    assert format_healthcheck(result, detail=True).splitlines() == [
        "OK mongodb://h/ db=d version=8.0.0 latency=1.5ms",
        "storage: 3.0 MB of 512 MB (1%)",
        "connections: unknown: serverStatus refused (authorization)",
    ]


def _manage(*args, **env):
    """(exit code, stdout, stderr) of manage.py in its own process: what an operator sees."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "studymaster.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout, result.stderr


def test_a_cluster_name_dns_does_not_know_is_one_line_and_exit_2_naming_where_it_came_from():
    """Issue 11, item 7: no traceback; a .invalid name never reaches any outside server."""
    uri = "mongodb+srv://u:" + "p4ss@cluster0.abcde.invalid/"
    code, out, err = _manage("healthcheck", "--uri", uri)
    assert code == 2, err
    assert err.startswith("CommandError: dns: The cluster's DNS SRV record could not be resolved")
    assert "host name in --uri" in err and "p4ss" not in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, err = _manage("healthcheck", MONGODB_URI=uri)
    assert code == 2 and "host name in MONGODB_URI" in err


@pytest.mark.embedded_only("needs a local port where nothing listens")
def test_prune_migration_runs_with_the_database_down_is_one_line_and_exit_2():
    code, out, err = _manage(
        "prune_migration_runs",
        MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/",
        MONGODB_SERVER_SELECTION_TIMEOUT_MS="300",
    )
    assert code == 2, err
    assert err.startswith("CommandError: unreachable: No MongoDB server answered")
    assert len(err.strip().splitlines()) == 1
