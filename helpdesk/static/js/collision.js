// Collision detection on the ticket page: who else is here and typing, and a warning as soon as
// someone else's message (or a status change) makes the reply being written stale. Events and
// payloads: docs/architecture.md#events (ticket.presence, ticket.typing, ticket.heartbeat).
// Shares the /agent socket agent.js opened (window.helpdeskSocket).
(function () {
  "use strict";
  var socket = window.helpdeskSocket;
  var main = document.querySelector("section.ticket-main[data-agent-id]");
  if (!socket || !main) { return; }

  var ticketId = parseInt(main.getAttribute("data-ticket-id"), 10);
  var me = parseInt(main.getAttribute("data-agent-id"), 10);
  var L = JSON.parse(document.getElementById("collision-labels").textContent);
  var HEARTBEAT_MS = 30000;   // services/ticket_presence.py: HEARTBEAT_SECONDS
  var TYPING_EVERY_MS = 3000; // while keys are pressed, say so at most this often...
  var TYPING_IDLE_MS = 4000;  // ...and "stopped" after this long without a key
  var TYPING_TTL_MS = 8000;   // others forget a typist not heard from for this long

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? values[k] : m; });
  }

  // ---- who is here -------------------------------------------------------------------------
  var bar = main.querySelector("[data-viewers]");
  var list = main.querySelector("[data-viewer-list]");
  var viewers = [];          // [{agent_id, name}] without me, from the last ticket.presence
  var typists = new Map();   // agent_id -> {name, mode, until}
  var expiry = null;

  function render() {
    var now = Date.now();
    typists.forEach(function (t, id) { if (t.until <= now) { typists.delete(id); } });
    var shown = viewers.slice();
    typists.forEach(function (t, id) {  // typing before its presence arrived: still show it
      if (!shown.some(function (v) { return v.agent_id === id; })) { shown.push({ agent_id: id, name: t.name }); }
    });
    list.textContent = "";
    shown.forEach(function (v) {
      var t = typists.get(v.agent_id);
      var li = document.createElement("li");
      li.className = "viewer" + (t ? " typing" : "");
      li.setAttribute("data-viewer", String(v.agent_id));
      li.textContent = fill(t ? (t.mode === "note" ? L.typing_note : L.typing_reply) : L.viewing, { name: v.name });
      list.appendChild(li);
    });
    bar.hidden = shown.length === 0;
    clearTimeout(expiry);
    if (typists.size) {
      var next = Math.min.apply(null, Array.from(typists.values()).map(function (t) { return t.until; }));
      expiry = setTimeout(render, Math.max(next - now, 50));
    }
  }

  socket.on("ticket.presence", function (p) {
    if (p.ticket_id !== ticketId) { return; }
    // The same agent in two tabs is one entry (the server lists agents once); me never.
    viewers = p.viewers.filter(function (v) { return v.agent_id !== me; });
    typists.forEach(function (t, id) {
      if (!viewers.some(function (v) { return v.agent_id === id; })) { typists.delete(id); }
    });
    render();
  });
  socket.on("ticket.typing", function (t) {
    if (t.ticket_id !== ticketId || t.agent_id === me) { return; }
    if (t.typing) { typists.set(t.agent_id, { name: t.name, mode: t.mode, until: Date.now() + TYPING_TTL_MS }); }
    else { typists.delete(t.agent_id); }
    render();
  });
  setInterval(function () {
    if (socket.connected) { socket.emit("ticket.heartbeat", { ticket_id: ticketId }); }
  }, HEARTBEAT_MS);

  // ---- drafts survive a reload -------------------------------------------------------------
  // Properties, "Reload" and the language switch are full-page posts: what is being written is
  // kept for this tab and put back, and forgotten once it is sent (a refused send re-renders it).
  [["reply", "reply-body"], ["note", "note-body"]].forEach(function (pair) {
    var box = document.getElementById(pair[1]);
    var key = "helpdesk.draft." + ticketId + "." + pair[0];
    if (!box) { return; }
    try {
      var saved = sessionStorage.getItem(key);
      if (saved && !box.value) {
        box.value = saved;
        var tab = document.querySelector('[data-tab="' + pair[0] + '"]');
        var reply = document.getElementById("reply-body");
        if (pair[0] === "note" && tab && !(reply && reply.value.trim())) { tab.click(); }
      }
      box.addEventListener("input", function () {
        if (box.value.trim()) { sessionStorage.setItem(key, box.value); } else { sessionStorage.removeItem(key); }
      });
      box.form.addEventListener("submit", function () { sessionStorage.removeItem(key); });
    } catch (e) { /* storage disabled: drafts just are not kept */ }
  });

  // ---- my typing ---------------------------------------------------------------------------
  var lastSent = { reply: 0, note: 0 };
  var idle = { reply: null, note: null };
  function typing(mode, on) {
    if (socket.connected) { socket.emit("ticket.typing", { ticket_id: ticketId, mode: mode, typing: on }); }
  }
  [["reply", "reply-body"], ["note", "note-body"]].forEach(function (pair) {
    var mode = pair[0], box = document.getElementById(pair[1]);
    if (!box) { return; }
    box.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastSent[mode] >= TYPING_EVERY_MS) { lastSent[mode] = now; typing(mode, true); }
      clearTimeout(idle[mode]);
      idle[mode] = setTimeout(function () { lastSent[mode] = 0; typing(mode, false); }, TYPING_IDLE_MS);
    });
    box.form.addEventListener("submit", function () {
      if (lastSent[mode]) { clearTimeout(idle[mode]); lastSent[mode] = 0; typing(mode, false); }
    });
  });

  // ---- a stale draft -----------------------------------------------------------------------
  // The reply form's hidden version is what the server checks on send. It moves forward only to
  // versions this page has shown the agent; while a draft is stale it stays behind, so the
  // server refuses the send unless the agent confirms here (or on the server's 409 page).
  var form = main.querySelector(".reply-form");
  var versionInput = form && form.querySelector('input[name="reply-version"]');
  var replyBox = document.getElementById("reply-body");
  var warning = main.querySelector("[data-collision]");
  var status = main.getAttribute("data-ticket-status");
  var latest = versionInput ? parseInt(versionInput.value, 10) : 0;
  var stale = false;
  var confirmed = false;
  var ownChanges = 0;
  var checking = false, again = false, checkTimer = null;

  function setVersion(v) {
    if (versionInput) { versionInput.value = String(v); }
  }
  function showWarning(added, statusChanged) {
    var text = main.querySelector("[data-collision-text]");
    var link = main.querySelector("[data-collision-link]");
    var open = added.filter(function (li) { return !li.classList.contains("internal"); });
    if (open.length) {
      var last = open[open.length - 1];
      var author = (last.querySelector(".author") || {}).textContent || "";
      text.textContent = fill(last.classList.contains("msg-inbound") ? L.wrote : L.replied, { name: author.trim() });
      link.href = "#" + open[0].id;
      link.hidden = false;
    } else if (statusChanged) {
      text.textContent = fill(L.status, { status: L.statuses[status] || status });
      link.hidden = true;  // the status is in the page header
    }
    warning.hidden = false;
  }

  function check() {
    if (checking || ownChanges > 0) { again = true; return; }
    checking = true;
    fetch(main.getAttribute("data-ticket-url"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("section.ticket-main");
        if (!fresh) { return; }
        var v = parseInt(fresh.getAttribute("data-ticket-version"), 10);
        if (!(v > latest)) { return; }  // nothing this page has not shown (e.g. my own macro)
        latest = v;
        var timeline = main.querySelector("ol.timeline");
        var added = [];
        doc.querySelectorAll("ol.timeline > li.msg").forEach(function (li) {
          if (!document.getElementById(li.id)) {
            var node = document.importNode(li, true);
            node.classList.add("msg-new");
            timeline.appendChild(node);
            added.push(node);
          }
        });
        var newStatus = fresh.getAttribute("data-ticket-status");
        var statusChanged = newStatus !== status;
        status = newStatus;
        var draft = replyBox && replyBox.value.trim() !== "";
        var news = statusChanged || added.some(function (li) { return !li.classList.contains("internal"); });
        if (draft && (news || stale)) {
          if (news) { stale = true; showWarning(added, statusChanged); }
        } else {
          // Nothing written yet, or only notes/properties changed: the page now shows it all.
          stale = false; warning.hidden = true; setVersion(v);
        }
        document.dispatchEvent(new CustomEvent("helpdesk:messages-added", { detail: added }));
      })
      .catch(function () { /* the next event or a reload catches up */ })
      .finally(function () {
        checking = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() { clearTimeout(checkTimer); checkTimer = setTimeout(check, 100); }

  socket.on("ticket.message", function (m) { if (m.ticket_id === ticketId) { schedule(); } });
  socket.on("ticket.updated", function (t) { if (t.id === ticketId && t.version > latest) { schedule(); } });
  var connectedOnce = socket.connected;
  socket.on("connect", function () {
    if (connectedOnce) { schedule(); }  // events missed while the connection was down
    connectedOnce = true;
  });
  // A macro changes the ticket as me: agent.js tells us, and sets the version itself.
  var heldBack = null;
  document.addEventListener("helpdesk:own-change", function (ev) {
    if (!versionInput) { return; }
    if (ev.detail === "start") {
      ownChanges += 1;
      heldBack = versionInput.value;
      return;
    }
    ownChanges -= 1;
    latest = Math.max(latest, parseInt(versionInput.value, 10) || 0);
    // A stale draft stays stale: my macro is no confirmation of a colleague's message.
    if (stale && heldBack !== null) { versionInput.value = heldBack; }
    if (ownChanges === 0 && again) { again = false; schedule(); }
  });

  if (form && warning) {
    form.addEventListener("submit", function (ev) {
      if (!stale || confirmed) { return; }
      // Stop here: the agent confirms having seen what changed before the reply goes out.
      ev.preventDefault();
      ev.stopImmediatePropagation();
      var box = warning.querySelector("[data-collision-confirm]");
      box.hidden = false;
      box.querySelector("[data-collision-send]").focus();
    }, true);
    warning.querySelector("[data-collision-send]").addEventListener("click", function () {
      // Confirmed against what this page shows; anything newer is caught by the server.
      confirmed = true;
      setVersion(latest);
      form.requestSubmit();
    });
  }
})();
