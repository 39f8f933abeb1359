// Omnigate console: a little vanilla JS over the REST API. No build step, no third-party code.
// Every change is an API call with the session cookie and the X-CSRF-Token header.
"use strict";

const body = document.body;
const T = JSON.parse(document.getElementById("i18n").textContent);
const CSRF = body.dataset.csrf;
const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c.nodeType ? c : String(c));
  return node;
}

function flash(message, isError) {
  const box = $("#flash");
  if (!box) return;
  box.textContent = message;
  box.className = isError ? "error" : "ok";
}

async function api(method, url, data) {
  const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = CSRF;
  if (data !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(data);
  }
  const resp = await fetch(url, opts);
  if (resp.status === 204) return null;
  const json = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = (json && json.error) || { message: resp.statusText };
    const fields = err.fields ? " " + Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
    const e = new Error(`${T.error}: ${err.message}${fields}`);
    e.status = resp.status;
    throw e;
  }
  return json;
}

function guard(fn) {
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    try { await fn(ev); } catch (e) { flash(e.message, true); }
  };
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const words = (text) => text.split(/[,，]/).map((s) => s.trim()).filter(Boolean);
const fmt = (iso) => (iso ? String(iso).replace("T", " ").slice(0, 16) : "—");

// -- language ----------------------------------------------------------------------------------------
const lang = $("#lang-select");
if (lang) lang.addEventListener("change", guard(async () => {
  await api("PATCH", "/api/v1/me", { locale: lang.value });
  location.reload();
}));

// -- live updates (server-sent events) ----------------------------------------------------------------
function live(onEvent) {
  if (!window.EventSource) return;
  const source = new EventSource("/admin/stream");
  source.addEventListener("ticket", (ev) => onEvent(JSON.parse(ev.data)));
}

// -- ticket queue ------------------------------------------------------------------------------------
function initQueue() {
  const save = $("#save-view");
  if (save) save.addEventListener("click", guard(async () => {
    const form = new FormData($("#queue-filters"));
    const filters = {};
    for (const [k, v] of form.entries()) if (v) filters[k] = String(v);
    const view = await api("POST", "/api/v1/views", { name: $("#view-name").value || "view", filters });
    location.href = "/admin/tickets?view=" + encodeURIComponent(view.id);
  }));
  const refresh = debounce(async () => {
    const url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    const resp = await fetch(url, { credentials: "same-origin" });
    if (resp.ok) $("#queue-rows").innerHTML = await resp.text(); // server-rendered, autoescaped
    $("#live-banner").hidden = false;
  }, 300);
  live(refresh);
}

// -- ticket page -------------------------------------------------------------------------------------
function initTicket() {
  const number = $("#ticket").dataset.number;
  const base = "/api/v1/tickets/" + encodeURIComponent(number);
  const reload = async () => {
    const resp = await fetch(location.pathname + "?fragment=1", { credentials: "same-origin" });
    if (resp.ok) $("#conversation-box").innerHTML = await resp.text(); // server-rendered, autoescaped
  };
  live((ev) => { if (ev.ticket === number) { reload(); $("#live-banner").hidden = false; } });
  const form = $("#reply-form");
  if (form) form.addEventListener("submit", guard(async () => {
    const text = $("#reply-text").value;
    const type = $("#type-internal").checked ? "internal" : "public";
    await api("POST", base + "/replies", { text, type });
    $("#reply-text").value = "";
    flash(T.saved);
    await reload();
  }));
  for (const b of $$(".mention")) b.addEventListener("click", () => {
    const area = $("#reply-text");
    area.value += (area.value && !area.value.endsWith(" ") ? " " : "") + "@" + b.dataset.name + " ";
    area.focus();
  });
  const props = $("#props-form");
  const snapshot = () => ({
    status: $("#f-status").value,
    priority: $("#f-priority").value,
    assignee: $("#f-assignee").value,
    tags: words($("#f-tags").value).join(","),
  });
  let initial = props ? snapshot() : null;
  if (props) props.addEventListener("submit", guard(async () => {
    // Only what the agent changed: an untouched field must not become an "updated" event.
    const now = snapshot();
    const data = {};
    for (const k of Object.keys(now)) if (now[k] !== initial[k]) data[k] = k === "tags" ? words($("#f-tags").value) : now[k];
    if (!Object.keys(data).length) return;
    await api("PATCH", base, data);
    initial = now;
    flash(T.saved);
    await reload();
  }));
  const macros = $("#macros-data") ? JSON.parse($("#macros-data").textContent) : [];
  const select = $("#macro-select");
  if (select) {
    for (const m of macros) select.append(el("option", { value: m.name, text: m.title || m.name }));
    $("#macro-apply").addEventListener("click", () => {
      const m = macros.find((x) => x.name === select.value);
      if (!m) return;
      const text = typeof m.text === "object" && m.text ? (m.text[body.dataset.locale] || m.text.en || Object.values(m.text)[0] || "") : (m.text || "");
      if (text) $("#reply-text").value = text;
      if (m.status) $("#f-status").value = m.status;
      if (m.priority) $("#f-priority").value = m.priority;
      if (m.tags && m.tags.length) {
        const tags = new Set(words($("#f-tags").value));
        for (const t of m.tags) { if (t.startsWith("-")) tags.delete(t.slice(1)); else tags.add(t); }
        $("#f-tags").value = Array.from(tags).join(", ");
      }
    });
  }
  const q = $("#kb-q");
  if (q) q.addEventListener("input", debounce(guard(async () => {
    const list = $("#kb-results");
    list.replaceChildren();
    if (!q.value.trim()) return;
    const found = await api("GET", "/api/v1/articles?published=true&limit=8&q=" + encodeURIComponent(q.value.trim()));
    for (const a of found.items) {
      list.append(el("li", {}, el("a", { href: a.url || "/kb/" + a.id, target: "_blank", rel: "noopener", text: a.title }), " ",
        el("button", { type: "button", class: "insert", text: T.insert, onclick: () => {
          const area = $("#reply-text");
          area.value += (area.value ? "\n" : "") + `${a.title}: ${location.origin}/kb/${encodeURIComponent(a.id)}`;
        } })));
    }
  })), 250);
}

