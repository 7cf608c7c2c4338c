// MSAL's redirect bridge (MSAL Browser v5): the identity provider sends the browser here
// with the authorization code; this hands it to the page that asked (a popup's or a hidden
// frame's opener, or, after a full-page redirect, the page the sign-in started from).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  msalRedirectBridge.broadcastResponseToMainFrame().catch((error) => {
    document.body.textContent = "Signing in failed: " + error.message;
  });
});
