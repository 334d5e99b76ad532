// "@" autocomplete in the internal-note box: typing "@" and the start of a colleague's name
// lists matching agents (GET data-suggest-url?q=...); arrow keys choose, Enter or Tab inserts
// "@Full Name ", Escape closes. The textarea is an ARIA combobox over the list.
(function () {
  "use strict";
  var box = document.querySelector("textarea[data-mentions]");
  if (!box) { return; }
  var list = document.getElementById(box.getAttribute("aria-controls"));
  var url = box.getAttribute("data-suggest-url");
  var start = -1;          // where the "@" being completed is in the text
  var active = -1;         // the highlighted option
  var timer = null;
  var asked = 0;           // answers to older questions are dropped

  // The "@word" just before the caret, if it is a mention being typed.
  function typing() {
    var upto = box.value.slice(0, box.selectionStart);
    var m = /(^|[\s(])@([^\s@]{0,40})$/.exec(upto);
    return m ? { at: upto.length - m[2].length - 1, q: m[2] } : null;
  }
  function close() {
    list.hidden = true; list.innerHTML = ""; active = -1; start = -1;
    box.setAttribute("aria-expanded", "false"); box.removeAttribute("aria-activedescendant");
  }
  function highlight(i) {
    var items = list.querySelectorAll("li");
    if (!items.length) { return; }
    active = (i + items.length) % items.length;
    items.forEach(function (li, k) { li.setAttribute("aria-selected", String(k === active)); });
    box.setAttribute("aria-activedescendant", items[active].id);
  }
  function show(agents) {
    list.innerHTML = "";
    agents.forEach(function (a, k) {
      var li = document.createElement("li");
      li.id = "mention-option-" + k;
      li.setAttribute("role", "option");
      li.dataset.name = a.name;
      var b = document.createElement("strong"); b.textContent = a.name; li.appendChild(b);
      var s = document.createElement("span"); s.className = "muted small"; s.textContent = " " + a.email; li.appendChild(s);
      list.appendChild(li);
    });
    list.hidden = agents.length === 0;
    box.setAttribute("aria-expanded", String(agents.length > 0));
    if (agents.length) { highlight(0); }
  }
  function insert(li) {
    var end = box.selectionStart;
    var text = "@" + li.dataset.name + " ";
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    var caret = start + text.length;
    box.setSelectionRange(caret, caret);
    close(); box.focus();
  }
  function lookup() {
    var t = typing();
    if (!t) { close(); return; }
    start = t.at;
    var mine = ++asked;
    fetch(url + "?q=" + encodeURIComponent(t.q), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (res) { if (mine === asked && typing()) { show(res.agents); } })
      .catch(function () {});
  }
  box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(lookup, 120); });
  box.addEventListener("keydown", function (ev) {
    if (list.hidden) { return; }
    if (ev.key === "ArrowDown") { ev.preventDefault(); highlight(active + 1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); highlight(active - 1); }
    else if ((ev.key === "Enter" || ev.key === "Tab") && active >= 0) {
      ev.preventDefault(); insert(list.querySelectorAll("li")[active]);
    } else if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); close(); }
  });
  box.addEventListener("blur", function () { setTimeout(close, 150); });
  // mousedown, not click: it comes before the textarea's blur closes the list.
  list.addEventListener("mousedown", function (ev) {
    var li = ev.target.closest("li"); if (li) { ev.preventDefault(); insert(li); }
  });
})();
