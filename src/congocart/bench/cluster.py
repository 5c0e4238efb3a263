"""A throw-away PostgreSQL cluster for one bench run.

The bench's own server, so that the API and pgbench hit the same PostgreSQL
with the same settings, and `pg_stat_statements` can be loaded (it needs
`shared_preload_libraries`, which a shared server will not have). The
machine's binaries (`/usr/lib/postgresql/*/bin`) are preferred; without
them the ones in the `pgserver` wheel serve, which lack pg_stat_statements,
so SQL counts are then reported as unavailable.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_MACHINE_ROOT = Path("/usr/lib/postgresql")
_REQUIRED = ("initdb", "postgres", "pg_isready", "psql", "pgbench")


class ClusterError(Exception):
    """The bench's PostgreSQL could not be set up."""


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path
    version: str
    has_pg_stat_statements: bool

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (0,)


def _extension_dir(bin_dir: Path) -> Path | None:
    """Where the extension control files are (`pg_config --sharedir`/extension)."""
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        result = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            return Path(result.stdout.strip()) / "extension"
    for candidate in (
        bin_dir.parent / "share" / "extension",
        bin_dir.parent / "share" / "postgresql" / "extension",
    ):
        if candidate.is_dir():
            return candidate
    return None


def _pgserver_bin_dir() -> Path | None:
    try:
        import pgserver._commands as pgserver_commands
    except ImportError:  # pragma: no cover - pgserver is a dependency
        return None
    return Path(pgserver_commands.POSTGRES_BIN_PATH)


def find_binaries() -> Binaries:
    """The newest PostgreSQL on the machine with everything the bench needs, or pgserver's."""
    machine = sorted(
        (p / "bin" for p in _MACHINE_ROOT.glob("*")), key=lambda b: _version_key(b.parent)
    )
    for bin_dir in [*reversed(machine), None]:
        if bin_dir is None:
            bin_dir = _pgserver_bin_dir()
            if bin_dir is None:
                break
        if not all((bin_dir / name).exists() for name in _REQUIRED):
            continue
        version = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        extensions = _extension_dir(bin_dir)
        has_stats = extensions is not None and (extensions / "pg_stat_statements.control").exists()
        return Binaries(bin_dir=bin_dir, version=version, has_pg_stat_statements=has_stats)
    raise ClusterError(
        "no PostgreSQL binaries with initdb, postgres, psql and pgbench: install PostgreSQL "
        "(e.g. apt-get install postgresql postgresql-contrib) or the pgserver wheel"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (or pgserver's user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    # What pgserver itself does when run as root on a machine without PostgreSQL.
    subprocess.run(["useradd", "-s", "/bin/false", "pgserver"], check=True, capture_output=True)
    return pwd.getpwnam("pgserver")


class BenchCluster:
    """initdb into a temp dir, start on a free port of 127.0.0.1, stop and delete on exit."""

    def __init__(
        self,
        binaries: Binaries,
        *,
        shared_buffers: str = "512MB",
        max_connections: int = 300,
        host: str = "127.0.0.1",
    ) -> None:
        self.binaries = binaries
        self.shared_buffers = shared_buffers
        self.max_connections = max_connections
        self.host = host
        self.port = 0
        self.root: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ClusterError("the cluster is not running")
        return self.process.pid

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def dsn(self, database: str, *, user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def __enter__(self) -> BenchCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="congocart-bench-"))
        data = self.root / "data"
        data.mkdir(mode=0o700)
        if user is not None:
            for path in (self.root, data):
                os.chown(path, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
        initdb = subprocess.run(
            [
                self.binaries.path("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.root,
            **run_as,  # type: ignore[call-overload]
        )
        if initdb.returncode != 0:
            raise ClusterError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        self.port = free_port(self.host)
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{data}'",
            "max_connections": str(self.max_connections),
            "shared_buffers": f"'{self.shared_buffers}'",
            # Same durability as production defaults: fsync and synchronous
            # commit stay on, so pgbench measures what the disk can commit.
            "log_min_messages": "warning",
            "log_checkpoints": "off",
        }
        if self.binaries.has_pg_stat_statements:
            settings["shared_preload_libraries"] = "'pg_stat_statements'"
            settings["pg_stat_statements.max"] = "10000"
            settings["pg_stat_statements.track"] = "top"
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\n# congocart bench\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        log = self.log_path.open("ab")
        try:
            # Its own session: a Ctrl-C in the terminal reaches the bench only,
            # which then stops the server in order.
            self.process = subprocess.Popen(
                [self.binaries.path("postgres"), "-D", str(data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.root,
                **run_as,  # type: ignore[call-overload]
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ClusterError(f"postgres exited at start:\n{self.log_tail()}")
            ready = subprocess.run(
                [self.binaries.path("pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise ClusterError(f"postgres did not start in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def psql(self, database: str, *, file: Path | None = None, command: str | None = None) -> str:
        args = [
            self.binaries.path("psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
        ]
        if file is not None:
            args += ["-f", str(file)]
        if command is not None:
            args += ["-c", command]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self) -> None:
        """Fast shutdown (then harder), and the temp dir removed; safe to call twice."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    process.send_signal(sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        root, self.root = self.root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
