"""A throw-away PostgreSQL server for tests and `make loadtest`: Debian's
server binaries, a temporary data directory, loopback TCP on a free port,
a password login.

    pg = PgServer(workdir).start()          # pg.url: postgresql://vitalnode:...@127.0.0.1:PORT/vitalnode
    pg.create_database("other")             # -> its URL
    pg.stop()                               # and the data directory goes with it (remove=True)

As root (CI), initdb and postgres refuse to run: both run as the
`postgres` system user (the Debian package makes it) through setpriv
(util-linux; it execs, so the server is our child), with stdin closed; the
data directory is handed to that user. workdir (default: a new temporary
directory, removed by stop()) must be reachable by that user.
fast=True turns off fsync (tests); the load test keeps PostgreSQL's durable defaults.
"""
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PgError(Exception):
    pass


def bindir():
    """The newest installed server's bin directory."""
    env = os.environ.get("VITALNODE_PG_BIN")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    w = shutil.which("postgres")
    if w:
        return Path(w).parent
    raise PgError("PostgreSQL server binaries not found (make deps installs Debian's postgresql)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu_seconds(root):
    """User + system CPU seconds of process `root` and its live descendants,
    plus what their reaped children used (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for p in glob.glob("/proc/[0-9]*/stat"):
        try:
            f = open(p).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(p.split("/")[2])] = (int(f[1]), (int(f[11]) + int(f[12]) + int(f[13])
                                                   + int(f[14])) / tick)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in tree:
            continue
        tree.add(pid)
        todo += [c for c, (pp, _) in stats.items() if pp == pid]
    return sum(stats[p][1] for p in tree if p in stats)


class PgServer:
    USER = "vitalnode"

    def __init__(self, workdir=None, fast=True, port=None, settings=None):
        self.bin = bindir()
        self.own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="vn-pg-"))
        self.data = self.dir / "data"
        self.port = port or _free_port()
        self.password = secrets.token_hex(12)
        self.fast = fast
        self.settings = dict(settings or {})
        self.proc = None
        self.as_user = None
        if os.geteuid() == 0:
            try:
                self.as_user = pwd.getpwnam("postgres")
            except KeyError:
                raise PgError("running as root and there is no 'postgres' user to run the server "
                              "as (Debian's postgresql package makes it)")

    def _cmd(self, args):
        if self.as_user is not None:
            u = self.as_user
            return ["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % u.pw_gid,
                    "--init-groups", "--"] + args
        return args

    def _run(self, args):
        r = subprocess.run(self._cmd(args), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True)
        if r.returncode:
            raise PgError("%s failed: %s" % (os.path.basename(args[0]),
                                             (r.stderr or r.stdout).strip()[-800:]))
        return r.stdout

    @property
    def url(self):
        return self.url_for(self.USER)

    def url_for(self, dbname):
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (self.USER, self.password, self.port, dbname)

    def start(self, timeout=30):
        self.dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_user is not None:
            os.chmod(self.dir, 0o700)
            os.chown(self.dir, self.as_user.pw_uid, self.as_user.pw_gid)
            os.chown(pwfile, self.as_user.pw_uid, self.as_user.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", self.USER,
                   "--pwfile", str(pwfile), "--auth=scram-sha-256", "-E", "UTF8",
                   "--locale=C", "--no-instructions"])
        pwfile.unlink()
        opts = {"listen_addresses": "127.0.0.1", "port": str(self.port),
                "unix_socket_directories": str(self.dir), "max_connections": "200",
                "log_min_messages": "warning"}
        if self.fast:
            opts.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        opts.update(self.settings)
        args = [str(self.bin / "postgres"), "-D", str(self.data)]
        for k, v in opts.items():
            args += ["-c", "%s=%s" % (k, v)]
        log = open(self.dir / "postgres.log", "ab")
        self.proc = subprocess.Popen(self._cmd(args), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        import psycopg
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PgError("postgres exited: %s" % self.log()[-800:])
            try:
                psycopg.connect(self.url_for("postgres"), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        else:
            self.stop()
            raise PgError("postgres did not accept connections on port %d" % self.port)
        self.create_database(self.USER)
        return self

    def create_database(self, name):
        import psycopg
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as c:
            c.execute('CREATE DATABASE "%s"' % name.replace('"', ""))
        return self.url_for(name)

    def log(self):
        p = self.dir / "postgres.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def cpu_seconds(self):
        """User + system CPU of every postgres process of this server (Linux /proc)."""
        return tree_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def stop(self, remove=True):
        if self.proc is not None:
            self.proc.send_signal(__import__("signal").SIGINT)  # fast shutdown: sessions end now
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if remove:
            shutil.rmtree(self.dir if self.own_dir else self.data, ignore_errors=True)
