// Small progressive enhancements shared by every page. Everything works without JS too.
(function () {
  "use strict";
  // Times and numbers written by script, like the server's helpdesk.i18n: in the page's language
  // and the reader's time zone (<html lang>, <meta name="timezone">). Intl writes bn in Bengali
  // digits; the day periods CLDR leaves in Latin letters ("AM") are written in bn.
  var root = document.documentElement;
  var PERIODS = { bn: { AM: "পূর্বাহ্ণ", PM: "অপরাহ্ণ" } };
  function lang() { return root.lang || undefined; }
  function periods(text) {
    var p = PERIODS[(root.lang || "").split("-")[0]];
    return p ? text.replace(/\b(AM|PM)\b/g, function (m) { return p[m]; }) : text;
  }
  window.helpdeskFormat = {
    number: function (n) { return Number(n).toLocaleString(lang()); },
    time: function (iso) {
      var d = new Date(iso);
      if (isNaN(d.getTime())) { return ""; }
      var opts = { hour: "numeric", minute: "2-digit" };
      var zone = document.querySelector('meta[name="timezone"]');
      if (zone && zone.content) { opts.timeZone = zone.content; }
      return periods(d.toLocaleTimeString(lang(), opts));
    },
    // A number written by number() (any digits, grouped) read back.
    parse: function (text) {
      var latin = String(text || "").replace(/[\u09E6-\u09EF]/g, function (c) { return String(c.charCodeAt(0) - 0x09E6); });
      return parseInt(latin.replace(/[^0-9-]/g, ""), 10) || 0;
    }
  };
  // The top bar's Admin menu closes on a click elsewhere or Escape.
  document.addEventListener("click", function (ev) {
    document.querySelectorAll("details[data-admin-menu][open]").forEach(function (menu) {
      if (!menu.contains(ev.target)) { menu.removeAttribute("open"); }
    });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") { return; }
    document.querySelectorAll("details[data-admin-menu][open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) {
      el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
    }
  });
})();
