// The RCV import page while the import runs: reads its status from the API every two seconds,
// moves the <progress> bar, and reloads the page (which then shows the report) when it ends.
// No inline script: the page only carries data-* attributes.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.dataset.finished === "true") return;
  var bar = box.querySelector("progress");
  var label = box.querySelector("[data-label]");
  var url = box.dataset.statusUrl;
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        if (data.finished) {
          window.location.reload();
          return;
        }
        if (bar) bar.value = data.percent;
        if (label) label.textContent = data.status_label + " · " + data.percent + " %";
        window.setTimeout(tick, 2000);
      })
      .catch(function () {
        window.setTimeout(function () { window.location.reload(); }, 5000);
      });
  }
  window.setTimeout(tick, 1000);
})();
