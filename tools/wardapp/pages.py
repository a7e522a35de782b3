"""HTML of the ward app's pages: server-rendered, escaped, no inline script
or style (the Content-Security-Policy allows 'self' only); the live parts
are drawn by static/app.js from the JSON the API returns."""
import datetime
from html import escape

from tools.wardapp.access import NAV, allowed


def when(t):
    """Local time; the date only when it is not today."""
    if t is None:
        return "-"
    d = datetime.datetime.fromtimestamp(t)
    if d.date() == datetime.date.today():
        return d.strftime("%H:%M:%S")
    return d.strftime("%Y-%m-%d %H:%M")


def layout(title, body, user=None, page="", csrf=""):
    nav = ""
    if user:
        links = "".join('<a href="%s"%s>%s</a>' % (href, ' class="here"' if page == perm else "",
                                                   label)
                        for href, label, perm in NAV if allowed(user["role"], perm))
        nav = ('<header><span class="brand">VitalNode ward</span><nav>%s</nav>'
               '<span class="who">%s <span class="role">%s</span></span>'
               '<a href="/account/password">Password</a>'
               '<form method="post" action="/logout" class="inline"><input type="hidden" '
               'name="csrf" value="%s"><button type="submit">Log out</button></form></header>'
               % (links, escape(user["name"]), escape(user["role"]), escape(csrf)))
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="csrf-token" content="%s"><title>%s - VitalNode ward</title>'
            '<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer>'
            '</script></head><body data-page="%s">%s<main>%s</main></body></html>'
            % (escape(csrf), escape(title), escape(page), nav, body))


def login(error=None, pre=""):
    err = '<p class="error" role="alert">%s</p>' % escape(error) if error else ""
    return layout("Log in", '<section class="login"><h1>VitalNode ward</h1>%s'
                  '<form method="post" action="/login"><input type="hidden" name="pre" value="%s">'
                  '<label>User name <input name="name" autocomplete="username" required '
                  'autofocus></label><label>Password <input name="password" type="password" '
                  'autocomplete="current-password" required></label>'
                  '<button type="submit">Log in</button></form></section>' % (err, escape(pre)),
                  page="login")


def password(user, csrf, error=None, forced=False):
    msg = ('<p class="notice">Your password is a one-time password: choose your own (at least '
           '12 characters) before you go on.</p>' if forced else "")
    err = '<p class="error" role="alert">%s</p>' % escape(error) if error else ""
    return layout("Password", '<section class="login"><h1>Change password</h1>%s%s'
                  '<form method="post" action="/account/password"><input type="hidden" '
                  'name="csrf" value="%s"><label>Current password <input name="old" '
                  'type="password" autocomplete="current-password" required></label>'
                  '<label>New password <input name="new" type="password" minlength="12" '
                  'autocomplete="new-password" required></label><label>New password again '
                  '<input name="again" type="password" minlength="12" autocomplete="new-password" '
                  'required></label><button type="submit">Change password</button></form>'
                  '</section>' % (msg, err, escape(csrf)), user, "account", csrf)


def denied(user, csrf, why):
    return layout("Not allowed", '<h1>Not allowed</h1><p class="error">%s</p>' % escape(why),
                  user, "", csrf)


def overview(user, csrf):
    return layout("Overview", '<h1>Ward overview <span class="sub">wards %s</span></h1>'
                  '<p id="live" class="live">connecting to live updates ...</p>'
                  '<section id="tiles" class="tiles"></section>'
                  % escape(", ".join(user["wards"])), user, "overview", csrf)


def _alert_row(a, p, csrf, ack=True):
    state = "active" if a["cleared_at"] is None else "cleared %s" % when(a["cleared_at"])
    esc = ('<span class="badge escalated">ESCALATED %s</span>' % when(a["escalated_at"])
           if a["escalated"] else "")
    if a["acked_at"]:
        acked = "acknowledged by %s at %s%s" % (escape(a["acked_by"]), when(a["acked_at"]),
                                                 ": " + escape(a["note"]) if a["note"] else "")
    elif ack:
        acked = ('<form class="ack" data-api="/api/alerts/%s/ack" data-then="reload">'
                 '<input name="note" placeholder="note (optional)" maxlength="500">'
                 '<button type="submit">Acknowledge</button><span class="result"></span></form>'
                 % escape(a["id"]))
    else:
        acked = "not acknowledged"
    return ('<tr class="sev-%s" data-alert="%s"><td><span class="badge %s">%s</span></td>'
            '<td>%s</td><td>%s</td><td>%s</td><td>%s %s</td><td>%s</td></tr>'
            % (a["severity"], escape(a["id"]), a["severity"], a["severity"].upper(),
               escape(a["words"]), escape(p), when(a["measured_at"] or a["raised_at"]), state, esc,
               acked))


