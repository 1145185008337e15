// Rich paste: when text is pasted into an empty report box, the clipboard's HTML (Word, Google
// Docs) goes into the hidden field "html" too, so that bold, italics, links and lists survive;
// the server sanitises it. Typing into the box afterwards drops it (the text is then what counts).
// Without JavaScript the box receives plain text, which the server reads as well.
(function () {
  "use strict";
  document.querySelectorAll("form.paste").forEach(function (form) {
    var box = form.querySelector("[data-paste-target]");
    var hidden = form.querySelector("[data-paste-html]");
    var status = form.querySelector("[data-paste-status]");
    if (!box || !hidden) { return; }
    var say = function (text) { if (status) { status.textContent = text; } };
    var justPasted = false;
    box.addEventListener("paste", function (event) {
      var data = event.clipboardData;
      var html = data ? data.getData("text/html") : "";
      var whole = box.value.trim() === "" || (box.selectionStart === 0 && box.selectionEnd === box.value.length);
      if (html && whole) {
        hidden.value = html;
        justPasted = true;
        say("Formatting kept: bold, italics, links and lists. Editing the text here drops it.");
      } else if (hidden.value) {
        hidden.value = "";
        say("Pasted as plain text.");
      }
    });
    box.addEventListener("input", function () {
      if (justPasted) { justPasted = false; return; }
      if (hidden.value) {
        hidden.value = "";
        say("The text was edited: it is saved as plain text, without the pasted formatting.");
      }
    });
  });
}());
