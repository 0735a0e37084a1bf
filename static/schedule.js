// The schedule editor's one convenience, served by the binary (nothing from elsewhere): as you
// edit, the plan in words and "What would this send?" are asked for again (debounced) and shown
// in place. Without JavaScript the "Show the plan" button does the same round trip as a form.
(function () {
  "use strict";
  var form = document.getElementById("schedule");
  var live = document.getElementById("live");
  if (!form || !live || !window.fetch) {
    return;
  }
  var url = form.getAttribute("data-preview");
  var timer = null;
  var asked = 0;

  function refresh() {
    var mine = ++asked;
    var data = new URLSearchParams(new FormData(form));
    data.set("op", "preview");
    fetch(url, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      })
      .then(function (html) {
        if (mine === asked) {
          live.innerHTML = html;
          form.setAttribute("data-rendered", String(mine));
        }
      })
      .catch(function () {
        // The next edit asks again; the button still works.
      });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 500);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
