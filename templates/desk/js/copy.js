// "Copy" buttons: <button data-copy="ID" hidden> copies the text of the field with that id.
// Without JavaScript the buttons stay hidden and the text is selected by hand.
(function () {
  "use strict";
  function selectAll(field) { field.focus(); field.select(); }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var id = button.getAttribute("data-copy");
    var field = document.getElementById(id);
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    if (!field) { return; }
    button.hidden = false;
    field.addEventListener("focus", function () { field.select(); });
    button.addEventListener("click", function () {
      selectAll(field);
      var done = function () { if (status) { status.textContent = "Copied."; } };
      var manual = function () { if (status) { status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy."; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, manual);
      } else {
        try { if (document.execCommand("copy")) { done(); } else { manual(); } } catch (e) { manual(); }
      }
    });
  });
}());