// -- knowledge base editor --------------------------------------------------------------------------
function initKb() {
  const list = $("#kb-list");
  let articles = [];
  const fields = ["id", "title", "locale", "category"];
  const show = (a) => {
    for (const f of fields) $("#a-" + f).value = a[f] || (f === "locale" ? "zh-CN" : "");
    $("#a-tags").value = (a.tags || []).join(", ");
    for (const f of ["keywords", "phrasings", "synonyms"]) $("#a-" + f).value = (a[f] || []).join("\n");
    $("#a-body").value = a.body || "";
    $("#a-published").checked = a.published !== false;
    preview();
  };
  const render = () => {
    const needle = $("#kb-filter").value.toLowerCase();
    list.replaceChildren(...articles.filter((a) => !needle || (a.title + a.id).toLowerCase().includes(needle)).map((a) =>
      el("li", {}, el("button", { type: "button", class: "link", text: `${a.title} (${a.locale})${a.published === false ? " ✎" : ""}`, onclick: guard(async () => show(await api("GET", "/api/v1/articles/" + encodeURIComponent(a.id)))) }))));
  };
  const load = guard(async () => {
    articles = [];
    let next = null;
    do {
      const page = await api("GET", "/api/v1/articles?limit=200" + (next ? "&cursor=" + encodeURIComponent(next) : ""));
      articles.push(...page.items);
      next = page.next;
    } while (next && articles.length < 2000);
    render();
  });
  const preview = debounce(guard(async () => {
    const out = await api("POST", "/api/v1/articles/preview", { body: $("#a-body").value });
    $("#a-preview").innerHTML = out.html; // rendered with raw HTML off and cleaned by nh3 on the server
  }), 250);
  $("#a-body").addEventListener("input", preview);
  $("#kb-filter").addEventListener("input", render);
  $("#kb-new").addEventListener("click", () => show({ published: false }));
  $("#kb-form").addEventListener("submit", guard(async () => {
    const id = $("#a-id").value.trim();
    const article = {
      id, title: $("#a-title").value, locale: $("#a-locale").value, category: $("#a-category").value,
      tags: words($("#a-tags").value), keywords: lines($("#a-keywords").value),
      phrasings: lines($("#a-phrasings").value), synonyms: lines($("#a-synonyms").value),
      body: $("#a-body").value, published: $("#a-published").checked,
    };
    const saved = await api("PUT", "/api/v1/articles/" + encodeURIComponent(id), article);
    flash(`${T.saved} (${saved.outcome || ""})`);
    load();
  }));
  $("#a-delete").addEventListener("click", guard(async () => {
    await api("DELETE", "/api/v1/articles/" + encodeURIComponent($("#a-id").value.trim()));
    flash(T.saved);
    load();
  }));
  load();
}

