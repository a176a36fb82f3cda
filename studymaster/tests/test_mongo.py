"""The client options every connection of ours is built with, and URI redaction."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from studymaster.mongo import SECRET_URI_OPTIONS, client_options, make_client, parse_uri, redact

ATLAS = (
    "mongodb+srv://app:{pw}@cluster0.example.mongodb.net/?retryWrites=true&w=majority&appName=studymaster-web"
)


def test_defaults_bound_the_pool_and_fail_fast():
    options = client_options("mongodb://127.0.0.1:27017/")
    assert options == {
        "appName": "studymaster",
        "retryWrites": True,
        "retryReads": True,
        "w": "majority",
        "maxPoolSize": 10,
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
    }


def test_srv_uri_turns_tls_on_and_keeps_the_uri_app_name():
    options = client_options(ATLAS.format(pw="pw"), max_pool_size=25, server_selection_timeout_ms=2500)
    assert options["tls"] is True
    assert options["maxPoolSize"] == 25
    assert options["serverSelectionTimeoutMS"] == 2500
    assert "appName" not in options  # the URI's appName=studymaster-web wins


def test_client_built_by_make_client_carries_the_options(settings):
    settings.MONGODB_MAX_POOL_SIZE = 7
    settings.MONGODB_CONNECT_TIMEOUT_MS = 1234
    client = make_client("mongodb://127.0.0.1:1/")
    try:
        assert client.options.pool_options.max_pool_size == 7
        assert client.options.pool_options.connect_timeout == pytest.approx(1.234)
        assert client.options.pool_options.metadata["application"] == {"name": "studymaster"}
        assert client.options.retry_writes and client.options.retry_reads
        assert client.write_concern.document == {"w": "majority"}
    finally:
        client.close()


@pytest.mark.parametrize(
    "text",
    [
        ATLAS.format(pw="Hunter2Secret"),
        "error talking to mongodb://root:Hunter2Secret@db1.example.net:27017,db2.example.net:27017/admin?x=1 (timeout)",
        "MONGODB+SRV://root:Hunter2Secret@c.example.mongodb.net",
    ],
)
def test_redact_removes_userinfo(text):
    cleaned = redact(text)
    assert "Hunter2Secret" not in cleaned
    assert "root" not in cleaned.replace("mongodb", "")
    assert "***@" in cleaned


@pytest.mark.parametrize("option", SECRET_URI_OPTIONS)
def test_redact_removes_the_value_of_every_secret_bearing_option(option):
    uri = f"mongodb://db.example.net/?tls=true&{option}=Hunter2Secret&w=majority"
    cleaned = redact(f"could not connect to {uri}; retrying")
    assert "Hunter2Secret" not in cleaned
    assert f"{option}=***&w=majority; retrying" in cleaned
    assert "Hunter2Secret" not in redact(uri.replace(option, option.upper()))


def test_redact_removes_an_aws_session_token_and_a_key_file_password_together():
    uri = (
        "mongodb://AKIAEXAMPLE:Hunter2Secret@db.example.net/?authMechanism=MONGODB-AWS"
        "&authMechanismProperties=AWS_SESSION_TOKEN:FwoGZXIvYXdzEXAMPLE%2Btoken,SERVICE_NAME:mongodb"
        "&tlsCertificateKeyFile=/etc/client.pem&tlsCertificateKeyFilePassword=PemPassphrase"
    )
    cleaned = redact(uri)
    for secret in ("AKIAEXAMPLE", "Hunter2Secret", "FwoGZXIvYXdzEXAMPLE", "PemPassphrase"):
        assert secret not in cleaned
    # What an operator needs to read the URI stays.
    assert "authMechanism=MONGODB-AWS" in cleaned and "tlsCertificateKeyFile=/etc/client.pem" in cleaned


def test_parse_uri_reads_hosts_database_and_options():
    parsed = parse_uri("mongodb://a:1,b:2/mydb?tls=true&replicaSet=rs0")
    assert parsed.hosts == ("a:1", "b:2")
    assert parsed.database == "mydb"
    assert parsed.uses_tls and not parsed.is_srv and not parsed.is_loopback


def test_parse_uri_error_names_the_setting():
    with pytest.raises(ImproperlyConfigured, match="ATLAS_MONGODB_URI"):
        parse_uri("mongodb+srv://a,b/", name="ATLAS_MONGODB_URI")
