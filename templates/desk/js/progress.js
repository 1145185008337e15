// A running send's progress: polls the JSON named by [data-progress] and updates the figures.
// Without JavaScript the page shows the figures of its load and a link to refresh them.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress]");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-progress");
  var every = 2000;
  function number(n) { return Number(n).toLocaleString("en"); }
  function set(name, text) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
    return el;
  }
  function show(data) {
    Object.keys(data.counts).forEach(function (status) {
      var el = box.querySelector('[data-count="' + status + '"]');
      if (el) { el.textContent = number(data.counts[status]); }
    });
    var status = set("status", data.status);
    if (status) { status.className = "status status-" + data.status; }
    set("reason", data.reason || "");
    set("handled-text", number(data.handled));
    set("total", number(data.total));
    var bar = box.querySelector("progress");
    if (bar) { bar.max = data.total || 1; bar.value = data.handled; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (answer) { if (!answer.ok) { throw new Error(answer.status); } return answer.json(); })
      .then(function (data) { show(data); if (data.running) { window.setTimeout(poll, every); } })
      .catch(function () { /* logged out or offline: the figures stay as they are; the link refreshes */ });
  }
  window.setTimeout(poll, every);
}());
