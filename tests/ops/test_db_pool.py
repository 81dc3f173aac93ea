"""Database connection pooling (issue 18): psycopg's pool in the process (DB_POOL=1) and the
PgBouncer mode (DB_PGBOUNCER=1, transaction pooling: no server-side cursors, no prepared
statements). The settings are read at import, so each case runs Django in a subprocess with
its own environment: the settings it ends with, and, on PostgreSQL, a real connection."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.ops import tools

ROOT = Path(__file__).resolve().parents[2]
PGBOUNCER_INI = ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"
KEYS = {
    "SECRET_KEY": "test-secret-key-for-the-pool-subprocess-0123456789",
    "FIELD_ENCRYPTION_KEY": "q7oH8zJ0aQyYk1XbJ6mYqgqvLrW3y3f1m3m3QZ3V1Ew=",
}


def _django(code: str, **env: str) -> dict:
    """Run `code` after django.setup() with `env`; it prints one JSON line, returned here."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL"))}
    full.update(KEYS)
    full.update(env)
    full["DJANGO_SETTINGS_MODULE"] = "ops.settings"
    program = "import django, json\ndjango.setup()\n" + code
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


SHOW_SETTINGS = """
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"],
    "conn_max_age": db["CONN_MAX_AGE"],
    "options": db.get("OPTIONS", {}),
    "no_server_cursors": db.get("DISABLE_SERVER_SIDE_CURSORS", False),
}))
"""
URL = "postgres://facturacion:secret@db.example:5432/facturacion"


def test_postgres_without_pool_keeps_persistent_connections():
    db = _django(SHOW_SETTINGS, DATABASE_URL=URL, DB_CONN_MAX_AGE="60")
    assert db["conn_max_age"] == 60
    assert "pool" not in db["options"] and not db["no_server_cursors"]


