// The email editor's few conveniences, served by the binary (no framework, nothing from
// elsewhere): the preview re-renders as you type (debounced), the subject's length is counted,
// line numbers run beside each part, and the test address is remembered in this browser. Without
// JavaScript the Preview button does the same round trip as a plain form.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  if (!form) {
    return;
  }
  // From the origin: an address typed with credentials (http://admin:...@host/) keeps them in
  // the page's URL, and fetch refuses a URL that carries credentials.
  var previewUrl = window.location.origin + form.getAttribute("data-preview");
  var timer = null;
  var asked = 0;

  function byId(id) {
    return document.getElementById(id);
  }

  function show(answer) {
    byId("preview-subject").textContent = answer.subject;
    byId("preview-frame").srcdoc = answer.html;
    byId("preview-text").textContent = answer.text;
    var errors = byId("errors");
    errors.textContent = answer.error;
    errors.hidden = answer.error === "";
    // Each part's error where that part is shown; the other parts still render.
    ["subject", "html", "text"].forEach(function (part) {
      var box = byId(part + "-error");
      var message = answer[part + "_error"] || "";
      if (box) {
        box.textContent = message;
        box.hidden = message === "";
      }
    });
    // Simple mode: each field's mistake under the field.
    var wrong = {};
    (answer.fields || []).forEach(function (f) {
      wrong[f.field] = f.message;
    });
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (box) {
      var key = box.id.replace(/^error-/, "");
      var message = wrong[key] || "";
      box.textContent = message;
      box.hidden = message === "";
      var input = byId("w-" + key);
      if (input) {
        if (message) {
          input.setAttribute("aria-invalid", "true");
        } else {
          input.removeAttribute("aria-invalid");
        }
      }
    });
    var length = byId("subject-length");
    length.textContent = answer.subject_length + " of 60 characters";
    length.className = answer.subject_length > 60 ? "warn" : "muted";
    form.setAttribute("data-rendered", String(asked));
  }

  function refresh() {
    var mine = ++asked;
    fetch(previewUrl, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (answer) {
        if (mine === asked) {
          show(answer);
        }
      })
      .catch(function () {
        // The next keystroke asks again; the Preview button still works.
      });
  }

  function numberLines(area) {
    var gutter = area.previousElementSibling;
    if (!gutter || !gutter.classList.contains("gutter")) {
      return;
    }
    var lines = area.value.split("\n").length;
    if (gutter.getAttribute("data-lines") !== String(lines)) {
      var text = "";
      for (var i = 1; i <= lines; i++) {
        text += i + "\n";
      }
      gutter.textContent = text;
      gutter.setAttribute("data-lines", String(lines));
    }
    gutter.scrollTop = area.scrollTop;
  }

  var areas = form.querySelectorAll("textarea.code");
  Array.prototype.forEach.call(areas, function (area) {
    numberLines(area);
    area.addEventListener("scroll", function () {
      numberLines(area);
    });
  });

  form.addEventListener("input", function (event) {
    if (event.target.classList.contains("code")) {
      numberLines(event.target);
    }
    if (event.target.name === "test_email") {
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  });

  // Insert: a detail by its name in brackets, at the cursor of the last words field used.
  var insert = byId("insert");
  var lastField = null;
  form.addEventListener("focusin", function (event) {
    if (event.target.classList && event.target.classList.contains("words")) {
      lastField = event.target;
    }
  });
  if (insert) {
    insert.addEventListener("change", function () {
      var name = insert.value;
      insert.value = "";
      if (!name) {
        return;
      }
      var field = lastField || byId("w-opening");
      var text = "[" + name + "]";
      var start = field.selectionStart === null ? field.value.length : field.selectionStart;
      var end = field.selectionEnd === null ? start : field.selectionEnd;
      field.value = field.value.slice(0, start) + text + field.value.slice(end);
      field.focus();
      field.setSelectionRange(start + text.length, start + text.length);
      field.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }

  var email = byId("test-email");
  var key = "quicket-followup.test-email";
  if (email && window.localStorage) {
    var remembered = window.localStorage.getItem(key);
    if (remembered && !email.value) {
      email.value = remembered;
    }
    email.addEventListener("change", function () {
      window.localStorage.setItem(key, email.value);
    });
  }
})();
