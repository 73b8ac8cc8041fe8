"""An embedded PostgreSQL server owned by the daemon (used when `database.url` is empty).

The cluster lives in `<state_dir>/pg/data`; the server listens only on a unix socket in a
private directory (trust authentication is safe there: nobody else can reach it). The
binaries are the system's (`pg_config --bindir`, `/usr/lib/postgresql/*/bin`, `initdb`
on PATH) or, on a machine without them, the ones the `pgserver` wheel carries.

Ownership: the postmaster is a direct child started from the main thread with a parent
death signal (SIGINT, a fast shutdown), so it stops when the daemon stops for any reason,
`kill -9` included. A server left over anyway (an older daemon, another path) is found by
its `postmaster.pid`, shut down and started again; a stale pid file is removed.
PostgreSQL refuses to run as root, so as root the cluster is owned by and runs as the
system user `odted-pg` (created when missing).
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_bindir"]

SERVICE_USER = "odted-pg"
PORT = 5432
_PR_SET_PDEATHSIG = 1


class EmbeddedPostgresError(Exception):
    """The embedded server could not be set up or started; the message says why."""


def find_bindir() -> Path:
    """The directory holding `initdb`, `postgres` and `pg_ctl`."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major(p.parent.name), reverse=True)
    candidates.extend(versions)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        candidates.append(Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin")
    for c in candidates:
        if (c / "initdb").exists() and (c / "postgres").exists():
            return c
    raise EmbeddedPostgresError(
        "no PostgreSQL binaries found (install PostgreSQL or the pgserver wheel, or set database.url)"
    )


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


class EmbeddedPostgres:
    """One cluster under `root`: `start()` it, read `dsn(dbname)`, `stop()` it."""

    def __init__(self, root: Path, *, durable: bool = True, bindir: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.durable = durable
        self._bindir = bindir
        self._proc: subprocess.Popen[bytes] | None = None
        self.socket_dir = self._pick_socket_dir()
        self._as_root = os.geteuid() == 0
        self._lock_fd: int | None = None

    # -- public ---------------------------------------------------------------------

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}&port={PORT}"

    @property
    def pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    def start(self, timeout: float = 30.0) -> None:
        """Initialize the cluster when new, recover a stale one, start, wait until ready.

        Call from the main thread (the parent-death signal is tied to the calling thread).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._take_ownership()
        try:
            self._start(timeout)
        except BaseException:
            self._release_ownership()
            raise

    def _start(self, timeout: float) -> None:
        user = self._service_user()
        if not (self.data / "PG_VERSION").exists():
            self._initdb(user)
        self._check_version()
        self._recover_stale()
        self.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if user:
            os.chown(self.socket_dir, user.pw_uid, user.pw_gid)
        cmd = [
            str(self.bindir / "postgres"),
            "-D", str(self.data),
            "-k", str(self.socket_dir),
            "-p", str(PORT),
            "-c", "listen_addresses=",
            "-c", "max_connections=200",
            "-c", "shared_buffers=128MB",
            "-c", "unix_socket_permissions=0700",
        ]
        if not self.durable:
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        logf = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )
        finally:
            logf.close()
        self._wait_ready(timeout)
        log.info("embedded postgres ready (pid %s, %s)", self._proc.pid, self.data)

    def stop(self, timeout: float = 8.0) -> None:
        """Fast shutdown (SIGINT); immediate (SIGQUIT) if it takes longer than `timeout`."""
        pid = self.pid
        if pid is not None:
            _signal_and_wait(pid, self._proc, timeout)
            log.info("embedded postgres stopped")
        self._proc = None
        self._release_ownership()

    def is_running(self) -> bool:
        return self.pid is not None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- setup ----------------------------------------------------------------------

    def _take_ownership(self) -> None:
        """Hold an exclusive lock on the cluster for as long as this object runs it.

        A second process on the same state dir is refused instead of touching the
        cluster; a server found running while we hold the lock is therefore an orphan.
        """
        fd = os.open(self.root / "owner.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise EmbeddedPostgresError(
                f"{self.root} is in use by another odted process (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_ownership(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _service_user(self) -> pwd.struct_passwd | None:
        if not self._as_root:
            return None
        try:
            user = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            try:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                    check=True, capture_output=True, text=True,
                )
            except (OSError, subprocess.CalledProcessError) as e:
                raise EmbeddedPostgresError(f"cannot create system user {SERVICE_USER}: {e}") from e
            user = pwd.getpwnam(SERVICE_USER)
        _make_traversable(self.root)
        os.chown(self.root, user.pw_uid, user.pw_gid)
        if self.data.exists():
            _chown_tree(self.data, user)
        return user

    def _initdb(self, user: pwd.struct_passwd | None) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-made cluster from an interrupted initdb
        self.data.mkdir(mode=0o700)
        if user:
            os.chown(self.data, user.pw_uid, user.pw_gid)
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.data),
                "-U", "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--data-checksums",
                *(() if self.durable else ("--no-sync",)),
            ],
            capture_output=True,
            text=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def _check_version(self) -> None:
        have = (self.data / "PG_VERSION").read_text().strip()
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True, text=True)
        binary = out.stdout.split()[-1].split(".")[0] if out.returncode == 0 else "?"
        if binary != have:
            raise EmbeddedPostgresError(
                f"the cluster in {self.data} is PostgreSQL {have} but the binaries in {self.bindir} "
                f"are {binary}; use matching binaries or move the old cluster away"
            )

    def _recover_stale(self) -> None:
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (ValueError, IndexError, OSError):
            pid = 0
        if pid and _is_postgres(pid):
            log.warning("stopping a leftover postgres (pid %s) on %s", pid, self.data)
            _signal_and_wait(pid, None, 10.0)
        if pidfile.exists() and not (pid and _is_postgres(pid)):
            log.warning("removing a stale postmaster.pid from %s", self.data)
            pidfile.unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pidfile = self.data / "postmaster.pid"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise EmbeddedPostgresError(
                    f"postgres exited with {self._proc.returncode}; see {self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedPostgresError(f"postgres did not become ready in {timeout}s; see {self.log_path}")

    def _pick_socket_dir(self) -> Path:
        own = self.root / "run"
        if len(str(own)) + len(f"/.s.PGSQL.{PORT}.lock") < 100:
            return own
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"odted-pg-{digest}"


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


def _is_postgres(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"postgres" in cmd


def _signal_and_wait(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    def gone() -> bool:
        if proc is not None:
            return proc.poll() is not None
        return not _is_postgres(pid)

    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait(gone, wait):
            return


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _make_traversable(path: Path) -> None:
    """Let the service user reach `path`: add o+x (search only, not read) on its parents."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    if path.stat().st_uid == user.pw_uid:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, user.pw_uid, user.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
