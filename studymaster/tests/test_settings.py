"""Configuration: every missing or malformed variable stops startup with a message naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studymaster.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Sup3rSecretPw"
GOOD_SECRET = "k" * 64
PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "studymaster.settings.prod",
    "SECRET_KEY": GOOD_SECRET,
    "MONGODB_URI": f"mongodb+srv://app:{PASSWORD}@cluster0.example.mongodb.net/?retryWrites=true&w=majority",
    "ALLOWED_HOSTS": "studymaster.example.com",
}
SETTING_VARIABLES = [
    "SECRET_KEY",
    "MONGODB_URI",
    "MONGODB_DB_NAME",
    "LOCAL_MONGODB_URI",
    "ATLAS_MONGODB_URI",
    "MONGODB_MAX_POOL_SIZE",
    "MONGODB_SERVER_SELECTION_TIMEOUT_MS",
    "MONGODB_CONNECT_TIMEOUT_MS",
    "DJANGO_DEBUG",
    "ALLOWED_HOSTS",
    "DJANGO_SETTINGS_MODULE",
]


def load_settings(*, show=(), **overrides):
    """Import the settings in a fresh interpreter; return (exit code, output).

    ``show``: settings to print, one ``NAME=repr(value)`` line each, after ``SETTINGS OK``.
    """
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    env.update({k: v for k, v in overrides.items() if v is not None})
    printed = "".join(f"; print({name!r} + '=' + repr(settings.{name}))" for name in show)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print('SETTINGS OK'){printed}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


def test_production_settings_load_with_a_complete_environment():
    code, output = load_settings(**PROD_ENV)
    assert code == 0, output
    assert "SETTINGS OK" in output


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"MONGODB_URI": None}, "MONGODB_URI is not set"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS is not set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too short"),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off"),
        ({"DJANGO_DEBUG": "perhaps"}, "DJANGO_DEBUG has a value that is not a valid bool"),
        (
            {"MONGODB_URI": f"postgres://app:{PASSWORD}@db.example.com/x"},
            "MONGODB_URI has the scheme 'postgres'",
        ),
        (
            {"MONGODB_URI": f"mongodb+srv://app:{PASSWORD}@cluster0.example.mongodb.net:27017/"},
            "may not carry a port",
        ),
        (
            {"MONGODB_URI": f"mongodb+srv://app:{PASSWORD}@cluster0.example.mongodb.net/?retryWritez=true"},
            "unknown option(s) retryWritez",
        ),
        (
            {"MONGODB_URI": f"mongodb+srv://app:{PASSWORD}@cluster0.example.mongodb.net/?maxPoolSize=lots"},
            "maxpoolsize must be an integer",
        ),
        ({"MONGODB_URI": f"mongodb://app:{PASSWORD}@db.example.com:27017/"}, "without TLS"),
        (
            {"MONGODB_URI": f"mongodb://app:{PASSWORD}@db.example.com:70000/?tls=true"},
            "port of 'db.example.com'",
        ),
        ({"MONGODB_URI": "mongodb:///?tls=true"}, "names no host"),
        ({"MONGODB_DB_NAME": "bad/name"}, "MONGODB_DB_NAME must be"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be DEBUG, INFO"),
        ({"MONGODB_MAX_POOL_SIZE": "ten"}, "MONGODB_MAX_POOL_SIZE has a value that is not a valid int"),
        ({"MONGODB_MAX_POOL_SIZE": "0"}, "MONGODB_MAX_POOL_SIZE must be a positive"),
        (
            {"MONGODB_SERVER_SELECTION_TIMEOUT_MS": "-5"},
            "MONGODB_SERVER_SELECTION_TIMEOUT_MS must be a positive",
        ),
        ({"MONGODB_CONNECT_TIMEOUT_MS": "soon"}, "MONGODB_CONNECT_TIMEOUT_MS has a value"),
    ],
)
def test_bad_configuration_stops_startup_and_names_the_variable(overrides, expected):
    code, output = load_settings(**{**PROD_ENV, **overrides})
    assert code != 0
    assert "ImproperlyConfigured" in output
    assert expected in output
    assert PASSWORD not in output


def test_development_settings_need_no_environment():
    code, output = load_settings(DJANGO_SETTINGS_MODULE="studymaster.settings.dev")
    assert code == 0, output


def test_password_with_reserved_characters_must_be_percent_encoded():
    code, output = load_settings(
        **{**PROD_ENV, "MONGODB_URI": "mongodb+srv://app:p@ss:w@rd@c.example.mongodb.net/"}
    )
    assert code != 0
    assert "Percent-encode it" in output
    assert "p@ss" not in output


# Which settings serve: WSGI and ASGI default to production; development serves only locally.

REMOTE_URI = f"mongodb://app:{PASSWORD}@db.example.com:27017/"


def _run(args, **overrides):
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    env.update({k: v for k, v in overrides.items() if v is not None})
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return result.returncode, result.stdout + result.stderr


def _serve(entry_point, **overrides):
    code = f"import studymaster.{entry_point}; from django.conf import settings; print('SERVING', settings.SETTINGS_MODULE, settings.DEBUG)"
    return _run(["-c", code], **overrides)


@pytest.mark.parametrize("entry_point", ["wsgi", "asgi"])
def test_the_server_entry_points_default_to_the_production_settings(entry_point):
    production = {k: v for k, v in PROD_ENV.items() if k != "DJANGO_SETTINGS_MODULE"}
    code, output = _serve(entry_point, **production)
    assert code == 0, output
    assert "SERVING studymaster.settings.prod False" in output
    # A deployment that sets nothing fails at once, naming what is missing, instead of serving
    # the development settings (DEBUG on, a published key).
    code, output = _serve(entry_point)
    assert code != 0 and "ImproperlyConfigured: MONGODB_URI is not set" in output


@pytest.mark.parametrize("entry_point", ["wsgi", "asgi"])
def test_the_development_settings_refuse_to_serve_a_remote_database(entry_point):
    code, output = _serve(
        entry_point, DJANGO_SETTINGS_MODULE="studymaster.settings.dev", MONGODB_URI=REMOTE_URI
    )
    assert code != 0
    assert "ImproperlyConfigured: MONGODB_URI names a database on another machine" in output
    assert PASSWORD not in output
    code, output = _serve(
        entry_point,
        DJANGO_SETTINGS_MODULE="studymaster.settings.dev",
        MONGODB_URI="mongodb://127.0.0.1:27017/",
    )
    assert code == 0 and "SERVING studymaster.settings.dev True" in output, output


@pytest.mark.parametrize("reload", [[], ["--noreload"]])
def test_runserver_refuses_a_remote_database_in_development_before_serving(reload):
    code, output = _run(
        ["manage.py", "runserver", *reload, f"127.0.0.1:{free_port()}"],
        DJANGO_SETTINGS_MODULE="studymaster.settings.dev",
        MONGODB_URI=REMOTE_URI,
    )
    assert code != 0
    assert "MONGODB_URI names a database on another machine" in output
    assert "Starting development server" not in output and PASSWORD not in output


def test_other_commands_may_use_a_remote_database_in_development():
    code, output = _run(
        ["manage.py", "check"], DJANGO_SETTINGS_MODULE="studymaster.settings.dev", MONGODB_URI=REMOTE_URI
    )
    assert code == 0, output
    assert "System check identified no issues" in output


def test_the_migration_uris_are_checked_when_a_command_uses_them_not_at_startup(tmp_path):
    """Issue 11, item 7: a malformed ATLAS_MONGODB_URI stops neither the application nor manage.py."""
    bad = {
        "LOCAL_MONGODB_URI": f"mysql://root:{PASSWORD}@localhost/",
        "ATLAS_MONGODB_URI": f"mongodb+srv://app:{PASSWORD}@x@c.example.mongodb.net/",
    }
    code, output = load_settings(**{**PROD_ENV, **bad})
    assert code == 0, output
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    for command, expected in (
        (
            ["import_atlas", "--from", str(tmp_path)],
            "ATLAS_MONGODB_URI: the password holds a reserved character",
        ),
        (["export_local", "--out", str(tmp_path / "d")], "LOCAL_MONGODB_URI has the scheme 'mysql'"),
    ):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env={**env, **bad},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == f"CommandError: {expected}" + result.stderr.strip().split(expected)[1]
        assert "Traceback" not in result.stderr and PASSWORD not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_malformed_application_uri_stops_manage_py_with_one_line_and_exit_2():
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    bad_uri = f"mongodb://app:{PASSWORD}@x@db.example.com/"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "MONGODB_URI": bad_uri},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration: MONGODB_URI: the password holds a reserved character")
    assert len(result.stderr.strip().splitlines()) == 1 and PASSWORD not in result.stderr


# -- .env ------------------------------------------------------------------------------------------


def test_a_dotenv_file_is_read_and_real_environment_variables_win(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("MONGODB_DB_NAME=from_dotenv\nLOG_LEVEL=WARNING\n")
    code, output = load_settings(
        DJANGO_SETTINGS_MODULE="studymaster.settings.dev",
        STUDYMASTER_ENV_FILE=str(dotenv),
        LOG_LEVEL="ERROR",
        show=["MONGODB_DB_NAME", "LOG_LEVEL"],
    )
    assert code == 0, output
    assert "MONGODB_DB_NAME='from_dotenv'" in output and "LOG_LEVEL='ERROR'" in output


def test_the_test_settings_never_read_a_dotenv_file(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("MONGODB_DB_NAME=from_dotenv\nMAINTENANCE_MODE=1\n")
    code, output = load_settings(
        DJANGO_SETTINGS_MODULE="studymaster.settings.test",
        STUDYMASTER_ENV_FILE=str(dotenv),
        show=["MONGODB_DB_NAME", "MAINTENANCE_MODE"],
    )
    assert code == 0, output
    assert "MONGODB_DB_NAME='studymaster'" in output and "MAINTENANCE_MODE=False" in output


def test_the_suite_and_every_process_it_starts_ignore_the_developers_dotenv():
    # Set by the root conftest.py before any test runs; the Makefile's targets set it too.
    assert os.environ["STUDYMASTER_ENV_FILE"] == ""
    makefile = (ROOT / "Makefile").read_text()
    assert "\nexport STUDYMASTER_ENV_FILE :=\n" in makefile


def test_a_copied_env_example_works_for_development_as_it_is():
    """Issue 11, item 6: no empty SECRET_KEY, no line that pins maintenance off, a local database."""
    code, output = load_settings(
        DJANGO_SETTINGS_MODULE="studymaster.settings.dev",
        STUDYMASTER_ENV_FILE=str(ROOT / ".env.example"),
        show=["DEBUG", "SECRET_KEY", "MAINTENANCE_MODE", "MONGODB_URI", "ALLOWED_HOSTS", "ATLAS_MONGODB_URI"],
    )
    assert code == 0, output
    assert "DEBUG=True" in output and "MAINTENANCE_MODE=False" in output
    assert "SECRET_KEY='dev-only-insecure-key-never-use-in-production'" in output
    assert "MONGODB_URI='mongodb://127.0.0.1:27017/'" in output and "'127.0.0.1'" in output
    assert "ATLAS_MONGODB_URI=''" in output
    lines = (ROOT / ".env.example").read_text().splitlines()
    assert "SECRET_KEY=" not in lines and not any(line.startswith("MAINTENANCE_MODE=") for line in lines)
