
// ---- rating at the chat's end (channels/chat/satisfaction.py) ------------------------------
// Shown once the chat has ended, whichever side ended it: good/bad or 1-5 (the server's
// settings.rating.scale) and an optional comment, sent with chat.rate. A score alone is sent at
// once (one click is enough); the comment follows with the Send button and may change it.
var rateBox = null;

function offerRating() {
  var conf = settings.rating || {};
  if (rateBox || !conf.enabled || !log) { return; }
  var scores = conf.scale === "five" ? ["5", "4", "3", "2", "1"] : ["good", "bad"];
  var chosen = null;
  var msg = h("p", { "class": "hd-rate-msg", role: "status", "aria-live": "polite" });
  var note = h("textarea", { rows: "2", maxlength: "5000", dir: "auto", "aria-label": T.rate_comment, placeholder: T.rate_comment });
  var choices = scores.map(function (v) {
    return h("button", { "class": "hd-rate-choice", type: "button", "data-score": v, "aria-pressed": "false", text: T["rate_" + v], onclick: function () { chosen = v; rate(false); } });
  });
  function rate(withComment) {
    choices.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.score === chosen)); });
    var payload = { score: chosen };
    if (withComment) { payload.comment = note.value; }
    msg.textContent = ""; // said again when the server has it
    socket.emit("chat.rate", payload, function (a) {
      msg.className = a && a.ok ? "hd-rate-msg" : "hd-rate-msg hd-err";
      msg.textContent = a && a.ok ? T.rate_thanks : (a && a.error) || "";
    });
  }
  rateBox = h("form", { "class": "hd-rate", "data-rating": "" }, [
    h("p", { "class": "hd-rate-title", text: T.rate_title }),
    h("div", { "class": "hd-rate-choices", role: "group", "aria-label": T.rate_title }, choices),
    note,
    h("button", { "class": "hd-b", type: "submit", text: T.rate_send }),
    msg
  ]);
  rateBox.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (chosen) { rate(true); } else { choices[0].focus(); }
  });
  body.append(rateBox);
  rateBox.scrollIntoView({ block: "nearest" });
}
