"""The FHIR R4 REST API of the ward: an ASGI app (Starlette) the ward web app
mounts, or `python -m tools.gateway serve` runs with uvicorn.

    app = create_app(store)                       # routes under /fhir
    # in the ward app:  Mount("/", app=create_app(store, tokens))  or
    #                   routes=[..., *fhir_routes(store, tokens)]

    GET /fhir/metadata                            CapabilityStatement (no token needed)
    GET /fhir/Patient/{id}                        read
    GET /fhir/Device/{id}                         read (vn-<device id>)
    GET /fhir/Observation/{id}                    read
    GET /fhir/Observation?patient=…&code=…&date=ge…&_count=…   searchset, paged

Every call but metadata needs `Authorization: Bearer <token>`
(tools/gateway/tokens.py): 401 without a live token, 403 when its scopes
or its compartment (a clinician's wards, a patient's own record) do not
cover what is asked. Search needs `patient` (or `subject=Patient/…`):
the API serves patients' records, not device-only data. Parameters: code
= [system|]code[,…] (8867-4, 2708-6, 59408-5), date = [eq|ge|gt|le|lt]
YYYY[-MM[-DD[Thh:mm[:ss]Z]]] (repeatable, all must hold), _count 1-500
(default 50); a next link carries _after. Any other parameter is a 400:
a search never silently ignores a filter.

Every read of patient data is audited (who, which patient, what, how
many). Errors are OperationOutcome resources.
"""
import datetime
import json
import re
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tools.gateway import fhir
from tools.gateway.tokens import Tokens

FHIR_JSON = "application/fhir+json"
_CODES = {"8867-4": "hr", "2708-6": "spo2", "59408-5": "spo2"}
_SEARCH_PARAMS = {"patient", "subject", "code", "date", "_count", "_after", "_format"}


class ApiError(Exception):
    def __init__(self, status, code, text):
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def _json(obj, status=200, headers=None):
    return Response(json.dumps(obj, separators=(",", ":")), status, headers=headers,
                    media_type=FHIR_JSON)


