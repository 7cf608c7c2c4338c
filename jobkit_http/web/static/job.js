// One job: its status and progress live from its event stream (GET /jobs/{id}/events), its
// attempts as a timeline, its result, and the actions its state allows. The whole job is
// read again only when the stream shows that its status or attempts moved; progress alone
// is drawn from the event itself. No polling.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const { api, stream, el, badge, when, timeEl, show, percent, token } = window.jobkit;
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (name) => document.getElementById(name);
  const live = $("live");
  const message = $("message");
  let job = null; // the last whole job read
  let seen = null; // the last status event
  let resultShown = null;
  let following = null;

  $("title").textContent = "Job " + id.slice(0, 8);
  document.title = "Job " + id.slice(0, 8) + " · jobkit";

  function facts(doc) {
    const list = $("facts");
    const pairs = [
      ["Id", el("code", {}, doc.id)],
      ["Type", doc.type],
      ["Created", timeEl(doc.createdAt)],
      ["Updated", timeEl(doc.updatedAt)],
      ["Attempts", doc.attempts + " of " + doc.maxAttempts],
      ["Priority", doc.priority],
      ["Queue", doc.queue],
    ];
    if (doc.status === "pending") pairs.push(["Runs at", timeEl(doc.runAt)]);
    if (doc.input) pairs.push(["Document", doc.input.filename + " (" + doc.input.size + " bytes)"]);
    if (doc.params && doc.params.instructions) pairs.push(["Instructions", doc.params.instructions]);
    list.replaceChildren(...pairs.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }

  function progress(state) {
    const box = $("progress-box");
    const share = percent(state.progress);
    box.hidden = state.status !== "processing" || share === null;
    if (share === null) return;
    $("progress").value = share / 100;
    const said = state.progress.message ? " — " + state.progress.message : "";
    $("progress-label").textContent = "Progress: " + share + "%" + said;
  }

  function entry(attempt) {
    const outcome = attempt.outcome || "running";
    const parts = [
      el("strong", {}, "Attempt " + attempt.attempt), " ", badge(outcome), " ",
      el("span", { class: "when" }, when(attempt.startedAt) +
        (attempt.endedAt ? " → " + when(attempt.endedAt) : "")),
    ];
    const item = el("li", {}, el("div", {}, ...parts));
    if (attempt.error) {
      item.append(el("div", {},
        el("span", { class: "error-code" }, attempt.error.code), ": ", attempt.error.message));
    }
    if (attempt.nextRunAt) item.append(el("div", { class: "when" }, "Next try at " + when(attempt.nextRunAt)));
    return item;
  }

  function actions(status) {
    $("cancel").hidden = status !== "pending";
    $("retry").hidden = status !== "failed";
    $("delete").hidden = !["completed", "failed", "cancelled"].includes(status);
  }

  function render(doc) {
    job = doc;
    $("job").hidden = false;
    $("status").replaceWith(Object.assign(badge(doc.status), { id: "status" }));
    facts(doc);
    progress(doc);
    actions(doc.status);
    $("timeline").replaceChildren(...doc.history.map(entry).reverse());
    $("no-attempts").hidden = doc.history.length > 0;
    $("error").hidden = !doc.error || doc.status === "completed";
    if (doc.error) $("error-text").textContent = doc.error.code + ": " + doc.error.message;
    $("result").hidden = !doc.resultUrl;
    if (doc.resultUrl && resultShown !== doc.resultUrl) showResult(doc.resultUrl);
  }

  // The result document, readably: objects as term lists, arrays as lists, text as text.
  function readable(value, depth) {
    if (value === null || typeof value !== "object") return String(value);
    if (depth > 6) return JSON.stringify(value);
    if (Array.isArray(value)) return el("ol", {}, ...value.map((v) => el("li", {}, readable(v, depth + 1))));
    return el("dl", {}, ...Object.entries(value).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, readable(v, depth + 1))]));
  }

  async function showResult(url) {
    resultShown = url;
    try {
      const doc = await api("GET", url);
      $("result-body").replaceChildren(readable(doc, 0));
    } catch (error) {
      $("result-body").textContent = error.message;
    }
  }

  async function download() {
    const response = await fetch(job.resultUrl, { headers: { Authorization: "Bearer " + (await token()) } });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      show(message, problem.detail || "The result could not be read (HTTP " + response.status + ").");
      return;
    }
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: "job-" + id + "-result.json" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  async function reload() {
    try {
      render(await api("GET", "/api/v1/jobs/" + id));
    } catch (error) {
      show(message, error.message);
      if (error.status === 404) { following.close(); live.textContent = ""; }
    }
  }

  function onEvent(name, data) {
    if (name === "status") {
      const moved = !seen || !job || seen.status !== data.status || seen.attempts !== data.attempts
        || seen.nextRunAt !== data.nextRunAt || seen.resultUrl !== data.resultUrl;
      seen = data;
      if (moved) reload();
      else progress(data);
      $("status").replaceWith(Object.assign(badge(data.status), { id: "status" }));
      actions(data.status);
    } else if (name === "deleted") {
      show(message, "This job was deleted.", true);
      $("job").hidden = true;
    }
  }

  function onState(state, problem) {
    if (state === "open") live.textContent = "Live";
    else if (state === "reconnecting") live.textContent = "Reconnecting…";
    else {
      live.textContent = seen && ["completed", "failed", "cancelled"].includes(seen.status) ? "Finished" : "";
      if (problem) show(message, problem.message);
    }
  }

  async function act(button, method, path, after) {
    button.disabled = true;
    show(message, "");
    try {
      const answer = await api(method, path);
      after(answer);
    } catch (error) {
      show(message, error.message); // the API's refusal, in its own words
    } finally {
      button.disabled = false;
    }
  }

  $("cancel").addEventListener("click", (e) =>
    act(e.currentTarget, "DELETE", "/api/v1/jobs/" + id, (doc) => render(doc)));
  $("retry").addEventListener("click", (e) =>
    act(e.currentTarget, "PUT", "/api/v1/jobs/" + id + "/retry", (doc) => {
      render(doc);
      seen = null; // the new attempts may fail as the last did: their events must still show
      following.reopen(); // the stream ended with the failure: follow the new attempt
    }));
  $("delete").addEventListener("click", (e) => {
    if (!confirm("Delete this job and its files?")) return;
    act(e.currentTarget, "DELETE", "/api/v1/jobs/" + id + "/record", () => location.assign("/"));
  });
  $("download").addEventListener("click", download);

  following = stream("/api/v1/jobs/" + id + "/events", onEvent, onState);
  window.jobkitStream = following;
});
