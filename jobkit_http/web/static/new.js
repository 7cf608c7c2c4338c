// A new job: the PDF and its options, uploaded with progress (POST /api/v1/pdf-processing,
// or, above the service's `directUploadAbove` bytes, to a signed upload URL and then
// POST /api/v1/jobs naming it); then the job's own page follows it live. A refusal shows
// the API's problem, field by field.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const { config, api, upload, send, show, el, ApiError } = window.jobkit;
  const form = document.getElementById("upload");
  const message = document.getElementById("message");
  const fieldErrors = document.getElementById("field-errors");
  const box = document.getElementById("upload-box");
  const bar = document.getElementById("upload-progress");
  const label = document.getElementById("upload-label");
  const submit = document.getElementById("submit");

  function refuse(text, errors) {
    show(message, text);
    fieldErrors.replaceChildren(...(errors || []).map((e) => el("li", {}, e.field + ": " + e.message)));
    fieldErrors.hidden = !(errors && errors.length);
    message.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    refuse("");
    const file = form.elements.file.files[0];
    if (!file) return refuse("Choose a PDF document to analyse.");
    const fields = {};
    for (const name of ["instructions", "schema", "priority"]) {
      const value = form.elements[name].value.trim();
      if (value) fields[name] = value;
    }
    const runAt = form.elements.runAt.value;
    if (runAt) fields.runAt = new Date(runAt).toISOString(); // local time, as an instant
    submit.disabled = true;
    box.hidden = false;
    bar.value = 0;
    label.textContent = "Uploading…";
    const progress = (sent, total) => {
      bar.value = sent / total;
      label.textContent = "Uploading: " + Math.round((100 * sent) / total) + "%";
    };
    try {
      const accepted = file.size > config.directUploadAbove
        ? await direct(file, fields, progress)
        : await upload("/api/v1/pdf-processing", formOf(file, fields), progress);
      bar.value = 1;
      label.textContent = "Uploaded. Opening the job…";
      location.assign("/jobs/" + accepted.id);
    } catch (error) {
      box.hidden = true;
      refuse(error.message, error.problem && error.problem.errors);
    } finally {
      submit.disabled = false;
    }
  });
  message.setAttribute("tabindex", "-1");

  function formOf(file, fields) {
    const body = new FormData();
    body.append("file", file, file.name);
    for (const [name, value] of Object.entries(fields)) body.append(name, value);
    return body;
  }

  // Past what one request to the service may carry (Cloud Run: 32 MiB): the file goes to a
  // signed URL, then the job names the upload.
  async function direct(file, fields, progress) {
    const params = {};
    if (fields.instructions) params.instructions = fields.instructions;
    if (fields.schema) {
      try {
        params.schema = JSON.parse(fields.schema);
      } catch (_) {
        throw new ApiError(422, { detail: "Invalid schema: it is not JSON.",
          errors: [{ field: "schema", message: "must be JSON" }] });
      }
    }
    const job = { type: "pdf-analysis", params };
    if (fields.priority) job.priority = Number(fields.priority);
    if (fields.runAt) job.runAt = fields.runAt;
    const target = await api("POST", "/api/v1/uploads", { size: file.size });
    await send(target.method, target.url, target.headers, file, progress);
    job.input = { upload: target.upload, filename: file.name };
    return api("POST", "/api/v1/jobs", job);
  }
});
