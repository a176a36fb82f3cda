"""Configuration: every missing or malformed variable stops startup with a message naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def load_settings(**overrides):
    """Import the settings in a fresh interpreter; return (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    env.update({k: v for k, v in overrides.items() if v is not None})
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('SETTINGS OK')"],
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
        (
            {"LOCAL_MONGODB_URI": f"mysql://root:{PASSWORD}@localhost/"},
            "LOCAL_MONGODB_URI has the scheme 'mysql'",
        ),
        (
            {"ATLAS_MONGODB_URI": f"mongodb+srv://app:{PASSWORD}@c.example.mongodb.net:1/"},
            "ATLAS_MONGODB_URI: a mongodb+srv",
        ),
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
