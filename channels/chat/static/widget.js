// The chat widget. Served inside /chat/widget.js after the Socket.IO client (HD_IO), the CSS
// (HD_CSS) and the strings of every language (HD_STRINGS); see channels/chat/views.py.
// Protocol: docs/chat-protocol.md (namespace /chat). No framework; all UI in a shadow root.
var script = document.currentScript;
if (!script || window.__helpdeskChat) { return; }
window.__helpdeskChat = true;
var HOST = new URL(script.src, location.href).origin;
var opt = script.dataset;
var team = parseInt(opt.team || "", 10) || null;
function pickLang() {
  var c = [opt.language, document.documentElement.lang, navigator.language];
  for (var i = 0; i < c.length; i++) {
    var l = (c[i] || "").slice(0, 2).toLowerCase();
    if (HD_STRINGS[l]) { return l; }
  }
  return "en";
}
var lang = pickLang();
var T = HD_STRINGS[lang];
var KEY = "helpdesk.chat." + HOST + ".";
function load(k, d) { try { return JSON.parse(localStorage.getItem(KEY + k)) || d; } catch (e) { return d; } }
function save(k, v) { try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch (e) { /* private mode */ } }
function newId() {
  var a = new Uint8Array(16); crypto.getRandomValues(a);
  return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
}
function h(tag, attrs, kids) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) {
    if (k === "text") { e.textContent = attrs[k]; } else if (k.slice(0, 2) === "on") { e.addEventListener(k.slice(2), attrs[k]); } else { e.setAttribute(k, attrs[k]); }
  }
  (kids || []).forEach(function (c) { if (c) { e.append(c); } });
  return e;
}
function fmt(s, n) { return s.replace(/%\(\w+\)s/, n); }

// ---- skeleton -----------------------------------------------------------------------------
var hostEl = h("div", { "data-helpdesk-chat": "" });
var root = hostEl.attachShadow({ mode: "open" });
// The styles as a constructed style sheet: a <style> element would be refused by a page whose
// Content-Security-Policy allows no inline style (our own portal's does), leaving the widget
// unstyled; adopted sheets are not inline styles. Old browsers get the <style> element.
var style = null;
if (window.CSSStyleSheet && "adoptedStyleSheets" in root && "replaceSync" in CSSStyleSheet.prototype) {
  var sheet = new CSSStyleSheet();
  sheet.replaceSync(HD_CSS);
  root.adoptedStyleSheets = [sheet];
} else {
  style = h("style", { text: HD_CSS });
}
var side = opt.position === "left" ? "hd-left" : "hd-right";
var launch = h("button", { "class": "hd-launch " + side, type: "button", "aria-expanded": "false", "aria-controls": "hd-panel", text: T.open });
var body = h("div", { "class": "hd-body" });
var statusEl = h("div", { "class": "hd-status", role: "status", "aria-live": "polite" });
var footer = h("div");
var panel = h("div", { "class": "hd-panel " + side, id: "hd-panel", role: "dialog", "aria-label": T.title, lang: lang, hidden: "" }, [
  h("div", { "class": "hd-head" }, [h("h2", { text: T.title }), h("button", { "class": "hd-x", type: "button", "aria-label": T.close, text: "×", onclick: toggle })]),
  body, statusEl, footer
]);
if (style) { root.append(style); }
root.append(launch, panel);
root.host.style.setProperty("--hd-c", opt.colour || opt.color || "#2563eb");
launch.addEventListener("click", toggle);
panel.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { toggle(); launch.focus(); } });
document.body.appendChild(hostEl);

function toggle() {
  var open = panel.hidden;
  panel.hidden = !open;
  launch.setAttribute("aria-expanded", String(open));
  if (open) { connect(); var f = panel.querySelector("input, textarea"); if (f) { f.focus(); } markRead(); }
}

// ---- state --------------------------------------------------------------------------------
// lastId: the newest line this page has shown; after a reconnect only newer ones are fetched.
var socket = null, settings = {}, chat = null, lastId = 0, pending = load("pending", {});
var lines = {}, log = null, input = null, agentReadId = 0, typingTimer = null, typing = false;

