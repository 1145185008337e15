// Live preview: polls the preview.json every few seconds; when a file of the issue changed
// (here or on disk), the preview frames reload and the warnings are shown afresh. Without JavaScript
// the page shows the preview as it was when loaded (reload the page to see changes).
(function () {
  "use strict";
  var box = document.querySelector("[data-live]");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-live");
  var version = box.getAttribute("data-version");
  var status = box.querySelector("[data-live-status]");
  var framed = !!box.querySelector(".previews");
  var every = 3000;
  function say(text) { if (status) { status.textContent = text; } }
  function line(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    el.textContent = text;
    return el;
  }
  function showWarnings(list) {
    var holder = box.querySelector("[data-live-warnings]");
    if (!holder) { return; }
    holder.textContent = "";
    if (!list.length) { holder.appendChild(line("p", "notice", "It composes, with no warnings.")); return; }
    holder.appendChild(line("p", "", "Compose's warnings and the lint (" + list.length + "):"));
    var ul = line("ul", "warnings", "");
    list.forEach(function (w) { ul.appendChild(line("li", "", w)); });
    holder.appendChild(ul);
  }
  function changed(state) {
    version = state.version;
    if (state.error) {
      say("The issue changed and does not compose now: " + state.error + " Reload the page for details.");
    } else if (!framed) {
      say("The issue changed and composes now: reload the page to see the preview.");
    } else {
      box.querySelectorAll(".previews iframe").forEach(function (frame) { frame.src = frame.getAttribute("src"); });
      showWarnings(state.warnings || []);
      say("Preview updated at " + new Date().toLocaleTimeString() + ".");
    }
  }
  function poll() {
    if (document.hidden) { setTimeout(poll, every); return; }
    fetch(url, {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) { if (state && state.version && state.version !== version) { changed(state); } })
      .catch(function () {})
      .then(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
}());
