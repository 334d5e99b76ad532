// Live agent workspace over Socket.IO (namespace /agent). Event names and payloads are
// documented in docs/architecture.md#events.
(function () {
  "use strict";
  if (typeof io === "undefined") { return; }
  var socket = io("/agent", { transports: ["websocket", "polling"] });
  window.helpdeskSocket = socket;
  // The connection's state on the page (<html data-live="connected">): styles and tests read it
  // without running script in the page (the Content-Security-Policy allows none but ours).
  socket.on("connect", function () { document.documentElement.setAttribute("data-live", "connected"); });
  socket.on("disconnect", function () { document.documentElement.setAttribute("data-live", "disconnected"); });

  // ---- notifications (mentions) ------------------------------------------------------------
  socket.on("notification", function () {
    var badge = document.querySelector("[data-notification-count]");
    if (badge) { badge.textContent = helpdeskFormat.number(helpdeskFormat.parse(badge.textContent) + 1); badge.hidden = false; }
  });

  // ---- My tasks: the navigation's count (open tasks due by the end of today) ----------------
  // Asked again when this agent's tasks change (tasks.changed) or a reminder fires.
  var taskLink = document.querySelector("[data-my-tasks]");
  function refreshTaskCount() {
    if (!taskLink) { return; }
    fetch(taskLink.getAttribute("data-count-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        var badge = taskLink.querySelector("[data-task-count]");
        badge.textContent = helpdeskFormat.number(data.count);
        badge.hidden = !data.count;
      })
      .catch(function () { /* the next event or a reload will catch up */ });
  }
  socket.on("tasks.changed", refreshTaskCount);
  socket.on("notification", function (data) {
    if (data && data.kind === "task.reminder") { refreshTaskCount(); }
  });

  // ---- queue: refresh the first page when any ticket is created or changes ----------------
  var queue = document.querySelector("[data-live-queue]");
  var refreshTimer = null;
  var refreshing = false;
  function refreshQueue() {
    if (!queue || queue.hasAttribute("data-deep-page")) { return; }
    if (refreshing) { refreshTimer = setTimeout(refreshQueue, 150); return; }
    refreshing = true;
    fetch(queue.getAttribute("data-refresh-url"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        // Only a list that changed says so ("New activity"): the browser serialises both sides
        // the same way, so equal rows compare equal.
        var rows = queue.querySelector("[data-queue-rows]");
        var fresh = document.createElement("template");
        fresh.innerHTML = html;
        if (fresh.innerHTML === rows.innerHTML) { return; }
        rows.innerHTML = html;
        var note = queue.querySelector("[data-live-note]");
        if (note) { note.hidden = false; }
      })
      .catch(function () { /* the next event or a reload will catch up */ })
      .finally(function () { refreshing = false; });
  }
  function scheduleRefresh() {
    // Coalesce bursts (a bulk change sends many events) into one request.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshQueue, 120);
  }
  // View counts: fetched after the page shows (never blocking it) and again, at most every
  // couple of seconds, while tickets change.
  var countsTimer = null;
  function refreshCounts() {
    if (!queue || !queue.dataset.countsUrl) { return; }
    fetch(queue.dataset.countsUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (counts) {
        document.querySelectorAll("[data-view-count]").forEach(function (el) {
          var n = counts[el.getAttribute("data-view-count")];
          el.textContent = (n === undefined) ? "" : helpdeskFormat.number(n);
        });
      }).catch(function () {});
  }
  function scheduleCounts() { if (!countsTimer) { countsTimer = setTimeout(function () { countsTimer = null; refreshCounts(); }, 1500); } }
  if (queue) {
    refreshCounts();
    if (queue.dataset.rememberUrl) {
      var form = new FormData();
      form.append("args", queue.dataset.args || "");
      var meta = document.querySelector('meta[name="csrf-token"]');
      fetch(queue.dataset.rememberUrl, { method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": meta ? meta.content : "" } });
    }
  }
  socket.on("ticket.created", function () { scheduleRefresh(); scheduleCounts(); });
  socket.on("ticket.updated", function () { scheduleRefresh(); scheduleCounts(); });
  // After a reconnect we may have missed events: refresh once (not on the first connect: the
  // page was just rendered).
  var connectedBefore = false;
  socket.on("connect", function () {
    if (queue && connectedBefore) { scheduleRefresh(); }
    connectedBefore = true;
  });

  // ---- ticket page: join its room, show new activity ----------------------------------------
  var main = document.querySelector("[data-ticket-id]");
  if (main && !queue) {
    var ticketId = parseInt(main.getAttribute("data-ticket-id"), 10);
    var version = parseInt(main.getAttribute("data-ticket-version"), 10);
    var labels = JSON.parse((document.getElementById("delivery-labels") || {}).textContent || "{}");
    function showDelivery(messageId, status) {
      var badge = document.querySelector('[data-message-id="' + messageId + '"] [data-delivery]');
      if (badge && status) { badge.textContent = labels[status] || status; badge.className = "delivery delivery-" + status; }
    }
    // Events sent before this page joined the room (the worker can deliver a reply while the
    // browser is still following the redirect) are not replayed: after every (re)join, read the
    // current delivery states once so no badge stays "Queued" forever.
    function reconcile() {
      if (!main.querySelector(".delivery-queued, .delivery-sending")) { return; }
      fetch(main.getAttribute("data-ticket-api"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (t) { t.messages.forEach(function (m) { showDelivery(m.id, m.delivery_status); }); })
        .catch(function () { /* the next event will correct it */ });
    }
    socket.on("connect", function () {
      socket.emit("join_ticket", { ticket_id: ticketId }, function (ack) { if (ack && ack.ok) { reconcile(); } });
    });
    var changed = main.querySelector("[data-ticket-changed]");
    // A chat line (the visitor's, or this agent's own) is shown live by the chat panel: the
    // ticket's update it causes is no news. Anything else (a field, a note, a mail) is.
    var messagesAtLoad = parseInt(main.getAttribute("data-ticket-messages") || "0", 10);
    var stateAtLoad = JSON.parse(main.getAttribute("data-ticket-state") || "{}");
    var liveLines = new Set();
    document.addEventListener("helpdesk:chat-line", function (ev) {
      if (ev.detail && ev.detail.ticketId === ticketId) { liveLines.add(ev.detail.id); }
    });
    // Custom field values by key, in one canonical form (the keys sorted) to compare.
    function canon(values) {
      var o = values || {};
      return JSON.stringify(Object.keys(o).sort().map(function (k) { return [k, o[k]]; }));
    }
    function sameFields(t) {
      return t.status === stateAtLoad.status && t.priority === stateAtLoad.priority &&
        (t.assignee ? t.assignee.id : null) === stateAtLoad.assignee && t.team_id === stateAtLoad.team &&
        (t.tags || []).slice().sort().join("\n") === (stateAtLoad.tags || []).join("\n") &&
        canon(t.custom) === canon(stateAtLoad.custom);
    }
    function seen(v) { version = v; main.setAttribute("data-ticket-version", String(v)); }
    function onlyLiveLines(t) { return sameFields(t) && t.message_count - messagesAtLoad <= liveLines.size; }
    socket.on("ticket.updated", function (t) {
      if (t.id !== ticketId || t.version <= version || !changed) { return; }
      if (onlyLiveLines(t)) { seen(t.version); return; }
      // The line itself may arrive just after the ticket's update: give it a moment.
      setTimeout(function () {
        if (t.version <= version) { return; }
        if (onlyLiveLines(t)) { seen(t.version); } else { changed.hidden = false; }
      }, sameFields(t) ? 1500 : 0);
    });
    socket.on("message.delivery", function (d) {
      if (d.ticket_id === ticketId) { showDelivery(d.message_id, d.status); }
    });
  }

  // ---- queue selection and bulk actions -------------------------------------------------------
  // The selection is kept in a Set so a live refresh of the rows does not lose it.
  var bulk = document.querySelector("[data-bulk]");
  var selected = new Set();
  function syncSelection() {
    if (!queue || !bulk) { return; }
    queue.querySelectorAll('input[name="ticket"]').forEach(function (box) { box.checked = selected.has(box.value); });
    bulk.hidden = selected.size === 0;
    var count = bulk.querySelector("[data-bulk-count]");
    if (count) { count.textContent = helpdeskFormat.number(selected.size); }
  }
  if (queue && bulk) {
    queue.addEventListener("change", function (ev) {
      var el = ev.target;
      if (el.matches('input[name="ticket"]')) {
        if (el.checked) { selected.add(el.value); } else { selected.delete(el.value); }
      } else if (el.matches("[data-select-all]")) {
        queue.querySelectorAll('input[name="ticket"]').forEach(function (box) {
          if (el.checked) { selected.add(box.value); } else { selected.delete(box.value); }
        });
      }
      syncSelection();
    });
    // Rows replaced by a live refresh: re-check what was selected.
    new MutationObserver(syncSelection).observe(queue.querySelector("[data-queue-rows]"), { childList: true });
  }

  // ---- macros from the reply box ------------------------------------------------------------
  var picker = document.querySelector("[data-macro-picker]");
  if (picker) {
    var input = picker.querySelector("input");
    var list = picker.querySelector("ul");
    var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
    var timer = null;
    function show(items) {
      list.innerHTML = "";
      items.forEach(function (m) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        li.tabIndex = 0;
        li.dataset.id = m.id;
        var b = document.createElement("strong"); b.textContent = m.name; li.appendChild(b);
        var p = document.createElement("span"); p.className = "muted small"; p.textContent = " " + m.preview; li.appendChild(p);
        list.appendChild(li);
      });
      list.hidden = items.length === 0;
    }
    function search() {
      var url = picker.dataset.searchUrl;
      fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(input.value), { credentials: "same-origin" })
        .then(function (r) { return r.json(); }).then(show).catch(function () {});
    }
    function apply(li) {
      var url = picker.dataset.applyUrl.replace(/\/0\/apply$/, "/" + li.dataset.id + "/apply");
      // The macro's actions are my own change, not a colleague's (collision.js listens).
      document.dispatchEvent(new CustomEvent("helpdesk:own-change", { detail: "start" }));
      fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (res) {
          var box = document.getElementById("reply-body");
          var at = box.selectionStart || box.value.length;
          box.value = box.value.slice(0, at) + res.text + box.value.slice(at);
          // The macro's actions changed the ticket: send the new version with the reply.
          var v = document.querySelector('input[name="reply-version"]'); if (v) { v.value = res.version; }
          version = res.version;
          list.hidden = true; input.value = ""; box.focus();
        }).catch(function () {})
        .finally(function () { document.dispatchEvent(new CustomEvent("helpdesk:own-change", { detail: "end" })); });
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 150); });
    input.addEventListener("focus", search);
    list.addEventListener("click", function (ev) { var li = ev.target.closest("li"); if (li) { apply(li); } });
    list.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { var li = ev.target.closest("li"); if (li) { ev.preventDefault(); apply(li); } } });
  }

  // ---- composer tabs ------------------------------------------------------------------------
  document.querySelectorAll("[data-tab]").forEach(function (tab) {
    tab.addEventListener("click", function () {
      var name = tab.getAttribute("data-tab");
      document.querySelectorAll("[data-tab]").forEach(function (t) {
        t.setAttribute("aria-selected", String(t === tab));
      });
      document.querySelectorAll("[data-panel]").forEach(function (p) {
        p.hidden = p.getAttribute("data-panel") !== name;
      });
    });
  });
})();
