// GuardPost duty board: polls the API and renders it; all data goes into the page as text, never as HTML.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const TIMEOUT_MS = 5000;
  const $ = (id) => document.getElementById(id);

  let timer = null;
  let inFlight = false;
  let lastSuccess = null;

  class AuthError extends Error {}

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function row(cells, className) {
    const tr = el("tr", className);
    for (const cell of cells) {
      const td = el("td");
      if (cell instanceof Node) td.append(cell);
      else td.textContent = cell === null || cell === undefined ? "" : String(cell);
      tr.append(td);
    }
    return tr;
  }

  function headRow(labels) {
    const thead = el("thead");
    const tr = el("tr");
    for (const label of labels) tr.append(el("th", null, label));
    thead.append(tr);
    return thead;
  }

  function badge(text, kind) {
    return el("span", `badge ${kind}`, text);
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const when = new Date(iso);
    const sameDay = when.toDateString() === new Date().toDateString();
    return sameDay ? when.toLocaleTimeString() : when.toLocaleString();
  }

  function formatDuration(iso) {
    if (!iso) return "";
    const minutes = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 60000));
    const hours = Math.floor(minutes / 60);
    return hours ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
  }

  async function getJSON(path) {
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(path, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        signal: controller.signal,
      });
      if (response.status === 401) throw new AuthError("session ended");
      if (!response.ok) throw new Error(`${path} answered HTTP ${response.status}`);
      return await response.json();
    } finally {
      clearTimeout(timeout);
    }
  }

  function renderOnDuty(guards) {
    if (!guards.length) return el("p", "muted", "Nobody on duty.");
    const table = el("table");
    const body = el("tbody");
    for (const guard of guards) {
      const since = guard.since ? `${formatTime(guard.since)} (${formatDuration(guard.since)})` : "—";
      body.append(row([guard.name || guard.guard_id, since, guard.method, guard.device_id]));
    }
    table.append(headRow(["Guard", "Since", "Method", "Terminal"]), body);
    return table;
  }

  function renderTerminals(terminals) {
    if (!terminals.length) return el("p", "muted", "No terminals registered.");
    const table = el("table");
    const body = el("tbody");
    for (const terminal of terminals) {
      const online = terminal.online ? badge("online", "ok") : badge("offline", "bad");
      let clock = badge("clock unknown", "warn");
      if (terminal.clock_synced === true) clock = badge("clock synced", "ok");
      if (terminal.clock_synced === false) clock = badge("clock not synced", "warn");
      const outbox = terminal.outbox_depth === null || terminal.outbox_depth === undefined
        ? "outbox —" : `outbox ${terminal.outbox_depth}`;
      const seen = terminal.last_seen_at ? `seen ${formatTime(terminal.last_seen_at)}` : "never seen";
      body.append(row([terminal.device_id, online, outbox, clock, seen]));
      for (const alarm of terminal.alarms || []) {
        body.append(row([badge("alarm", "bad"), alarm], "alarm"));
      }
    }
    table.append(body);
    return table;
  }

  function renderSites(sites) {
    const cards = sites.map((site) => {
      const card = el("article", "site");
      const title = el("h3", null, site.name || site.site_id);
      if (site.name && site.name !== site.site_id) title.append(" ", el("span", "site-id", site.site_id));
      card.append(
        title,
        el("h4", null, `On duty (${site.on_duty.length})`),
        renderOnDuty(site.on_duty),
        el("h4", null, "Terminals"),
        renderTerminals(site.terminals),
      );
      return card;
    });
    $("sites").replaceChildren(...(cards.length ? cards : [el("p", "muted", "No sites registered.")]));
  }

  function renderEvents(events, sites) {
    const siteNames = new Map(sites.map((site) => [site.site_id, site.name || site.site_id]));
    const rows = events.map((event) => row(
      [
        formatTime(event.captured_at),
        siteNames.get(event.site_id) || event.site_id,
        event.guard_name || event.guard_id || "unknown",
        event.type.replace("_", " "),
        event.method,
        event.match && typeof event.match.distance === "number" ? event.match.distance.toFixed(3) : "—",
      ],
      event.type === "denied" ? "denied" : null,
    ));
    if (!rows.length) rows.push(row(["No events yet.", "", "", "", "", ""]));
    $("events").replaceChildren(...rows);
  }

  // The session expired or was ended elsewhere: log in again and come back here.
  function toLogin() {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  }

  function setOffline(error) {
    const banner = $("offline-banner");
    banner.hidden = !error;
    if (!error) return;
    const stale = lastSuccess ? ` Showing data from ${lastSuccess.toLocaleTimeString()}.` : "";
    banner.textContent = `Cannot reach the server (${error.message}); retrying every ${REFRESH_MS / 1000} s.${stale}`;
  }

  function showBoard(live, events) {
    renderSites(live.sites);
    renderEvents(events.events, live.sites);
    lastSuccess = new Date();
    $("last-updated").textContent = `Updated ${lastSuccess.toLocaleTimeString()}`;
    setOffline(null);
    $("board").hidden = false;
  }

  async function refresh() {
    clearTimeout(timer);
    // The running refresh schedules the next one; a second loop would double the load.
    if (inFlight) return;
    inFlight = true;
    let answers = null;
    let failure = null;
    try {
      answers = await Promise.all([
        getJSON("/api/v1/live"),
        getJSON("/api/v1/events?limit=20"),
      ]);
    } catch (error) {
      failure = error;
    } finally {
      inFlight = false;
    }
    if (failure instanceof AuthError) {
      toLogin();
      return;
    }
    if (failure) setOffline(failure.name === "AbortError" ? new Error("timed out") : failure);
    else showBoard(...answers);
    // Scheduling after each answer keeps a slow server from piling up requests.
    timer = setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", refresh);
})();
