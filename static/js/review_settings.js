/*
 * The review settings page's category table (templates/reviewer/dataset_settings.html):
 * move rows up and down, reorder by the position numbers, add rows from the <template>,
 * and keep the number-key column in step. Without this script the position numbers and
 * the two blank rows do the same job.
 */
(function () {
  "use strict";

  var table = document.getElementById("category-rows");
  if (!table) return;
  var body = table.tBodies[0];
  var keys = parseInt(table.getAttribute("data-keys"), 10) || 9;
  var total = document.getElementById("id_category-TOTAL_FORMS");
  var maxForms = document.getElementById("id_category-MAX_NUM_FORMS");
  var template = document.getElementById("category-row-template");
  var addButton = document.getElementById("category-add");

  function rows() {
    return Array.prototype.slice.call(body.querySelectorAll("tr[data-category-row]"));
  }

  function field(row, suffix) {
    return row.querySelector("[name$='-" + suffix + "']");
  }

  function isKept(row) {
    var name = field(row, "name");
    var removed = field(row, "DELETE");
    return Boolean(name && name.value.trim()) && !(removed && removed.checked);
  }

  // Positions follow the rows' order; keys go to the kept rows, first to ninth.
  function renumber() {
    var kept = 0;
    rows().forEach(function (row, index) {
      var order = field(row, "ORDER");
      if (order) order.value = String(index + 1);
      var key = row.querySelector("[data-category-key]");
      var removed = field(row, "DELETE");
      row.classList.toggle("is-removed", Boolean(removed && removed.checked));
      if (isKept(row)) kept += 1;
      if (key) key.textContent = isKept(row) && kept <= keys ? String(kept) : "—";
    });
  }

  function move(row, direction) {
    var sibling = direction === "up" ? row.previousElementSibling : row.nextElementSibling;
    if (!sibling) return;
    if (direction === "up") body.insertBefore(row, sibling);
    else body.insertBefore(sibling, row);
    renumber();
  }

  // Typed positions: sort the rows by them (ties keep their order), then number them 1..n.
  function sortByPositions() {
    var numbered = rows().map(function (row, index) {
      var value = parseFloat((field(row, "ORDER") || {}).value);
      return { row: row, index: index, value: isNaN(value) ? Infinity : value };
    });
    numbered.sort(function (a, b) { return a.value - b.value || a.index - b.index; });
    numbered.forEach(function (entry) { body.appendChild(entry.row); });
    renumber();
  }

  function showMoveButtons(scope) {
    scope.querySelectorAll("[data-move]").forEach(function (button) { button.hidden = false; });
  }

  function addRow() {
    var count = parseInt(total.value, 10);
    var limit = maxForms ? parseInt(maxForms.value, 10) : Infinity;
    if (count >= limit) {
      addButton.disabled = true;
      return;
    }
    var html = template.innerHTML.replace(/__prefix__/g, String(count));
    var holder = document.createElement("tbody");
    holder.innerHTML = html.trim();
    var row = holder.querySelector("tr");
    body.appendChild(row);
    total.value = String(count + 1);
    showMoveButtons(row);
    renumber();
    var name = field(row, "name");
    if (name) name.focus();
    if (count + 1 >= limit) addButton.disabled = true;
  }

  body.addEventListener("click", function (event) {
    var button = event.target.closest("[data-move]");
    if (!button) return;
    move(button.closest("tr"), button.getAttribute("data-move"));
    button.focus();
  });
  body.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name && /-ORDER$/.test(target.name)) sortByPositions();
    else renumber();
  });
  body.addEventListener("input", function (event) {
    if (event.target.name && /-name$/.test(event.target.name)) renumber();
  });
  if (addButton && template && total) {
    addButton.hidden = false;
    addButton.addEventListener("click", addRow);
  }
  showMoveButtons(body);
  // A page drawn again after an error keeps the positions that were sent.
  sortByPositions();
})();
