// "Copy" buttons of the shown-once key page: <button data-copy="id-of-element">.
// The Clipboard API needs a secure context (HTTPS or localhost); elsewhere the text is
// selected so Ctrl+C copies it, and the button says so.
"use strict";
document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  const done = function (message) {
    button.textContent = message;
    setTimeout(function () { button.textContent = label; }, 2000);
  };
  const select = function () {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    done("Selected: press Ctrl+C");
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done("Copied"); }, select);
  } else {
    select();
  }
});
