/*
 * Small progressive enhancements shared by every page (no inline handlers, CSP-safe):
 *   <form data-confirm="Question?">   asks before submitting
 *   <form data-disable-on-submit>     disables its submit buttons once sent (no double posts)
 */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.hasAttribute("data-disable-on-submit")) {
      // After the submit event, so the clicked button's name/value is still sent.
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit], input[type=submit]").forEach(function (button) {
          button.disabled = true;
          button.setAttribute("aria-busy", "true");
        });
      }, 0);
    }
  });

  // Coming back through the history cache: give the buttons back.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-disable-on-submit] [aria-busy=true]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  });
})();
