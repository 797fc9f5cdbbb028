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

// A form with files shows their upload's progress (<form data-progress="ID of a <progress>">):
// the browser alone cannot, so the form goes by XMLHttpRequest and its answer replaces the page.
// The answer is the page a plain submission would have shown (a redirect already followed, so
// the page is not asked for twice: opening a message is recorded each time).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (event.defaultPrevented || !form.dataset || !form.dataset.progress) {
    return;
  }
  var input = form.querySelector("input[type=file]");
  if (!input || input.files.length === 0) {
    return;
  }
  event.preventDefault();
  var bar = document.getElementById(form.dataset.progress);
  // getAttribute: the form's buttons are named "action", which shadows form.action
  var target = form.getAttribute("action");
  var xhr = new XMLHttpRequest();
  xhr.open("POST", target);
  xhr.upload.addEventListener("progress", function (e) {
    if (bar && e.lengthComputable) {
      bar.hidden = false;
      bar.value = Math.round((100 * e.loaded) / e.total);
    }
  });
  xhr.addEventListener("load", function () {
    var url = xhr.responseURL || target;
    document.open();
    document.write(xhr.responseText);
    document.close();
    window.history.replaceState(null, "", url);
  });
  xhr.send(new FormData(form, event.submitter));
});