// -- matching tuning --------------------------------------------------------------------------------
function initMatching() {
  let current = null;
  const slider = $("#try-threshold");
  const out = $("#try-threshold-value");
  const proposed = () => {
    const s = { threshold: Number(slider.value) };
    const max = Number($("#try-max").value);
    if (max) s.max_suggestions = max;
    if (current && current.locale_thresholds && Object.keys(current.locale_thresholds).length) {
      // One slider moves every locale's threshold by the same amount, so the comparison stays fair.
      const delta = s.threshold - current.threshold;
      s.locale_thresholds = Object.fromEntries(Object.entries(current.locale_thresholds).map(([k, v]) => [k, Math.min(100, Math.max(0, v + delta))]));
    }
    return s;
  };
  const table = (node, result) => {
    node.replaceChildren(el("tr", {}, ...["#", T.title, T.score, T.suggested, T.explanation].map((h) => el("th", { text: h }))));
    result.items.forEach((m, i) => node.append(el("tr", { class: m.suggested ? "hit" : "miss", "data-id": m.id },
      el("td", { text: i + 1 }), el("td", { text: m.title }), el("td", { text: Number(m.score).toFixed(1) }),
      el("td", { text: m.suggested ? "✓" : "" }), el("td", { class: "why", text: JSON.stringify(m.explanation || {}) }))));
  };
  const run = guard(async () => {
    const q = $("#try-q").value.trim();
    if (!q) return;
    const data = { q, settings: proposed() };
    if ($("#try-locale").value) data.locale = $("#try-locale").value;
    const res = await api("POST", "/api/v1/articles/match", data);
    table($("#try-current"), res.current);
    table($("#try-proposed"), res.proposed || res.current);
    $("#cur-threshold").textContent = `(${T.threshold} ${res.current.threshold})`;
    $("#prop-threshold").textContent = `(${T.threshold} ${(res.proposed || res.current).threshold})`;
  });
  slider.addEventListener("input", () => { out.textContent = slider.value; });
  slider.addEventListener("change", run);
  $("#try-form").addEventListener("submit", run);
  $("#impact-form").addEventListener("submit", guard(async () => {
    const res = await api("POST", "/api/v1/settings/matching/impact", { n: Number($("#impact-n").value) || 200, settings: proposed() });
    const node = $("#impact");
    node.replaceChildren(el("tr", {}, el("th"), el("th", { text: T.current }), el("th", { text: T.proposed })),
      el("tr", {}, el("td", { text: `${res.queries} ${T.queries}: ${T.would_suggest}` }), el("td", { text: res.current.suggested }), el("td", { text: res.proposed.suggested })),
      el("tr", {}, el("td", { text: `${res.deflections} ${T.would_deflect}` }), el("td", { text: res.current.deflected }), el("td", { text: res.proposed.deflected })));
  }));
  $("#save-settings").addEventListener("click", guard(async () => {
    current = await api("PUT", "/api/v1/settings/matching", proposed());
    flash(T.saved);
    run();
  }));
  guard(async () => {
    current = await api("GET", "/api/v1/settings/matching");
    slider.value = current.threshold;
    out.textContent = current.threshold;
    $("#try-max").value = current.max_suggestions;
  })();
}