def alerts(user, csrf, rows):
    """rows: (alert, 'W3 bed 12 Doe, J.')"""
    body = "".join(_alert_row(a, p, csrf) for a, p in rows) or \
        '<tr><td colspan="6">No alerts in the last 24 hours.</td></tr>'
    return layout("Alerts", '<h1>Alerts <span class="sub">active and last 24 h, wards %s</span>'
                  '</h1><table class="list alerts"><thead><tr><th>Priority</th><th>Alert</th>'
                  '<th>Patient</th><th>Raised</th><th>State</th><th>Acknowledgement</th></tr>'
                  '</thead><tbody>%s</tbody></table>' % (escape(", ".join(user["wards"])), body),
                  user, "alerts", csrf)


def patient(user, csrf, p, dev, span, t, charts, alert_rows):
    spans = " ".join('<a href="?span=%s"%s>%s</a>' % (s, ' class="here"' if s == span else "", s)
                     for s in ("6h", "24h"))
    gaps = "".join("<li>%s: %s to %s (%s)</li>" % ("HR" if g["what"] == "hr" else "SpO2",
                                                   when(g["from"]), when(g["to"]), g["why"])
                   for g in t["gaps"]) or "<li>none</li>"
    untimed = ('<p class="notice">%d frame(s) from this device in the span carry no trusted '
               'wall-clock time (the node had not set its clock): they cannot be placed on the '
               'timeline and are not drawn.</p>' % t["untimed"]) if t.get("untimed") else ""
    arows = "".join(_alert_row(a, "", csrf, ack=False) for a in alert_rows) or \
        '<tr><td colspan="6">No alerts in this span.</td></tr>'
    return layout("Patient", '<h1>%s, %s <span class="sub">ward %s, bed %s, born %s, device %s'
                  '</span></h1><p class="spans">Span: %s</p>'
                  '<section class="chart"><h2>Heart rate</h2>%s</section>'
                  '<section class="chart"><h2>SpO2</h2>%s</section>'
                  '<p class="legend"><span class="key nodata"></span> no data '
                  '<span class="key invalid"></span> not valid (not vouched for by the node) '
                  '<span class="key mark"></span> alert raised</p>'
                  '%s<h2>Gaps</h2><ul class="gaps">%s</ul><h2>Alerts</h2><table class="list alerts">'
                  '<thead><tr><th>Priority</th><th>Alert</th><th></th><th>Raised</th><th>State'
                  '</th><th>Acknowledgement</th></tr></thead><tbody>%s</tbody></table>'
                  % (escape(p["family"].upper()), escape(" ".join(p["given"])), escape(p["ward"]),
                     escape(p["bed"]), escape(p["birth_date"]), escape(dev or "none"), spans,
                     charts["hr"], charts["spo2"], untimed, gaps, arows), user, "overview", csrf)


def devices(user, csrf, rows):
    out = []
    for d in rows:
        refused = ", ".join("%s %d" % (k, v) for k, v in sorted(d["refused"].items())) or "none"
        sec = "".join("<li>%s %s</li>" % (escape(str(e.get("ev"))), escape(
            " ".join("%s=%s" % (k, v) for k, v in sorted(e.items())
                     if k not in ("ev", "ms", "received_at"))[:80])) for e in d["security"][-3:])
        if d["status"] == "revoked":
            act = ('<form data-api="/api/devices/%s/reinstate" data-then="reload"><input '
                   'name="reason" placeholder="reason" required maxlength="200"><button '
                   'type="submit">Reinstate</button><span class="result"></span></form>'
                   % escape(d["device"]))
        elif d["status"] == "active":
            act = ('<form data-api="/api/devices/%s/revoke" data-then="reload"><input '
                   'name="reason" placeholder="reason" required maxlength="200"><button '
                   'type="submit" class="danger">Revoke</button><span class="result"></span>'
                   '</form>' % escape(d["device"]))
        else:
            act = "provision it (make provision)"
        out.append('<tr data-device="%s"><td class="mono">%s</td><td><span class="badge st-%s">'
                   '%s</span>%s</td><td>%s</td><td>%s</td><td>%s</td><td><span class="conn %s">'
                   '%s</span><br><small>%s</small></td><td>%s</td><td>%s</td><td><ul class="sec">'
                   '%s</ul></td><td>%s</td></tr>'
                   % (escape(d["device"]), escape(d["device"]), d["status"].replace(" ", "-"),
                      d["status"].upper(),
                      "<br><small>%s</small>" % escape(d["reason"]) if d.get("reason") else "",
                      d["key_gen"] if d["key_gen"] is not None else "-", escape(d["fw"] or "-"),
                      escape(d["ota"] or "-"), d["connection"].replace(" ", "-"), d["connection"],
                      when(d["last_seen"]), d["rssi"] if d["rssi"] is not None else "-", refused,
                      sec or "<li>none</li>", act))
    body = "".join(out) or '<tr><td colspan="10">No devices.</td></tr>'
    return layout("Devices", '<h1>Devices</h1><table class="list devices"><thead><tr><th>Device'
                  '</th><th>Registry</th><th>Key gen</th><th>Firmware</th><th>OTA</th><th>'
                  'Connection</th><th>RSSI</th><th>Refused frames</th><th>Security events</th>'
                  '<th>Action</th></tr></thead><tbody>%s</tbody></table>' % body, user, "devices",
                  csrf)


