// The jobs list: one page of the API's list, filtered and paged as the API allows, kept
// current by the user's event stream (GET /api/v1/events). No polling: the list is loaded
// when the stream says it is watching (`ready`), and when it asks to (`reset`).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const { api, stream, el, badge, progressEl, timeEl, show } = window.jobkit;
  const PAGE = 20;
  const form = document.getElementById("filters");
  const body = document.querySelector("#jobs tbody");
  const empty = document.getElementById("empty");
  const live = document.getElementById("live");
  const message = document.getElementById("message");
  const newer = document.getElementById("newer");
  const older = document.getElementById("older");
  const rows = new Map(); // job id -> { row, version }
  let cursors = [null]; // the cursor of each page seen, for going back
  let next = null;

  const params = new URLSearchParams(location.search);
  for (const name of ["status", "type", "sort"]) {
    if (params.get(name)) form.elements[name].value = params.get(name);
  }

  function filters() {
    const chosen = {};
    for (const name of ["status", "type", "sort"]) {
      const value = form.elements[name].value.trim();
      if (value) chosen[name] = value;
    }
    return chosen;
  }

  function row(job) {
    const short = job.id.slice(0, 8);
    return el("tr", { "data-id": job.id },
      el("td", { class: "id", "data-label": "Job" },
        el("a", { href: "/jobs/" + job.id, "aria-label": "Job " + short + ", " + job.type }, short)),
      el("td", { "data-label": "Type" }, job.type),
      el("td", { "data-label": "Status" }, badge(job.status)),
      el("td", { "data-label": "Progress" }, progressEl(job)),
      el("td", { "data-label": "Attempts" }, job.attempts + " / " + job.maxAttempts),
      el("td", { "data-label": "Created" }, timeEl(job.createdAt, true)));
  }

  function put(job, where) {
    const known = rows.get(job.id);
    if (known && known.version >= job.version) return;
    const fresh = row(job);
    if (known) known.row.replaceWith(fresh);
    else if (where === "top") body.prepend(fresh);
    else body.append(fresh);
    rows.set(job.id, { row: fresh, version: job.version });
    empty.hidden = rows.size > 0;
  }

  function remove(id) {
    const known = rows.get(id);
    if (!known) return;
    known.row.remove();
    rows.delete(id);
    empty.hidden = rows.size > 0;
  }

  // A job the stream announces that this page does not show: it belongs at the top of the
  // first page of the newest-first order, when it matches the filters.
  function belongsOnTop(job) {
    const chosen = filters();
    if (cursors.length > 1 || (chosen.sort && chosen.sort !== "-createdAt")) return false;
    if (chosen.status && chosen.status !== job.status) return false;
    return !(chosen.type && chosen.type !== job.type);
  }

  async function load() {
    const query = new URLSearchParams({ ...filters(), limit: String(PAGE) });
    const cursor = cursors[cursors.length - 1];
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await api("GET", "/api/v1/jobs?" + query);
      body.replaceChildren();
      rows.clear();
      for (const job of page.jobs) put(job, "bottom");
      empty.hidden = page.jobs.length > 0;
      next = page.nextCursor;
      older.hidden = !next;
      newer.hidden = cursors.length < 2;
      show(message, "");
      performance.mark("jobkit:listed"); // for benchmarks/page.py
    } catch (error) {
      show(message, error.message);
    }
  }

  function onEvent(name, data) {
    if (name === "ready" || name === "reset") load();
    else if (name === "deleted") remove(data.id);
    else if (name === "job") {
      if (rows.has(data.id)) {
        const chosen = filters();
        if (chosen.status && chosen.status !== data.status) remove(data.id);
        else put(data);
      } else if (belongsOnTop(data)) {
        put(data, "top");
        if (rows.size > PAGE) remove(body.lastElementChild.getAttribute("data-id"));
      }
    }
  }

  function onState(state, problem) {
    if (state === "open") {
      live.textContent = "Live";
      performance.mark("jobkit:live");
    } else if (state === "reconnecting") live.textContent = "Reconnecting…";
    else {
      live.textContent = "Not live";
      if (problem) show(message, problem.message);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    history.replaceState(null, "", "?" + new URLSearchParams(filters()));
    load();
  });
  older.addEventListener("click", () => { cursors.push(next); load(); });
  newer.addEventListener("click", () => { cursors.pop(); load(); });

  window.jobkitStream = stream("/api/v1/events", onEvent, onState);
});
