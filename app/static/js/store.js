/* 积分兑换: the confirmation sentence follows the quantity picked (the page works without it). */
(function () {
  "use strict";
  var question = document.querySelector("[data-question]");
  var quantity = document.getElementById("f-quantity");
  if (!question || !quantity || quantity.tagName !== "SELECT") { return; }
  var unit = parseInt(question.getAttribute("data-unit"), 10);
  var balance = parseInt(question.getAttribute("data-balance"), 10);
  function update() {
    var n = parseInt(quantity.value, 10);
    if (!(n > 0)) { return; }
    question.textContent = question.getAttribute("data-question")
      .replace("{cost}", String(n * unit)).replace("{left}", String(balance - n * unit));
  }
  quantity.addEventListener("change", update);
  update();
})();
