"""The checks every Bundle passes before it leaves the gateway.

    check_bundle(bundle)                 # raises FhirInvalid listing every problem
    check_bundle(bundle, resolve=fn)     # fn("Patient/x") -> bool for server references

1. FHIR R4 (4.0.1) structure: the R4 models of `fhirclient` (SMART on
   FHIR's Python client, generated from the 4.0.1 definitions) parse the
   Bundle and every resource in it, strictly: unknown elements, wrong
   types, missing required elements, bad dates are errors. (fhir.resources
   ships R5, R4B and STU3, not R4: R4B is not what we claim.)
2. Strict JSON: no empty arrays, objects or strings, no nulls, no
   surrounding whitespace; ids match FHIR's id pattern.
3. Bundle rules: fullUrl unique; transaction entries have a request;
   urn:uuid fullUrls are real UUIDs; every reference resolves to an
   entry's fullUrl, or to the server (`resolve`), else it is an error;
   at most one value[x] and effective[x].
4. The vital-signs profile's required elements for every Observation
   that claims it (meta.profile): status, the vital-signs category,
   a code with the profile's LOINC code, subject a Patient, effective[x]
   to the day at least, a value or a dataAbsentReason, a UCUM quantity
   with value, unit, system and code.
"""
import re
import uuid

from tools.gateway import fhir

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_OBS_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
               "entered-in-error", "unknown"}
_PROFILE_CODE = {fhir.PROFILES["hr"]: ("8867-4", "/min"), fhir.PROFILES["spo2"]: ("2708-6", "%")}


class FhirInvalid(ValueError):
    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("FHIR check failed: " + "; ".join(self.problems[:12])
                         + (" (+%d more)" % (len(self.problems) - 12) if len(self.problems) > 12
                            else ""))


def _r4(bundle, problems):
    from fhirclient.models.bundle import Bundle
    from fhirclient.models.fhirabstractbase import FHIRValidationError
    try:
        b = Bundle(bundle, strict=True)
    except FHIRValidationError as e:
        problems.append("R4: %s" % e)
        return
    except Exception as e:  # noqa: BLE001 - anything the models choke on is invalid
        problems.append("R4: %r" % e)
        return
    for i, e in enumerate(b.entry or []):
        want = bundle["entry"][i].get("resource", {}).get("resourceType")
        if e.resource is not None and e.resource.resource_type != want:
            problems.append("R4: entry %d parsed as %s, not %s" % (i, e.resource.resource_type,
                                                                   want))


def _strict(node, path, problems):
    if node is None:
        problems.append("%s: null" % path)
    elif isinstance(node, dict):
        if not node:
            problems.append("%s: empty object" % path)
        for k, v in node.items():
            _strict(v, "%s.%s" % (path, k), problems)
            if k == "id" and isinstance(v, str) and not _ID.match(v):
                problems.append("%s.id: %r is not a FHIR id" % (path, v))
    elif isinstance(node, list):
        if not node:
            problems.append("%s: empty array" % path)
        for i, v in enumerate(node):
            _strict(v, "%s[%d]" % (path, i), problems)
    elif isinstance(node, str):
        if not node or node != node.strip():
            problems.append("%s: empty or padded string %r" % (path, node))


