// Start Swagger UI on /api/v1/docs. A file of its own, not an inline script, so the page's
// Content-Security-Policy needs no 'unsafe-inline'. The spec's URL comes from the page.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null // the online validator is another host: never ask it
  });
})();
