// Agents' KB helpers: live preview in the article editor (the server renders the same
// sanitized HTML readers get) and "Insert link" from the ticket page's suggested articles.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  var form = document.getElementById("kb-form");
  if (form) {
    var body = form.querySelector("#body");
    var preview = document.getElementById("kb-preview");
    var timer = null;
    var seq = 0;
    body.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++seq;
        var data = new FormData();
        data.append("csrf_token", csrf);
        data.append("body", body.value);
        fetch(form.dataset.previewUrl, { method: "POST", body: data, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (d) { if (d && mine === seq) preview.innerHTML = d.html; })
          .catch(function () {});
      }, 250);
    });
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("[data-insert-link]");
    if (!btn) return;
    var reply = document.getElementById("reply-body");
    if (!reply) return;
    var text = btn.dataset.insertTitle + ": " + btn.dataset.insertLink;
    var start = reply.selectionStart || reply.value.length;
    var before = reply.value.slice(0, start);
    var sep = before && !/\s$/.test(before) ? "\n" : "";
    reply.value = before + sep + text + "\n" + reply.value.slice(reply.selectionEnd || start);
    reply.focus();
    reply.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
