"""The embedded servers: the Atlas-like one refuses what Atlas refuses; durable ones keep writes."""

import pytest
from pymongo.errors import OperationFailure

from conftest import ATLAS_ADMIN, ATLAS_APP
from studymaster.embedded import EmbeddedMongo, EmbeddedServerError, MongoUser
from studymaster.mongo import client_options

pytestmark = pytest.mark.embedded_only("starts and provisions its own SecantusDB servers")


def test_app_user_reads_and_writes_its_database_over_tls(atlas_db):
    assert "tls=true" in atlas_db.uri
    atlas_db.db.notes.insert_one({"n": 1})
    assert atlas_db.db.notes.count_documents({}) == 1


def test_wrong_password_is_refused(atlas_server, atlas_db):
    intruder = MongoUser(ATLAS_APP.username, "not-the-password")
    with atlas_server.client(intruder) as client, pytest.raises(OperationFailure) as caught:
        client[atlas_db.name].notes.find_one()
    assert caught.value.code == 18  # AuthenticationFailed


def test_user_without_rights_on_a_database_is_refused(atlas_server):
    with atlas_server.client(ATLAS_APP) as client, pytest.raises(OperationFailure) as caught:
        client["someone_elses_db"].notes.insert_one({"n": 1})
    assert caught.value.code == 13  # Unauthorized
    with atlas_server.client(ATLAS_ADMIN) as admin:
        assert "someone_elses_db" not in admin.list_database_names()


def test_anonymous_client_is_refused(atlas_server):
    with atlas_server.client() as client, pytest.raises(OperationFailure):
        client.test_atlas_0.notes.find_one()


@pytest.mark.slow
def test_durable_server_keeps_acknowledged_writes_across_a_kill(tmp_path):
    with EmbeddedMongo(tmp_path / "data", durable=True) as server:
        with server.client(**client_options(server.uri())) as client:
            client.db.events.insert_many([{"n": n} for n in range(100)])
        server.kill()
        server.restart()
        with server.client() as client:
            assert client.db.events.count_documents({}) == 100


def test_a_server_that_crashes_while_starting_reports_its_log(tmp_path):
    not_a_directory = tmp_path / "storage"
    not_a_directory.write_text("this is a file, not a WiredTiger home")
    server = EmbeddedMongo(not_a_directory, startup_timeout=20)
    with pytest.raises(EmbeddedServerError, match="exited with code") as caught:
        server.start()
    assert "SecantusDB log" in str(caught.value)
    server.close()


def test_a_taken_port_is_refused():
    with EmbeddedMongo(":memory:") as running, pytest.raises(EmbeddedServerError, match="already in use"):
        EmbeddedMongo(":memory:", port=running.port).start()
