"""FHIR R4 (4.0.1) resources from the store: Patient, Device and vital-signs
Observations, in transaction, searchset and collection Bundles, each
checked by tools/gateway/fhircheck.py before it leaves.

    b = export_bundle(store, patient_id=None, device=None)   # transaction, validated
    b = to_bundle(rows, patients={}, versions={})            # the same from rows in hand

Observations (per frame with a reading; a reading of 0 - none - makes none):
  heart rate  LOINC 8867-4, UCUM /min, profile .../heartrate
  SpO2        LOINC 2708-6 and 59408-5 (pulse oximetry), UCUM %, profile .../oxygensat
  category vital-signs; identifier urn:vitalnode:observation|<device>-<seq>-<hr|spo2>;
  device -> the Device; subject -> the Patient whose assignment covers the
  measurement time.

Two rules decide what an Observation says, each in one place here:
- reading(): is a value valid? A frame field `hr_valid` / `spo2_valid`
  False marks it unreliable (the node's judgement: motion, poor contact,
  noise, low perfusion). Choice (a): the Observation then has no value,
  dataAbsentReason `error`, and a note; it is never a value to chart.
  Version-1 frames carry no flag: framedec decodes them as not valid
  (their values were never vouched for). The node's quality (0-100:
  `hr_q` / `spo2_q`, else the frame's pulse SQI) travels as the
  signal-quality extension.
- effective(): the time is the node's own measurement time when the frame
  has T_WALL (the node's clock was set); never the gateway's arrival
  time. Without it the Observation has no effective[x]; it carries the
  node-clock extension (boot number, ms since boot) and a note saying
  the time is unknown. Such a frame cannot be attributed to a patient
  either (attribution needs the time), so it is a device-only
  Observation: subject = the Device, and it does not claim the
  vital-signs profile (which needs a Patient and a time). So does a
  timed frame outside every assignment.

Transaction entries are conditional updates keyed by identifier
(Patient by MRN, Device by device id, Observation by frame), with fullUrl
urn:uuid:<uuid> (the Patient's store id; uuid5 of the identifier for the
others): sending the same export twice changes nothing on the server.
"""
import datetime
import uuid

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_SYSTEM = "urn:vitalnode:observation"
DEVICE_SYSTEM = "urn:vitalnode:device"
DEFAULT_MRN_SYSTEM = "urn:vitalnode:mrn"
EXT_QUALITY = "urn:vitalnode:fhir:signal-quality"
EXT_CLOCK = "urn:vitalnode:fhir:node-clock"
SD = "http://hl7.org/fhir/StructureDefinition/"
PROFILE_VS = SD + "vitalsigns"
PROFILES = {"hr": SD + "heartrate", "spo2": SD + "oxygensat"}
NS = uuid.UUID("6f1c1d2e-5a0b-4b7e-9c55-7e1f0a4b2d10")  # our uuid5 namespace
VITAL_SIGNS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                           "code": "vital-signs", "display": "Vital Signs"}],
               "text": "Vital Signs"}
CODES = {
    "hr": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}],
           "text": "Heart rate"},
    "spo2": {"coding": [{"system": LOINC, "code": "2708-6",
                         "display": "Oxygen saturation in Arterial blood"},
                        {"system": LOINC, "code": "59408-5",
                         "display": "Oxygen saturation in Arterial blood by Pulse oximetry"}],
             "text": "SpO2"},
}
UNITS = {"hr": ("beats/minute", "/min"), "spo2": ("%", "%")}
MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR",
                  "display": "Medical record number"}]}


def mrn_system():
    import os
    return os.environ.get("VITALNODE_MRN_SYSTEM", DEFAULT_MRN_SYSTEM)


# -- the two policies --------------------------------------------------------

def reading(row, what):
    """(value, valid, quality) of 'hr' or 'spo2' in a vitals row, or None
    if the node sent no reading. THE place that decides validity: a
    `<what>_valid` field the node sets (issue 21) wins; a row without one
    counts as valid (framedec gives every frame one: False for version 1)."""
    v = row.get(what + "_x10") or 0
    if v <= 0:
        return None
    valid = row.get(what + "_valid", True)
    quality = row.get(what + "_q")
    if quality is None:
        quality = row.get(what + "_quality", row.get("quality"))
    return round(v / 10.0, 1), bool(valid), quality


