// Keyboard shortcuts for agents (press ? for the list). Never fire while typing in a field.
(function () {
  "use strict";
  var queueRows = function () { return Array.prototype.slice.call(document.querySelectorAll("[data-live-queue] tbody tr[data-ticket-id]")); };
  var cursor = -1;
  var QUEUE_KEY = "helpdesk.queue";

  function remember() {
    // The queue's order, so j/k on a ticket page walk the same list.
    var numbers = queueRows().map(function (tr) {
      var a = tr.querySelector("td.num a"); return a ? a.getAttribute("href") : null;
    }).filter(Boolean);
    if (numbers.length) { sessionStorage.setItem(QUEUE_KEY, JSON.stringify(numbers)); }
  }
  function mark(i) {
    var rows = queueRows();
    if (!rows.length) { return; }
    cursor = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (tr, n) { tr.classList.toggle("kbd-current", n === cursor); });
    rows[cursor].scrollIntoView({ block: "nearest" });
  }
  function current() { var rows = queueRows(); return cursor >= 0 ? rows[cursor] : null; }
  function stepTicket(delta) {
    var list = JSON.parse(sessionStorage.getItem(QUEUE_KEY) || "[]");
    var at = list.indexOf(location.pathname);
    if (at >= 0 && list[at + delta]) { location.href = list[at + delta]; }
  }
  function click(selector) { var el = document.querySelector(selector); if (el) { el.click(); return true; } return false; }
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  document.addEventListener("DOMContentLoaded", remember);
  if (document.readyState !== "loading") { remember(); }
  var rowsBox = document.querySelector("[data-queue-rows]");
  if (rowsBox) { new MutationObserver(function () { remember(); if (cursor >= 0) { mark(cursor); } }).observe(rowsBox, { childList: true }); }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
    var onQueue = !!document.querySelector("[data-live-queue]");
    var handled = true;
    switch (ev.key) {
      case "?": var d = document.getElementById("shortcuts"); if (d && d.showModal) { d.showModal(); } break;
      case "j": if (onQueue) { mark(cursor + 1); } else { stepTicket(1); } break;
      case "k": if (onQueue) { mark(cursor - 1); } else { stepTicket(-1); } break;
      case "o": case "Enter":
        if (onQueue && current()) { location.href = current().querySelector("td.num a").href; } else { handled = false; }
        break;
      case "x":
        if (onQueue && current()) { var box = current().querySelector('input[name="ticket"]'); if (box) { box.click(); } } else { handled = false; }
        break;
      case "r": click('[data-tab="reply"]'); var r = document.getElementById("reply-body"); if (r) { r.focus(); } break;
      case "n": click('[data-tab="note"]'); var n = document.getElementById("note-body"); if (n) { n.focus(); } break;
      case "a": handled = click('button[name="assign-assignee"][value="me"]'); break;
      case "e":
        var s = document.querySelector('select[name="status-status"]');
        if (s) { s.value = "resolved"; s.form.requestSubmit ? s.form.requestSubmit() : s.form.submit(); } else { handled = false; }
        break;
      case "u": var q = document.querySelector(".crumbs a"); if (q) { location.href = q.href; } else { handled = false; } break;
      case "/":
        var f = document.querySelector("[data-global-search], #global-search, input[name=q], .filters input[name=tag]");
        if (f) { f.focus(); } else { handled = false; }
        break;
      default: handled = false;
    }
    if (handled) { ev.preventDefault(); }
  });
})();