def admin(user, csrf, users, wards):
    roles = ("clinician", "technician", "admin", "auditor")
    rows = []
    for u in users:
        opts = "".join('<option%s>%s</option>' % (" selected" if r == u["role"] else "", r)
                       for r in roles)
        state = "disabled" if u["disabled_at"] else ("one-time password" if u["must_change"]
                                                     else "active")
        rows.append('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>'
                    '<form data-api="/api/users/%s" data-then="reload" class="row"><select '
                    'name="role">%s</select><input name="wards" value="%s" placeholder="wards" '
                    'size="10"><select name="disabled"><option value="0"%s>enabled</option>'
                    '<option value="1"%s>disabled</option></select><button type="submit">Save'
                    '</button><span class="result"></span></form>'
                    '<form data-api="/api/users/%s/reset" data-then="show"><button type="submit">'
                    'New one-time password</button><span class="result"></span></form></td></tr>'
                    % (escape(u["name"]), escape(u["role"]), escape(", ".join(u["wards"])), state,
                       escape(u["name"]), opts, escape(",".join(u["wards"])),
                       "" if u["disabled_at"] else " selected",
                       " selected" if u["disabled_at"] else "", escape(u["name"])))
    ropts = "".join("<option>%s</option>" % r for r in roles)
    wl = "".join("<li>%s</li>" % escape(w) for w in wards) or "<li>none yet</li>"
    return layout("Users & wards", '<h1>Users</h1><table class="list users"><thead><tr><th>Name'
                  '</th><th>Role</th><th>Wards</th><th>State</th><th>Change</th></tr></thead>'
                  '<tbody>%s</tbody></table><h2>New user</h2><form data-api="/api/users" '
                  'data-then="show" class="row"><input name="name" placeholder="name" required>'
                  '<select name="role">%s</select><input name="wards" placeholder="wards '
                  '(clinicians): W3,W5"><button type="submit">Create</button><span class="result">'
                  '</span></form><h2>Wards</h2><ul>%s</ul><form data-api="/api/wards" '
                  'data-then="reload" class="row"><input name="name" placeholder="ward" required>'
                  '<button type="submit">Add ward</button><span class="result"></span></form>'
                  % ("".join(rows), ropts, wl), user, "users", csrf)


def audit(user, csrf, entries, problem, head, total, q):
    chain = ('<p class="ok">Hash chain intact: %d entries, head %s</p>' % (total, escape(head))
             if problem is None else '<p class="error">Hash chain BROKEN: %s</p>' % escape(problem))
    rows = "".join('<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td class="mono">%s</td>'
                   '<td>%s</td></tr>' % (e["id"], when(e["at"]), escape(e["actor"]),
                                         escape(e["action"]), escape(e["subject"] or "-"),
                                         escape(e["detail"] or "")) for e in entries)
    return layout("Audit log", '<h1>Audit log</h1>%s<p><a class="button" href="/api/audit/export"'
                  ' download>Export (JSON, with hashes)</a></p><form method="get" class="row">'
                  '<input name="actor" placeholder="actor" value="%s"><input name="subject" '
                  'placeholder="patient id" value="%s"><button type="submit">Filter</button></form>'
                  '<table class="list audit"><thead><tr><th>#</th><th>When</th><th>Who</th><th>'
                  'What</th><th>Patient</th><th>Detail</th></tr></thead><tbody>%s</tbody></table>'
                  % (chain, escape(q.get("actor", "")), escape(q.get("subject", "")), rows),
                  user, "audit", csrf)


