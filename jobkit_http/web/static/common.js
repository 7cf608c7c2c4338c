// What every page shares: signing in (a local token, or MSAL with Entra ID), the JSON API
// with the bearer token, the event streams (read with fetch, which can send the token, where
// EventSource cannot), and small helpers to show jobs. Plain script, no build step.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("jobkit-config").textContent);
  const SESSION = "jobkit.session";
  const MARGIN_MS = 60_000; // a token this close to its expiry is not used

  // -- signing in ------------------------------------------------------------------------

  function localSession() {
    try {
      const session = JSON.parse(sessionStorage.getItem(SESSION));
      if (session && Date.parse(session.expiresAt) - MARGIN_MS > Date.now()) return session;
    } catch (_) { /* a bad entry is no session */ }
    return null;
  }

  let msalApp = null;
  async function msalReady() {
    if (msalApp === null) {
      const entra = config.entra;
      msalApp = await msal.createStandardPublicClientApplication({
        auth: {
          clientId: entra.clientId,
          authority: entra.authority,
          redirectUri: entra.redirectUri || location.origin + "/signin/redirect",
        },
        cache: { cacheLocation: "sessionStorage" },
      });
      const answer = await msalApp.handleRedirectPromise();
      if (answer && answer.account) msalApp.setActiveAccount(answer.account);
    }
    return msalApp;
  }

  function toSignIn() {
    location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
    return new Promise(() => {}); // the page is going away
  }

  async function token() {
    if (config.auth === "local") {
      const session = localSession();
      return session ? session.accessToken : toSignIn();
    }
    if (!config.entra) return toSignIn();
    const app = await msalReady();
    const account = app.getActiveAccount() || app.getAllAccounts()[0];
    const scopes = config.entra.scopes;
    if (!account) {
      await app.loginRedirect({ scopes, redirectStartPage: location.href });
      return new Promise(() => {});
    }
    try {
      return (await app.acquireTokenSilent({ scopes, account })).accessToken;
    } catch (error) {
      if (error instanceof msal.InteractionRequiredAuthError) {
        await app.acquireTokenRedirect({ scopes, account, redirectStartPage: location.href });
        return new Promise(() => {});
      }
      throw error;
    }
  }

  async function whoAmI() {
    if (config.auth === "local") {
      const session = localSession();
      return session ? session.user : null;
    }
    if (!config.entra) return null;
    const app = await msalReady();
    const account = app.getActiveAccount() || app.getAllAccounts()[0];
    return account ? account.username : null;
  }

  async function signOut() {
    sessionStorage.removeItem(SESSION);
    if (config.auth === "entra" && config.entra) {
      const app = await msalReady();
      await app.logoutRedirect({ postLogoutRedirectUri: location.origin + "/signin" });
      return;
    }
    location.assign("/signin");
  }

  // -- the API ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function problemOf(response) {
    try { return await response.json(); } catch (_) { return null; }
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + (await token()) };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401 && config.auth === "local") {
      sessionStorage.removeItem(SESSION);
      return toSignIn();
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    if (response.status === 204) return null;
    return response.json();
  }

  // A form with a file, with upload progress (fetch cannot report it; XMLHttpRequest can).
  async function upload(path, form, onProgress) {
    const bearer = await token();
    return send("POST", path, { Authorization: "Bearer " + bearer }, form, onProgress);
  }

  // A body sent with progress; to a signed upload URL, with its headers and no token.
  function send(method, url, headers, body, onProgress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open(method, url);
      for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
      request.responseType = "json";
      request.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
      request.onload = () => {
        if (request.status >= 200 && request.status < 300) resolve(request.response);
        else reject(new ApiError(request.status, request.response));
      };
      request.onerror = () => reject(new ApiError(0, { detail: "the service could not be reached" }));
      request.send(body);
    });
  }

  // -- event streams ---------------------------------------------------------------------

  // Reads a Server-Sent Events stream with fetch, reconnecting after the server's `retry:`
  // delay with `Last-Event-ID`, until `close()` or an `end`/`deleted` event. `on(name, data)`
  // gets each event; `onState("open" | "reconnecting" | "closed", problem)` the connection's.
  function stream(path, on, onState) {
    let lastId = null;
    let retryMs = 3000;
    let controller = null;
    let closed = false;
    let finished = false;
    let again = false; // reopened while the stream was still ending: connect once it ends
    const state = { open: false };

    function dispatch(block) {
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
        else if (field === "id") lastId = value;
        else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
      }
      if (!data.length) return;
      if (name === "end" || name === "deleted") finished = true;
      on(name, JSON.parse(data.join("\n")));
    }

    async function connect() {
      controller = new AbortController();
      const headers = { Authorization: "Bearer " + (await token()), Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      let response;
      try {
        response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
      } catch (_) {
        return later();
      }
      if (!response.ok) {
        const problem = await problemOf(response);
        if (response.status === 429 || response.status >= 500) return later(problem);
        state.open = false;
        onState("closed", new ApiError(response.status, problem));
        return;
      }
      state.open = true;
      onState("open");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (_) { /* the connection broke: reconnect below */ }
      state.open = false;
      if (finished && again && !closed) {
        again = false;
        finished = false;
        return connect();
      }
      if (finished || closed) {
        onState("closed");
        return;
      }
      later();
    }

    function later(problem) {
      state.open = false;
      if (closed) return;
      onState("reconnecting", problem && new ApiError(429, problem));
      setTimeout(() => { if (!closed) connect(); }, retryMs);
    }

    connect();
    return {
      state,
      close() {
        closed = true;
        state.open = false;
        if (controller) controller.abort();
      },
      reopen() { // after `end`: the job moved again (retried)
        if (closed) return;
        if (state.open || !finished) { // `end` not read yet: follow again once it is
          again = true;
          return;
        }
        finished = false;
        connect();
      },
    };
  }

  // -- showing things --------------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function ago(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + " s ago";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + " min ago";
    const hours = Math.round(minutes / 60);
    if (hours < 48) return hours + " h ago";
    return Math.round(hours / 24) + " days ago";
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "—";
  }

  function timeEl(iso, relative) {
    if (!iso) return "—";
    return el("time", { datetime: iso, title: when(iso), "data-ago": relative ? iso : null },
      relative ? ago(iso) : when(iso));
  }

  // Relative times move on by themselves; no request is made for it.
  setInterval(() => {
    for (const node of document.querySelectorAll("time[data-ago]")) {
      node.textContent = ago(node.getAttribute("data-ago"));
    }
  }, 10_000);

  function badge(status) {
    return el("span", { class: "badge " + status }, status);
  }

  function percent(progress) {
    if (!progress || !progress.total) return null;
    return Math.round((100 * progress.current) / progress.total);
  }

  function progressEl(job) {
    const share = percent(job.progress);
    if (share === null) return job.status === "completed" ? "100%" : "—";
    return el("progress", { max: "100", value: String(share), "aria-label": share + "% done" });
  }

  function show(node, text, ok) {
    node.textContent = text || "";
    node.hidden = !text;
    node.classList.toggle("ok", Boolean(ok));
  }

  // Every page but the sign-in pages needs a user: without one, go and sign in.
  async function header() {
    const user = await whoAmI();
    if (!user) return toSignIn();
    const who = document.getElementById("who");
    const out = document.getElementById("sign-out");
    who.textContent = user;
    out.hidden = false;
    out.addEventListener("click", signOut);
  }

  window.jobkit = {
    config, token, whoAmI, signOut, api, upload, send, stream, ApiError,
    el, ago, when, timeEl, badge, percent, progressEl, show, SESSION,
  };
  document.addEventListener("DOMContentLoaded", () => {
    if (!location.pathname.startsWith("/signin")) header();
  });
})();