// -- JSON collection editor (rules, routing, SLA, teams, macros, webhooks) ---------------------------
function initJsonEditors() {
  for (const box of $$(".json-editor")) {
    const key = box.dataset.key || "id";
    const [cMethod, cUrl] = box.dataset.create.split(" ");
    const [uMethod, uUrl] = box.dataset.update.split(" ");
    const url = (tpl, item) => tpl.replace(/\{(\w+)\}/, (_, k) => encodeURIComponent(item[k]));
    const strip = (item) => { const copy = { ...item }; if (key === "id") delete copy.id; delete copy.created_at; delete copy.updated_at; return copy; };
    const load = async () => {
      let data;
      try { data = await api("GET", box.dataset.list); } catch (e) {
        box.replaceChildren(el("p", { class: "note", text: e.status === 404 ? T.not_available : e.message }));
        return;
      }
      const items = data.items || [];
      const rows = items.map((item) => {
        const area = el("textarea", { rows: 6, class: "json" });
        area.value = JSON.stringify(strip(item), null, 2);
        return el("div", { class: "json-item" }, el("strong", { text: item[key] || item.name || "" }), area,
          el("button", { type: "button", text: T.save, onclick: guard(async () => { await api(uMethod, url(uUrl, item), JSON.parse(area.value)); flash(T.saved); load(); }) }),
          el("button", { type: "button", text: T.delete, onclick: guard(async () => { await api("DELETE", url(box.dataset.delete, item), undefined); flash(T.saved); load(); }) }));
      });
      const fresh = el("textarea", { rows: 6, class: "json new" });
      fresh.value = box.dataset.template || "{}";
      const result = el("pre", { class: "out" });
      rows.push(el("div", { class: "json-item" }, el("strong", { text: T.create }), fresh,
        el("button", { type: "button", class: "create", text: T.create, onclick: guard(async () => {
          const value = JSON.parse(fresh.value);
          const made = await api(cMethod, url(cUrl, value), value);
          if (made && made.secret) result.textContent = `${T.shown_once} ${made.secret}`;
          flash(T.saved);
          load().then(() => box.append(result));
        }) })));
      box.replaceChildren(...rows);
    };
    load();
  }
  for (const pre of $$("pre[data-get]")) {
    api("GET", pre.dataset.get).then((d) => { pre.textContent = JSON.stringify(d, null, 2); }, () => { pre.textContent = T.not_available; });
  }
}

function initRules() {
  $("#rules-dry").addEventListener("submit", guard(async () => {
    const data = { text: $("#dry-text").value, channel: $("#dry-channel").value, locale: $("#dry-locale").value };
    if ($("#dry-at").value) data.at = $("#dry-at").value;
    $("#dry-result").textContent = JSON.stringify(await api("POST", "/api/v1/rules/dry-run", data), null, 2);
  }));
}

// -- templates ----------------------------------------------------------------------------------------
function initTemplates() {
  const pick = () => ["event", "channel", "locale"].map((k) => encodeURIComponent($("#tpl-" + k).value)).join("/");
  const parts = () => ({ subject: $("#tpl-subject").value, text: $("#tpl-text").value, html: $("#tpl-html").value });
  const preview = debounce(guard(async () => {
    const res = await api("POST", "/api/v1/templates/preview", { locale: $("#tpl-locale").value, parts: parts() });
    $("#pv-subject").textContent = res.rendered.subject || "";
    $("#pv-text").textContent = res.rendered.text || "";
    $("#pv-html").srcdoc = res.rendered.html || ""; // sandboxed frame: no scripts, no same origin
    $("#pv-errors").textContent = Object.entries(res.errors).map(([k, v]) => `${k}: ${v}`).join("\n");
  }), 250);
  const open = guard(async () => {
    const tpl = await api("GET", "/api/v1/templates/" + pick());
    for (const p of ["subject", "text", "html"]) $("#tpl-" + p).value = tpl.parts[p] || "";
    $("#tpl-state").textContent = tpl.overridden ? T.overridden : "";
    preview();
  });
  for (const p of ["subject", "text", "html"]) $("#tpl-" + p).addEventListener("input", preview);
  $("#tpl-save").addEventListener("click", guard(async () => { await api("PUT", "/api/v1/templates/" + pick(), { parts: parts() }); flash(T.saved); open(); }));
  $("#tpl-revert").addEventListener("click", guard(async () => { await api("DELETE", "/api/v1/templates/" + pick()); flash(T.saved); open(); }));
  guard(async () => {
    const cat = await api("GET", "/api/v1/templates");
    const fill = (id, values, chosen) => { const s = $(id); s.replaceChildren(...values.map((v) => el("option", { value: v, text: v, selected: v === chosen }))); s.addEventListener("change", open); };
    fill("#tpl-event", cat.events, cat.events.includes("public_reply") ? "public_reply" : cat.events[0]);
    fill("#tpl-channel", cat.channels, cat.channels.includes("email") ? "email" : cat.channels[0]);
    fill("#tpl-locale", cat.locales, body.dataset.locale);
    open();
  })();
}

// -- channels, agents, tokens, audit --------------------------------------------------------------------
function initChannels() {
  guard(async () => {
    const data = await api("GET", "/api/v1/channels");
    $("#channels tbody").replaceChildren(...data.items.map((c) => el("tr", {}, el("td", { text: c.channel }), el("td", { text: c.account }),
      el("td", { text: c.mode }), el("td", { text: c.endpoint || "—" }), el("td", { text: fmt(c.last_message_in) }),
      el("td", { class: c.last_error ? "error" : "", text: c.last_error ? `${fmt(c.last_error.at)} ${c.last_error.error}` : "—" }))));
  })();
  initJsonEditors();
}

