/* 心愿 — organiser pages: a print button on the receipt and the passbook (the page prints
   without it too, from the browser's menu; the button is hidden until this script runs). */
(function () {
  "use strict";
  var buttons = document.querySelectorAll("[data-print]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].hidden = false;
    buttons[i].addEventListener("click", function () { window.print(); });
  }
})();
