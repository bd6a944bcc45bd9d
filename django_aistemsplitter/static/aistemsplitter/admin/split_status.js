/* Poll a split job's status while it runs; stop at a terminal status. */
(function () {
  "use strict";
  var INTERVAL_MS = 2000;

  function start(panel) {
    var url = panel.getAttribute("data-aiss-status-url");
    if (!url || panel.getAttribute("data-aiss-terminal") === "1") {
      return;
    }
    var timer = null;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          var badge = panel.querySelector("[data-aiss-badge]");
          var bar = panel.querySelector("[data-aiss-progress]");
          if (badge) { badge.outerHTML = data.badge; }
          if (bar) { bar.outerHTML = data.progress_html; }
          panel.setAttribute("data-aiss-status", data.status);
          if (data.terminal) {
            window.clearInterval(timer);
            panel.setAttribute("data-aiss-terminal", "1");
            // One reload to show the stems and the final fields.
            window.location.reload();
          }
        })
        .catch(function (error) {
          var note = panel.querySelector("[data-aiss-note]");
          if (note) { note.textContent = String(error); }
        });
    }
    timer = window.setInterval(poll, INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panels = document.querySelectorAll("[data-aiss-status-url]");
    for (var i = 0; i < panels.length; i++) {
      start(panels[i]);
    }
  });
})();
