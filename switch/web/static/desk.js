// The assistant's console, the owner's page and the dashboard (el): shared helpers. Plain DOM,
// no framework, no build step. Every value from the server goes into the page as text
// (textContent); the one exception is the plan's instructions, which the switch renders to safe
// HTML itself
// (switch/web/console.py: render_markdown escapes everything first).
"use strict";

const Desk = (() => {
  let table = {};
  const params = new URLSearchParams(location.search);
  let lang = "de";

  function t(text) { return table[text] || text; }
  function fmt(text, values) {
    return t(text).replace(/\{(\w+)\}/g, (_, key) => (values[key] ?? ""));
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function csrf() {
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("rw_csrf="));
    return cookie ? decodeURIComponent(cookie.slice("rw_csrf=".length)) : "";
  }

  async function api(path, method, body) {
    const headers = { "X-CSRF-Token": csrf() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: method || "GET", headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data };
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleString(lang === "de" ? "de-DE" : "en-GB",
      { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  // ?lang= first, then the user's language: in the users file, then the page's last choice.
  async function start(me) {
    lang = params.get("lang") || (me && me.language) || localStorage.getItem("rufweiche.lang") || "de";
    if (params.get("lang")) localStorage.setItem("rufweiche.lang", lang);
    Desk.lang = lang;
    document.documentElement.lang = lang;
    const response = await fetch(`/i18n/${lang}.json`);
    table = (await response.json()).messages || {};
    for (const node of document.querySelectorAll("[data-i18n]")) {
      node.textContent = t(node.getAttribute("data-i18n"));
    }
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
      node.placeholder = t(node.getAttribute("data-i18n-placeholder"));
    }
    for (const a of document.querySelectorAll("a[data-lang]")) {
      a.href = `?lang=${a.getAttribute("data-lang")}`;
    }
  }

  function presenceText(p) {
    let text = `${p.name}: ${t(p.state)}`;
    if (p.note) text += ` (${p.note})`;
    if (p.until) text += " " + fmt("until {time}", { time: p.until });
    return text;
  }

  return { t, fmt, el, api, when, start, lang, presenceText };
})();