function initAgents() {
  const loadAccounts = guard(async () => {
    const data = await api("GET", "/api/v1/accounts");
    $("#accounts tbody").replaceChildren(...data.items.map((a) => {
      const role = el("select", {}, ...["agent", "viewer", "admin"].map((r) => el("option", { text: r, selected: r === a.role })));
      const teams = el("input", { value: a.teams.join(", ") });
      const disabled = el("input", { type: "checkbox", checked: a.disabled });
      return el("tr", { "data-name": a.name }, el("td", { text: a.name }), el("td", {}, role), el("td", { text: a.email || "" }), el("td", {}, teams), el("td", {}, disabled),
        el("td", {}, el("button", { type: "button", text: T.save, onclick: guard(async () => {
          await api("PATCH", "/api/v1/accounts/" + encodeURIComponent(a.name), { role: role.value, teams: words(teams.value), disabled: disabled.checked });
          flash(T.saved); loadAccounts();
        }) })));
    }));
  });
  $("#account-form").addEventListener("submit", guard(async () => {
    const data = { name: $("#acc-name").value.trim(), role: $("#acc-role").value, teams: words($("#acc-teams").value) };
    if ($("#acc-email").value) data.email = $("#acc-email").value;
    const made = await api("POST", "/api/v1/accounts", data);
    $("#setup-link").textContent = made.setup_url ? `${T.shown_once} ${made.setup_url}` : T.saved;
    loadAccounts();
  }));
  const loadTokens = guard(async () => {
    const data = await api("GET", "/api/v1/tokens");
    $("#tokens tbody").replaceChildren(...data.items.map((k) => el("tr", { class: k.revoked ? "revoked" : "" }, el("td", { text: k.name }), el("td", { text: k.role }),
      el("td", { text: k.scopes.join(" ") }), el("td", { text: fmt(k.created_at) }), el("td", { text: fmt(k.last_used_at) }),
      el("td", {}, k.revoked ? T.revoked : el("button", { type: "button", text: T.revoke, onclick: guard(async () => { await api("DELETE", "/api/v1/tokens/" + k.id); loadTokens(); }) })))));
  });
  $("#token-form").addEventListener("submit", guard(async () => {
    const made = await api("POST", "/api/v1/tokens", { name: $("#tok-name").value, role: $("#tok-role").value, scopes: $("#tok-scopes").value.split(/\s+/).filter(Boolean) });
    $("#token-once").textContent = `${T.shown_once} ${made.token}`;
    loadTokens();
  }));
  loadAccounts();
  loadTokens();
  initJsonEditors();
}

function initAudit() {
  const load = guard(async () => {
    const params = new URLSearchParams({ limit: "200" });
    if ($("#au-actor").value) params.set("actor", $("#au-actor").value);
    if ($("#au-action").value) params.set("action", $("#au-action").value);
    const data = await api("GET", "/api/v1/audit?" + params);
    $("#audit tbody").replaceChildren(...data.items.map((a) => el("tr", {}, el("td", { text: fmt(a.at) }), el("td", { text: a.actor }),
      el("td", { text: a.action + (a.outcome && a.outcome !== "ok" ? ` (${a.outcome})` : "") }), el("td", { text: a.target || "" }),
      el("td", { class: "why", text: a.before || a.after ? `${JSON.stringify(a.before)} → ${JSON.stringify(a.after)}` : "" }))));
  });
  $("#audit-filter").addEventListener("submit", load);
  load();
}

// -- dashboard: charts drawn as inline SVG ----------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777"];

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function chartFrame(target, label) {
  const root = svg("svg", { viewBox: "0 0 420 200", role: "img", "aria-label": label, class: "svg-chart" });
  target.replaceChildren(root);
  return root;
}

