// The assistant's console: call cards pushed by /api/v1/desk/events (screen pop), the
// message form (POST /api/v1/messages), the day's log, "call back" (POST /api/v1/calls/dial).
"use strict";

(async () => {
  const { t, fmt, el, api, when, presenceText } = Desk;
  const me = (await Desk.api("/api/v1/desk/me")).data || {};
  await Desk.start(me);
  const $ = (id) => document.getElementById(id);
  const cards = new Map();

  for (const b of me.businesses || []) {
    $("m-tenant").append(el("option", { value: b.tenant }, b.name));
  }

  function logLine(text) {
    $("day-log").prepend(el("li", {}, `${new Date().toLocaleTimeString(Desk.lang === "de" ? "de-DE" : "en-GB", { hour: "2-digit", minute: "2-digit" })} ${text}`));
  }

  // "Call back" (issue 17): click to call for that business (POST /api/v1/calls/dial, the
  // same permission check as her dialling); her own phone rings first, then the customer.
  // What became of it comes as the call's "call" events (outcome_text, in German:
  // switch/web/clicktocall.py); one that arrives before the 202 is kept in `outcomes`.
  const placed = new Map();  // call id -> its result line, while the call is not over
  const outcomes = new Map();  // call id -> the last "call" event of a call out
  function showOutcome(result, data) {
    if (!data.outcome_text) return;
    result.textContent = data.outcome_text;
    const failed = data.phase === "ended" && data.outcome !== "answered";
    result.classList.toggle("refused", failed);
    result.classList.toggle("connected", data.phase === "answered");
  }
  function callOutChanged(data) {
    if (data.outcome_text === undefined) return;
    outcomes.set(data.call_id, data);
    if (outcomes.size > 50) outcomes.delete(outcomes.keys().next().value);
    const result = placed.get(data.call_id);
    if (!result) return;
    showOutcome(result, data);
    if (data.phase === "ended") placed.delete(data.call_id);
  }
  function callBack(tenant, number) {
    if (!number || !me.person) return [];
    const button = el("button", { type: "button", class: "call-back" }, t("Call back"));
    const result = el("span", { class: "call-back-result muted", role: "status" });
    button.addEventListener("click", async () => {
      button.disabled = true;
      result.textContent = "";
      result.classList.remove("connected");
      const r = await api("/api/v1/calls/dial", "POST", { ring: me.person, number, tenant });
      button.disabled = false;
      result.textContent = r.status === 202 ? t("your phone rings, then the customer")
        : (r.data && r.data.error) || String(r.status);
      result.classList.toggle("refused", r.status !== 202);
      if (r.status !== 202) return;
      logLine(fmt("calling back {number}", { number }));
      const id = r.data && r.data.id;
      if (!id) return;
      result.setAttribute("data-call", id);
      placed.set(id, result);
      const early = outcomes.get(id);
      if (early) callOutChanged(early);
    });
    return [" ", button, " ", result];
  }

  // The day's log: the calls she answered today (the calls API keeps an assistant's own).
  const midnight = new Date(); midnight.setHours(0, 0, 0, 0);
  const today = await api(`/api/v1/calls?since=${Math.floor(midnight.getTime() / 1000)}&limit=200`);
  const names = new Map((me.businesses || []).map((b) => [b.tenant, b.name]));
  for (const call of ((today.data && today.data.calls) || []).slice().reverse()) {
    $("day-log").prepend(el("li", { class: "answered-call" },
      `${when(call.started_at)} ${names.get(call.tenant) || call.tenant}: ${call.caller || t("anonymous")} — ${t(call.outcome || "")}`,
      ...callBack(call.tenant, call.caller)));
  }

  function fillForm(card) {
    $("m-tenant").value = card.tenant;
    $("m-name").value = card.caller_name || "";
    $("m-number").value = card.caller || "";
    $("m-call").value = card.call_id;
    $("m-concern").focus();
  }

  function showCard(card) {
    const node = el("article", { class: "card", "data-call": card.call_id },
      el("div", { class: "muted" }, card.business),
      el("div", { class: "greeting" }, card.greeting),
      el("div", { class: "caller" },
        card.caller_name ? `${card.caller_name} · ` : "",
        card.caller || t("anonymous")),
      card.contact_note ? el("div", { class: "muted" }, card.contact_note) : null,
    );
    if (card.instructions_html) {
      const box = el("div", { class: "instructions" });
      box.innerHTML = card.instructions_html;  // rendered and escaped by the switch
      node.append(el("h3", {}, t("Instructions")), box);
    }
    node.append(el("h3", {}, t("Who is there")),
      el("ul", { class: "presence" }, ...card.presence.map((p) => el("li", {}, presenceText(p)))));
    const calls = card.last_calls.map((c) => el("li", {}, `${when(c.started_at)} — ${t(c.outcome || "")}`));
    const notes = card.notes.map((m) => el("li", {}, `${when(m.taken_at)} — ${m.concern}`));
    node.append(el("h3", {}, t("Last calls")),
      calls.length ? el("ul", { class: "history" }, ...calls) : el("p", { class: "muted" }, t("first call")));
    if (notes.length) node.append(el("h3", {}, t("Notes")), el("ul", { class: "notes" }, ...notes));
    const take = el("button", { class: "primary", type: "button" }, t("Take a message"));
    take.addEventListener("click", () => fillForm(card));
    // Put through (blind transfer): pick a person's device; the available ones first.
    const order = { available: 0, away: 1, busy: 2, dnd: 3, offline: 4 };
    const people = card.presence.slice().sort((a, b) => (order[a.state] ?? 5) - (order[b.state] ?? 5));
    const pick = el("select", { class: "put-target", "aria-label": t("Put through to") },
      ...people.flatMap((p) => (p.targets || []).map((ref) =>
        el("option", { value: ref }, `${p.name} · ${ref.split(".").slice(1).join(".")} (${t(p.state)})`))));
    const put = el("button", { type: "button", class: "put-through" }, t("Put through"));
    put.addEventListener("click", async () => {
      if (!pick.value) return;
      put.disabled = true;
      const r = await api(`/api/v1/calls/${encodeURIComponent(card.call_id)}/transfer`, "POST", { target: pick.value });
      put.disabled = false;
      put.textContent = r.status === 202 ? fmt("putting through to {target}", { target: pick.value })
        : r.status === 409 ? t("answer the call first") : (r.data && r.data.error) || String(r.status);
      if (r.status === 202) logLine(fmt("put through to {target}", { target: pick.value }));
    });
    const known = el("button", { type: "button" }, t("Known contact"));
    known.addEventListener("click", async () => {
      const name = prompt(t("Name of the caller"), card.caller_name || "");
      if (!name || !card.caller) return;
      const r = await api("/api/v1/contacts", "POST", { tenant: card.tenant, number: card.caller, name });
      known.textContent = r.status === 201 ? t("saved") : String(r.status);
    });
    const later = el("button", { type: "button" }, t("Call back later"));
    const minutes = el("input", { type: "number", min: "0", step: "any", value: "15", class: "r-minutes" });
    const note = el("input", { type: "text", class: "r-note" });
    const set = el("button", { type: "button", class: "r-set" }, t("Remind me"));
    const form = el("div", { class: "reminder-form", hidden: true },
      el("label", {}, t("in minutes"), " ", minutes), " ", el("label", {}, t("Note"), " ", note), " ", set);
    later.addEventListener("click", () => { form.hidden = false; note.focus(); });
    set.addEventListener("click", async () => {
      const r = await api("/api/v1/reminders", "POST", {
        tenant: card.tenant, in_minutes: Number(minutes.value), note: note.value,
        number: card.caller, caller_name: card.caller_name, call_id: card.call_id,
      });
      set.textContent = r.status === 201 ? t("saved") : (r.data && r.data.error) || String(r.status);
      await loadReminders();
    });
    node.append(el("div", { class: "actions" }, take, pick, put, known, later,
      ...callBack(card.tenant, card.caller)), form);
    cards.set(card.call_id, node);
    $("cards").prepend(node);
    $("no-calls").hidden = true;
    logLine(fmt("{business}: call from {caller}", { business: card.business, caller: card.caller || t("anonymous") }));
  }

  function callChanged(data) {
    const node = cards.get(data.call_id);
    if (!node) return;
    node.classList.add(data.phase);
    if (data.phase === "ended") {
      setTimeout(() => { node.remove(); cards.delete(data.call_id); $("no-calls").hidden = cards.size > 0; }, 30000);
    }
  }

  $("message-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      tenant: $("m-tenant").value, caller_name: $("m-name").value, number: $("m-number").value,
      concern: $("m-concern").value, urgency: $("m-urgency").value, callback: $("m-callback").checked,
      call_id: $("m-call").value || null,
    };
    const r = await api("/api/v1/messages", "POST", body);
    if (r.status === 201) {
      $("m-result").textContent = t("Message sent.");
      $("m-result").setAttribute("data-id", String(r.data.id));
      logLine(fmt("message for {business}", { business: $("m-tenant").selectedOptions[0].textContent }));
      $("message-form").reset();
    } else {
      $("m-result").textContent = (r.data && r.data.error) || String(r.status);
    }
  });

  // "Call back later": the open reminders, soonest first; a due one pops (event: reminder).
  function reminderText(row) {
    const who = row.caller_name || row.number || t("unknown caller");
    return `${when(row.due_at)} ${names.get(row.tenant) || row.tenant}: ${who}${row.note ? " — " + row.note : ""}`;
  }
  async function loadReminders() {
    const r = await api("/api/v1/reminders");
    const rows = (r.data && r.data.reminders) || [];
    $("reminder-list").replaceChildren(...rows.map((row) => {
      const li = el("li", { "data-id": String(row.id), class: row.popped_at ? "due" : "" }, reminderText(row), " ");
      const done = el("button", { type: "button" }, t("Done"));
      done.addEventListener("click", async () => {
        await api(`/api/v1/reminders/${row.id}/done`, "POST");
        $("reminder-pop").hidden = true;
        await loadReminders();
      });
      li.append(done, ...callBack(row.tenant, row.number));
      return li;
    }));
    $("no-reminders").hidden = rows.length > 0;
  }
  await loadReminders();

  const events = new EventSource("/api/v1/desk/events");
  events.addEventListener("reminder", async (e) => {
    const row = JSON.parse(e.data);
    const pop = $("reminder-pop");
    pop.replaceChildren(el("strong", {}, t("Call back now:")), " ", reminderText(row));
    pop.setAttribute("data-id", String(row.id));
    pop.hidden = false;
    logLine(fmt("call back {who}", { who: row.caller_name || row.number || t("unknown caller") }));
    await loadReminders();
  });
  events.addEventListener("open", () => { $("status").textContent = t("live"); });
  events.addEventListener("error", () => { $("status").textContent = t("reconnecting…"); });
  events.addEventListener("card", (e) => {
    const card = JSON.parse(e.data);
    if (!cards.has(card.call_id)) showCard(card);
  });
  events.addEventListener("call", (e) => {
    const data = JSON.parse(e.data);
    callChanged(data);
    callOutChanged(data);
  });
})();
