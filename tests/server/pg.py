"""A throw-away PostgreSQL server from Debian's binaries, for tests and bench/load.py.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system user and its
folder lives outside pytest's root-private tmp_path.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or root without a `postgres` user to run them as."""


def binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


@dataclass(frozen=True, slots=True)
class Cluster:
    argv: list[str]
    """Runs the server in the foreground (start it as a process of your own; SIGTERM stops it)."""
    url: str
    port: int


def init_cluster(root: Path, port: int, *, fsync: bool = False) -> Cluster:
    """`initdb` a cluster under `root` (created, 0700 parents are fine) listening on 127.0.0.1:`port`."""
    initdb, postgres = binary("initdb"), binary("postgres")
    if not initdb or not postgres:
        raise PostgresUnavailable("PostgreSQL binaries are not installed")
    data, sock = root / "pgdata", root / "pgsock"
    sock.mkdir(parents=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no postgres user") from None
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "autograder", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    argv = [*prefix, postgres, "-D", str(data), "-p", str(port), "-k", str(sock), "-h", "127.0.0.1",
            "-c", f"fsync={'on' if fsync else 'off'}"]
    return Cluster(argv=argv, url=f"postgresql+psycopg://autograder@127.0.0.1:{port}/postgres", port=port)


def wait_ready(url: str, timeout: float = 30.0) -> None:
    """Until the server accepts a connection (it opens its port before it accepts logins)."""
    import sqlalchemy as sa

    end = time.monotonic() + timeout
    while True:
        try:
            e = sa.create_engine(url)
            with e.connect():
                pass
            e.dispose()
            return
        except sa.exc.OperationalError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)
