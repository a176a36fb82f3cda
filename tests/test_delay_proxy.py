"""bench/delay_proxy.py: every chunk waits its delay each way, and passes intact and in order."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bson import Binary
from pymongo import MongoClient

from bench.delay_proxy import DelayProxy
from migration_tools.bsonfiles import RAW

ROOT = Path(__file__).resolve().parent.parent
LOCAL_PORT = "proxies the embedded server's port; a MONGODB_TEST_URI server may be an SRV name"


def _port(server) -> int:
    return int(server.uri().rsplit(":", 1)[1].split("/")[0])


@pytest.mark.embedded_only(LOCAL_PORT)
def test_a_ping_through_the_proxy_takes_at_least_twice_the_delay(local_server):
    with DelayProxy(("127.0.0.1", _port(local_server)), delay_ms=25) as proxy:
        client = MongoClient(proxy.mongodb_uri())
        client.admin.command("ping")  # connection set-up out of the way
        started = time.perf_counter()
        client.admin.command("ping")
        elapsed = time.perf_counter() - started
        client.close()
    assert elapsed >= 0.050


@pytest.mark.embedded_only(LOCAL_PORT)
def test_a_large_insert_and_find_pass_through_intact(local_server, local_db):
    documents = [{"_id": n, "blob": Binary(os.urandom(10_000))} for n in range(1000)]
    documents.append({"_id": "big", "blob": Binary(os.urandom(5 << 20))})
    with DelayProxy(("127.0.0.1", _port(local_server)), delay_ms=5) as proxy:
        client = MongoClient(proxy.mongodb_uri())
        client[local_db.name]["blobs"].insert_many(documents)
        through = [d.raw for d in client[local_db.name].get_collection("blobs", codec_options=RAW).find()]
        client.close()
    direct = [d.raw for d in local_db.db.get_collection("blobs", codec_options=RAW).find()]
    assert len(through) == len(documents) and through == direct
    assert local_db.db["blobs"].find_one({"_id": "big"})["blob"] == bytes(documents[-1]["blob"])


@pytest.fixture
def echo_server():
    """A TCP server that sends back what it receives, and closes its side after the client's half-close."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_chunks_keep_their_order_and_a_half_close_passes_on(echo_server):
    chunks = [bytes([n % 251]) * (1 + n * 37 % 5000) for n in range(400)]
    received = bytearray()
    with (
        DelayProxy(("127.0.0.1", echo_server), delay_ms=2) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port)) as conn,
    ):

        def read_all():
            while data := conn.recv(65536):
                received.extend(data)

        reader = threading.Thread(target=read_all)
        reader.start()
        for chunk in chunks:
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)
        reader.join(timeout=30)
    assert not reader.is_alive()  # the server's close came back through the proxy
    assert bytes(received) == b"".join(chunks)


def test_a_refused_target_closes_the_connection():
    with socket.create_server(("127.0.0.1", 0)) as unused:
        closed_port = unused.getsockname()[1]
    with (
        DelayProxy(("127.0.0.1", closed_port), delay_ms=0) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port)) as conn,
    ):
        conn.settimeout(10)
        assert conn.recv(1) == b""


def test_the_command_line_runs_until_interrupted(echo_server):
    command = [
        sys.executable,
        "-m",
        "bench.delay_proxy",
        "--target",
        f"127.0.0.1:{echo_server}",
        "--delay-ms",
        "1",
    ]
    bad = subprocess.run([*command[:3], "--target", "nowhere"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "is not host:port" in bad.stderr
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) as proxy:
        banner = proxy.stderr.readline()
        assert banner.startswith("Forwarding 127.0.0.1:") and "1 ms each way" in banner
        port = int(banner.split()[1].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"hello")
            assert conn.recv(5) == b"hello"
        proxy.send_signal(signal.SIGINT)
        assert proxy.wait(timeout=10) == 0
