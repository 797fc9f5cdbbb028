// Security keys (WebAuthn): the browser's half of enrolment and sign-in. The CSP allows no
// inline script, so a button says what it does with data- attributes:
//   data-webauthn="create" (enrol) or "get" (sign in), data-options (URL of the options),
//   data-answer (URL the answer is posted to), data-error (id of the element showing a refusal),
//   data-failed and data-unsupported (the messages, already translated, for what the browser
//   itself refuses). The server answers JSON: {"next": URL} or {"error": translated message}.
"use strict";

(function () {
  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: body === undefined ? "{}" : JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          throw { refusal: data.error || String(response.status) };
        }
        return data;
      });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: toBytes(c.id), transports: c.transports };
    });
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return { publicKey: o };
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return { publicKey: o };
  }

  function answer(credential) {
    var r = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toText(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      out.response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return out;
  }

  function run(button) {
    var shown = document.getElementById(button.dataset.error);
    function show(text) {
      if (shown) {
        shown.textContent = text;
        shown.hidden = false;
      }
    }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(button.dataset.unsupported);
      return;
    }
    var creating = button.dataset.webauthn === "create";
    button.disabled = true;
    post(button.dataset.options)
      .then(function (options) {
        return creating
          ? navigator.credentials.create(creationOptions(options))
          : navigator.credentials.get(requestOptions(options));
      })
      .then(function (credential) {
        return post(button.dataset.answer, answer(credential));
      })
      .then(function (data) {
        window.location.assign(data.next);
      })
      .catch(function (problem) {
        show(problem && problem.refusal ? problem.refusal : button.dataset.failed);
        button.disabled = false;
      });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-webauthn]");
    if (button) {
      event.preventDefault();
      run(button);
    }
  });
})();