function connect() {
  if (socket) { return; }
  socket = HD_IO(HOST + "/chat", {
    transports: ["websocket", "polling"],
    auth: function (cb) { cb({ token: load("token", null), language: lang }); }
  });
  socket.on("connect", hello);
  socket.on("disconnect", function () { statusEl.textContent = T.reconnecting; });
  socket.on("chat.message", function (l) { if (chat && l.ticket_id === chat.ticket_id) { render(l); } });
  socket.on("chat.state", state);
  socket.on("chat.queue", function (q) { if (chat && chat.status === "waiting") { statusEl.textContent = fmt(T.position, q.position); } });
  socket.on("chat.typing", function (t) { statusEl.textContent = t.typing ? fmt(T.typing, t.name || T.agent) : ""; });
  socket.on("chat.read", function (r) { agentReadId = Math.max(agentReadId, r.read_id); marks(); });
}

function hello() {
  socket.emit("chat.hello", { team: team }, function (ack) {
    if (!ack || !ack.ok) { return; }
    if (ack.token) { save("token", ack.token); }
    settings = ack.settings;
    if (ack.chat && ack.chat.status !== "ended") {
      conversation();
      socket.emit("chat.history", { after: lastId }, function (r) {
        if (r && r.ok) { state(r.chat); r.messages.forEach(render); }
        // Lines never acknowledged (the tab closed, the server restarted) go again; the server
        // ignores any it already has, so each is stored exactly once.
        Object.keys(pending).forEach(function (k) { send(pending[k]); });
      });
    } else if (!ack.available) { offline(load("draft", {})); }
    else if (!chat) { prechat(load("draft", {})); }
  });
}

function state(s) {
  chat = s;
  agentReadId = s.agent_read_id || agentReadId;
  var t = s.status === "waiting" ? fmt(T.position, s.position || 1)
    : s.status === "offered" ? T.offered
    : s.status === "active" && s.agent ? fmt(T.joined, s.agent.name)
    : s.status === "ended" ? T.ended : "";
  statusEl.textContent = t;
  marks();
  if (s.status === "ended") { offerRating(); } // widget_rating.js
}

// ---- views --------------------------------------------------------------------------------
function field(label, attrs) {
  var f = h(attrs.rows ? "textarea" : "input", attrs);
  return [h("label", {}, [label, f]), f];
}
function clear() { body.textContent = ""; footer.textContent = ""; }
function err(form, msg) {
  // The form's own message (a custom field's error sits in the field's wrapper).
  var e = form.querySelector(":scope > .hd-err") || form.appendChild(h("p", { "class": "hd-err", role: "alert" }));
  e.textContent = msg || "";
}

// The longest line the server takes (settings.max_text): the boxes stop there and say so, so a
// line the server would refuse is never sent (nor kept to be re-sent after every reconnect).
function maxText() { return settings.max_text || 5000; }
function limit(box) {
  box.maxLength = maxText();
  box.addEventListener("input", function () {
    if (box.value.length >= maxText()) { statusEl.textContent = fmt(T.too_long, maxText()); }
    else if (statusEl.textContent === fmt(T.too_long, maxText())) { statusEl.textContent = ""; }
  });
  return box;
}

