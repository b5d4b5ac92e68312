// wsprobe status page: refresh the live part without reloading, and filter as you type.
// The page works without this file: the form submits, and a reload refreshes.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh") || "0", 10);
  var search = document.getElementById("q");

  function filterRows() {
    if (!search) return;
    var needle = search.value.trim().toLowerCase();
    var rows = document.querySelectorAll("#live .check");
    for (var i = 0; i < rows.length; i++) {
      var hay = rows[i].getAttribute("data-search") || "";
      rows[i].hidden = needle !== "" && hay.indexOf(needle) < 0;
    }
  }

  function refresh() {
    var live = document.getElementById("live");
    if (!live || document.hidden) return;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        live.innerHTML = html;
        filterRows();
        body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* keep the last good content; try again next time */ });
  }

  if (search) search.addEventListener("input", filterRows);
  if (every > 0) {
    setInterval(refresh, every * 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
  }
})();
