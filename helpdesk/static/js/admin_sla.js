// Admin -> SLA policies: add and remove condition rows (the form posts c.field/c.op/c.value
// lists; without a script, the <noscript> row adds one condition per save).
(function () {
  "use strict";
  var box = document.querySelector("[data-conditions]");
  if (!box) return;
  var rows = box.querySelector("[data-condition-rows]");
  var template = box.querySelector("[data-condition-template]");
  box.addEventListener("click", function (event) {
    var target = event.target;
    if (target.matches("[data-add-condition]")) {
      rows.appendChild(template.content.cloneNode(true));
      var selects = rows.querySelectorAll(".condition-row select");
      if (selects.length) selects[selects.length - 2].focus();
    } else if (target.matches("[data-remove-condition]")) {
      target.closest(".condition-row").remove();
    }
  });
})();
