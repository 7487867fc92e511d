// The owner's page: day/night (his own presence: "away" sends his calls to the service, as his
// plan says), presence with note and until-time, and his messages, voicemails and dictations.
"use strict";

(async () => {
  const { t, fmt, el, api, when } = Desk;
  const me = (await Desk.api("/api/v1/desk/me")).data || {};
  await Desk.start(me);
  const $ = (id) => document.getElementById(id);
  const tenant = (me.businesses && me.businesses[0] && me.businesses[0].tenant) || "";
  const person = me.person;
  const presencePath = `/api/v1/tenants/${encodeURIComponent(tenant)}/people/${encodeURIComponent(person)}/presence`;

  function untilIso(value) {
    if (!value) return null;
    const [h, m] = value.split(":").map(Number);
    const d = new Date(); d.setHours(h, m, 0, 0);
    if (d < new Date()) d.setDate(d.getDate() + 1);
    return d.toISOString();
  }

  async function showPresence() {
    const r = await api(presencePath);
    const p = r.data || {};
    const state = p.state || "available";
    let text = state === "available" ? t("Normal: your calls ring you first.") : t("Your calls go to the service now.");
    if (p.until && state !== "available") text += " " + fmt("until {time}", { time: when(p.until) });
    $("override-state").textContent = text;
    $("override-state").setAttribute("data-state", state);
  }

  async function setPresence(state, note, until) {
    const body = { state };
    if (note) body.note = note;
    if (until) body.until = until;
    return api(presencePath, "PUT", body);
  }

  $("to-service").addEventListener("click", async () => {
    await setPresence("away", t("calls to the service"), untilIso($("override-until").value));
    await showPresence();
  });
  $("to-normal").addEventListener("click", async () => { await setPresence("available"); await showPresence(); });
  $("p-save").addEventListener("click", async () => {
    const r = await setPresence($("p-state").value, $("p-note").value, untilIso($("p-until").value));
    $("p-result").textContent = r.status === 200 ? t("saved") : String(r.status);
    await showPresence();
  });

  const forwardPath = `/api/v1/tenants/${encodeURIComponent(tenant)}/people/${encodeURIComponent(person)}/forwarding`;
  async function showForwarding() {
    const r = await api(forwardPath);
    const number = r.data && r.data.number;
    $("forward-state").textContent = number
      ? fmt("Your calls are forwarded to {number}.", { number })
      : t("Not forwarded: your calls ring as your plan says.");
    $("forward-state").setAttribute("data-number", number || "");
  }
  $("forward-set").addEventListener("click", async () => {
    const r = await api(forwardPath, "PUT", { number: $("forward-number").value });
    $("forward-result").textContent = r.status === 200 ? t("saved") : (r.data && r.data.error) || String(r.status);
    await showForwarding();
  });
  $("forward-clear").addEventListener("click", async () => {
    await api(forwardPath, "DELETE");
    $("forward-result").textContent = "";
    await showForwarding();
  });

  async function showWeek() {
    const lang = document.documentElement.lang || "de";
    const r = await fetch(`/api/v1/week.svg?tenant=${encodeURIComponent(tenant)}&lang=${encodeURIComponent(lang)}`,
      { credentials: "same-origin" });
    if (r.ok) $("week-svg").innerHTML = await r.text();
  }

  async function load() {
    const [m, v, d] = await Promise.all([api("/api/v1/messages"), api("/api/v1/voicemails"), api("/api/v1/dictations")]);
    const items = [];
    for (const row of (m.data && m.data.messages) || []) items.push({ kind: "message", at: row.taken_at, row });
    for (const row of (v.data && v.data.voicemails) || []) items.push({ kind: "voicemail", at: row.started_at, row });
    for (const row of (d.data && d.data.dictations) || []) items.push({ kind: "dictation", at: row.started_at, row });
    items.sort((a, b) => (a.at < b.at ? 1 : -1));
    const list = $("items");
    list.replaceChildren();
    for (const item of items) {
      const row = item.row;
      const done = row.done_at != null;
      const li = el("li", { class: done ? "done" : "", "data-kind": item.kind });
      li.append(el("strong", {}, t(item.kind)), " ", when(item.at), " — ");
      if (item.kind === "message") {
        li.append(el("span", { class: row.urgency === "urgent" ? "urgent" : "" },
          `${row.caller_name || row.number || t("unknown caller")}: ${row.concern}`));
        if (row.callback) li.append(" (", t("please call back"), ")");
      } else {
        li.append(row.caller || t("anonymous"), " ");
        li.append(el("audio", { controls: true, preload: "none", src: row.url }));
      }
      if (!done && item.kind !== "voicemail") {
        const button = el("button", { type: "button" }, t("Done"));
        button.addEventListener("click", async () => {
          const path = item.kind === "message" ? `/api/v1/messages/${row.id}/done` : `/api/v1/dictations/${row.id}/done`;
          await api(path, "POST");
          await load();
        });
        li.append(" ", button);
      }
      list.append(li);
    }
    $("empty").hidden = items.some((i) => i.row.done_at == null);
  }

  await showPresence();
  await showForwarding();
  await showWeek();
  await load();
  const events = new EventSource("/api/v1/desk/events");
  events.addEventListener("message", () => load());
})();
