// Starts Swagger UI on /api/docs with the generated document (no inline script: strict CSP).
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  if (!node || !window.SwaggerUIBundle) { return; }
  window.ui = window.SwaggerUIBundle({
    url: node.getAttribute("data-spec-url"),
    domNode: node,
    deepLinking: true,
    validatorUrl: null,  // never ask a remote validator: installations may be offline
    presets: [window.SwaggerUIBundle.presets.apis],
    persistAuthorization: false
  });
})();
