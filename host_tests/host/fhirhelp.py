"""Test helpers for the FHIR API tests: an ASGI app served by uvicorn on a
loopback port in a thread, and a recording FHIR server that processes
transactions as a strict server would (conditional updates by identifier,
urn:uuid references rewritten to the ids it assigns)."""
import json
import threading
import time
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tools.broker import free_port
from tools.gateway.fhircheck import check_bundle


class Served:
    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


class RecordingFhirServer:
    """POST / with a transaction Bundle: every entry must be a conditional
    PUT Type?identifier=system|value; references must resolve in the
    bundle or to a resource already held. Keeps the resources by type and
    id and every bundle received."""

    def __init__(self):
        self.received = []
        self.resources = {}  # (type, id) -> resource
        self.by_identifier = {}  # (type, system|value) -> id
        self.app = Starlette(routes=[Route("/fhir", self.transaction, methods=["POST"]),
                                     Route("/fhir/", self.transaction, methods=["POST"])])

    def _outcome(self, status, text):
        return Response(json.dumps({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": text}]}), status,
            media_type="application/fhir+json")

    async def transaction(self, request):
        b = json.loads(await request.body())
        self.received.append(b)
        try:
            check_bundle(b, resolve=lambda ref: tuple(ref.split("/")) in self.resources)
        except ValueError as e:
            return self._outcome(400, str(e))
        if b.get("type") != "transaction":
            return self._outcome(400, "not a transaction")
        ids = {}
        for e in b["entry"]:
            t, q = e["request"]["url"].split("?", 1)
            key = (t, q.split("=", 1)[1])
            ids[e["fullUrl"]] = (t, self.by_identifier.get(key) or str(uuid.uuid4()))
        out = []
        for e in b["entry"]:
            t, rid = ids[e["fullUrl"]]
            r = json.loads(json.dumps(e["resource"]), object_hook=lambda d: {
                k: ("%s/%s" % ids[v] if k == "reference" and v in ids else v)
                for k, v in d.items()})
            r["id"] = rid
            key = (t, e["request"]["url"].split("=", 1)[1])
            created = key not in self.by_identifier
            self.by_identifier[key] = rid
            self.resources[(t, rid)] = r
            out.append({"response": {"status": "201 Created" if created else "200 OK",
                                     "location": "%s/%s" % (t, rid)}})
        return Response(json.dumps({"resourceType": "Bundle", "type": "transaction-response",
                                    "entry": out}), 200, media_type="application/fhir+json")
