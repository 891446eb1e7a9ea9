// Mizan web: progressive enhancement only. Every page works without this script;
// with it, buttons show progress and can't double-submit, handles autocomplete, the
// first field with an error gets focus, and the home page updates live.
"use strict";

(function () {
  // A form is sent once: its button is disabled and relabelled while it goes.
  // (A resubmission would replay the same idempotency key anyway.)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.sending === "true") {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "true";
    form.setAttribute("aria-busy", "true");
    var button = form.querySelector("button[type=submit]");
    if (button) {
      var busy = button.getAttribute("data-busy");
      // Disable after the browser has read the form, so the submission goes out.
      setTimeout(function () {
        button.disabled = true;
        if (busy) { button.textContent = busy; }
      }, 0);
    }
  });

  // A page shown again with errors: focus the first field that needs attention.
  var invalid = document.querySelector("[aria-invalid=true]");
  if (invalid) { invalid.focus(); }

  // Handle autocomplete for inputs tied to the suggestions list.
  var timer = null;
  document.querySelectorAll("input[list=handle-suggestions]").forEach(function (input) {
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var prefix = input.value.replace(/^@/, "").trim();
      if (!/^[A-Za-z0-9_]{1,30}$/.test(prefix)) { return; }
      timer = setTimeout(function () {
        fetch("/handles?q=" + encodeURIComponent(prefix), { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : []; })
          .then(function (handles) {
            var list = document.getElementById("handle-suggestions");
            if (!list) { return; }
            list.replaceChildren.apply(list, handles.map(function (handle) {
              var option = document.createElement("option");
              option.value = handle;
              return option;
            }));
          })
          .catch(function () {});
      }, 120);
    });
  });

  // Live updates for signed-in people.
  if (document.body.dataset.signedIn !== "true" || !window.EventSource) { return; }
  var toast = document.getElementById("toast");
  var events = new EventSource("/events");
  events.addEventListener("update", function (message) {
    var data = {};
    try { data = JSON.parse(message.data); } catch (error) { return; }
    var badge = document.getElementById("unread-count");
    if (data.message && badge) {
      // Whatever is announced is also a new notification.
      var count = parseInt(badge.getAttribute("data-count") || "0", 10) + 1;
      badge.setAttribute("data-count", String(count));
      badge.textContent = count > 99 ? "99+" : new Intl.NumberFormat(document.documentElement.lang).format(count);
      badge.hidden = false;
    }
    if (data.message && toast) {
      toast.textContent = data.message;
      toast.classList.add("shown");
      setTimeout(function () { toast.classList.remove("shown"); }, 8000);
    }
    document.querySelectorAll("[data-live]").forEach(function (region) {
      fetch(region.getAttribute("data-live"), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          // The fragment is our own server-rendered, escaped HTML.
          region.innerHTML = html;
        })
        .catch(function () {});
    });
  });
})();