// The admin's custom fields asked before a chat (settings.fields from chat.hello: labels in this
// widget's language). Each gets a wrapper that shows its own error; answers are sent in
// chat.start's custom / customer_custom by group.
function customInput(f, value) {
  var id = "hd-cf-" + f.name.replace(/\W/g, "-"), el, box;
  if (f.type === "checkbox") {
    el = h("input", { type: "checkbox", id: id, name: f.name });
    el.checked = value === true;
    box = h("label", { "class": "hd-check" }, [el, f.label]);
  } else if (f.type === "multi_select") {
    box = h("fieldset", { "class": "hd-multi" }, [h("legend", { text: f.label })]);
    (f.options || []).forEach(function (o) {
      var c = h("input", { type: "checkbox", name: f.name, value: o.value });
      c.checked = (value || []).indexOf(o.value) >= 0;
      box.append(h("label", { "class": "hd-check" }, [c, o.label]));
    });
  } else if (f.type === "dropdown") {
    el = h("select", { id: id, name: f.name }, [h("option", { value: "", text: "—" })].concat((f.options || []).map(function (o) {
      return h("option", { value: o.value, text: o.label });
    })));
    el.value = value || "";
    box = h("label", {}, [f.label, el]);
  } else {
    var types = { number: "number", date: "date", url: "url" };
    el = h(f.type === "long_text" ? "textarea" : "input", f.type === "long_text" ? { rows: 2, dir: "auto", name: f.name } : { type: types[f.type] || "text", dir: "auto", name: f.name });
    if (f.type === "number") { el.step = "any"; }
    el.value = value == null ? "" : value;
    box = h("label", {}, [f.label, el]);
  }
  if (f.required && el) { el.required = true; }
  var wrap = h("div", { "class": "hd-cf", "data-name": f.name }, [box]);
  wrap.answer = function () {
    if (f.type === "checkbox") { return el.checked; }
    if (f.type === "multi_select") {
      return Array.prototype.filter.call(box.querySelectorAll("input"), function (c) { return c.checked; }).map(function (c) { return c.value; });
    }
    return el.value.trim();
  };
  wrap.empty = function () { var a = wrap.answer(); return a === false || a === "" || (a && a.length === 0); };
  wrap.error = function (msg) {
    var e = wrap.querySelector(".hd-err");
    if (!msg) { if (e) { e.remove(); } return; }
    if (!e) { e = wrap.appendChild(h("p", { "class": "hd-err", role: "alert" })); }
    e.textContent = msg;
  };
  return wrap;
}

function prechat(d, errors) {
  clear();
  var n = field(settings.name_required ? T.name : T.name_optional, { name: "name", autocomplete: "name", value: d.name || "" });
  if (settings.name_required) { n[1].required = true; }
  var m = field(settings.email_required ? T.email : T.email_optional, { name: "email", type: "email", autocomplete: "email", value: d.email || "" });
  if (settings.email_required) { m[1].required = true; }
  var given = d.fields || {};
  var custom = (settings.fields || []).map(function (f) {
    var w = customInput(f, given[f.name]); w.field = f; w.error((errors || {})[f.name]);
    return w;
  });
  var q = field(T.question, { name: "text", rows: 3, required: "", dir: "auto" });
  limit(q[1]).value = (d.text || "").slice(0, maxText());
  var form = h("form", { novalidate: "" }, [n[0], m[0]].concat(custom, [q[0], h("button", { "class": "hd-b", type: "submit", text: T.start })]));
  function collect() {
    var data = { name: n[1].value.trim(), email: m[1].value.trim(), text: q[1].value.trim(), fields: {}, custom: {}, customer_custom: {} };
    custom.forEach(function (w) {
      var a = w.answer();
      data.fields[w.field.name] = a;
      data[w.field.group][w.field.key] = a;
    });
    return data;
  }
  form.addEventListener("input", function () { var c = collect(); save("draft", { name: c.name, email: c.email, text: c.text, fields: c.fields }); });
  form.addEventListener("change", function () { var c = collect(); save("draft", { name: c.name, email: c.email, text: c.text, fields: c.fields }); });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var data = collect(), missing = false;
    custom.forEach(function (w) {
      var gap = w.field.required && w.empty();
      w.error(gap ? T.required : "");
      missing = missing || gap;
    });
    if (!data.text || (settings.email_required && !data.email) || (settings.name_required && !data.name) || missing) { return err(form, T.required); }
    suggestFirst(form, data);
  });
  body.append(h("p", { text: T.intro }), form);
  var bad = form.querySelector(".hd-cf .hd-err");
  if (bad) { bad.parentNode.scrollIntoView({ block: "nearest" }); }
}

function suggestFirst(form, data) {
  socket.emit("chat.suggest", { q: data.text, lang: lang }, function (ack) {
    var arts = (ack && ack.ok && ack.articles) || [];
    if (!arts.length) { return start(form, data); }
    clear();
    var box = h("div", { role: "region", "aria-label": T.suggest_title }, [h("p", { text: T.suggest_title })]);
    arts.forEach(function (a) {
      box.append(h("div", { "class": "hd-sugg" }, [
        a.url ? h("a", { href: a.url, target: "_blank", rel: "noopener", text: a.title }) : h("strong", { text: a.title }),
        h("p", { text: a.snippet })
      ]));
    });
    box.append(
      h("button", { "class": "hd-b", type: "button", text: T.suggest_yes, onclick: function () { save("draft", {}); toggle(); prechat({}); } }),
      " ",
      h("button", { "class": "hd-l", type: "button", text: T.suggest_no, onclick: function () { start(null, data); } })
    );
    body.append(box);
    box.querySelector("a, button").focus();
  });
}

