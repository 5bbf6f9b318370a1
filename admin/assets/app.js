// gatehouse pages work without this file; it only adds comfort.
(function () {
  "use strict";

  // Ask before signing anything out. Forms say what in data-confirm.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      e.preventDefault();
    }
  });

  // The page shows times in the configured time zone, named; the reader's
  // own zone goes in the tooltip.
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (err) {
    fmt = null;
  }
  if (fmt) {
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.title = "Your time: " + fmt.format(d);
      }
    });
  }

  // A reload should not repeat "signed out" messages.
  if (document.querySelector("[data-flash]") && window.history.replaceState) {
    var url = new URL(window.location.href);
    url.searchParams.delete("flash");
    url.searchParams.delete("n");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
})();
