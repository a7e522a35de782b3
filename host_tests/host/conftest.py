"""Host-test fixtures shared across files: one PostgreSQL server per test
session (Debian's binaries, a temporary data directory, a loopback port;
started on first use), each test getting a fresh database in it."""
import itertools

import pytest

_N = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    from tools.gateway.pgserver import PgServer
    pg = PgServer().start()  # its own temporary directory (as root: one the postgres user can reach)
    yield pg
    pg.stop()


@pytest.fixture
def pg_url(postgres):
    """A new, empty database on the session's PostgreSQL."""
    return postgres.create_database("t%d" % next(_N))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same test on an SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "gw.sqlite")
    return request.getfixturevalue("pg_url")
