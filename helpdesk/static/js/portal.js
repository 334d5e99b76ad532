// Customer portal: as-you-type article suggestions beside the contact form (debounced),
// analytics beacons (impressions, clicks, views), and a draft of the contact form kept in
// sessionStorage so opening a suggestion never loses what the customer typed.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function beacon(url, fields) {
    var body = new FormData();
    body.append("csrf_token", csrf);
    Object.keys(fields).forEach(function (k) {
      [].concat(fields[k]).forEach(function (v) { body.append(k, v); });
    });
    // fetch keepalive survives navigating away (like sendBeacon) and keeps the session cookie.
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", keepalive: true })
      .catch(function () {});
  }

  // --- article page: one view per page load ---------------------------------------------
  var article = document.querySelector("[data-kb-article]");
  if (article) {
    beacon(article.dataset.kbEvents, {
      kind: "view", article_id: article.dataset.kbArticle, source: article.dataset.kbSource
    });
  }

  // --- thanks page: the draft was submitted ----------------------------------------------
  if (document.querySelector("[data-submitted]")) {
    try { sessionStorage.removeItem("helpdesk.contact-draft"); } catch (e) {}
  }

  // --- contact form ----------------------------------------------------------------------
  var form = document.getElementById("contact-form");
  if (!form) return;
  var subject = form.querySelector("#subject");
  var description = form.querySelector("#description");
  var panel = document.getElementById("suggestions");
  var list = document.getElementById("suggestion-list");
  var key = form.dataset.draftKey;
  var fields = ["name", "email", "subject", "description"];
  var shown = {};
  var timer = null;
  var seq = 0;

  // The custom fields' answers (names custom.<key> / customer_custom.<key>) are kept too.
  function customInputs() {
    return Array.prototype.filter.call(form.elements, function (el) {
      return /^(customer_)?custom\./.test(el.name || "");
    });
  }

  // Restore a draft only into empty fields (a server-side re-render already has the text).
  try {
    var draft = JSON.parse(sessionStorage.getItem(key) || "null");
    if (draft) {
      fields.forEach(function (f) {
        var el = form.querySelector("#" + f);
        if (el && !el.value && draft[f]) el.value = draft[f];
      });
      var kept = draft.custom || {};
      customInputs().forEach(function (el) {
        var value = kept[el.name];
        if (value === undefined) { return; }
        if (el.type === "checkbox") {
          if (!el.checked && value.indexOf(el.value) !== -1) { el.checked = true; }
        } else if (!el.value && typeof value === "string") {
          el.value = value;
        }
      });
    }
  } catch (e) {}

  function saveDraft() {
    var data = { custom: {} };
    fields.forEach(function (f) { var el = form.querySelector("#" + f); if (el) data[f] = el.value; });
    customInputs().forEach(function (el) {
      if (el.type === "checkbox") {
        data.custom[el.name] = data.custom[el.name] || [];
        if (el.checked) { data.custom[el.name].push(el.value); }
      } else {
        data.custom[el.name] = el.value;
      }
    });
    try { sessionStorage.setItem(key, JSON.stringify(data)); } catch (e) {}
  }

  function query() {
    var text = (subject.value + " " + description.value.slice(0, 200)).trim();
    return text.split(/\s+/).slice(0, 30).join(" ");
  }

  function render(results, q) {
    list.textContent = "";
    var fresh = [];
    results.forEach(function (r) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = r.url + "?from=contact";
      a.textContent = r.title;
      a.lang = r.language;
      a.className = "suggestion";
      a.addEventListener("click", function () {
        saveDraft();
        beacon(form.dataset.eventsUrl, { kind: "click", article_id: r.id, source: "contact", query: q });
      });
      li.appendChild(a);
      var p = document.createElement("p");
      p.className = "snippet";
      p.innerHTML = r.snippet; // server-escaped text with <mark> only
      li.appendChild(p);
      list.appendChild(li);
      if (!shown[r.id]) { shown[r.id] = true; fresh.push(r.id); }
    });
    panel.hidden = results.length === 0;
    if (fresh.length) {
      beacon(form.dataset.eventsUrl, { kind: "impression", article_id: fresh, source: "contact", query: q });
    }
  }

  function lookup() {
    var q = query();
    if (q.length < 3) { panel.hidden = true; return; }
    var mine = ++seq;
    var url = form.dataset.suggestUrl + "?source=contact&limit=5&lang=" +
      encodeURIComponent(form.dataset.lang) + "&q=" + encodeURIComponent(q);
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { results: [] }; })
      .then(function (data) { if (mine === seq) render(data.results || [], q); })
      .catch(function () {});
  }

  function changed() {
    saveDraft();
    clearTimeout(timer);
    timer = setTimeout(lookup, 300);
  }
  [subject, description].forEach(function (el) { if (el) el.addEventListener("input", changed); });
  fields.forEach(function (f) { var el = form.querySelector("#" + f); if (el) el.addEventListener("change", saveDraft); });
  customInputs().forEach(function (el) { el.addEventListener("change", saveDraft); });
  if (query().length >= 3) lookup();
})();
