"""A patient's HR/SpO2 trend: stored vitals in time buckets, and its SVG.

    t = trend(rows, alerts, end, span_s)     # dict: buckets, gaps, markers
    svg = chart(t, "hr")                     # an <svg> string (no script, classes only)

Only values the node vouched for (hr_valid / spo2_valid) are drawn: a
bucket with frames but no valid value, and a bucket with no frame at all,
are both gaps - the line breaks there and the gap is listed in words. A
value never bridges a gap.
"""
import datetime
from html import escape

BUCKETS = 360
LIMITS = {"hr": (30, 180, "HR /min"), "spo2": (80, 100, "SpO2 %")}


def trend(rows, alerts, end, span_s, buckets=BUCKETS):
    start = end - span_s
    w = span_s / buckets
    acc = [{"hr": [], "spo2": [], "n": 0} for _ in range(buckets)]
    for r in rows:
        i = int((r["time"] - start) // w)
        if not 0 <= i < buckets:
            continue
        acc[i]["n"] += 1
        if r.get("hr_valid") and r.get("hr_x10"):
            acc[i]["hr"].append(r["hr_x10"] / 10)
        if r.get("spo2_valid") and r.get("spo2_x10"):
            acc[i]["spo2"].append(r["spo2_x10"] / 10)
    out = []
    for i, a in enumerate(acc):
        out.append({"t": start + (i + 0.5) * w, "frames": a["n"],
                    "hr": round(sum(a["hr"]) / len(a["hr"]), 1) if a["hr"] else None,
                    "spo2": round(sum(a["spo2"]) / len(a["spo2"]), 1) if a["spo2"] else None})
    gaps = []
    for what in ("hr", "spo2"):
        run = None
        for i, b in enumerate(out + [{"hr": 0, "spo2": 0, "frames": 1}]):
            missing = b[what] is None
            if missing and run is None:
                run = i
            elif not missing and run is not None:
                if run > 0 or i < buckets:  # a whole empty chart is 'no data', not a gap
                    nodata = all(out[j]["frames"] == 0 for j in range(run, min(i, buckets)))
                    gaps.append({"what": what, "from": start + run * w, "to": start + i * w,
                                 "why": "no data" if nodata else "not valid"})
                run = None
    marks = [{"t": a["measured_at"] or a["raised_at"], "words": a["words"],
              "severity": a["severity"], "id": a["id"]}
             for a in alerts if start <= (a["measured_at"] or a["raised_at"]) <= end]
    return {"start": start, "end": end, "span_s": span_s, "buckets": out, "gaps": gaps,
            "alerts": marks}


def _clock(t, span_s):
    d = datetime.datetime.fromtimestamp(t)
    return d.strftime("%H:%M") if span_s <= 86400 else d.strftime("%d %H:%M")


def chart(t, what, width=1000, height=200):
    lo, hi, label = LIMITS[what]
    left, right, top, bottom = 56, 10, 10, 26
    pw, ph = width - left - right, height - top - bottom

    def x(tt):
        return left + (tt - t["start"]) / t["span_s"] * pw

    def y(v):
        v = min(max(v, lo), hi)
        return top + (hi - v) / (hi - lo) * ph

    parts = ['<svg class="trend" viewBox="0 0 %d %d" role="img" aria-label="%s trend">'
             % (width, height, escape(label))]
    for g in t["gaps"]:
        if g["what"] == what:
            parts.append('<rect class="gap %s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s'
                         '</title></rect>' % ("nodata" if g["why"] == "no data" else "invalid",
                                              x(g["from"]), top, max(1.0, x(g["to"]) - x(g["from"])),
                                              ph, escape(g["why"])))
            if x(g["to"]) - x(g["from"]) > 40:
                parts.append('<text class="gaplabel" x="%.1f" y="%d" text-anchor="middle">%s'
                             '</text>' % ((x(g["from"]) + x(g["to"])) / 2, top + ph // 2,
                                          escape(g["why"])))
    steps = 5
    for i in range(steps + 1):
        v = lo + (hi - lo) * i / steps
        parts.append('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>'
                     '<text class="axis" x="%d" y="%.1f" text-anchor="end">%g</text>'
                     % (left, width - right, y(v), y(v), left - 6, y(v) + 4, round(v)))
    hours = t["span_s"] / 3600
    every = 3600 if hours <= 6 else 4 * 3600
    first = (int(t["start"]) // every + 1) * every
    for tt in range(first, int(t["end"]) + 1, every):
        parts.append('<line class="grid" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/>'
                     '<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (x(tt), x(tt), top, top + ph, x(tt), height - 8, _clock(tt, t["span_s"])))
    seg = []
    for b in t["buckets"] + [{what: None}]:
        if b[what] is None:
            if len(seg) == 1:
                parts.append('<circle class="line %s" cx="%.1f" cy="%.1f" r="2"/>' % (what, *seg[0]))
            elif seg:
                parts.append('<polyline class="line %s" points="%s"/>'
                             % (what, " ".join("%.1f,%.1f" % p for p in seg)))
            seg = []
        else:
            seg.append((x(b["t"]), y(b[what])))
    for a in t["alerts"]:
        parts.append('<line class="mark %s" x1="%.1f" x2="%.1f" y1="%d" y2="%d"><title>%s</title>'
                     '</line>' % (a["severity"], x(a["t"]), x(a["t"]), top, top + ph,
                                  escape(a["words"])))
    parts.append('<text class="axis label" x="%d" y="%d">%s</text></svg>' % (left + 4, top + 14,
                                                                            escape(label)))
    return "".join(parts)
