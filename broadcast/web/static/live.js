// Inserts each new update at the top of the timeline as it is published (Server-Sent Events).
(function () {
  var timeline = document.getElementById("timeline");
  if (!timeline || !window.EventSource) return;
  var source = new EventSource(timeline.dataset.events);
  source.addEventListener("update", function (event) {
    var holder = document.createElement("div");
    holder.innerHTML = event.data;
    var card = holder.firstElementChild;
    if (!card) return;
    var existing = document.getElementById(card.id);
    if (existing) existing.replaceWith(card); else timeline.prepend(card);
    var empty = timeline.querySelector(".empty");
    if (empty) empty.remove();
    var corrected = card.querySelector(".meta a[href^='#update-']");
    if (card.classList.contains("kind-correction") && corrected) {
      var original = document.querySelector(corrected.getAttribute("href"));
      if (original) original.classList.add("superseded");
    }
  });
})();
