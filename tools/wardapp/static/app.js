// VitalNode ward app: the live overview tiles and the forms that call the API.
// Plain JavaScript, served by the app itself (no framework, nothing from the internet).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
let skew = 0; // server clock - browser clock, seconds

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function ago(t) {
  if (!t) return "never";
  const s = Math.max(0, Math.round(Date.now() / 1000 + skew - t));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

function connOf(tile) {
  if (tile.registry === "revoked") return "revoked";
  if (!tile.last_seen) return "never seen";
  const age = Date.now() / 1000 + skew - tile.last_seen;
  return age <= 15 ? "live" : age <= 60 ? "late" : "no data";
}

function vital(label, value, unit, valid, q, digits) {
  const box = el("div", "vital");
  box.appendChild(el("span", "vlabel", label));
  const shown = value !== null && valid;
  const v = el("span", "value" + (shown ? "" : " invalid"), shown ? value.toFixed(digits) : "---");
  box.appendChild(v);
  box.appendChild(el("span", "unit", unit));
  let note = q === null || q === undefined ? "quality -" : "quality " + q + "%";
  if (value !== null && !valid) note = "not valid (" + note + ")";
  box.appendChild(el("span", "quality", note));
  return box;
}

function renderTile(t) {
  const tile = el("article", "tile");
  tile.id = "tile-" + t.device;
  tile.dataset.device = t.device;
  tile.dataset.seq = t.seq === null ? "" : t.seq;
  tile.dataset.lastSeen = t.last_seen || "";
  const worst = t.alerts.reduce((w, a) => a.severity === "high" ? "high" :
    (a.severity === "medium" && w !== "high") ? "medium" : w === "none" ? a.severity : w, "none");
  tile.classList.add("sev-" + worst);
  if (t.registry === "revoked") tile.classList.add("revoked");
  const head = el("header");
  const a = el("a", "bed", t.label);
  a.href = "/patient/" + encodeURIComponent(t.patient_id);
  head.appendChild(a);
  head.appendChild(el("span", "name", t.name));
  tile.appendChild(head);
  const vitals = el("div", "vitals");
  vitals.appendChild(vital("HR", t.hr, "/min", t.hr_valid, t.hr_q, 0));
  vitals.appendChild(vital("SpO2", t.spo2, "%", t.spo2_valid, t.spo2_q, 0));
  tile.appendChild(vitals);
  const al = el("ul", "alerts");
  if (t.registry === "revoked") al.appendChild(el("li", "badge revoked", "DEVICE REVOKED"));
  for (const x of t.alerts) {
    const li = el("li", "badge " + x.severity,
      x.severity.toUpperCase() + ": " + x.words + (x.escalated ? " - ESCALATED" : "") +
      (x.acked_by ? " - acknowledged by " + x.acked_by : ""));
    li.dataset.alert = x.id;
    al.appendChild(li);
  }
  if (!t.alerts.length && t.registry !== "revoked") al.appendChild(el("li", "calm", "no active alerts"));
  tile.appendChild(al);
  const foot = el("footer");
  const c = connOf(t);
  foot.appendChild(el("span", "conn " + c.replace(" ", "-"), c));
  const seen = el("span", "seen", "last seen " + ago(t.last_seen));
  seen.dataset.t = t.last_seen || "";
  foot.appendChild(seen);
  foot.appendChild(el("span", "fw", "fw " + (t.fw || "-") + (t.ota ? " (" + t.ota + ")" : "")));
  if (t.battery_pct !== null && t.battery_pct !== undefined) {
    const b = el("span", "battery" + (t.battery_pct <= 15 ? " low" : ""),
      "battery " + t.battery_pct + " % (" + (t.battery_mv / 1000).toFixed(2) + " V)");
    foot.appendChild(b);
  }
  foot.appendChild(el("span", "dev", t.device));
  tile.appendChild(foot);
  tile._data = t;
  return tile;
}

function putTile(t) {
  const box = document.getElementById("tiles");
  const old = document.getElementById("tile-" + t.device);
  const n = renderTile(t);
  if (old) box.replaceChild(n, old); else box.appendChild(n);
  const none = box.querySelector("p.calm");
  if (none) none.remove();
}

// A device taken off its patient (or the patient discharged): its tile goes.
function dropTile(dev) {
  const box = document.getElementById("tiles");
  const old = document.getElementById("tile-" + dev);
  if (old) old.remove();
  if (!box.querySelector(".tile")) {
    box.textContent = "";
    box.appendChild(el("p", "calm", "No patients with a device on your wards."));
  }
}

function refreshAges() {
  for (const tile of document.querySelectorAll(".tile")) {
    const t = tile._data;
    const s = tile.querySelector(".seen");
    s.textContent = "last seen " + ago(t.last_seen);
    const c = connOf(t), ce = tile.querySelector(".conn");
    ce.textContent = c;
    ce.className = "conn " + c.replace(" ", "-");
  }
}

async function overview() {
  const live = document.getElementById("live");
  const r = await fetch("/api/overview", {credentials: "same-origin"});
  if (r.status === 401) { location.href = "/login"; return; }
  const d = await r.json();
  skew = d.server_time - Date.now() / 1000;
  const box = document.getElementById("tiles");
  box.textContent = "";
  if (!d.tiles.length) box.appendChild(el("p", "calm", "No patients with a device on your wards."));
  for (const t of d.tiles) putTile(t);
  const es = new EventSource("/api/events");
  es.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  es.onerror = () => { live.textContent = "live updates interrupted: reconnecting ..."; live.className = "live off"; };
  es.addEventListener("tile", (ev) => putTile(JSON.parse(ev.data)));
  es.addEventListener("gone", (ev) => dropTile(JSON.parse(ev.data).device));
  es.addEventListener("end", () => {
    es.close();
    live.textContent = "your session ended: log in again to see live data";
    live.className = "live off";
  });
  setInterval(refreshAges, 1000);
}

function wireForms() {
  for (const f of document.querySelectorAll("form[data-api]")) {
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) return;
      const out = f.querySelector(".result");
      const body = {};
      new FormData(f).forEach((v, k) => { body[k] = v; });
      // a date-time typed in this browser's local time goes to the server as UTC
      for (const i of f.querySelectorAll('input[type="datetime-local"]')) {
        if (i.value) body[i.name] = new Date(i.value).toISOString();
      }
      const r = await fetch(f.dataset.api, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
        body: JSON.stringify(body)});
      let d = {};
      try { d = await r.json(); } catch (e) { d = {error: "HTTP " + r.status}; }
      if (out) {
        out.textContent = r.ok ? (d.message || "done") : (d.error || "refused");
        out.className = "result " + (r.ok ? "ok" : "error");
      }
      if (r.ok && f.dataset.then === "reload") setTimeout(() => location.reload(), 300);
    });
  }
}

