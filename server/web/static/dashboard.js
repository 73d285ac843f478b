// GuardPost live duty board: a Server-Sent Events stream keeps it current, polling the API is the fallback.
// All data goes into the page as text (textContent), never as HTML.
"use strict";

(() => {
  const STREAM_URL = "/board/stream";
  const REFRESH_MS = 2000;
  const TIMEOUT_MS = 5000;
  // The server sends the whole board at least every 30 s; silence for longer means the stream is stuck.
  const STREAM_SILENCE_MS = 70000;
  const $ = (id) => document.getElementById(id);

  let T = {};
  let timer = null;
  let inFlight = false;
  let lastSuccess = null;
  let source = null;
  let watchdog = null;

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

  function label(key) {
    return T[key] || key;
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const when = new Date(iso);
    const lang = document.documentElement.lang || undefined;
    const sameDay = when.toDateString() === new Date().toDateString();
    return sameDay ? when.toLocaleTimeString(lang) : when.toLocaleString(lang);
  }

  function formatDuration(iso) {
    if (!iso) return "";
    const minutes = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 60000));
    const hours = Math.floor(minutes / 60);
    return hours ? `${hours} ${label("hours")} ${minutes % 60} ${label("minutes")}` : `${minutes} ${label("minutes")}`;
  }

  function verification(guard) {
    const parts = [label(guard.method)];
    if (typeof guard.distance === "number") parts.push(`${label("distance")} ${guard.distance.toFixed(3)}`);
    if (guard.liveness && guard.liveness !== "not_checked") parts.push(`${label("liveness")} ${guard.liveness}`);
    if (guard.reviewed_by) parts.push(`${label("confirmed_by")} ${guard.reviewed_by}`);
    return parts.join(" · ");
  }

  function renderOnDuty(guards) {
    if (!guards.length) return el("p", "muted", label("nobody"));
    const table = el("table", "onduty");
    const body = el("tbody");
    for (const guard of guards) {
      const since = guard.since ? `${formatTime(guard.since)} (${formatDuration(guard.since)})` : "—";
      const tr = row([guard.name || guard.guard_id, since, verification(guard), guard.device_id]);
      tr.dataset.guard = guard.guard_id;
      body.append(tr);
    }
    table.append(headRow([label("guard"), label("since"), label("verified"), label("terminal")]), body);
    return table;
  }

  function renderTerminals(terminals) {
    if (!terminals.length) return el("p", "muted", label("no_terminals"));
    const table = el("table", "terminals");
    const body = el("tbody");
    for (const terminal of terminals) {
      const online = terminal.online ? badge(label("online"), "ok") : badge(label("offline"), "bad");
      let clock = badge(label("clock_unknown"), "warn");
      if (terminal.clock_synced === true) clock = badge(label("clock_synced"), "ok");
      if (terminal.clock_synced === false) clock = badge(label("clock_unsynced"), "warn");
      const depth = terminal.outbox_depth === null || terminal.outbox_depth === undefined ? "—" : terminal.outbox_depth;
      const seen = terminal.last_seen_at ? `${label("seen")} ${formatTime(terminal.last_seen_at)}` : label("never_seen");
      const tr = row([terminal.device_id, online, `${label("outbox")} ${depth}`, clock, seen]);
      tr.dataset.device = terminal.device_id;
      body.append(tr);
      for (const alarm of terminal.alarms || []) body.append(row([badge(label("alarm"), "bad"), alarm], "alarm"));
    }
    table.append(body);
    return table;
  }

  function renderPost(post) {
    const section = el("section", "post");
    section.append(
      el("h4", null, post.post_id === null ? label("no_post") : post.name || post.post_id),
      el("h5", null, `${label("on_duty")} (${post.on_duty.length})`),
      renderOnDuty(post.on_duty),
      el("h5", null, label("terminals")),
      renderTerminals(post.terminals),
    );
    return section;
  }

  function renderSites(sites) {
    const cards = sites.map((site) => {
      const card = el("article", "site");
      card.dataset.site = site.site_id;
      const title = el("h3", null, site.name || site.site_id);
      if (site.name && site.name !== site.site_id) title.append(" ", el("span", "site-id", site.site_id));
      const posts = site.posts && site.posts.length ? site.posts : [{ post_id: null, on_duty: [], terminals: [] }];
      card.append(title, ...posts.map(renderPost));
      return card;
    });
    $("sites").replaceChildren(...(cards.length ? cards : [el("p", "muted", label("no_sites"))]));
  }

  function renderEvents(events, sites) {
    const siteNames = new Map(sites.map((site) => [site.site_id, site.name || site.site_id]));
    const rows = events.map((event) => {
      const tr = row(
        [
          formatTime(event.captured_at),
          siteNames.get(event.site_id) || event.site_id,
          event.guard_name || event.guard_id || label("unknown"),
          label(event.type),
          label(event.method),
          event.match && typeof event.match.distance === "number" ? event.match.distance.toFixed(3) : "—",
        ],
        event.type === "denied" ? "denied" : null,
      );
      tr.dataset.event = event.event_id;
      return tr;
    });
    if (!rows.length) rows.push(row([label("no_events"), "", "", "", "", ""]));
    $("events").replaceChildren(...rows);
  }

  // The session expired or was ended elsewhere: log in again and come back here.
  function toLogin() {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  }

  function setOffline(problem) {
    const banner = $("offline-banner");
    banner.hidden = !problem;
    if (!problem) return;
    const stale = lastSuccess ? ` ${lastSuccess.toLocaleTimeString()}` : " —";
    banner.textContent = `${label("unreachable")}${stale} (${problem})`;
  }

  function setMode(mode) {
    document.body.dataset.live = mode;
    $("live-mode").textContent = label(mode);
  }

  function showBoard(board, events) {
    renderSites(board.sites);
    renderEvents(events, board.sites);
    lastSuccess = new Date();
    $("last-updated").textContent = `${label("updated")} ${lastSuccess.toLocaleTimeString()}`;
    setOffline(null);
    $("board").hidden = false;
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

  async function poll() {
    clearTimeout(timer);
    // The running poll schedules the next one; a second loop would double the load.
    if (inFlight) return;
    inFlight = true;
    let answers = null;
    let failure = null;
    try {
      answers = await Promise.all([getJSON("/api/v1/live"), getJSON("/api/v1/events?limit=20")]);
    } catch (error) {
      failure = error;
    } finally {
      inFlight = false;
    }
    if (failure instanceof AuthError) {
      toLogin();
      return;
    }
    if (failure) setOffline(failure.name === "AbortError" ? "timed out" : failure.message);
    else showBoard(answers[0], answers[1].events);
    // Scheduling after each answer keeps a slow server from piling up requests.
    timer = setTimeout(poll, REFRESH_MS);
  }

  function startPolling() {
    if (source) source.close();
    source = null;
    clearTimeout(watchdog);
    setMode("polling");
    poll();
  }

  function armWatchdog() {
    clearTimeout(watchdog);
    watchdog = setTimeout(startPolling, STREAM_SILENCE_MS);
  }

  function startStream() {
    source = new EventSource(STREAM_URL);
    armWatchdog();
    source.addEventListener("board", (message) => {
      const board = JSON.parse(message.data);
      showBoard(board, board.events);
      setMode("live");
      armWatchdog();
    });
    source.addEventListener("trouble", (message) => setOffline(JSON.parse(message.data).error));
    source.addEventListener("expired", () => {
      source.close();
      toLogin();
    });
    source.onerror = () => {
      // CONNECTING: the browser retries by itself. CLOSED: refused (e.g. 401); polling tells why and acts on it.
      if (source.readyState === EventSource.CLOSED) startPolling();
      else setOffline("reconnecting");
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    T = JSON.parse($("board-text").textContent);
    if (window.EventSource) startStream();
    else startPolling();
  });
})();
