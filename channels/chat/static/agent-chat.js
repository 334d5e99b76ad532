// Agents' side of live chat: availability in the top bar, incoming chat offers, and the chat
// panel on a chat ticket's page. Events and payloads: docs/chat-protocol.md (namespace /agent).
(function () {
  "use strict";
  var me = document.currentScript;

  function withSocket(cb) {
    // agent.js (queue and ticket pages) already opened the /agent socket: share it.
    if (window.helpdeskSocket) { return cb(window.helpdeskSocket); }
    if (typeof io !== "undefined") { window.helpdeskSocket = io("/agent"); return cb(window.helpdeskSocket); }
    var s = document.createElement("script");
    s.src = me.getAttribute("data-socketio");
    s.onload = function () { window.helpdeskSocket = io("/agent"); cb(window.helpdeskSocket); };
    document.head.appendChild(s);
  }
  function newId() {
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function init(socket) {
    // ---- availability ------------------------------------------------------------------------
    var presence = document.querySelector("[data-presence]");
    var saved = localStorage.getItem("helpdesk.presence") || "offline";
    function setPresence(status) {
      socket.emit("presence.set", { status: status }, function (ack) {
        if (ack && ack.ok) {
          presence.value = status;
          presence.setAttribute("data-saved", status);  // the server has it (tests wait on this)
          localStorage.setItem("helpdesk.presence", status);
        }
      });
    }
    if (presence) {
      presence.value = saved;
      presence.addEventListener("change", function () { setPresence(presence.value); });
    }
    // Each (re)connection counts as the agent's presence; the choice is restored with it.
    socket.on("connect", function () { if (presence) { setPresence(presence.value); } });
    if (socket.connected && presence) { setPresence(presence.value); }
    setInterval(function () { if (socket.connected) { socket.emit("presence.heartbeat", {}); } }, 30000);

    // ---- offers ------------------------------------------------------------------------------
    var offers = document.querySelector("[data-chat-offers]");
    socket.on("chat.offer", function (o) {
      if (!offers) { return; }
      var box = el("div", "chat-offer");
      box.setAttribute("role", "alert");
      box.setAttribute("data-offer", o.ticket_id);
      var link = el("a", "", offers.getAttribute("data-label-new").replace("{name}", o.customer) + " — #" + o.number);
      link.href = offers.getAttribute("data-ticket-url").replace(/0$/, String(o.number));
      var accept = el("button", "primary", offers.getAttribute("data-label-accept"));
      accept.type = "button";
      accept.setAttribute("data-offer-accept", o.ticket_id);
      accept.addEventListener("click", function () {
        socket.emit("chat.accept", { ticket_id: o.ticket_id }, function (ack) {
          if (ack && ack.ok) { window.location = link.href; }
        });
      });
      var decline = el("button", "", offers.getAttribute("data-label-decline"));
      decline.type = "button";
      decline.addEventListener("click", function () {
        socket.emit("chat.decline", { ticket_id: o.ticket_id }, function () { box.remove(); });
      });
      box.append(link, " ", accept, " ", decline);
      offers.appendChild(box);
    });
    socket.on("chat.offer_withdrawn", function (w) {
      var box = offers && offers.querySelector('[data-offer="' + w.ticket_id + '"]');
      if (box) { box.remove(); }
      // Missed too many offers in a row: the server set this agent away; show it and keep it.
      if (w.presence && presence) { presence.value = w.presence; localStorage.setItem("helpdesk.presence", w.presence); }
    });
    socket.on("chat.updated", function (c) {
      // An offer someone else took (or that moved on) disappears.
      var box = offers && offers.querySelector('[data-offer="' + c.ticket_id + '"]');
      if (box && c.status !== "offered") { box.remove(); }
    });

    // ---- the chat panel on a chat ticket -----------------------------------------------------
    var panel = document.querySelector("[data-chat-panel]");
    if (!panel) { return; }
    var ticketId = parseInt(panel.getAttribute("data-ticket-id"), 10);
    var L = JSON.parse(document.getElementById("chat-panel-labels").textContent);
    var log = panel.querySelector("[data-chat-log]");
    var statusEl = panel.querySelector("[data-chat-status]");
    var typingEl = panel.querySelector("[data-chat-typing]");
    var input = panel.querySelector("[data-chat-input]");
    var errorEl = panel.querySelector("[data-chat-error]");
    var empty = panel.querySelector("[data-chat-empty]");
    // The timeline (rendered with the page) shows every line up to its last message: the panel
    // shows only newer ones, so nothing appears twice.
    var lastId = parseInt(panel.getAttribute("data-after") || "0", 10) || 0, readId = 0, pending = {};
    var inTimeline = lastId;

    function showError(msg) { errorEl.textContent = msg || ""; errorEl.hidden = !msg; }
    function setStatus(chat) {
      statusEl.textContent = L[chat.status] || chat.status;
      panel.setAttribute("data-status", chat.status);
      panel.querySelector("[data-chat-accept]").hidden = chat.status === "active" || chat.status === "ended";
      panel.querySelector("[data-chat-decline]").hidden = chat.status !== "offered";
    }
    function render(line) {
      var key = line.client_id ? "c-" + line.client_id : "m-" + line.id;
      var li = log.querySelector('[data-key="' + key + '"]');
      if (!li) {
        li = el("div", "chat-line from-" + line.from);
        li.setAttribute("data-key", key);
        var head = el("div", "chat-line-head");
        head.append(el("span", "author", line.author || (line.from === "visitor" ? L.customer : L.you)));
        var t = el("time", "", line.created_at ? helpdeskFormat.time(line.created_at) : "");
        head.append(" ", t, " ", el("span", "chat-mark"));
        var body = el("div", "chat-text");
        body.setAttribute("dir", "auto");
        li.append(head, body);
        log.appendChild(li);
        if (empty) { empty.hidden = true; }
      }
      if (line.html) { li.querySelector(".chat-text").innerHTML = line.html; } // sanitized by the server (nh3)
      else { li.querySelector(".chat-text").textContent = line.text; }
      if (line.id) {
        li.setAttribute("data-id", line.id); lastId = Math.max(lastId, line.id);
        // The ticket page counts lines shown live, so their update is not "new activity".
        if (line.id > inTimeline) { document.dispatchEvent(new CustomEvent("helpdesk:chat-line", { detail: { ticketId: ticketId, id: line.id } })); }
      }
      (line.attachments || []).forEach(function (a) {
        var link = el("a", "chat-file", a.filename);
        link.href = "/attachments/" + a.id + "/" + encodeURIComponent(a.filename);
        li.querySelector(".chat-text").append(" ", link);
      });
      markRead();
      li.scrollIntoView({ block: "end" });
      return li;
    }
    function updateMarks() {
      log.querySelectorAll(".from-agent").forEach(function (li) {
        var id = parseInt(li.getAttribute("data-id") || "0", 10);
        var mark = li.querySelector(".chat-mark");
        if (!id) { mark.textContent = L.sending; }
        else { mark.textContent = id <= readId ? L.read : L.sent; }
      });
    }
    function markRead() {
      if (document.visibilityState === "visible" && lastId) {
        socket.emit("chat.read", { ticket_id: ticketId, read: lastId });
      }
    }
    document.addEventListener("visibilitychange", markRead);

    function load() {
      socket.emit("chat.history", { ticket_id: ticketId, after: lastId }, function (ack) {
        // A chat ticket with no chat behind it (imported, or the demo's): the timeline is all
        // there is, so the live panel goes away instead of showing an error.
        if (ack && ack.code === "not_found") { panel.hidden = true; return; }
        if (!ack || !ack.ok) { showError(ack && ack.error); return; }
        setStatus(ack.chat);
        readId = ack.chat.visitor_read_id || 0;
        ack.messages.forEach(render);
        updateMarks();
        // Lines typed while disconnected are sent again; the server ignores ones it has.
        Object.keys(pending).forEach(function (cid) { send(pending[cid]); });
      });
    }
    socket.on("connect", load);
    if (socket.connected) { load(); }
    socket.on("chat.message", function (line) {
      if (line.ticket_id !== ticketId) { return; }
      delete pending[line.client_id];
      if (line.id && line.id <= inTimeline) { return; } // already in the timeline below
      render(line); updateMarks();
      if (line.from === "visitor") { typingEl.hidden = true; }
    });
    socket.on("chat.updated", function (c) { if (c.ticket_id === ticketId) { setStatus(c); } });
    socket.on("chat.typing", function (t) {
      if (t.ticket_id === ticketId && t.from === "visitor") { typingEl.hidden = !t.typing; }
    });
    socket.on("chat.read", function (r) {
      if (r.ticket_id === ticketId && r.by === "visitor") { readId = Math.max(readId, r.read_id); updateMarks(); }
    });

    function send(line) {
      pending[line.client_id] = line;
      socket.timeout(10000).emit("chat.send", { ticket_id: ticketId, client_id: line.client_id, text: line.text }, function (err, ack) {
        if (err) { return; } // no answer: still pending, sent again after reconnect
        if (ack && ack.ok) { delete pending[line.client_id]; render(ack.line); updateMarks(); showError(""); }
        else if (ack && !ack.retry) { delete pending[line.client_id]; showError(ack.error); }
      });
    }
    var typingTimer = null, typing = false;
    function setTyping(on) {
      if (typing !== on) { typing = on; socket.emit("chat.typing", { ticket_id: ticketId, typing: on }); }
    }
    input.addEventListener("input", function () {
      // At the limit the box stops taking text: say why.
      if (input.maxLength > 0 && input.value.length >= input.maxLength) { showError(L.too_long); }
      else if (errorEl.textContent === L.too_long) { showError(""); }
      setTyping(input.value.length > 0);
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { setTyping(false); }, 3000);
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); panel.querySelector("[data-chat-compose]").requestSubmit(); }
    });
    panel.querySelector("[data-chat-compose]").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = input.value.trim();
      if (!text) { return; }
      if (text.length > input.maxLength && input.maxLength > 0) { showError(L.too_long); return; }
      var line = { client_id: newId(), text: text, from: "agent" };
      render(line); updateMarks();
      input.value = ""; setTyping(false);
      send(line);
    });
    function act(event, extra) {
      socket.emit(event, Object.assign({ ticket_id: ticketId }, extra || {}), function (ack) {
        if (ack && ack.ok) { showError(""); if (ack.chat) { setStatus(ack.chat); } } else { showError(ack && ack.error); }
      });
    }
    panel.querySelector("[data-chat-accept]").addEventListener("click", function () { act("chat.accept"); });
    panel.querySelector("[data-chat-decline]").addEventListener("click", function () { act("chat.decline"); });
    panel.querySelector("[data-chat-end]").addEventListener("click", function () { act("chat.end"); });
    // A file is one line of its own, sent over HTTP (with the page's CSRF token) and
    // idempotent by its client id like typed lines; the visitor gets a link only they can open.
    var filePick = panel.querySelector("[data-chat-file]");
    filePick.addEventListener("change", function () {
      var f = filePick.files[0];
      if (!f) { return; }
      var fd = new FormData();
      fd.append("file", f); fd.append("client_id", newId()); fd.append("text", input.value.trim());
      var meta = document.querySelector('meta[name="csrf-token"]');
      fetch(panel.getAttribute("data-file-url"), {
        method: "POST", body: fd, credentials: "same-origin",
        headers: { "X-CSRFToken": meta ? meta.content : "", "Accept": "application/json" }
      }).then(function (r) { return r.json(); }).then(function (ack) {
        if (ack && ack.ok) { input.value = ""; setTyping(false); render(ack.line); updateMarks(); showError(""); }
        else { showError((ack && ack.error) || L.upload_failed); }
      }).catch(function () { showError(L.upload_failed); });
      filePick.value = "";
    });
    panel.querySelector("[data-chat-transfer]").addEventListener("change", function (ev) {
      var v = ev.target.value.split(":");
      if (v.length !== 2) { return; }
      var extra = {}; extra[v[0] + "_id"] = parseInt(v[1], 10);
      act("chat.transfer", extra);
      ev.target.value = "";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { withSocket(init); });
})();
