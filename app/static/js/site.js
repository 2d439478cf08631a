/* 心愿: a little plain JavaScript on top of pages that work without it. */
(function () {
  "use strict";

  // A double tap on a submit button sends the form once (the server's form token makes sure
  // of it too). The button is not disabled before the submit, so its name/value still go.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.sent === "1") { event.preventDefault(); return; }
    var ask = form.getAttribute("data-confirm");
    if (ask && !window.confirm(ask)) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].setAttribute("aria-busy", "true"); }
    // A form whose answer never comes (a network hiccup) can be sent again after a while.
    window.setTimeout(function () {
      form.dataset.sent = "";
      for (var j = 0; j < buttons.length; j++) { buttons[j].removeAttribute("aria-busy"); }
    }, 8000);
  });

  // Going back to a page from the cache must not leave its forms locked.
  window.addEventListener("pageshow", function () {
    var forms = document.querySelectorAll("form[data-sent='1']");
    for (var i = 0; i < forms.length; i++) { forms[i].dataset.sent = ""; }
  });

  // Errors are read out first: focus the summary at the top of the form.
  var summary = document.querySelector("[data-autofocus]");
  if (summary) { summary.focus(); }

  // Full-screen QR codes for the counter: tap the button, or the code itself.
  var targets = document.querySelectorAll("[data-fullscreen]");
  for (var k = 0; k < targets.length; k++) {
    targets[k].addEventListener("click", function (event) {
      var el = document.getElementById(event.currentTarget.getAttribute("data-fullscreen"));
      if (el && el.requestFullscreen) { el.requestFullscreen().catch(function () {}); }
    });
  }

  // A keyboard-style barcode scanner types the code and presses Enter: submit at once.
  var autos = document.querySelectorAll("input[data-autosubmit]");
  for (var m = 0; m < autos.length; m++) {
    autos[m].addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.currentTarget.form) {
        event.preventDefault();
        event.currentTarget.form.requestSubmit();
      }
    });
  }
})();
