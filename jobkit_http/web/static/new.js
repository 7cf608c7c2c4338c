// A new job: the PDF and its options, uploaded with progress (POST /api/v1/pdf-processing);
// then the job's own page follows it live. A refusal shows the API's problem, field by field.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const { upload, show, el } = window.jobkit;
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
    const body = new FormData();
    body.append("file", file, file.name);
    for (const name of ["instructions", "schema", "priority"]) {
      const value = form.elements[name].value.trim();
      if (value) body.append(name, value);
    }
    const runAt = form.elements.runAt.value;
    if (runAt) body.append("runAt", new Date(runAt).toISOString()); // local time, as an instant
    submit.disabled = true;
    box.hidden = false;
    bar.value = 0;
    label.textContent = "Uploading…";
    try {
      const accepted = await upload("/api/v1/pdf-processing", body, (sent, total) => {
        bar.value = sent / total;
        label.textContent = "Uploading: " + Math.round((100 * sent) / total) + "%";
      });
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
});
