// The console's small helpers: live preview per channel, the area map, live delivery counts,
// copy buttons. Every form works without this script; it only adds feedback.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var nl = document.documentElement.lang === "nl";
  var words = nl
    ? { segments: "sms-delen", chars: "tekens", off: "niet ingesteld", cut: "ingekort, met link naar het volledige bericht",
        long: "Lange zin", jargon: "Moeilijk woord", instead: "schrijf liever", wordsCount: "woorden",
        reach: "Wie het krijgt", recipients: "ontvangers", recipient: "ontvanger", segment: "sms-deel", subscribers: "abonnees", targets: "kanaal/account",
        sms: "Sms", nl: "Nederlands", en: "Engels", cost: "Kosten sms", perSegment: "per sms-deel",
        forces: "maakt de sms UCS-2 (70 in plaats van 160 tekens per deel)", suggest: "vervang door",
        drop: "weglaten", auto: "wordt in de sms vanzelf", replace: "Vervang", noSuggestion: "geen vervanging bekend",
        withReplacement: "met vervanging", decimal: ",",
        blanks: "Nog in te vullen (publiceren en inplannen kan pas daarna)" }
    : { segments: "SMS segments", chars: "characters", off: "not configured", cut: "shortened, with a link to the full update",
        long: "Long sentence", jargon: "Official word", instead: "try", wordsCount: "words",
        reach: "Who receives it", recipients: "recipients", recipient: "recipient", segment: "SMS segment", subscribers: "subscribers", targets: "channel/account",
        sms: "SMS", nl: "Dutch", en: "English", cost: "SMS cost", perSegment: "per SMS segment",
        forces: "makes the SMS UCS-2 (70 instead of 160 characters per segment)", suggest: "replace with",
        drop: "leave it out", auto: "becomes, in the SMS,", replace: "Replace", noSuggestion: "no replacement known",
        withReplacement: "with the replacement", decimal: ".",
        blanks: "Still to fill in (publishing and scheduling wait for it)" };

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
    var publication = document.getElementById("publication");
    var euros = function (amount) { return "€ " + String(amount).replace(".", words.decimal); };
    var quoted = function (text) { return "“" + text + "”"; };
    var count = function (n, one, many) { return n + " " + (n === 1 ? one : many); };
    var segments = function (n) { return count(n, words.segment, words.segments); };
    var recipients = function (n) { return count(n, words.recipient, words.recipients); };
    var replaceAll = function (language, from, to) {
      var english = document.getElementById("body_en");
      var box = language === "en" && english && english.value ? english : document.getElementById("body_nl");
      box.value = box.value.split(from).join(to);
      box.dispatchEvent(new Event("input", { bubbles: true }));
    };
    var showSms = function (s) {
      var line = el("p", "sms-language");
      line.dataset.language = s.language;
      var figures = segments(s.segments) + " (" + s.encoding + ") × " + recipients(s.recipients);
      if (s.cost !== null) figures += " = " + euros(s.cost);
      line.append(el("strong", "", words[s.language] + ": "), el("span", "sms-figures", figures));
      var items = [line];
      s.culprits.forEach(function (c) {
        var note = el("p", c.automatic ? "meta culprit automatic" : "warn culprit");
        note.dataset.char = c.char;
        if (c.automatic) {
          note.textContent = quoted(c.char) + " " + words.auto + " " + quoted(c.replacement) + ".";
        } else {
          var advice = c.replacement === null ? words.noSuggestion
            : words.suggest + " " + (c.replacement ? quoted(c.replacement) : words.drop);
          note.textContent = quoted(c.char) + " " + words.forces + ": " + advice + ". ";
          if (c.replacement !== null) {
            var button = el("button", "secondary small", words.replace);
            button.type = "button";
            button.addEventListener("click", function () { replaceAll(s.language, c.char, c.replacement); });
            note.append(button);
          }
        }
        items.push(note);
      });
      if (s.segments_replaced !== s.segments || s.encoding_replaced !== s.encoding) {
        items.push(el("p", "meta sms-replaced", words.withReplacement + ": " + segments(s.segments_replaced) + " (" + s.encoding_replaced + ")"));
      }
      return items;
    };
    var showPublication = function (result) {
      if (!publication || !result.audience) return;
      publication.replaceChildren(el("h4", "", words.reach));
      var list = el("ul", "audience");
      result.audience.forEach(function (a) {
        var item = el("li", a.active ? "" : "off");
        item.dataset.channel = a.channel;
        var parts = [recipients(a.recipients)];
        if (a.targets) parts.push(a.subscribers + " " + words.subscribers + " + " + a.targets + " " + words.targets);
        item.append(el("strong", "", a.channel), " · " + parts.join(" · ") + (a.active ? "" : " · " + words.off));
        list.append(item);
      });
      publication.append(list);
      if (result.sms.length) {
        publication.append(el("h4", "", words.sms));
        result.sms.forEach(function (s) { showSms(s).forEach(function (n) { publication.append(n); }); });
      }
      if (result.cost !== null) {
        publication.append(el("p", "sms-cost", words.cost + ": " + euros(result.cost) + " (" + euros(result.price_per_segment) + " " + words.perSegment + ")"));
      }
    };
    var refresh = function () {
      var data = new FormData(form);
      data.append("incident_id", form.dataset.incident || "");
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
      if (result.placeholders && result.placeholders.length) {
        var blanks = result.placeholders.map(function (name) { return "[" + name + "]"; }).join(", ");
        hints.append(el("p", "warn blanks", words.blanks + ": " + blanks));
      }
      result.hints.forEach(function (h) {
        var text = h.kind === "long_sentence"
          ? words.long + " (" + h.words + " " + words.wordsCount + "): “" + h.text + "”"
          : words.jargon + ": “" + h.text + "” — " + words.instead + " “" + h.suggestion + "”";
        hints.append(el("p", "hint", text));
      });
      showPublication(result);
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
