"""Serving the ward app over HTTPS: a server certificate signed by the
site CA (tools/broker.server_cert, as mosquitto's), uvicorn in a thread.

    srv = Server(ward_app.app, site_dir, workdir, host="ward.local", port=8443).start()
    srv.url      # https://ward.local:8443/
    srv.stop()

Guarantees: start() returns once uvicorn listens (or raises); stop()
closes open live streams within a second.
"""
import logging
import threading
import time
from pathlib import Path

import uvicorn

from tools.broker import server_cert


class ServerError(Exception):
    pass


class _QuietShutdown(logging.Filter):
    """uvicorn reports idle keep-alive connections it closes at shutdown as
    an error; they are not one."""

    def filter(self, record):
        return "timeout graceful shutdown exceeded" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietShutdown())


class Server:
    def __init__(self, app, site_dir, workdir, host="localhost", port=8443, listen="127.0.0.1"):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        server_cert(site_dir, self.dir, host)  # a new certificate for this host per start
        self.host, self.port, self.listen = host, port, listen
        self.server = uvicorn.Server(uvicorn.Config(
            app, host=listen, port=port, log_level="warning", lifespan="off",
            ssl_certfile=str(self.dir / "server.pem"), ssl_keyfile=str(self.dir / "server.key"),
            timeout_graceful_shutdown=1, proxy_headers=False))
        self.thread = threading.Thread(target=self.server.run, name="ward-app", daemon=True)

    @property
    def url(self):
        return "https://%s:%d/" % (self.host, self.port)

    def start(self, timeout=15):
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise ServerError("the ward app could not listen on %s:%d (in use?)"
                                  % (self.listen, self.port))
            if time.monotonic() > deadline:
                raise ServerError("the ward app did not start within %d s" % timeout)
            time.sleep(0.02)
        return self

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)