def test_db_pool_turns_on_psycopgs_pool_and_off_persistent_connections():
    db = _django(
        SHOW_SETTINGS,
        DATABASE_URL=URL,
        DB_POOL="1",
        DB_POOL_MIN_SIZE="1",
        DB_POOL_MAX_SIZE="7",
        DB_POOL_TIMEOUT="3",
    )
    # Django refuses a pool with persistent connections ("Pooling doesn't support
    # persistent connections").
    assert db["conn_max_age"] == 0
    pool = db["options"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (1, 7, 3.0)


def test_pgbouncer_mode_drops_what_transaction_pooling_cannot_keep():
    db = _django(SHOW_SETTINGS, DATABASE_URL=URL, DB_PGBOUNCER="1")
    assert db["no_server_cursors"] is True
    assert db["options"]["prepare_threshold"] is None
    assert db["conn_max_age"] == 60  # persistent client connections to PgBouncer are cheap


def test_sqlite_ignores_the_pool_variables(tmp_path):
    db = _django(SHOW_SETTINGS, DB_POOL="1", DB_PGBOUNCER="1", VAR_DIR=str(tmp_path))
    assert db["engine"] == "django.db.backends.sqlite3"
    assert "pool" not in db["options"] and not db["no_server_cursors"]


# ---------------------------------------------------------------- on PostgreSQL

USE_THE_POOL = """
import threading
from django.db import connection, connections
from erp.models import Company

assert connection.pool is not None
seen = []

def work():
    try:
        for _ in range(5):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                seen.append(cursor.fetchone()[0])
            Company.objects.count()
    finally:
        connections.close_all()  # back to the pool

threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
stats = connection.pool.get_stats()
print(json.dumps({"backends": len(set(seen)), "queries": len(seen),
                  "pool_max": connection.pool.max_size, "pool_size": stats.get("pool_size")}))
"""


@pytest.mark.postgres
def test_the_pool_gives_working_connections_shared_by_threads(test_database):
    """Six threads, thirty queries, never more server backends than the pool's maximum."""
    db = test_database
    url = _url(db, db["HOST"] or "127.0.0.1", db["PORT"] or 5432)
    out = _django(USE_THE_POOL, DATABASE_URL=url, DB_POOL="1", DB_POOL_MAX_SIZE="3")
    assert out["queries"] == 30
    assert out["pool_max"] == 3
    assert 1 <= out["backends"] <= 3


THROUGH_PGBOUNCER = """
from django.db import connection, transaction
from erp.models import Company
from django.contrib.auth import get_user_model

User = get_user_model()
with connection.cursor() as cursor:
    cursor.execute("SELECT current_setting('TimeZone'), current_setting('application_name')")
    tz, _ = cursor.fetchone()
# QuerySet.iterator() without a server-side cursor, and a row lock inside a transaction.
names = [u.username for u in User.objects.order_by("pk").iterator(chunk_size=2)]
with transaction.atomic():
    locked = list(User.objects.select_for_update().order_by("pk")[:1])
# A query run more times than psycopg's prepare threshold (5): never prepared.
for _ in range(12):
    Company.objects.filter(rut="1-9").exists()
print(json.dumps({"tz": tz, "users": len(names), "locked": len(locked),
                  "prepared": connection.connection.prepare_threshold}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _url(db: dict, host: str, port: int | str) -> str:
    user, password = db["USER"] or "postgres", db["PASSWORD"] or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{host}:{port}/{db['NAME']}"


@pytest.fixture
def test_database(transactional_db) -> dict:
    """The test database's connection settings (its tables exist; the subprocess reads them).
    Through transactional_db: pytest-django creates only the databases its tests ask for, so
    with django_db_setup alone a run of this file by itself found no test database; and what
    the subprocesses commit is flushed afterwards."""
    from django.db import connection

    return dict(connection.settings_dict)


@pytest.fixture
def pgbouncer(test_database):
    """Debian's PgBouncer with deploy/pgbouncer/pgbouncer.ini, pointed at the test's PostgreSQL
    on loopback instead of the stack's `postgres` service (and, when that PostgreSQL takes no
    password, with trust instead of SCRAM: there is no password to check)."""
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        tools.unavailable("pgbouncer is not installed (apt-get install pgbouncer)")
    db = test_database
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    workdir.chmod(0o755)  # PgBouncer refuses root: it runs as another user, who reads these
    server = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432}"
    ini = PGBOUNCER_INI.read_text()
    for old, new in (
        ("host=postgres port=5432", server),
        ("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1"),
        ("listen_port = 6432", f"listen_port = {port}"),
        ("/etc/pgbouncer/userlist.txt", str(workdir / "userlist.txt")),
    ):
        assert old in ini, old
        ini = ini.replace(old, new)
    if not db["PASSWORD"]:
        ini = ini.replace("auth_type = scram-sha-256", "auth_type = trust")
    ini += f"\nunix_socket_dir =\nlogfile = {workdir / 'pgbouncer.log'}\n"
    (workdir / "pgbouncer.ini").write_text(ini)
    (workdir / "userlist.txt").write_text(
        f'"{db["USER"] or "postgres"}" "{db["PASSWORD"] or ""}"\n'
    )
    (workdir / "pgbouncer.log").touch()
    for path in workdir.iterdir():
        path.chmod(0o666)
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres" if _user_exists("postgres") else "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(50):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail("pgbouncer did not start: " + (workdir / "pgbouncer.log").read_text())
        assert process.poll() is None, (workdir / "pgbouncer.log").read_text()
        yield _url(db, "127.0.0.1", port)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.postgres
def test_django_works_through_pgbouncer_in_transaction_pooling(pgbouncer):
    """The stack's PgBouncer configuration in front of a real PostgreSQL: UTC from PgBouncer
    (so Django sends no session SET), iterator() and FOR UPDATE work, nothing is prepared."""
    out = _django(THROUGH_PGBOUNCER, DATABASE_URL=pgbouncer, DB_PGBOUNCER="1")
    assert out["tz"] == "UTC"
    assert out["locked"] <= 1 and out["users"] >= 0
    assert out["prepared"] is None
