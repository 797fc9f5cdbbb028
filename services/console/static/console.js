// The console's only script besides htmx. The CSP allows scripts from this origin alone and
// no inline script, so behaviour lives here, not in attributes.
"use strict";

// Every htmx request that changes state carries the session's CSRF token as a header.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
  }
});

// A confirmation before an irreversible step: <button data-confirm="...">.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
