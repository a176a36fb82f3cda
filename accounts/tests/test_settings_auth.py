"""The auth settings read from the environment: token lifetimes, throttle rates, proxies."""

import os
import subprocess
import sys

import pytest

from studymaster.tests.test_settings import PROD_ENV, ROOT, SETTING_VARIABLES, load_settings

AUTH_VARIABLES = [
    "THROTTLE_RATE_LOGIN",
    "THROTTLE_RATE_REGISTER",
    "JWT_ACCESS_TOKEN_MINUTES",
    "JWT_REFRESH_TOKEN_DAYS",
    "TRUSTED_PROXY_COUNT",
]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"THROTTLE_RATE_LOGIN": "lots"}, "THROTTLE_RATE_LOGIN: 'lots' is not a rate such as 20/min"),
        ({"THROTTLE_RATE_REGISTER": "5/fortnight"}, "THROTTLE_RATE_REGISTER: '5/fortnight'"),
        ({"JWT_ACCESS_TOKEN_MINUTES": "0"}, "JWT_ACCESS_TOKEN_MINUTES must be a positive whole number"),
        ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT must be 0 or a positive whole number"),
    ],
)
def test_bad_auth_settings_stop_startup_naming_the_variable(overrides, expected):
    code, output = load_settings(**{**PROD_ENV, **overrides})
    assert code != 0
    assert expected in output


def _auth_settings(**overrides) -> str:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES + AUTH_VARIABLES}
    env.update(PROD_ENV, **overrides)
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "rates = settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']; jwt = settings.SIMPLE_JWT; "
        "print(rates['login'], rates['register'], jwt['ACCESS_TOKEN_LIFETIME'].seconds, "
        "jwt['REFRESH_TOKEN_LIFETIME'].days, settings.REST_FRAMEWORK['NUM_PROXIES'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_auth_settings_have_safe_defaults():
    assert _auth_settings() == "20/min 10/min 900 7 0"


def test_auth_settings_come_from_the_environment():
    output = _auth_settings(
        THROTTLE_RATE_LOGIN="30/min",
        THROTTLE_RATE_REGISTER="12/hour",
        JWT_ACCESS_TOKEN_MINUTES="5",
        JWT_REFRESH_TOKEN_DAYS="30",
        TRUSTED_PROXY_COUNT="1",
    )
    assert output == "30/min 12/hour 300 30 1"