def outcome(status, code, text, headers=None):
    return _json({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": text}]}, status, headers)


def _date_range(value):
    """[start, end) Unix seconds of a FHIR date/dateTime at its precision."""
    v = value.strip()
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
                     r"(Z|[+-]\d{2}:\d{2})?)?)?)?", v)
    if not m:
        raise ApiError(400, "invalid", "date %r is not a FHIR date or dateTime" % value)
    y, mo, d, h, mi, s, tz = m.groups()
    try:
        if h is not None and tz is None:
            raise ApiError(400, "invalid", "date %r: a time needs a zone (Z or +hh:mm)" % value)
        zone = datetime.timezone.utc
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            zone = datetime.timezone(sign * datetime.timedelta(hours=int(tz[1:3]),
                                                               minutes=int(tz[4:6])))
        start = datetime.datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0),
                                  int(s or 0), tzinfo=zone)
    except ValueError:
        raise ApiError(400, "invalid", "date %r is not a real date" % value)
    if mo is None:
        end = start.replace(year=start.year + 1)
    elif d is None:
        end = (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    elif h is None:
        end = start + datetime.timedelta(days=1)
    elif s is None:
        end = start + datetime.timedelta(minutes=1)
    else:
        end = start + datetime.timedelta(seconds=1)
    return int(start.timestamp()), int(end.timestamp())


def _date_bounds(values):
    since, until = None, None
    for v in values:
        pre = v[:2] if v[:2] in ("eq", "ge", "gt", "le", "lt", "ne", "sa", "eb", "ap") else ""
        if pre in ("ne", "sa", "eb", "ap"):
            raise ApiError(400, "not-supported", "date prefix %s is not supported" % pre)
        a, b = _date_range(v[len(pre):])
        lo, hi = {"": (a, b), "eq": (a, b), "ge": (a, None), "gt": (b, None),
                  "le": (None, b), "lt": (None, a)}[pre]
        if lo is not None:
            since = lo if since is None else max(since, lo)
        if hi is not None:
            until = hi if until is None else min(until, hi)
    return since, until


class FhirApi:
    def __init__(self, store, tokens=None, page_max=500):
        self.store = store
        self.tokens = tokens or Tokens(store)
        self.page_max = page_max

    # -- plumbing
    def _grant(self, request):
        h = request.headers.get("authorization", "")
        if not h.lower().startswith("bearer "):
            raise ApiError(401, "login", "a bearer token is required")
        g = self.tokens.verify(h[7:].strip())
        if g is None:
            raise ApiError(401, "login", "the token is unknown, expired or revoked")
        return g

    def _base(self, request):
        return str(request.base_url).rstrip("/") + "/fhir"

    def _may_see_patient(self, g, p, rtype):
        """Raise 403 unless grant g may read `rtype` of patient p."""
        if g.can(rtype, "patient") and g.patient_id == p["id"]:
            return
        if g.can(rtype, "user"):
            if g.wards is None or p.get("ward") in g.wards:
                return
            raise ApiError(403, "forbidden", "patient %s is not on your wards" % p["id"])
        raise ApiError(403, "forbidden", "your token has no scope to read this %s" % rtype)

    def _wrap(self, fn):
        def endpoint(request):
            try:
                return fn(request)
            except ApiError as e:
                hdr = {"WWW-Authenticate": 'Bearer realm="vitalnode"'} if e.status == 401 else None
                return outcome(e.status, e.code, e.text, hdr)
        endpoint.__name__ = fn.__name__
        return endpoint

    def routes(self, prefix="/fhir"):
        return [Route(prefix + "/metadata", self._wrap(self.metadata), methods=["GET"]),
                Route(prefix + "/Patient/{id}", self._wrap(self.read_patient), methods=["GET"]),
                Route(prefix + "/Device/{id}", self._wrap(self.read_device), methods=["GET"]),
                Route(prefix + "/Observation/{id}", self._wrap(self.read_observation),
                      methods=["GET"]),
                Route(prefix + "/Observation", self._wrap(self.search_observations),
                      methods=["GET"])]

    # -- endpoints
    def metadata(self, request):
        search = [{"name": "patient", "type": "reference"}, {"name": "subject", "type": "reference"},
                  {"name": "code", "type": "token"}, {"name": "date", "type": "date"},
                  {"name": "_count", "type": "number"}]
        return _json({
            "resourceType": "CapabilityStatement", "status": "active",
            "date": datetime.date.today().isoformat(), "kind": "instance",
            "software": {"name": "VitalNode ward FHIR API"},
            "implementation": {"description": "VitalNode ward", "url": self._base(request)},
            "fhirVersion": "4.0.1", "format": ["json"],
            "rest": [{"mode": "server", "security": {
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"}]}],
                "description": "Bearer tokens with SMART v1 scopes (patient/, user/ *.read), "
                               "issued to ward users by role"},
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "read"}]},
                    {"type": "Device", "interaction": [{"code": "read"}]},
                    {"type": "Observation", "supportedProfile": [fhir.PROFILE_VS,
                                                                 fhir.PROFILES["hr"],
                                                                 fhir.PROFILES["spo2"]],
                     "interaction": [{"code": "read"}, {"code": "search-type"}],
                     "searchParam": search}]}]})

    def read_patient(self, request):
        g = self._grant(request)
        pid = request.path_params["id"]
        p = self.store.patient(pid)
        if p is None:
            if not (g.can("Patient", "user") or g.can("Patient", "patient")):
                raise ApiError(403, "forbidden", "your token has no scope to read Patient")
            raise ApiError(404, "not-found", "no Patient %s" % pid)
        self._may_see_patient(g, p, "Patient")
        self.store.audit(g.user, "fhir-read", pid, "Patient (role %s)" % g.role)
        return _json(fhir.patient_resource(p))

    def read_device(self, request):
        g = self._grant(request)
        rid = request.path_params["id"]
        dev = rid[3:] if rid.startswith("vn-") else ""
        if not g.can("Device"):
            raise ApiError(403, "forbidden", "your token has no scope to read Device")
        if not re.fullmatch(r"[0-9a-f]{12}", dev):
            raise ApiError(404, "not-found", "no Device %s" % rid)
        known = self.store.db.one("SELECT 1 FROM frames WHERE device = ? LIMIT 1", (dev,)) or \
            self.store.assignments(device=dev)
        if not known:
            raise ApiError(404, "not-found", "no Device %s" % rid)
        if not g.can("Device", "user"):  # a patient: only a device they wore
            if not any(a["patient_id"] == g.patient_id for a in self.store.assignments(device=dev)):
                raise ApiError(403, "forbidden", "Device %s was never yours" % rid)
        self.store.audit(g.user, "fhir-read", None, "Device %s (role %s)" % (dev, g.role))
        return _json(fhir.device_resource(dev, self.store.device_version(dev)))

    def _observations(self, rows, kinds):
        out = []
        for r in rows:
            for i, what in enumerate(("hr", "spo2")):
                if what not in kinds:
                    continue
                o = fhir.observation(r, what, "Patient/%s" % r["patient_id"],
                                     "Device/%s" % fhir.device_id(r["device"]))
                if o is not None:
                    out.append(((r["time"], r["device"], r["seq"], i), o))
        return out

    def read_observation(self, request):
        g = self._grant(request)
        oid = request.path_params["id"]
        if not g.can("Observation"):
            raise ApiError(403, "forbidden", "your token has no scope to read Observation")
        got = fhir.parse_obs_id(oid)
        rows = self.store.frames(device=got[0], kind="vitals") if got else []
        rows = [r for r in rows if r["seq"] == got[1] and r["patient_id"]] if got else []
        obs = self._observations(rows, {got[2]}) if rows else []
        if not obs:
            raise ApiError(404, "not-found", "no Observation %s" % oid)
        p = self.store.patient(rows[0]["patient_id"])
        self._may_see_patient(g, p, "Observation")
        self.store.audit(g.user, "fhir-read", p["id"], "Observation %s (role %s)" % (oid, g.role))
        return _json(obs[0][1])

    def search_observations(self, request):
        g = self._grant(request)
        if not g.can("Observation"):
            raise ApiError(403, "forbidden", "your token has no scope to read Observation")
        q = request.query_params
        bad = sorted(set(q.keys()) - _SEARCH_PARAMS)
        if bad:
            raise ApiError(400, "not-supported", "unsupported search parameter(s): %s (supported: "
                           "%s)" % (", ".join(bad), ", ".join(sorted(_SEARCH_PARAMS - {"_format"}))))
        refs = q.getlist("patient") + q.getlist("subject")
        if len(refs) != 1:
            raise ApiError(400, "required", "give exactly one patient (patient=<id> or "
                           "subject=Patient/<id>)")
        pid = refs[0].split("/", 1)[1] if refs[0].startswith("Patient/") else refs[0]
        p = self.store.patient(pid)
        if p is None:
            raise ApiError(404, "not-found", "no Patient %s" % pid)
        self._may_see_patient(g, p, "Observation")
        kinds = {"hr", "spo2"}
        if "code" in q:
            kinds = set()
            for c in ",".join(q.getlist("code")).split(","):
                sys_, _, code = c.rpartition("|")
                if sys_ not in ("", fhir.LOINC) or code not in _CODES:
                    raise ApiError(400, "not-supported", "code %r: this server has %s (LOINC)"
                                   % (c, ", ".join(_CODES)))
                kinds.add(_CODES[code])
        since, until = _date_bounds(q.getlist("date"))
        try:
            count = int(q.get("_count", "50"))
        except ValueError:
            raise ApiError(400, "invalid", "_count must be a number")
        if not 1 <= count <= self.page_max:
            raise ApiError(400, "invalid", "_count must be 1 to %d" % self.page_max)
        after = None
        if "_after" in q:
            m = re.fullmatch(r"(\d+)-([0-9a-f]{12})-(\d+)-([01])", q["_after"])
            if not m:
                raise ApiError(400, "invalid", "_after is not a cursor this server made")
            after = (int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4)))
        page, more = [], False
        cursor = None if after is None else (after[0], after[1], after[2] - 1)
        while len(page) <= count:
            rows = self.store.frames(kind="vitals", patient_id=pid, since=since, until=until,
                                     after=cursor, limit=count + 1, order="time")
            if not rows:
                break
            for key, o in self._observations(rows, kinds):
                if after is not None and key <= after:
                    continue
                page.append((key, o))
            r = rows[-1]
            cursor = (r["time"], r["device"], r["seq"])
            if len(rows) < count + 1:
                break
        if len(page) > count:
            page, more = page[:count], True
        base = self._base(request)
        params = [(k, v) for k, v in q.multi_items() if k != "_after"]
        self_url = "%s/Observation?%s" % (base, urlencode(params))
        next_url = None
        if more:
            k = page[-1][0]
            next_url = "%s/Observation?%s" % (base, urlencode(
                params + [("_after", "%d-%s-%d-%d" % k)]))
        self.store.audit(g.user, "fhir-search", pid, "Observation: %d result(s) (role %s)"
                         % (len(page), g.role))
        return _json(fhir.search_bundle(base, [o for _, o in page], next_url, self_url))


def fhir_routes(store, tokens=None, prefix="/fhir"):
    """The API's routes, for an app that has its own (the ward app)."""
    return FhirApi(store, tokens).routes(prefix)


def create_app(store, tokens=None, prefix="/fhir"):
    """A Starlette app serving the FHIR API."""
    return Starlette(routes=fhir_routes(store, tokens, prefix))
