// GuardPost exports page: while an export is queued or running, poll its job and update the row in place.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const OPEN = new Set(["queued", "running"]);
  const BADGE = { done: "ok", failed: "bad", expired: "warn" };

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  function label(table, status) {
    return table.dataset[`status${status.charAt(0).toUpperCase()}${status.slice(1)}`] || status;
  }

  function update(table, row, job) {
    row.dataset.status = job.status;
    const badge = el("span", label(table, job.status), { class: `badge ${BADGE[job.status] || ""}`.trim() });
    row.querySelector(".job-status").replaceChildren(badge);
    const bar = row.querySelector("progress");
    bar.value = job.progress.percent;
    bar.textContent = `${job.progress.percent}%`;
    row.querySelector(".job-count").textContent = `${job.progress.done}/${job.progress.total} ${table.dataset.guards}`;
    const files = [];
    if (job.links.download) files.push(el("a", table.dataset.download, { href: job.links.download }));
    if (job.links.totals) files.push(" · ", el("a", table.dataset.totals, { href: job.links.totals }));
    if (job.error) files.push(el("span", job.error, { class: "error" }));
    row.querySelector(".job-files").replaceChildren(...files);
  }

  async function refresh(table) {
    const open = [...table.querySelectorAll("tr[data-job-id]")].filter((row) => OPEN.has(row.dataset.status));
    if (!open.length) return; // nothing left to follow: stop polling
    try {
      const response = await fetch("/api/v1/exports?mine=1", {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.status === 401) {
        location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
        return;
      }
      if (response.ok) {
        const jobs = new Map((await response.json()).jobs.map((job) => [String(job.id), job]));
        for (const row of open) {
          const job = jobs.get(row.dataset.jobId);
          if (job) update(table, row, job);
        }
      }
    } catch (error) {
      // A lost connection is retried at the next tick; the rows keep their last known state.
    }
    setTimeout(() => refresh(table), REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("export-jobs");
    if (table) setTimeout(() => refresh(table), REFRESH_MS);
  });
})();
