"""Send an export to a FHIR server, as an EHR integration does: fhirpy's
client POSTs the transaction Bundle to the server's base URL.

    post_bundle("https://ehr.example/fhir", bundle, token)   # -> "12 entries: 201 x4, 200 x8"

Raises FhirPostError with the server's words (its OperationOutcome) when
it refuses the transaction, or when its answer is not a
transaction-response with one 2xx entry per entry sent: a server that
processed part of it did not process it.
"""


class FhirPostError(OSError):
    pass


def post_bundle(base_url, bundle, token=None, timeout=60):
    from fhirpy import SyncFHIRClient
    from fhirpy.base.exceptions import (AuthorizationError, ForbiddenError, OperationOutcome,
                                        ResourceNotFound)
    if not bundle.get("entry"):
        return "nothing to send (no entries)"
    c = SyncFHIRClient(base_url, authorization="Bearer %s" % token if token else None,
                       extra_headers={"Content-Type": "application/fhir+json"},
                       requests_config={"timeout": timeout})
    try:
        resp = c.execute("/", method="post", data=bundle)
    except AuthorizationError as e:
        raise FhirPostError("%s refused the login (401): %s" % (base_url, str(e)[:300]))
    except ForbiddenError as e:
        raise FhirPostError("%s forbids this (403): %s" % (base_url, str(e)[:300]))
    except ResourceNotFound as e:
        raise FhirPostError("%s has no FHIR endpoint there (404): %s" % (base_url, str(e)[:300]))
    except OperationOutcome as e:
        raise FhirPostError("%s refused the transaction: %s" % (base_url, str(e)[:500]))
    if not resp or resp.get("resourceType") != "Bundle" or \
            resp.get("type") != "transaction-response":
        raise FhirPostError("%s did not answer with a transaction-response Bundle" % base_url)
    got = resp.get("entry") or []
    if len(got) != len(bundle["entry"]):
        raise FhirPostError("%s answered %d entries for %d sent" % (base_url, len(got),
                                                                    len(bundle["entry"])))
    status = {}
    for e in got:
        s = str((e.get("response") or {}).get("status", "?")).split()[0]
        status[s] = status.get(s, 0) + 1
        if not s.startswith("2"):
            raise FhirPostError("%s answered %s for an entry" % (base_url, s))
    return "%d entries: %s" % (len(got), ", ".join("%s x%d" % kv for kv in sorted(status.items())))
