"""A throwaway PostgreSQL cluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.servers._base import (
    _PORT_ATTEMPTS,
    HOST,
    _as_user,
    _chown_tree,
    _log_size,
    _make_tempdir,
    _PortInUse,
    _postgres_bindir,
    _run,
    _Server,
    _spawn,
    _stop_process,
    _system_user,
    _wait_until,
    free_port,
)

# ------------------------------------------------------------------------ PostgreSQL


class PostgresCluster(_Server):
    """A throwaway PostgreSQL cluster (initdb + postgres) with trust auth on 127.0.0.1."""

    user = "postgres"  # the superuser initdb creates, whoever runs it

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.owner = _system_user("postgres", "postgresql") if os.geteuid() == 0 else None
        self.host = HOST
        self.port = 0
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    @property
    def log(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "postgres.log"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        began = time.monotonic()
        if self.tmpdir is None:
            self._register()
            self.tmpdir = _make_tempdir("pg", self.owner)
            self._initdb()
        for attempt in range(_PORT_ATTEMPTS):
            port = self.port or free_port()
            try:
                self._start_on(port)
                break
            except _PortInUse:
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
        self.startup_seconds = time.monotonic() - began

    def _initdb(self) -> None:
        assert self.tmpdir is not None
        log = self.tmpdir / "initdb.log"
        log.touch()
        _chown_tree(self.tmpdir, self.owner)
        _run(
            [
                *_as_user(self.owner),
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.datadir),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            ],
            log,
        )
        (self.datadir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# helpdesk test cluster\n"
                f"listen_addresses = '{HOST}'\n"
                f"unix_socket_directories = '{self.tmpdir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
                "shared_buffers = 32MB\n"
                "logging_collector = off\n"
            )
        _chown_tree(self.tmpdir, self.owner)

    def _start_on(self, port: int) -> None:
        self.log.touch()
        cmd = [*_as_user(self.owner), str(self.bindir / "postgres"), "-D", str(self.datadir)]
        offset = _log_size(self.log)
        self.proc = _spawn([*cmd, "-p", str(port)], self.log)
        try:
            _wait_until(
                lambda: self._can_connect(port),
                self.proc,
                f"postgres on port {port}",
                self.log,
                port_in_use=lambda text: "Address already in use" in text,
                log_offset=offset,
            )
        except BaseException:
            _stop_process(self.proc, signal.SIGINT)
            self.proc = None
            raise
        self.port = port

    def _can_connect(self, port: int) -> bool:
        import psycopg

        # The postmaster says "ready" in its pid file (what pg_ctl -w waits for); only
        # then connect, so a stranger's listener on the port cannot stall the probe.
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or lines[3].strip() != str(port) or lines[7].strip() != "ready":
            return False
        try:
            with psycopg.connect(
                host=HOST, port=port, user=self.user, dbname="postgres", connect_timeout=2
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        _stop_process(self.proc, signal.SIGINT)  # SIGINT = "fast" shutdown
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self._unregister()

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of ``dbname`` on this cluster."""
        return f"postgresql+psycopg://{self.user}@{HOST}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string (for psycopg.connect)."""
        return f"host={HOST} port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URL."""
        self._admin("CREATE DATABASE {}", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its clients."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def _admin(self, statement: str, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))