function start(form, data) {
  var cid = load("startId", null) || newId();
  save("startId", cid);
  socket.emit("chat.start", { client_id: cid, text: data.text, name: data.name, email: data.email, team: team, page_url: location.href, custom: data.custom || {}, customer_custom: data.customer_custom || {} }, function (ack) {
    if (ack && ack.ok) {
      save("startId", null); save("draft", {});
      conversation(); state(ack.chat); ack.messages.forEach(render);
    } else if (ack && ack.offline) { save("startId", null); offline(data); }
    else if (ack && ack.fields) { prechat(data, ack.fields); }
    else if (form) { err(form, ack && ack.error); } else { prechat(data); }
  });
}

function offline(d) {
  clear();
  var n = field(T.name, { name: "name", autocomplete: "name", value: d.name || "" });
  var m = field(T.email, { name: "email", type: "email", autocomplete: "email", required: "", value: d.email || "" });
  var q = field(T.question, { name: "text", rows: 4, required: "", dir: "auto" });
  limit(q[1]).value = (d.text || "").slice(0, maxText());
  var form = h("form", { novalidate: "" }, [n[0], m[0], q[0], h("button", { "class": "hd-b", type: "submit", text: T.offline_send })]);
  var cid = newId();
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var data = { client_id: cid, name: n[1].value.trim(), email: m[1].value.trim(), text: q[1].value.trim() };
    if (!data.text || !data.email) { return err(form, T.required); }
    socket.emit("chat.offline", data, function (ack) {
      if (!ack || !ack.ok) { return err(form, ack && ack.error); }
      save("draft", {});
      clear();
      body.append(h("p", { role: "status", text: fmt(T.offline_done, ack.number) }));
    });
  });
  body.append(h("h3", { text: T.offline_title }), h("p", { text: T.offline_intro }), form);
  statusEl.textContent = "";
}

function conversation() {
  if (log && body.contains(log)) { return; }
  clear();
  lines = {};
  log = h("ol", { "class": "hd-log", role: "log", "aria-live": "polite", "aria-label": T.conversation });
  body.append(log);
  input = limit(h("textarea", { rows: 1, dir: "auto", "aria-label": T.message, placeholder: T.message }));
  input.value = (load("draft", {}).line || "").slice(0, maxText());
  var file = h("input", { type: "file", "class": "hd-vh", "aria-hidden": "true", tabindex: "-1" });
  var form = h("form", { "class": "hd-compose" }, [
    input,
    h("button", { "class": "hd-l", type: "button", "aria-label": T.attach, text: "📎", onclick: function () { file.click(); } }),
    h("button", { "class": "hd-b", type: "submit", text: T.send })
  ]);
  input.addEventListener("keydown", function (ev) { if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); } });
  input.addEventListener("input", function () {
    save("draft", { line: input.value });
    setTyping(input.value.length > 0);
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { setTyping(false); }, 3000);
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    if (text.length > maxText()) { statusEl.textContent = fmt(T.too_long, maxText()); return; }
    input.value = ""; save("draft", {}); setTyping(false);
    send({ client_id: newId(), text: text, attachments: [] });
  });
  file.addEventListener("change", function () { if (file.files[0]) { upload(file.files[0]); } file.value = ""; });
  var tools = h("div", { "class": "hd-tools" }, [
    settings.transcript === false ? null : h("button", { "class": "hd-l", type: "button", text: T.transcript, onclick: transcript }),
    h("button", { "class": "hd-l", type: "button", text: T.end, onclick: function () { socket.emit("chat.end", {}, function (a) { if (a && a.ok) { state(a.chat); } }); } })
  ]);
  footer.append(form, file, tools);
}

function setTyping(on) { if (typing !== on) { typing = on; socket.emit("chat.typing", { typing: on }); } }

