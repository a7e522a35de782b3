"""Who may do what: the one table every page and API call of the ward app
is checked against (on the server; the navigation only mirrors it).

  clinician   the overview, patient trends and alerts of the patients on
              their own wards; acknowledges alerts; admits patients to their
              own wards, puts devices on them and takes them off, discharges
  technician  devices: registry state, firmware, OTA, security events,
              refused frames; revoke and reinstate. No patient names, no vitals
  admin       users, roles and wards. No patient data, no audit log
  auditor     the audit log (read, verify, export). Nothing else

A clinician's ward check is the second wall: a patient, alert or live
update on another ward is refused (403) even with the right permission;
so is an admission to, or a device or discharge for, another ward.
"""
PERMISSIONS = {
    "overview": {"clinician"},      # tiles, live events
    "patient": {"clinician"},       # trend view of one patient (ward-checked)
    "alerts": {"clinician"},        # list
    "ack": {"clinician"},           # acknowledge (ward-checked)
    "patients": {"clinician"},      # patient list: demographics and devices (ward-checked)
    "adt": {"clinician"},           # admit, assign, unassign, discharge (ward-checked)
    "devices": {"technician"},
    "device-action": {"technician"},
    "users": {"admin"},
    "user-admin": {"admin"},
    "audit": {"auditor"},
}
HOME = {"clinician": "/overview", "technician": "/devices", "admin": "/admin",
        "auditor": "/audit"}
NAV = [("/overview", "Overview", "overview"), ("/alerts", "Alerts", "alerts"),
       ("/patients", "Patients", "patients"),
       ("/devices", "Devices", "devices"), ("/admin", "Users & wards", "users"),
       ("/audit", "Audit log", "audit")]


def allowed(role, permission):
    return role in PERMISSIONS.get(permission, ())


def may_see_ward(user, ward):
    return user["role"] == "clinician" and ward in user["wards"]
