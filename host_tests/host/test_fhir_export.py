"""The FHIR R4 export as a strict server reads it: the bundle validates
with R4 models, has real urn:uuid fullUrls and references that resolve,
includes the Patient and Device it names, and follows the vital-signs
profile; an unreliable value is never a value; a time is the node's or
none; an empty export has no empty array. And the checker itself catches
each of the faults the first exporter had."""
import copy
import json
import uuid

import pytest

from tools.gateway import fhir
from tools.gateway.fhircheck import FhirInvalid, check_bundle

PID = "a9f1da30-53f6-4289-bff7-e662b2c18fa7"
DEV = "240ac4000d01"
T0 = 1800000000
PAT = {"id": PID, "mrn": "MRN-1", "family": "Doe", "given": ["Jane"], "birth_date": "1950-02-03",
       "discharged_at": None}


def row(seq, hr=721, spo2=975, wall=1, pid=PID, **extra):
    return dict(device=DEV, seq=seq, kind="vitals", time=T0 + 5 * seq if wall else 4, ms=5000 * seq,
                wall=wall, hr_x10=hr, spo2_x10=spo2, quality=88, patient_id=pid, **extra)


def test_a_patient_export_is_a_valid_r4_transaction_per_the_vital_signs_profile():
    b = fhir.to_bundle([row(1), row(2, spo2=0)], {PID: PAT}, {DEV: 6001})
    res = [e["resource"] for e in b["entry"]]
    assert [r["resourceType"] for r in res] == ["Patient", "Device"] + ["Observation"] * 3
    assert all(str(uuid.UUID(e["fullUrl"][9:])) == e["fullUrl"][9:] for e in b["entry"])
    pat, dev, hr = b["entry"][0], b["entry"][1], res[2]
    assert pat["fullUrl"] == "urn:uuid:" + PID and res[0]["identifier"][0]["value"] == "MRN-1"
    assert res[1]["identifier"][0] == {"system": "urn:vitalnode:device", "value": DEV}
    assert res[1]["version"][0]["value"] == "0.6.1"
    assert hr["subject"] == {"reference": pat["fullUrl"]} and hr["device"] == {"reference": dev["fullUrl"]}
    assert hr["meta"]["profile"] == [fhir.PROFILE_VS, fhir.PROFILES["hr"]]
    assert hr["category"][0]["coding"][0]["code"] == "vital-signs"
    assert hr["code"]["coding"][0]["code"] == "8867-4" and hr["effectiveDateTime"] == "2027-01-15T08:00:05Z"
    assert hr["valueQuantity"] == {"value": 72.1, "unit": "beats/minute",
                                   "system": "http://unitsofmeasure.org", "code": "/min"}
    assert {c["code"] for c in res[3]["code"]["coding"]} == {"2708-6", "59408-5"}
    assert res[3]["valueQuantity"]["code"] == "%"
    assert fhir.to_bundle([row(1), row(2, spo2=0)], {PID: PAT}, {DEV: 6001}) == b  # idempotent
    assert b["entry"][2]["request"]["url"] == "Observation?identifier=urn:vitalnode:observation|%s-1-hr" % DEV


def test_an_unreliable_value_is_never_exported_as_a_value():
    b = fhir.to_bundle([row(1, hr_valid=False, hr_quality=12, spo2_valid=True)], {PID: PAT})
    hr, sp = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert "valueQuantity" not in hr and hr["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert {"url": fhir.EXT_QUALITY, "valueInteger": 12} in hr["extension"]
    assert "unreliable" in hr["note"][0]["text"]
    assert sp["valueQuantity"]["value"] == 97.5  # the other value of the frame stands
    assert fhir.reading(row(1), "hr") == (72.1, True, 88)  # version-1 frame: valid for now


def test_without_a_trusted_clock_there_is_no_time_and_no_patient():
    b = fhir.to_bundle([row(1, wall=0, pid=None)])
    hr = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"][0]
    dev = [e for e in b["entry"] if e["resource"]["resourceType"] == "Device"][0]
    assert not any(k.startswith("effective") for k in hr)
    assert hr["subject"]["reference"] == dev["fullUrl"] and "meta" not in hr
    clock = [x for x in hr["extension"] if x["url"] == fhir.EXT_CLOCK][0]
    assert clock["extension"] == [{"url": "boot", "valueUnsignedInt": 4},
                                  {"url": "msSinceBoot", "valueUnsignedInt": 5000}]
    assert "no trusted clock" in hr["note"][0]["text"]


def test_an_empty_export_has_no_entry_array():
    assert fhir.to_bundle([]) == {"resourceType": "Bundle", "type": "transaction"}
    assert fhir.to_bundle([row(1, hr=0, spo2=0)]) == {"resourceType": "Bundle", "type": "transaction"}


def _broken(fn):
    b = copy.deepcopy(fhir.to_bundle([row(1)], {PID: PAT}))
    fn(b)
    with pytest.raises(FhirInvalid) as e:
        check_bundle(b)
    return str(e.value)


def test_the_checker_catches_what_a_strict_server_would_reject():
    obs = lambda b: b["entry"][2]["resource"]  # noqa: E731
    cases = {
        "subject is display text": (lambda b: obs(b).update(subject={"display": "patient"}),
                                    "is not a Patient"),
        "fullUrl not a UUID": (lambda b: b["entry"][2].update(fullUrl="urn:uuid:vn-x-1-hr"),
                               "valid UUID"),
        "Device not included": (lambda b: b["entry"].pop(1), "resolves to no entry"),
        "empty array": (lambda b: obs(b).update(note=[]), "empty array"),
        "entry []": (lambda b: b.update(entry=[]), "empty array"),
        "not R4": (lambda b: obs(b).update(bogusR5Element=True), "Superfluous entry"),
        "bad date": (lambda b: obs(b).update(effectiveDateTime="2027-15-01"), "R4"),
        "no time": (lambda b: obs(b).pop("effectiveDateTime"), "no effective[x]"),
        "no value": (lambda b: obs(b).pop("valueQuantity"), "neither a value"),
        "two values": (lambda b: obs(b).update(valueString="72"), "more than one value[x]"),
        "not UCUM": (lambda b: obs(b)["valueQuantity"].update(system="urn:x"), "not UCUM"),
        "wrong LOINC": (lambda b: obs(b)["code"]["coding"][0].update(code="8310-5"), "needs LOINC 8867-4"),
        "no request": (lambda b: b["entry"][2].pop("request"), "without method and url"),
        "server ref": (lambda b: obs(b).update(device={"reference": "Device/vn-x"}),
                       "resolves neither in the bundle nor on the server"),
    }
    for name, (fn, words) in cases.items():
        msg = _broken(fn)
        assert words in msg, (name, msg)
    b = fhir.to_bundle([row(1)], {PID: PAT})
    check_bundle(json.loads(json.dumps(b)))
