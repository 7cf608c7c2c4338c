// Signing in. Local: the one-time code in this link's fragment (never sent to any server by
// the browser) is exchanged for a token, kept for this tab's session. Entra ID: MSAL's
// redirect flow (authorization code with PKCE).
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const { config, show, SESSION } = window.jobkit;
  const live = document.getElementById("live");
  const message = document.getElementById("message");
  const next = new URLSearchParams(location.search).get("next");
  const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";

  if (config.auth === "local") {
    const code = new URLSearchParams(location.hash.slice(1)).get("code");
    if (!code) return;
    history.replaceState(null, "", location.pathname + location.search); // the code is spent
    live.textContent = "Signing you in…";
    const response = await fetch("/signin/local", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code }),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      live.textContent = "";
      show(message, answer.detail || "Signing in failed.");
      return;
    }
    sessionStorage.setItem(SESSION, JSON.stringify(answer));
    live.textContent = "Signed in as " + answer.user + ".";
    location.replace(target);
    return;
  }

  const button = document.getElementById("entra-signin");
  if (!button) return;
  button.addEventListener("click", async () => {
    try {
      await window.jobkit.token(); // signs in (a redirect) unless MSAL holds an account
      location.replace(target);
    } catch (error) {
      show(message, error.message);
    }
  });
});
