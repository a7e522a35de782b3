"""Host-test fixtures shared across files: one PostgreSQL server per test
session (Debian's binaries, a temporary data directory, a loopback port;
started on first use), each test getting a fresh database in it; one
development site (CA, OTA key) per session in a temporary directory, for
the tools that would otherwise make or use build/dev-site; sim_args for a
`python -m tools.sim` run that keeps every file in the test's tmp_path."""
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


@pytest.fixture(scope="session")
def dev_site_dir(tmp_path_factory):
    """A development site of this test session's own (RSA keys made once)."""
    from tools.provision.site import dev_site
    return dev_site(tmp_path_factory.mktemp("dev-site")).parent


@pytest.fixture
def sim_args(tmp_path, dev_site_dir):
    """`python -m tools.sim` options keeping a run's files out of build/:
    `make sim` may run in the same checkout meanwhile."""
    return ["--workdir", str(tmp_path / "sim"), "--dev-site", str(dev_site_dir)]
