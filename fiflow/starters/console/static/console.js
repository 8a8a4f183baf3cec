// fiflow staff console: the review inbox refreshes itself (no framework, nothing fetched elsewhere).
(function () {
  "use strict";
  var inbox = document.getElementById("inbox");
  if (!inbox) return;
  var url = inbox.getAttribute("data-refresh");
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (html) { if (html !== null) inbox.innerHTML = html; })
      .catch(function () { /* keep the last list; try again on the next tick */ });
  }
  setInterval(refresh, 10000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