def _refs(node, path, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                out.append((path, v))
            else:
                _refs(v, "%s.%s" % (path, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _refs(v, "%s[%d]" % (path, i), out)


def _uuid_ok(u):
    try:
        return str(uuid.UUID(u)) == u
    except ValueError:
        return False


def _vital_signs(o, where, types, problems):
    prof = o.get("meta", {}).get("profile", [])
    if fhir.PROFILE_VS not in prof:
        return
    p = lambda m: problems.append("%s (vital-signs): %s" % (where, m))  # noqa: E731
    if o.get("status") not in _OBS_STATUS:
        p("status %r" % o.get("status"))
    cats = [c for cc in o.get("category", []) for c in cc.get("coding", [])]
    if not any(c.get("code") == "vital-signs" and c.get("system") ==
               "http://terminology.hl7.org/CodeSystem/observation-category" for c in cats):
        p("no vital-signs category")
    codes = [c for c in o.get("code", {}).get("coding", [])]
    if not codes:
        p("no code")
    subj = o.get("subject", {}).get("reference", "")
    if types.get(subj, subj.split("/")[0]) != "Patient":
        p("subject %r is not a Patient" % subj)
    eff = o.get("effectiveDateTime")
    if eff is None and "effectivePeriod" not in o:
        p("no effective[x]")
    elif eff is not None and not re.match(r"^\d{4}-\d{2}-\d{2}", eff):
        p("effectiveDateTime %r is not precise to the day" % eff)
    has_value = any(k.startswith("value") for k in o)
    if not has_value and "dataAbsentReason" not in o and not o.get("component") \
            and not o.get("hasMember"):
        p("neither a value nor a dataAbsentReason")
    q = o.get("valueQuantity")
    if q is not None:
        for k in ("value", "unit", "system", "code"):
            if k not in q:
                p("valueQuantity without %s" % k)
        if q.get("system") != fhir.UCUM:
            p("valueQuantity system %r is not UCUM" % q.get("system"))
    for prof_url, (code, unit) in _PROFILE_CODE.items():
        if prof_url in prof:
            if not any(c.get("system") == fhir.LOINC and c.get("code") == code for c in codes):
                p("profile %s needs LOINC %s" % (prof_url.rsplit("/", 1)[1], code))
            if q is not None and q.get("code") != unit:
                p("profile %s needs unit %s, not %r" % (prof_url.rsplit("/", 1)[1], unit,
                                                          q.get("code")))


def check_resource(r, where="resource", types=None, problems=None):
    """The per-resource rules (2 and 4, choice types); returns problems."""
    problems = [] if problems is None else problems
    _strict(r, where, problems)
    if r.get("resourceType") == "Observation":
        for pre in ("value", "effective"):
            n = [k for k in r if k.startswith(pre) and k[len(pre):][:1].isupper()]
            if len(n) > 1:
                problems.append("%s: more than one %s[x]: %s" % (where, pre, n))
        _vital_signs(r, where, types or {}, problems)
    return problems


def check_bundle(bundle, resolve=None):
    """Raise FhirInvalid unless `bundle` passes every check above."""
    problems = []
    if bundle.get("resourceType") != "Bundle":
        raise FhirInvalid(["not a Bundle"])
    _r4(bundle, problems)
    _strict({k: v for k, v in bundle.items() if k != "entry"}, "Bundle", problems)
    entries = bundle.get("entry")
    if entries is not None and not entries:
        problems.append("Bundle.entry: empty array")
    entries = entries or []
    full = {}
    for i, e in enumerate(entries):
        fu = e.get("fullUrl")
        r = e.get("resource") or {}
        if fu is None:
            problems.append("entry %d: no fullUrl" % i)
            continue
        if fu in full:
            problems.append("entry %d: fullUrl %s twice" % (i, fu))
        if fu.startswith("urn:uuid:") and not _uuid_ok(fu[9:]):
            problems.append("entry %d: fullUrl %s is not a urn:uuid with a valid UUID" % (i, fu))
        elif not fu.startswith(("urn:uuid:", "http://", "https://")):
            problems.append("entry %d: fullUrl %s is neither urn:uuid nor absolute" % (i, fu))
        full[fu] = r.get("resourceType")
        if fu.startswith("http") and r.get("id"):
            full["%s/%s" % (r["resourceType"], r["id"])] = r.get("resourceType")
        if bundle.get("type") in ("transaction", "batch"):
            req = e.get("request") or {}
            if req.get("method") not in ("GET", "POST", "PUT", "DELETE", "PATCH") or not req.get("url"):
                problems.append("entry %d: transaction entry without method and url" % i)
        elif "request" in e:
            problems.append("entry %d: request in a %s Bundle" % (i, bundle.get("type")))
    types = dict(full)
    for i, e in enumerate(entries):
        r = e.get("resource") or {}
        where = "entry %d %s" % (i, r.get("resourceType"))
        check_resource(r, where, types, problems)
        refs = []
        _refs(r, where, refs)
        for path, ref in refs:
            if ref in full:
                continue
            if ref.startswith("urn:uuid:"):
                problems.append("%s: %s resolves to no entry" % (path, ref))
            elif not re.match(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$", ref):
                problems.append("%s: reference %r is neither in the bundle nor Type/id" % (path, ref))
            elif resolve is None or not resolve(ref):
                problems.append("%s: %s resolves neither in the bundle nor on the server"
                                % (path, ref))
    if problems:
        raise FhirInvalid(problems)
    return bundle
