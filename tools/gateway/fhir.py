"""FHIR R4 export: vitals frames as Observations in a transaction Bundle,
validated with `fhir.resources` before it is written.

    bundle = to_bundle(gw.rows(kind="vitals"))     # dict, validated
    Observation codes: heart rate LOINC 8867-4 in /min; SpO2 LOINC 59408-5
    (pulse oximetry) and 2708-6 (arterial O2 saturation) in %, UCUM units.

Each Observation's identifier is urn:vitalnode:frame|<device>-<seq>-<hr|spo2>
and its entry a PUT to Observation/<that id>: uploading the same frames
again updates the same resources (idempotent). The device is referenced as
Device/vn-<device id>. Time: the frame's wall-clock time when the node had
NTP, otherwise the time the gateway received it (noted in the
Observation). A reading of 0 (none) makes no Observation.
"""
import datetime

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ID_SYSTEM = "urn:vitalnode:frame"
VITAL_SIGNS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                           "code": "vital-signs", "display": "Vital Signs"}]}


def _when(row):
    t = row["time"] if row["wall"] else row["received_at"]
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


def _obs(row, what, codes, value, unit, code):
    rid = "vn-%s-%d-%s" % (row["device"], row["seq"], what)
    o = {"resourceType": "Observation", "id": rid, "status": "final",
         "identifier": [{"system": ID_SYSTEM, "value": "%s-%d-%s" % (row["device"], row["seq"], what)}],
         "category": [VITAL_SIGNS],
         "code": {"coding": [{"system": LOINC, "code": c, "display": d} for c, d in codes]},
         "subject": {"display": "patient wearing node %s" % row["device"]},
         "device": {"reference": "Device/vn-%s" % row["device"]},
         "effectiveDateTime": _when(row),
         "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code}}
    if not row["wall"]:
        o["note"] = [{"text": "node had no wall clock: time of receipt at the gateway"}]
    return {"fullUrl": "urn:uuid:%s" % rid, "resource": o,
            "request": {"method": "PUT", "url": "Observation/%s" % rid}}


def observations(row):
    out = []
    if row.get("hr_x10"):
        out.append(_obs(row, "hr", [("8867-4", "Heart rate")], row["hr_x10"] / 10, "/min", "/min"))
    if row.get("spo2_x10"):
        out.append(_obs(row, "spo2", [("59408-5", "Oxygen saturation in Arterial blood by Pulse "
                                       "oximetry"), ("2708-6", "Oxygen saturation in Arterial blood")],
                        row["spo2_x10"] / 10, "%", "%"))
    return out


def to_bundle(rows):
    """A validated FHIR R4 transaction Bundle (dict) of the vitals rows."""
    from fhir.resources.R4B.bundle import Bundle
    entries = []
    for r in rows:
        if r["kind"] == "vitals":
            entries += observations(r)
    b = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    Bundle.model_validate(b)  # raises pydantic.ValidationError if it is not valid R4
    return b
