/* 随手拍: downscale the chosen photo to at most 2048 px on the long side before it is sent,
   so a 12 MB phone photo uploads as a few hundred KB. Without JavaScript (or a browser that
   cannot swap the file), the original is sent as it is and the server does the same work. */
(function () {
  "use strict";
  var form = document.querySelector("[data-report-form]");
  var input = document.getElementById("f-photo");
  if (!form || !input || !window.createImageBitmap || !window.DataTransfer ||
      !HTMLCanvasElement.prototype.toBlob) { return; }
  var longSide = parseInt(form.getAttribute("data-long-side"), 10) || 2048;
  var status = form.querySelector("[data-photo-status]");
  var ready = true;
  var submitting = false;

  function say(text) {
    if (!status) { return; }
    status.textContent = text;
    status.hidden = !text;
  }

  function shrink(file) {
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      var scale = Math.min(1, longSide / Math.max(bitmap.width, bitmap.height));
      if (scale === 1 && file.size < 2 * 1024 * 1024) { return null; }  // small enough already
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      var context = canvas.getContext("2d");
      context.fillStyle = "#fff";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) { resolve(blob); }, "image/jpeg", 0.85);
      });
    });
  }

  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file || !/^image\//.test(file.type)) { return; }
    ready = false;
    say(form.getAttribute("data-shrinking") || "…");
    shrink(file).then(function (blob) {
      if (blob) {
        var smaller = new File([blob], (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg",
                               { type: "image/jpeg" });
        var transfer = new DataTransfer();
        transfer.items.add(smaller);
        input.files = transfer.files;
      }
    }).catch(function () { /* keep the original: the server checks it */ }).then(function () {
      ready = true;
      say("");
      if (submitting) {
        submitting = false;
        if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
      }
    });
  });

  // Still shrinking: hold the submit (and keep it from site.js's double-tap guard, which
  // would otherwise count it as sent), then send once the smaller photo is in place.
  form.addEventListener("submit", function (event) {
    if (!ready) { event.preventDefault(); event.stopPropagation(); submitting = true; }
  });
})();