function barChart(target, labels, series, label) {
  const root = chartFrame(target, label);
  const n = labels.length || 1;
  const totals = labels.map((_, i) => series.reduce((s, x) => s + (x.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const w = 380 / n;
  labels.forEach((lab, i) => {
    let y = 170;
    series.forEach((s, k) => {
      const h = ((s.values[i] || 0) / max) * 150;
      if (h > 0) root.append(svg("rect", { x: 30 + i * w + 1, y: y - h, width: Math.max(1, w - 2), height: h, fill: COLORS[k % COLORS.length], class: "bar" }, undefined));
      y -= h;
    });
    if (n <= 16 || i % Math.ceil(n / 8) === 0) root.append(svg("text", { x: 30 + i * w + w / 2, y: 185, "text-anchor": "middle", class: "tick" }, lab.slice(5)));
  });
  root.append(svg("text", { x: 2, y: 20, class: "tick" }, String(max)));
  series.forEach((s, k) => root.append(svg("text", { x: 40 + k * 90, y: 12, fill: COLORS[k % COLORS.length], class: "legend" }, s.name)));
}

function lineChart(target, labels, series, label) {
  const root = chartFrame(target, label);
  const values = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = Math.max(1, ...values);
  const n = Math.max(1, labels.length - 1);
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => (v === null ? null : [30 + (i / n) * 380, 170 - (v / max) * 150])).filter(Boolean);
    if (pts.length) root.append(svg("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: COLORS[k], "stroke-width": 2, class: "line" }));
    pts.forEach((p) => root.append(svg("circle", { cx: p[0], cy: p[1], r: 2.5, fill: COLORS[k], class: "point" })));
    root.append(svg("text", { x: 40 + k * 120, y: 12, fill: COLORS[k], class: "legend" }, s.name));
  });
  root.append(svg("text", { x: 2, y: 24, class: "tick" }, max.toFixed(1)));
  labels.forEach((lab, i) => { if (labels.length <= 16 || i % Math.ceil(labels.length / 8) === 0) root.append(svg("text", { x: 30 + (i / n) * 380, y: 185, "text-anchor": "middle", class: "tick" }, lab.slice(5))); });
}

function gauge(target, rate, caption) {
  const root = chartFrame(target, caption);
  root.append(svg("rect", { x: 30, y: 80, width: 360, height: 30, fill: "#e5e7eb", rx: 4 }));
  if (rate !== null) root.append(svg("rect", { x: 30, y: 80, width: 360 * rate, height: 30, fill: COLORS[1], rx: 4, class: "bar" }));
  root.append(svg("text", { x: 210, y: 60, "text-anchor": "middle", class: "big" }, rate === null ? T.no_data : `${(rate * 100).toFixed(1)}%`));
  root.append(svg("text", { x: 210, y: 140, "text-anchor": "middle", class: "tick" }, caption));
}

function initDashboard() {
  const today = new Date();
  const from = new Date(today.getTime() - 13 * 86400000);
  $("#d-to").value = today.toISOString().slice(0, 10);
  $("#d-from").value = from.toISOString().slice(0, 10);
  const draw = guard(async () => {
    const d = await api("GET", `/api/v1/dashboard?from=${$("#d-from").value}&to=${$("#d-to").value}`);
    $("#d-source").textContent = `${d.from} – ${d.to} · ${d.tickets} ${T.tickets}`;
    barChart($("#c-volume"), d.days, Object.entries(d.volume_by_channel).map(([name, values]) => ({ name, values })), T.volume);
    lineChart($("#c-times"), d.days, [{ name: "FRT", values: d.frt_hours }, { name: "ART", values: d.art_hours }], T.frt_art);
    barChart($("#c-csat"), ["0000-1", "0000-2", "0000-3", "0000-4", "0000-5"].map((x) => x), [{ name: d.csat.average === null ? T.no_data : `avg ${d.csat.average}`, values: [1, 2, 3, 4, 5].map((n) => d.csat.distribution[String(n)]) }], T.csat);
    gauge($("#c-deflection"), d.deflection.rate, `${d.deflection.deflections} / ${d.deflection.deflections + d.deflection.tickets}`);
    gauge($("#c-sla"), d.sla.rate, `${d.sla.met} / ${d.sla.tracked}`);
    barChart($("#c-backlog"), d.backlog.map((b) => "00000" + b.bucket), [{ name: T.backlog, values: d.backlog.map((b) => b.count) }], T.backlog);
    body.dataset.chartsReady = "1";
  });
  $("#range").addEventListener("submit", draw);
  draw();
}

const PAGES = {
  tickets: () => ($("#ticket") ? initTicket() : initQueue()),
  kb: initKb,
  matching: initMatching,
  rules: () => { initJsonEditors(); initRules(); },
  routing: initJsonEditors,
  templates: initTemplates,
  channels: initChannels,
  agents: initAgents,
  audit: initAudit,
  dashboard: initDashboard,
};
(PAGES[body.dataset.page] || (() => {}))();
