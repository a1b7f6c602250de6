// The console's small helpers: live preview per channel, the area map, live delivery counts,
// copy buttons. Every form works without this script; it only adds feedback.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var nl = document.documentElement.lang === "nl";
  var words = nl
    ? { segments: "sms-delen", chars: "tekens", off: "niet ingesteld", cut: "ingekort, met link naar het volledige bericht",
        long: "Lange zin", jargon: "Moeilijk woord", instead: "schrijf liever", wordsCount: "woorden" }
    : { segments: "SMS segments", chars: "characters", off: "not configured", cut: "shortened, with a link to the full update",
        long: "Long sentence", jargon: "Official word", instead: "try", wordsCount: "words" };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- compose: preview and plain-language hints ------------------------------------------
  var form = document.getElementById("compose");
  if (form) {
    var timer = null;
    var preview = document.getElementById("preview");
    var hints = document.getElementById("hints");
    var refresh = function () {
      var data = new FormData(form);
      data.append("incident_title", form.dataset.incidentTitle || "");
      data.append("exercise", form.dataset.exercise || "false");
      fetch(form.dataset.preview, { method: "POST", body: data, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (result) { if (result) show(result); });
    };
    var show = function (result) {
      preview.replaceChildren();
      result.channels.forEach(function (p) {
        var box = el("div", "channel-preview" + (p.active ? "" : " off"));
        box.dataset.channel = p.channel;
        var head = el("p", "meta");
        var size = p.unit === "segments" ? p.length + " / " + p.limit + " " + words.segments + " (" + p.encoding + ")"
          : p.length + (p.limit ? " / " + p.limit : "") + " " + words.chars;
        head.append(el("strong", "", p.channel), " · " + size + (p.active ? "" : " · " + words.off));
        if (p.shortened) head.append(el("span", "warn", " · " + words.cut));
        box.append(head, el("pre", "", p.text));
        preview.append(box);
      });
      hints.replaceChildren();
      result.hints.forEach(function (h) {
        var text = h.kind === "long_sentence"
          ? words.long + " (" + h.words + " " + words.wordsCount + "): “" + h.text + "”"
          : words.jargon + ": “" + h.text + "” — " + words.instead + " “" + h.suggestion + "”";
        hints.append(el("p", "hint", text));
      });
    };
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
    if (document.getElementById("body_nl").value) refresh();
  }

  // --- area map: a click toggles the area's checkbox ---------------------------------------
  document.querySelectorAll("svg.area-map path[data-area]").forEach(function (path) {
    var box = document.querySelector('input[name="areas"][value="' + path.dataset.area + '"]');
    if (!box) return;
    var sync = function () { path.classList.toggle("selected", box.checked); };
    path.addEventListener("click", function () { box.checked = !box.checked; sync(); box.dispatchEvent(new Event("input", { bubbles: true })); });
    box.addEventListener("change", sync);
    sync();
  });

  // --- delivery dashboard: counts refresh while the page is open ---------------------------
  var table = document.getElementById("deliveries");
  if (table) {
    var poll = function () {
      fetch(table.dataset.source, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (counts) {
          if (!counts) return;
          Object.keys(counts).forEach(function (channel) {
            var row = table.querySelector('tr[data-channel="' + channel + '"]');
            if (!row) { location.reload(); return; }
            row.querySelectorAll("td[data-state]").forEach(function (cell) {
              cell.textContent = counts[channel][cell.dataset.state] || 0;
            });
          });
        });
    };
    setInterval(poll, 2000);
  }

  // --- copy buttons (relay kit) ------------------------------------------------------------
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      navigator.clipboard.writeText(source.value || source.textContent).then(function () {
        button.textContent = button.dataset.copied || "✓";
        if (button.form) button.form.requestSubmit();
      });
    });
  });

  // --- live notices: a promised update is nearly due (for the advisers on duty) -------------
  var notices = document.getElementById("notices");
  if (notices && window.EventSource) {
    var stream = new EventSource(notices.dataset.events);
    stream.addEventListener("open", function () { notices.dataset.connected = "true"; });
    stream.addEventListener("reminder", function (event) {
      var notice = JSON.parse(event.data);
      var box = el("p", "overdue reminder");
      box.setAttribute("role", "alert");
      box.dataset.incident = notice.incident_id;
      box.appendChild(el("strong", "", notice.text + " "));
      var link = el("a", "", notice.link);
      link.href = notice.url;
      box.appendChild(link);
      notices.appendChild(box);
    });
  }
})();