function send(line) {
  pending[line.client_id] = line;
  save("pending", pending);
  render({ client_id: line.client_id, text: line.text, from: "visitor", attachments: [] });
  socket.timeout(10000).emit("chat.message", line, function (e, ack) {
    if (e) { return; } // no ack: stays pending, sent again on reconnect
    if (ack && ack.ok) { delete pending[line.client_id]; save("pending", pending); render(ack.line); }
    else if (ack && !ack.retry) {
      // Refused for good (too long, chat gone): the text goes back into the box, not lost.
      delete pending[line.client_id]; save("pending", pending);
      input.value = line.text; statusEl.textContent = ack.error;
      var li = lines[line.client_id]; if (li) { li.remove(); delete lines[line.client_id]; }
    } else if (ack) { statusEl.textContent = ack.error; setTimeout(function () { if (pending[line.client_id]) { send(line); } }, 3000); }
  });
}

function upload(f) {
  if (settings.upload_max_bytes && f.size > settings.upload_max_bytes) { statusEl.textContent = T.too_big; return; }
  var fd = new FormData();
  fd.append("token", load("token", "")); fd.append("language", lang); fd.append("file", f);
  fetch(HOST + "/chat/api/upload", { method: "POST", body: fd })
    .then(function (r) { return r.json(); })
    .then(function (a) {
      if (!a.ok) { statusEl.textContent = a.error; return; }
      send({ client_id: newId(), text: "", attachments: [a.id] });
    })
    .catch(function () { statusEl.textContent = T.reconnecting; });
}

function transcript() {
  socket.emit("chat.transcript", {}, function (a) { statusEl.textContent = a && a.ok ? T.transcript_sent : (a && a.error) || ""; });
}

function render(l) {
  if (!log) { return; }
  var key = l.client_id || "m" + l.id;
  var li = lines[key];
  var mine = l.from === "visitor";
  if (!li) {
    li = h("li", { "class": "hd-line" + (mine ? " hd-me" : l.from === "system" ? " hd-sys" : "") }, [
      h("div", { "class": "hd-text", dir: "auto" }), h("div", { "class": "hd-meta" })
    ]);
    lines[key] = li;
    log.append(li);
  }
  // html is the server's nh3-sanitized rendering of plain text (links made clickable).
  if (l.html) { li.firstChild.innerHTML = l.html; } else { li.firstChild.textContent = l.text; }
  (l.attachments || []).forEach(function (a) {
    li.firstChild.append(h("a", { href: HOST + "/chat/api/attachments/" + a.id + "?token=" + encodeURIComponent(load("token", "")), text: "📎 " + a.filename }));
  });
  if (l.id) {
    li.dataset.id = l.id;
    if (l.id > lastId) { lastId = l.id; }
  }
  var who = mine ? T.you : (l.author || T.agent);
  // The visitor's own clock, in the widget's language (bn: Bengali digits, its day periods).
  var when = l.created_at ? new Date(l.created_at).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" }) : "";
  if (String(lang).split("-")[0] === "bn") { when = when.replace(/\bAM\b/, "পূর্বাহ্ণ").replace(/\bPM\b/, "অপরাহ্ণ"); }
  li.lastChild.dataset.base = who + (when ? " · " + when : "");
  if (!mine && l.from === "agent") { statusEl.textContent = ""; socket.emit("chat.read", { delivered: l.id }); }
  marks();
  markRead();
  li.scrollIntoView({ block: "end" });
}

function marks() {
  for (var k in lines) {
    var li = lines[k], meta = li.lastChild, id = parseInt(li.dataset.id || "0", 10);
    var m = "";
    if (li.classList.contains("hd-me")) { m = !id ? T.sending : id <= agentReadId ? T.read : T.delivered; }
    meta.textContent = (meta.dataset.base || "") + (m ? " · " + m : "");
  }
}

function markRead() {
  if (socket && !panel.hidden && document.visibilityState === "visible" && lastId) {
    socket.emit("chat.read", { read: lastId });
  }
}
document.addEventListener("visibilitychange", markRead);

// A returning visitor with a conversation: reconnect at once so agent lines arrive.
if (load("token", null)) { connect(); }
