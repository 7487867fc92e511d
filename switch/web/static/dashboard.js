// Rufweiche live dashboard: renders the snapshots that /api/v1/events pushes (server-sent
// events). Plain DOM, no framework, no build step. Every value from the server goes into the
// page as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let last = null;          // the latest snapshot
let clockOffset = 0;      // server clock minus browser clock, seconds
const seen = new Set();   // call ids already on the page (to flash new rows)

const el = Desk.el;  // desk.js, loaded before this file

function fmtMs(seconds, digits) {
  if (seconds == null) return "—";
  const ms = seconds * 1000;
  return ms.toFixed(digits != null ? digits : ms < 10 ? 2 : ms < 100 ? 1 : 0);
}
function fmtS(seconds) {
  return seconds == null ? "—" : seconds.toFixed(seconds < 10 ? 2 : 1);
}
function fmtDuration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const m = Math.floor(seconds / 60), s = seconds % 60;
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s).padStart(2, "0")}`
                 : `${m}:${String(s).padStart(2, "0")}`;
}
function serverNow() { return Date.now() / 1000 + clockOffset; }

function kpi(id, text, unit, bad) {
  const node = $(id);
  node.replaceChildren(text, unit ? el("small", {}, unit) : "");
  node.classList.toggle("bad", !!bad);
  node.classList.toggle("ok", bad === false);
}

function renderKpis(s) {
  const b = s.budgets, inv = s.latency.invite.now, pdd = s.latency.pdd.now, mos = s.media.mos.now;
  kpi("kpi-active", String(s.active_calls.length));
  const ringing = s.active_calls.filter((c) => c.state === "ringing").length;
  $("kpi-active-foot").textContent = `${ringing} ringing · ${s.active_calls.length - ringing} talking`;
  kpi("kpi-invite", fmtMs(inv.p99), inv.p99 == null ? "" : "ms", inv.p99 == null ? null : inv.p99 * 1000 > b.invite_p99_ms);
  kpi("kpi-pdd", fmtS(pdd.p99), pdd.p99 == null ? "" : "s", pdd.p99 == null ? null : pdd.p99 > b.pdd_p99_s);
  kpi("kpi-mos", mos.p50 == null ? "—" : mos.p50.toFixed(2), "", mos.p50 == null ? null : mos.p50 < b.mos_min);
  $("budget-invite").textContent = b.invite_p99_ms;
  $("budget-pdd").textContent = b.pdd_p99_s;
  $("budget-mos").textContent = b.mos_min;
}

function renderFlags(s) {
  const box = $("flags");
  box.replaceChildren(...s.flags.map((f) => el("span", { class: "flag", "data-code": f.code }, f.message)));
  box.hidden = s.flags.length === 0;
}

function renderCalls(s) {
  const body = $("active-calls").tBodies[0];
  const now = serverNow();
  const rows = s.active_calls.map((c) => {
    const since = c.state === "answered" && c.answered ? c.answered : c.started;
    const row = el("tr", { "data-call-id": c.call_id, class: seen.has(c.call_id) ? "" : "call-new" },
      el("td", {}, c.tenant || "—"),
      el("td", { class: "mono" }, c.caller || "anonymous"),
      el("td", {}, el("span", { class: `pill ${c.state}` }, c.state)),
      el("td", { class: "mono duration", "data-since": String(since) }, fmtDuration(now - since)),
      el("td", {}, c.answered_by || "", c.by_service ? el("span", { class: "pill service" }, "service") : null),
      el("td", { class: "mono" }, c.worker));
    return row;
  });
  seen.clear();
  s.active_calls.forEach((c) => seen.add(c.call_id));
  body.replaceChildren(...rows);
  $("active-count").textContent = String(rows.length);
  $("active-empty").hidden = rows.length > 0;
}

function renderPresence(s) {
  const box = $("presence");
  const tenants = Object.keys(s.presence).sort();
  box.replaceChildren(...tenants.map((tenant) => {
    const people = Object.entries(s.presence[tenant]).map(([person, p]) =>
      el("span", { class: `person s-${p.state}`, "data-person": person, title: p.state },
        el("span", { class: "dot" }), person, el("span", { class: "state-word" }, p.state)));
    return el("div", { class: "tenant", "data-tenant": tenant },
      el("div", { class: "tenant-name" }, tenant), el("div", { class: "people" }, ...people));
  }));
  $("presence-empty").hidden = tenants.length > 0;
}

const HOP_NAMES = { invite: "INVITE → INVITE out", ringing: "18x in → 18x relayed", answer: "200 in → 200 relayed", pdd: "Post-dial delay" };

function renderLatency(s) {
  const body = $("latency").tBodies[0];
  const budgetS = s.budgets.invite_p99_ms / 1000;
  const rows = Object.keys(HOP_NAMES).map((hop) => {
    const l = s.latency[hop], isPdd = hop === "pdd";
    const f = isPdd ? (v) => (v == null ? "—" : fmtS(v) + " s") : (v) => (v == null ? "—" : fmtMs(v) + " ms");
    const limit = isPdd ? s.budgets.pdd_p99_s : hop === "invite" ? budgetS : null;
    const cell = (v, p99) => el("td", { class: p99 && limit != null && v != null && v > limit ? "over" : "" }, f(v));
    return el("tr", { "data-hop": hop }, el("td", {}, HOP_NAMES[hop]),
      cell(l.now.p50), cell(l.now.p95), cell(l.now.p99, true),
      cell(l.hour.p50), cell(l.hour.p95), cell(l.hour.p99, true), el("td", {}, String(l.hour.n)));
  });
  body.replaceChildren(...rows);
  drawChart($("chart-invite"), s.latency.invite.series, 1000, s.budgets.invite_p99_ms, s.now);
  drawChart($("chart-pdd"), s.latency.pdd.series, 1, s.budgets.pdd_p99_s, s.now);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// A line chart of p50/p95/p99 per minute over the last hour, with the budget dashed.
function drawChart(target, points, scale, budget, now) {
  const W = 600, H = 160, left = 34, right = 8, top = 10, bottom = 20;
  const end = Math.floor(now / 60) * 60, start = end - 59 * 60;
  let max = budget * 1.15;
  for (const p of points) max = Math.max(max, (p.p99 || 0) * scale * 1.1);
  const x = (t) => left + ((t - start) / (end - start)) * (W - left - right);
  const y = (v) => top + (1 - v / max) * (H - top - bottom);
  const nodes = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    nodes.push(svg("line", { class: "grid-line", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
    const label = svg("text", { x: 4, y: y(v) + 4 });
    label.textContent = v >= 10 ? v.toFixed(0) : v.toFixed(1);
    nodes.push(label);
  }
  for (const [minutesAgo, anchor] of [[60, "start"], [30, "middle"], [0, "end"]]) {
    const t = svg("text", { x: x(end - minutesAgo * 60 + (minutesAgo === 60 ? 60 : 0)), y: H - 5, "text-anchor": anchor });
    t.textContent = minutesAgo ? `−${minutesAgo} min` : "now";
    nodes.push(t);
  }
  nodes.push(svg("line", { class: "budget", x1: left, x2: W - right, y1: y(budget), y2: y(budget) }));
  for (const key of ["p50", "p95", "p99"]) {
    const pts = points.filter((p) => p[key] != null).map((p) => `${x(p.t).toFixed(1)},${y(p[key] * scale).toFixed(1)}`);
    if (pts.length === 1) pts.push(pts[0].replace(/^[\d.]+/, (v) => String(Number(v) + 4)));
    if (pts.length) nodes.push(svg("polyline", { class: key, points: pts.join(" ") }));
  }
  target.replaceChildren(...nodes);
}

function renderMedia(s) {
  const m = s.media, b = s.budgets;
  const item = (label, value, unit, bad) => el("div", {}, el("dt", {}, label),
    el("dd", { class: bad ? "bad" : "" }, value, el("small", {}, unit)));
  const hour = (q, f) => (q.n ? ` · hour ${f(q)}` : "");
  $("media").replaceChildren(
    item("MOS (median)", m.mos.now.p50 == null ? "—" : m.mos.now.p50.toFixed(2),
      hour(m.mos.hour, (q) => q.p50.toFixed(2)), m.mos.now.p50 != null && m.mos.now.p50 < b.mos_min),
    item("Jitter p95", fmtMs(m.jitter.now.p95, 1), " ms" + hour(m.jitter.hour, (q) => fmtMs(q.p95, 1))),
    item("Loss (mean)", m.loss.now.mean == null ? "—" : (m.loss.now.mean * 100).toFixed(2), " %"),
    item("RTT p95", fmtMs(m.rtt.now.p95, 0), " ms" + hour(m.rtt.hour, (q) => fmtMs(q.p95, 0))),
    // Where the legs' figures came from (docs/metrics.md "Media"): a leg without a loss
    // figure has no MOS, so the median above rates only the legs that were measured.
    item("Source (legs)", Object.entries(m.sources || {}).map(([k, n]) => `${SOURCES[k] || k} ${n}`).join(" · ") || "—", ""),
  );
}

const SOURCES = { pjsua: "worker", "rtpengine-rtcp": "relay+RTCP", rtpengine: "relay, no RTCP", none: "none" };

function renderWorkers(s) {
  const up = s.workers.filter((w) => w.up).length;
  $("workers").textContent = s.workers.length ? `${up}/${s.workers.length} workers up` : "";
  const chips = s.workers.map((w) =>
    el("span", { class: w.up ? "worker" : "worker down", "data-worker": w.name },
      w.up ? `${w.name} · ${w.in_use}/${w.capacity} legs` : `${w.name} · down`));
  $("worker-list").replaceChildren(...(chips.length ? chips : [el("span", { class: "empty" }, "No worker reported yet.")]));
}

function renderToday(s) {
  const body = $("today").tBodies[0];
  const most = Math.max(1, ...s.today.map((t) => t.calls));
  body.replaceChildren(...s.today.map((t) => {
    const pct = (n) => `${(100 * n) / most}%`;
    return el("tr", { "data-tenant": t.tenant },
      el("td", {}, t.tenant), el("td", {}, String(t.calls)), el("td", {}, String(t.answered_owner)),
      el("td", {}, String(t.answered_service)), el("td", {}, String(t.missed)),
      el("td", {}, el("div", { class: "bar", title: `${t.answered_owner} owner, ${t.answered_service} service, ${t.missed} missed` },
        el("span", { class: "owner", style: `width:${pct(t.answered_owner)}` }),
        el("span", { class: "service", style: `width:${pct(t.answered_service)}` }),
        el("span", { class: "missed", style: `width:${pct(t.missed)}` }))));
  }));
  $("today-empty").hidden = s.today.length > 0;
}

// Issue 15: one row per SIP trunk (registration state from the edge's uac module).
function renderTrunks(s) {
  const trunks = s.trunks || [];
  $("trunks-card").hidden = trunks.length === 0;
  const when = (t) => (t ? new Date(t * 1000).toLocaleString([], { hour12: false }) : "—");
  $("trunks").tBodies[0].replaceChildren(...trunks.map((t) =>
    el("tr", { "data-trunk": t.name, "data-state": t.state },
      el("td", {}, t.name),
      el("td", { class: t.registered ? "good" : "bad" }, t.registered ? "yes" : `no (${t.state})`),
      el("td", {}, when(t.since)),
      el("td", {}, t.last_error ? `${when(t.last_error_at)}: ${t.last_error}` : "—"))));
}

function renderQueues(s) {
  // Issue 19: who waits (in order), each member's status, the figures per business.
  const names = Object.keys(s.queues || {}).sort();
  $("queues").replaceChildren(...names.map((name) => {
    const q = s.queues[name];
    const waiting = q.waiting.map((w, i) =>
      el("li", { class: "waiter", "data-call": w.call_id },
        `${i + 1}. ${w.tenant} · ${fmtDuration(w.waited_s)}${w.ringing.length ? " · rings " + w.ringing.join(", ") : ""}`));
    const members = Object.entries(q.members).map(([m, st]) =>
      el("span", { class: `person q-${st.status}`, "data-member": m, title: st.status },
        el("span", { class: "dot" }), m, el("span", { class: "state-word" }, `${st.status} · ${st.calls} calls`)));
    const tenants = Object.entries(q.figures.by_tenant).sort().map(([t, f]) =>
      el("tr", { "data-tenant": t }, el("td", {}, t), el("td", {}, String(f.answered)),
        el("td", {}, String(f.abandoned)), el("td", {}, String(f.overflow + f.callback)),
        el("td", {}, String(f.within_service_level || 0))));
    return el("div", { class: "queue", "data-queue": name },
      el("div", { class: "tenant-name" }, `${name} · ${q.waiting.length} waiting · longest ${fmtDuration(q.longest_wait_s)}`),
      el("div", { class: "people" }, ...members),
      el("ol", { class: "waiting" }, ...waiting),
      el("table", { class: "queue-figures" },
        el("thead", {}, el("tr", {}, ...["business", "answered", "abandoned", "overflow/callback", `≤ ${q.figures.service_level_s} s`].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...tenants)));
  }));
  $("queues-card").hidden = names.length === 0;
}

function render(s) {
  last = s;
  clockOffset = s.now - Date.now() / 1000;
  renderKpis(s);
  renderFlags(s);
  renderCalls(s);
  renderPresence(s);
  renderLatency(s);
  renderMedia(s);
  renderWorkers(s);
  renderToday(s);
  renderTrunks(s);
  renderQueues(s);
  $("updated").textContent = new Date(s.now * 1000).toLocaleTimeString([], { hour12: false });
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
}

function tick() {
  const now = serverNow();
  $("clock").textContent = new Date(now * 1000).toLocaleTimeString([], { hour12: false });
  for (const cell of document.querySelectorAll("td.duration")) {
    cell.textContent = fmtDuration(now - Number(cell.dataset.since));
  }
}

function connect() {
  const source = new EventSource("/api/v1/events");
  const conn = $("conn");
  source.onopen = () => { conn.textContent = "live"; conn.className = "conn conn-live"; };
  source.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "conn conn-wait"; };
  source.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
}

// The recordings' tables: the newest 20 rows of /api/v1/<kind> into the table #<kind>,
// each made by row(); #<kind>-empty shows while there are none.
async function loadRecordings(kind, row) {
  try {
    const response = await fetch(`/api/v1/${kind}`);
    if (!response.ok) return;
    const rows = (await response.json())[kind];
    $(kind).querySelector("tbody").replaceChildren(...rows.slice(0, 20).map(row));
    $(`${kind}-empty`).hidden = rows.length > 0;
  } catch (error) { /* the next round tries again */ }
}

// Voicemail (issue 7): the newest messages, each playable in place.
function loadVoicemails() {
  return loadRecordings("voicemails", (m) => el("tr", {},
    el("td", {}, new Date(m.started_at).toLocaleString([], { hour12: false })),
    el("td", {}, m.tenant),
    el("td", {}, m.caller || "anonym"),
    el("td", {}, `${Math.round(m.seconds)} s`),
    el("td", {}, el("audio", { controls: true, preload: "none", src: m.url }))));
}

// Dictation box (issue 7): the owner's dictations; the office marks one done when typed up.
function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("rw_csrf="));
  return cookie ? decodeURIComponent(cookie.slice("rw_csrf=".length)) : "";
}

async function markDone(id, button) {
  button.disabled = true;
  try {
    const response = await fetch(`/api/v1/dictations/${encodeURIComponent(id)}/done`, {
      method: "POST", headers: { "X-CSRF-Token": csrfToken() },
    });
    if (!response.ok) { button.disabled = false; return; }
  } catch (error) { button.disabled = false; return; }
  loadDictations();
}

function loadDictations() {
  return loadRecordings("dictations", (d) => {
    let done;
    if (d.done_at) {
      done = el("span", { class: "done", title: d.done_at }, "✓ done");
    } else {
      done = el("button", { type: "button", class: "mark-done" }, "Mark done");
      done.addEventListener("click", () => markDone(d.id, done));
    }
    return el("tr", { "data-id": String(d.id) },
      el("td", {}, new Date(d.started_at).toLocaleString([], { hour12: false })),
      el("td", {}, d.tenant),
      el("td", {}, d.person || "—"),
      el("td", {}, `${Math.round(d.seconds)} s`),
      el("td", {}, el("audio", { controls: true, preload: "none", src: d.url }),
        " ", el("a", { href: d.url, download: "" }, "download")),
      el("td", {}, done));
  });
}

connect();
setInterval(tick, 1000);
loadVoicemails();
setInterval(loadVoicemails, 30000);
loadDictations();
setInterval(loadDictations, 30000);
tick();
