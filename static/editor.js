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
