"""One database behind DATABASE_URL: SQLite (embedded default) or
PostgreSQL, the same SQL for both, with numbered migrations.

    db = Database.open("postgresql://u:p@127.0.0.1:5433/vitalnode")   # or a path, sqlite:///x
    with db.tx() as c:                      # one transaction, committed on exit
        c.execute("INSERT INTO t VALUES (?, ?)", (1, b"x"))
    db.query("SELECT a FROM t WHERE b = ?", (2,))      # rows as tuples

SQL is written once with `?` placeholders (turned into %s for psycopg) and
DDL with {BLOB} {FLOAT} {BIGINT} {ID} that each dialect fills in. Each
thread has its own connection (SQLite in WAL mode, busy timeout 30 s;
PostgreSQL through psycopg 3). Migrations (migrate()) run once per version,
inside one transaction that holds a lock (PostgreSQL: an advisory lock,
so several gateway workers starting together migrate once).

Guarantees: a tx() either commits whole or rolls back; IntegrityError is
the one exception for a broken unique key in both dialects.
Non-guarantee: no connection pool beyond one connection per thread.
"""
import os
import re
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path


class DatabaseError(Exception):
    """A bad DATABASE_URL, an unreachable server, or a failed migration."""


class IntegrityError(Exception):
    pass


_DDL = {
    "sqlite": {"BLOB": "BLOB", "FLOAT": "REAL", "BIGINT": "INTEGER",
               "ID": "INTEGER PRIMARY KEY"},
    "postgresql": {"BLOB": "BYTEA", "FLOAT": "DOUBLE PRECISION", "BIGINT": "BIGINT",
                   "ID": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
}


def describe(url):
    """The URL with any password hidden, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


class _Cursor:
    """The few things callers use, the same for both drivers."""

    def __init__(self, db, conn):
        self.db, self.conn = db, conn

    def execute(self, sql, args=()):
        try:
            return self.conn.execute(self.db.sql(sql), tuple(args))
        except Exception as e:  # noqa: BLE001 - map the two drivers' unique-key errors
            if self.db.is_integrity_error(e):
                raise IntegrityError(str(e)) from e
            raise


class Database:
    def __init__(self, dialect, target, display):
        self.dialect = dialect
        self.target = target  # sqlite: path or memory URI; postgresql: the URL
        self.display = display
        self._local = threading.local()
        self._all = []
        self._lock = threading.Lock()
        self._keep = None
        if dialect == "sqlite" and target.startswith("file:"):
            self._keep = self._connect()  # an in-memory database lives while one connection does

    # -- opening
    @classmethod
    def open(cls, url):
        """url: postgresql://..., sqlite:///path, a file path or ':memory:'."""
        u = str(url)
        if u.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise DatabaseError("psycopg is not installed (make deps installs it)")
            return cls("postgresql", u, describe(u))
        if "://" in u and not u.startswith("sqlite://"):
            raise DatabaseError("DATABASE_URL %s: use postgresql://..., sqlite:///path or a file "
                                "path" % describe(u))
        if u.startswith("sqlite://"):  # sqlite:///relative.db, sqlite:////absolute.db
            u = u[len("sqlite:///"):] if u.startswith("sqlite:///") else u[len("sqlite://"):]
        if u in (":memory:", ""):
            return cls("sqlite", "file:vn-mem-%s?mode=memory&cache=shared" % uuid.uuid4().hex,
                       ":memory:")
        p = Path(u)
        p.parent.mkdir(parents=True, exist_ok=True)
        return cls("sqlite", str(p), str(p))

    @property
    def path(self):
        """The SQLite file, or None (PostgreSQL, memory)."""
        return Path(self.target) if self.dialect == "sqlite" and not self.target.startswith(
            "file:") else None

    def _connect(self):
        if self.dialect == "sqlite":
            mem = self.target.startswith("file:")
            new = not mem and not Path(self.target).exists()
            if new:  # it will hold patient data: owner-only from the start
                os.close(os.open(self.target, os.O_CREAT | os.O_WRONLY, 0o600))
            c = sqlite3.connect(self.target, uri=mem, check_same_thread=False,
                                isolation_level=None, timeout=30)
            if not mem:
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten, not left in free pages
            c.execute("PRAGMA foreign_keys=ON")
        else:
            import psycopg
            try:
                c = psycopg.connect(self.target, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as e:
                raise DatabaseError("cannot connect to %s: %s" % (self.display,
                                                                   str(e).strip()[:300]))
        with self._lock:
            self._all.append(c)
        return c

    def conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = self._connect()
        return c

    def close(self):
        with self._lock:
            for c in self._all:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing from another thread is best effort
                    pass
            self._all = []
        self._local = threading.local()

    # -- SQL
    def sql(self, text):
        return text.replace("?", "%s") if self.dialect == "postgresql" else text

    def ddl(self, text):
        return text.format(**_DDL[self.dialect])

    def is_integrity_error(self, e):
        if isinstance(e, sqlite3.IntegrityError):
            return True
        if self.dialect == "postgresql":
            import psycopg
            return isinstance(e, psycopg.errors.IntegrityError)
        return False

    @contextmanager
    def tx(self, lock=None):
        """A transaction on this thread's connection. lock: an integer
        taken as a PostgreSQL advisory lock for the transaction (SQLite
        transactions are already exclusive: BEGIN IMMEDIATE)."""
        c = self.conn()
        cur = _Cursor(self, c)
        if self.dialect == "sqlite":
            c.execute("BEGIN IMMEDIATE")
        else:
            c.execute("BEGIN")
            if lock is not None:
                c.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        try:
            yield cur
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def query(self, sql, args=()):
        return _Cursor(self, self.conn()).execute(sql, args).fetchall()

    def one(self, sql, args=()):
        r = self.query(sql, args)
        return r[0] if r else None

    def tables(self):
        if self.dialect == "sqlite":
            q = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        return {r[0] for r in self.query(q)}

    # -- migrations
    def migrate(self, migrations, context=None):
        """Apply the (version, name, step) migrations not yet applied, each
        in its own transaction. A step is a DDL string (statements split on
        ';') or a callable(cursor, context). Returns the versions applied."""
        import time
        done = []
        with self.tx(lock=0x766e6d67) as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                      "name TEXT NOT NULL, applied_at %s NOT NULL)" % _DDL[self.dialect]["FLOAT"])
        for version, name, step in migrations:
            with self.tx(lock=0x766e6d67) as c:
                if c.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                             (version,)).fetchone():
                    continue
                try:
                    if callable(step):
                        step(c, context)
                    else:
                        for stmt in self.ddl(step).split(";"):
                            if stmt.strip():
                                c.execute(stmt)
                except IntegrityError:
                    raise
                except Exception as e:
                    raise DatabaseError("migration %d (%s) failed on %s: %s"
                                        % (version, name, self.display, e)) from e
                c.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                          (version, name, time.time()))
                done.append(version)
        return done

    def schema_version(self):
        r = self.one("SELECT MAX(version) FROM schema_migrations")
        return r[0] if r else None