// The alerts page follows the live stream: when an alert appears, escalates or is
// acknowledged elsewhere, the page reloads - unless a note is being typed, then it says so.
function alertsPage() {
  const shown = {};
  for (const tr of document.querySelectorAll("tr[data-alert]")) shown[tr.dataset.alert] = tr.innerText;
  const es = new EventSource("/api/events");
  es.addEventListener("tile", (ev) => {
    const t = JSON.parse(ev.data);
    const changed = t.alerts.some((a) => !(a.id in shown) ||
      (a.escalated && !shown[a.id].includes("ESCALATED")) ||
      (a.acked_by && !shown[a.id].includes("acknowledged by")));
    if (!changed) return;
    const typing = Array.from(document.querySelectorAll("form.ack input")).some((i) => i.value);
    if (!typing) { es.close(); location.reload(); return; }
    let note = document.getElementById("changed");
    if (!note) {
      note = el("p", "notice", "Alerts have changed: reload the page when your note is sent.");
      note.id = "changed";
      document.querySelector("main h1").after(note);
    }
  });
  es.addEventListener("end", () => es.close());
}

document.addEventListener("DOMContentLoaded", () => {
  wireForms();
  if (document.body.dataset.page === "overview" && document.getElementById("tiles")) overview();
  if (document.body.dataset.page === "alerts") alertsPage();
});
