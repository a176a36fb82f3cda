"""Start and stop SecantusDB, the embedded MongoDB wire-protocol server of the demo and tests.

SecantusDB speaks the real wire protocol over WiredTiger storage (docs/architecture.md).
It loses acknowledged writes when killed unless started with ``--sync-on-commit``, so
every server whose data must outlive a crash passes ``durable=True``.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo.errors import PyMongoError


class EmbeddedServerError(RuntimeError):
    """The server did not start, or died; the message carries its log tail."""


@dataclass(frozen=True)
class MongoUser:
    username: str
    password: str
    roles: list = field(default_factory=list)


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a certificate for 127.0.0.1/localhost, made with trustme."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "server.pem", directory / "server.key", directory / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(files.cert_file))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(files.cert_file), append=True)
    cert.private_key_pem.write_to_path(str(files.key_file))
    ca.cert_pem.write_to_path(str(files.ca_file))
    return files


class EmbeddedMongo:
    """One SecantusDB process on 127.0.0.1.

    ``storage`` is a directory that persists between runs, or ``":memory:"``.
    ``users`` are created with auth off, then the server restarts with ``--auth``.
    """

    def __init__(
        self,
        storage: str | Path = ":memory:",
        *,
        port: int | None = None,
        durable: bool = False,
        users: Iterable[MongoUser] = (),
        tls: TlsFiles | None = None,
        test_commands: bool = False,
        log_path: Path | None = None,
        startup_timeout: float = 30.0,
        standalone: bool = False,
        oplog_max_entries: int | None = None,
    ):
        self.storage = str(storage)
        self.port = port or free_port()
        self.durable = durable
        self.users = list(users)
        self.tls = tls
        self.test_commands = test_commands
        # A plain mongod without --replSet: no change streams (a live sync's refusal is tested on it).
        self.standalone = standalone
        # A small oplog, to make a change stream's resume point roll out of it. SecantusDB trims
        # to the cap every 1,000 writes only; prune_oplog() trims at once.
        self.oplog_max_entries = oplog_max_entries
        self.startup_timeout = startup_timeout
        self._own_log_dir = None
        if log_path is None:
            self._own_log_dir = tempfile.mkdtemp(prefix="secantus-log-")
            log_path = Path(self._own_log_dir) / "server.log"
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self.auth = False

    # -- addresses -----------------------------------------------------------------
    def uri(self, user: MongoUser | None = None, *, auth_source: str = "admin") -> str:
        """A connection string for this server, as ``user`` when given."""
        userinfo = f"{quote_plus(user.username)}:{quote_plus(user.password)}@" if user else ""
        params = []
        if user:
            params.append(f"authSource={auth_source}")
        if self.tls:
            params += ["tls=true", f"tlsCAFile={quote_plus(str(self.tls.ca_file))}"]
        query = "?" + "&".join(params) if params else ""
        return f"mongodb://{userinfo}127.0.0.1:{self.port}/{query}"

    def client(self, user: MongoUser | None = None, **kwargs) -> MongoClient:
        kwargs.setdefault("serverSelectionTimeoutMS", 5000)
        return MongoClient(self.uri(user), **kwargs)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> EmbeddedMongo:
        """Start the server and wait until it answers a ping; provision users first if asked."""
        if self.users and not self.auth:
            self._launch(auth=False)
            self._create_users()
            self.stop()
            self.auth = True
        self._launch(auth=self.auth)
        return self

    def _command(self, *, auth: bool) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "secantus",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-path",
            self.storage,
            "--log-level",
            "WARNING",
        ]
        if self.durable:
            command.append("--sync-on-commit")
        if auth:
            command.append("--auth")
        if self.test_commands:
            command.append("--enable-test-commands")
        if self.standalone:
            command.append("--standalone")
        if self.oplog_max_entries is not None:
            command += ["--oplog-max-entries", str(self.oplog_max_entries)]
        if self.tls:
            command += ["--tls-cert-file", str(self.tls.cert_file), "--tls-key-file", str(self.tls.key_file)]
        return command

    def _launch(self, *, auth: bool) -> None:
        if self.storage != ":memory:" and not Path(self.storage).exists():
            Path(self.storage).mkdir(parents=True)
        if not _port_is_free(self.port):
            raise EmbeddedServerError(f"127.0.0.1:{self.port} is already in use; pick another port.")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        self.process = subprocess.Popen(
            self._command(auth=auth),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"SecantusDB exited with code {self.process.returncode} while starting.\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                client = MongoClient(self.uri(), serverSelectionTimeoutMS=1000, directConnection=True)
                try:
                    client.admin.command("ping")
                    return
                finally:
                    client.close()
            except (OSError, PyMongoError):
                time.sleep(0.1)
        self.stop()
        raise EmbeddedServerError(
            f"SecantusDB did not answer on 127.0.0.1:{self.port} within {self.startup_timeout:.0f}s.\n"
            f"{self.log_tail()}"
        )

    def _create_users(self) -> None:
        with MongoClient(self.uri(), serverSelectionTimeoutMS=5000) as client:
            for user in self.users:
                client.admin.command("createUser", user.username, pwd=user.password, roles=user.roles)

    def stop(self, timeout: float = 15.0) -> None:
        """Shut down cleanly (SIGTERM), or kill after ``timeout`` seconds."""
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would. Only a ``durable`` server keeps acknowledged writes."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def prune_oplog(self) -> int:
        """Trim the oplog to its cap now (SecantusDB's own command); returns the entries dropped."""
        with MongoClient(self.uri(), serverSelectionTimeoutMS=5000, directConnection=True) as client:
            return int(client.admin.command({"secantusAdmin.pruneOplog": 1})["pruned"])

    def restart(self) -> None:
        self.stop()
        self._launch(auth=self.auth)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no server log)"
        return "--- SecantusDB log (last lines) ---\n" + "\n".join(text)

    def close(self) -> None:
        self.stop()
        if self._own_log_dir:
            shutil.rmtree(self._own_log_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedMongo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["EmbeddedMongo", "EmbeddedServerError", "MongoUser", "TlsFiles", "free_port", "make_tls_files"]
