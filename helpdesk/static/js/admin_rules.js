// Admin -> Rules: add and remove condition and action rows (the form posts c.* and a.* lists;
// every action row has every box, so the lists line up), show a mail action's boxes only for
// "Send an email", and the hours box only for a time rule. Without a script every box shows
// and the <noscript> rows add one condition or action per save.
(function () {
  "use strict";
  var form = document.querySelector("[data-rule-form]");
  if (!form) return;

  function syncAction(row) {
    var type = row.querySelector("[data-action-type]");
    var mail = type.value === "send_email";
    row.querySelector("[data-action-mail]").hidden = !mail;
    row.querySelector("[data-action-value]").hidden = mail;
  }

  function syncWhen() {
    var when = form.querySelector("[data-rule-when]");
    var timed = when.value === when.getAttribute("data-rule-when");
    form.querySelector("[data-after-hours]").hidden = !timed;
    form.querySelector("[data-stop]").hidden = timed;
  }

  form.querySelectorAll("[data-action-row]").forEach(syncAction);
  syncWhen();
  form.querySelector("[data-rule-when]").addEventListener("change", syncWhen);

  form.addEventListener("change", function (event) {
    if (event.target.matches("[data-action-type]")) {
      syncAction(event.target.closest("[data-action-row]"));
    }
  });
  form.addEventListener("click", function (event) {
    var target = event.target;
    if (target.matches("[data-add-row]")) {
      var box = target.closest("fieldset");
      var rows = box.querySelector("[data-rows]");
      var fresh = box.querySelector("[data-row-template]").content.cloneNode(true);
      var row = fresh.firstElementChild;
      rows.appendChild(fresh);
      if (row.matches("[data-action-row]")) syncAction(row);
      var first = row.querySelector("select, input");
      if (first) first.focus();
    } else if (target.matches("[data-remove-row]")) {
      target.closest(".condition-row").remove();
    }
  });
})();
