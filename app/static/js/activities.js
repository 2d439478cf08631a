/* 签到屏幕: turn the check-in QR and code over every 30 s without reloading, so the screen
   stays full screen. Without JavaScript a <noscript> meta refresh reloads the page instead. */
(function () {
  "use strict";
  var screen = document.querySelector("[data-refresh]");
  if (!screen || !window.fetch) { return; }
  var url = screen.getAttribute("data-refresh");
  var qr = document.getElementById("checkin-qr");
  var code = document.getElementById("checkin-code");
  var attended = document.getElementById("checkin-attended");
  function later(seconds) {
    window.setTimeout(refresh, Math.max(1, seconds) * 1000 + 300);
  }
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        qr.src = data.qr_png;
        code.textContent = data.code.slice(0, 3) + " " + data.code.slice(3);
        if (attended) { attended.textContent = String(data.attended); }
        later(data.refresh_seconds);
      })
      .catch(function () { later(10); });
  }
  later(parseInt(screen.getAttribute("data-seconds"), 10) || 30);
})();