def effective(row):
    """The measurement time as a FHIR dateTime, or None when the node had
    no trusted clock (frame without T_WALL). Never the arrival time."""
    if not row.get("wall"):
        return None
    return datetime.datetime.fromtimestamp(int(row["time"]), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# -- ids and references ------------------------------------------------------

def device_id(dev):
    return "vn-%s" % dev


def obs_id(dev, seq, what):
    return "vn-%s-%d-%s" % (dev, seq, what)


def parse_obs_id(oid):
    """(device, seq, what) of an Observation id, or None."""
    p = str(oid).split("-")
    if len(p) != 4 or p[0] != "vn" or p[3] not in CODES or len(p[1]) != 12 or not p[2].isdigit():
        return None
    return p[1], int(p[2]), p[3]


def urn(kind, key):
    return "urn:uuid:%s" % uuid.uuid5(NS, "%s/%s" % (kind, key))


# -- resources ---------------------------------------------------------------

def patient_resource(p, with_id=True):
    r = {"resourceType": "Patient"}
    if with_id:
        r["id"] = p["id"]
    r["identifier"] = [{"use": "usual", "type": MR, "system": mrn_system(), "value": p["mrn"]}]
    name = {"use": "official", "family": p["family"]}
    if p.get("given"):
        name["given"] = list(p["given"])
    r["name"] = [name]
    if p.get("gender"):
        r["gender"] = p["gender"]
    r["birthDate"] = p["birth_date"]
    r["active"] = p.get("discharged_at") is None
    return r


def version_text(code):
    return "%d.%d.%d" % (code // 1000000, code // 1000 % 1000, code % 1000)


def device_resource(dev, version_code=None, with_id=True):
    r = {"resourceType": "Device"}
    if with_id:
        r["id"] = device_id(dev)
    r["identifier"] = [{"system": DEVICE_SYSTEM, "value": dev}]
    r["status"] = "active"
    r["manufacturer"] = "VitalNode"
    r["deviceName"] = [{"name": "VitalNode wearable ECG/PPG node", "type": "model-name"}]
    if version_code:
        r["version"] = [{"type": {"text": "firmware"}, "value": version_text(version_code)}]
    return r


def observation(row, what, subject_ref, device_ref, with_id=True):
    """One Observation (dict) of a vitals row, or None if no reading."""
    got = reading(row, what)
    if got is None:
        return None
    value, valid, quality = got
    dev, seq = row["device"], row["seq"]
    when = effective(row)
    patient = subject_ref.startswith(("Patient/", "urn:uuid:")) and row.get("patient_id")
    o = {"resourceType": "Observation"}
    if with_id:
        o["id"] = obs_id(dev, seq, what)
    if patient and when:
        o["meta"] = {"profile": [PROFILE_VS, PROFILES[what]]}
    ext = []
    if quality is not None:
        ext.append({"url": EXT_QUALITY, "valueInteger": int(quality)})
    if not when:
        ext.append({"url": EXT_CLOCK, "extension": [
            {"url": "boot", "valueUnsignedInt": int(row["time"])},
            {"url": "msSinceBoot", "valueUnsignedInt": int(row["ms"])}]})
    if ext:
        o["extension"] = ext
    o["identifier"] = [{"system": OBS_SYSTEM, "value": "%s-%d-%s" % (dev, seq, what)}]
    o["status"] = "final"
    o["category"] = [VITAL_SIGNS]
    o["code"] = CODES[what]
    o["subject"] = {"reference": subject_ref}
    if when:
        o["effectiveDateTime"] = when
    notes = []
    if valid:
        unit, code = UNITS[what]
        o["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": code}
    else:
        o["dataAbsentReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "error", "display": "Error"}],
            "text": "unreliable signal (the node judged it so: motion, poor contact, noise or "
                    "low perfusion)"}
        notes.append("value withheld: the node marked this reading unreliable")
    if not when:
        notes.append("measurement time unknown: the node had no trusted clock (boot %d, %d ms "
                     "after boot); not attributed to a patient" % (row["time"], row["ms"]))
    elif not patient:
        notes.append("no patient was assigned to this device at the measurement time")
    if notes:
        o["note"] = [{"text": n} for n in notes]
    o["device"] = {"reference": device_ref}
    return o


# -- bundles -----------------------------------------------------------------

def to_bundle(rows, patients=None, versions=None, check=True):
    """A FHIR R4 transaction Bundle (dict) of the vitals rows: their
    Patients, Devices and Observations. patients: {patient_id: patient}
    for rows attributed to one (a row whose patient is not given is
    device-only); versions: {device: firmware version code}. Checked by
    fhircheck.check_bundle (raises fhircheck.FhirInvalid)."""
    patients = patients or {}
    versions = versions or {}
    pat_entries, dev_entries, obs_entries = {}, {}, []
    for r in rows:
        if r.get("kind", "vitals") != "vitals":
            continue
        dev = r["device"]
        dref = urn("Device", dev)
        pid = r.get("patient_id")
        p = patients.get(pid) if pid else None
        if p is not None and pid not in pat_entries:
            pat_entries[pid] = {
                "fullUrl": "urn:uuid:%s" % pid,
                "resource": patient_resource(p, with_id=False),
                "request": {"method": "PUT", "url": "Patient?identifier=%s|%s"
                            % (mrn_system(), p["mrn"])}}
        row = dict(r, patient_id=pid if p is not None else None)
        subject = "urn:uuid:%s" % pid if p is not None else dref
        made = False
        for what in ("hr", "spo2"):
            o = observation(row, what, subject, dref, with_id=False)
            if o is None:
                continue
            made = True
            key = "%s-%d-%s" % (dev, r["seq"], what)
            obs_entries.append({"fullUrl": urn("Observation", key), "resource": o,
                                "request": {"method": "PUT", "url": "Observation?identifier=%s|%s"
                                            % (OBS_SYSTEM, key)}})
        if made and dev not in dev_entries:
            dev_entries[dev] = {"fullUrl": dref,
                                "resource": device_resource(dev, versions.get(dev), with_id=False),
                                "request": {"method": "PUT", "url": "Device?identifier=%s|%s"
                                            % (DEVICE_SYSTEM, dev)}}
    entries = list(pat_entries.values()) + list(dev_entries.values()) + obs_entries
    b = {"resourceType": "Bundle", "type": "transaction"}
    if entries:
        b["entry"] = entries
    if check:
        from tools.gateway.fhircheck import check_bundle
        check_bundle(b)
    return b


def export_bundle(store, patient_id=None, device=None, since=None, until=None,
                  include_unassigned=None):
    """The transaction Bundle of stored vitals: one patient's, one
    device's, or everything. include_unassigned (default: True unless a
    patient is named) keeps device-only Observations."""
    if include_unassigned is None:
        include_unassigned = patient_id is None
    rows = store.frames(device=device, kind="vitals", patient_id=patient_id, since=since,
                        until=until)
    if not include_unassigned:
        rows = [r for r in rows if r["patient_id"]]
    pats = {}
    for r in rows:
        pid = r["patient_id"]
        if pid and pid not in pats:
            pats[pid] = store.patient(pid)
    versions = {d: store.device_version(d) for d in {r["device"] for r in rows}}
    return to_bundle(rows, pats, versions)


def summary(bundle):
    """Counts for a message: resources by type, vital-signs, device-only."""
    n = {}
    vs = dev_only = untimed = withheld = 0
    for e in bundle.get("entry", []):
        r = e["resource"]
        n[r["resourceType"]] = n.get(r["resourceType"], 0) + 1
        if r["resourceType"] == "Observation":
            if PROFILE_VS in r.get("meta", {}).get("profile", []):
                vs += 1
            else:
                dev_only += 1
            if "effectiveDateTime" not in r:
                untimed += 1
            if "dataAbsentReason" in r:
                withheld += 1
    return {"resources": n, "vital_signs": vs, "device_only": dev_only, "untimed": untimed,
            "unreliable": withheld}


def search_bundle(base, observations, next_url=None, self_url=None):
    """A searchset Bundle of Observations (each with its id)."""
    b = {"resourceType": "Bundle", "type": "searchset"}
    links = []
    if self_url:
        links.append({"relation": "self", "url": self_url})
    if next_url:
        links.append({"relation": "next", "url": next_url})
    if links:
        b["link"] = links
    if observations:
        b["entry"] = [{"fullUrl": "%s/%s/%s" % (base, o["resourceType"], o["id"]), "resource": o,
                       "search": {"mode": "match"}} for o in observations]
    return b


def _instant(t):
    return datetime.datetime.fromtimestamp(float(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def audit_event(a, patient_ref):
    """An AuditEvent of one audit row about a patient (right of access:
    who did what with their record, and when)."""
    read = a["action"].startswith("fhir-")
    return {"resourceType": "AuditEvent",
            "type": ({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                      "code": "rest", "display": "RESTful Operation"} if read else
                     {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110",
                      "display": "Patient Record"}),
            "action": "R" if read else "E" if a["action"] == "access-export" else "U",
            "recorded": _instant(a["at"]), "outcome": "0",
            "agent": [{"who": {"display": a["actor"]}, "requestor": True}],
            "source": {"observer": {"display": "VitalNode ward"}},
            "entity": [{"what": {"reference": patient_ref},
                        "description": ("%s: %s" % (a["action"], a["detail"])) if a["detail"]
                        else a["action"]}]}


def access_bundle(store, patient_id):
    """Right of access: everything the store holds about one patient as a
    FHIR R4 collection Bundle - the Patient, the Devices they wore, every
    Observation attributed to them, and an AuditEvent per audit entry
    about their record. Checked like every export."""
    from tools.gateway.fhircheck import check_bundle
    p = store.patient(patient_id)
    t = export_bundle(store, patient_id=patient_id)
    entries = [{"fullUrl": e["fullUrl"], "resource": e["resource"]} for e in t.get("entry", [])]
    pref = "urn:uuid:%s" % patient_id
    if not any(e["fullUrl"] == pref for e in entries):
        entries.insert(0, {"fullUrl": pref, "resource": patient_resource(p, with_id=False)})
    for a in store.audit_log(subject=patient_id):
        entries.append({"fullUrl": urn("AuditEvent", a["id"]), "resource": audit_event(a, pref)})
    b = {"resourceType": "Bundle", "type": "collection",
         "timestamp": _instant(__import__("time").time()), "entry": entries}
    check_bundle(b)
    return b