def _stay(a, now):
    """An assignment's period in words, and whether it covers `now`."""
    on = a["start_time"] <= now and (a["end_time"] is None or now < a["end_time"])
    if a["end_time"] is None:
        return "since %s" % when(a["start_time"]), on
    return "%s to %s" % (when(a["start_time"]), when(a["end_time"])), on


def _times(*fields):
    """Optional date-time fields, folded away: empty means now."""
    return ('<details class="times"><summary>%s</summary>%s</details>'
            % ("other time" if len(fields) == 1 else "other times",
               "".join('<label>%s <input type="datetime-local" name="%s"></label>' % (f, f)
                       for f in fields)))


def patients(user, csrf, rows, devices, now):
    """rows: (patient, [assignments]) of the user's wards; devices: ids of
    the active devices on no patient (offered, not imposed)."""
    genders = "".join('<option value="%s">%s</option>' % (g, g or "gender (optional)")
                      for g in ("", "female", "male", "other", "unknown"))
    wards = "".join("<option>%s</option>" % escape(w) for w in user["wards"])
    devlist = "".join('<option value="%s">' % escape(d) for d in devices)
    out = []
    for p, assigned in rows:
        pid = escape(p["id"])
        stays = []
        for a in assigned:
            period, on = _stay(a, now)
            off = ""
            if a["end_time"] is None:
                off = ('<form data-api="/api/unassign" data-then="reload" class="row">'
                       '<input type="hidden" name="patient" value="%s"><input type="hidden" '
                       'name="device" value="%s"><button type="submit">Take off</button>%s'
                       '<span class="result"></span></form>' % (pid, escape(a["device"]),
                                                                _times("at")))
            stays.append('<li data-device="%s"><span class="mono">%s</span> %s%s%s</li>'
                         % (escape(a["device"]), escape(a["device"]), period,
                            ' <span class="badge st-active">ON NOW</span>' if on else "", off))
        out.append(
            '<tr data-patient="%s"><td><strong>%s</strong> bed %s</td><td>%s, %s<br><small>MRN '
            '<span class="mono">%s</span>, born %s%s, admitted %s</small></td><td><ul '
            'class="stays">%s</ul></td><td><form data-api="/api/assign" data-then="reload" '
            'class="row assign"><input type="hidden" name="patient" value="%s"><input '
            'name="device" list="free-devices" placeholder="device id" required size="13">'
            '<button type="submit">Assign</button>%s<span class="result"></span></form></td><td>'
            '<form data-api="/api/discharge" data-then="reload" class="row discharge" '
            'data-confirm="Discharge %s, %s? Their devices are taken off."><input type="hidden" '
            'name="patient" value="%s"><button type="submit" class="danger">Discharge</button>%s'
            '<span class="result"></span></form></td></tr>'
            % (pid, escape(p["ward"]), escape(p["bed"]), escape(p["family"].upper()),
               escape(" ".join(p["given"])), escape(p["mrn"]), escape(p["birth_date"]),
               ", %s" % escape(p["gender"]) if p.get("gender") else "", when(p["admitted_at"]),
               "".join(stays) or '<li class="calm">no device</li>', pid, _times("from", "to"),
               escape(p["family"].upper()), escape(" ".join(p["given"])), pid, _times("at")))
    body = "".join(out) or '<tr><td colspan="5">No admitted patients on your wards.</td></tr>'
    return layout("Patients", '<h1>Patients <span class="sub">admission, devices and discharge, '
                  'wards %s</span></h1><h2>Admit</h2><form data-api="/api/admit" '
                  'data-then="reload" class="row admit"><input name="mrn" placeholder="MRN" '
                  'required maxlength="64"><input name="family" placeholder="family name" '
                  'required maxlength="64"><input name="given" placeholder="given name(s)" '
                  'maxlength="200"><label>born <input type="date" name="birth_date" required>'
                  '</label><select name="gender">%s</select><select name="ward" required>%s'
                  '</select><input name="bed" placeholder="bed" required maxlength="64" size="5">'
                  '<button type="submit">Admit</button><span class="result"></span></form>'
                  '<h2>Admitted</h2><datalist id="free-devices">%s</datalist><p class="calm">'
                  'Times are local time; an empty time means now. The devices offered are the '
                  'active ones of the registry that are on no patient.</p>'
                  '<table class="list patients"><thead><tr><th>Bed</th><th>Patient</th><th>'
                  'Devices</th><th>Assign a device</th><th>Discharge</th></tr></thead><tbody>%s'
                  '</tbody></table>' % (escape(", ".join(user["wards"])), genders, wards, devlist,
                                        body), user, "patients", csrf)
