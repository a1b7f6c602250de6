// Keeps an open incident page true without a reload (Server-Sent Events): each event brings the
// new update's card, the card of the update it corrects or retracts (now struck through), and
// the promise of the next update as it stands (changed, cleared or overdue).
(function () {
  var timeline = document.getElementById("timeline");
  if (!timeline || !window.EventSource) return;
  var source = new EventSource(timeline.dataset.events);
  source.addEventListener("update", function (event) {
    var holder = document.createElement("div");
    holder.innerHTML = event.data;
    Array.prototype.slice.call(holder.children).forEach(function (part) {
      var existing = part.id ? document.getElementById(part.id) : null;
      if (existing) existing.replaceWith(part);
      else if (part.classList.contains("update")) timeline.prepend(part);
    });
    var empty = timeline.querySelector(".update") && timeline.querySelector(".empty");
    if (empty) empty.remove();
  });
})();
