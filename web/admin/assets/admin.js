// billsync admin: progressive enhancement only; every page works without it.
(function () {
  "use strict";
  // Forms with data-confirm ask first.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); return; }
    if (f.classList.contains("js-test")) { testConnection(ev, f); return; }
    var b = f.querySelector("button");
    if (b) { setTimeout(function () { b.disabled = true; }, 0); }
  }, true);
  // Test connection shows its result in place.
  function testConnection(ev, f) {
    ev.preventDefault();
    var out = f.querySelector("output"), btn = f.querySelector("button");
    btn.disabled = true;
    out.className = ""; out.textContent = "Testing…";
    fetch(f.action, { method: "POST", body: new FormData(f), credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (res) {
        out.className = res.ok ? "st-ok" : "st-bad";
        out.textContent = (res.ok ? "✓ " : "✗ ") + res.message + " (" + res.tookMs + " ms)";
        if (res.lastCall) {
          document.querySelectorAll(".last-call").forEach(function (e) { e.textContent = res.lastCall; });
        }
      })
      .catch(function (e) { out.className = "st-bad"; out.textContent = "✗ " + e.message; })
      .then(function () { btn.disabled = false; });
  }
})();
