// The document list's selection (no inline script: the Content-Security-Policy allows scripts
// from this site only). "Seleccionar todo" marks every row of the page; the bar says how many
// are marked and the action buttons wait until there is at least one, and no more than the
// server takes in one action (data-max on the form).
(function () {
  "use strict";
  var form = document.getElementById("bulk-form");
  if (!form) {
    return;
  }
  var all = document.getElementById("select-all");
  var counter = document.getElementById("selected-count");
  var idle = counter ? counter.textContent : "";
  var max = parseInt(form.getAttribute("data-max") || "200", 10);
  var buttons = form.querySelectorAll("button[data-bulk]");

  function boxes() {
    return form.querySelectorAll("input[type=checkbox][name=ids]");
  }

  function refresh() {
    var list = boxes();
    var marked = 0;
    for (var i = 0; i < list.length; i++) {
      if (list[i].checked) {
        marked++;
      }
      list[i].closest("tr").classList.toggle("selected", list[i].checked);
    }
    if (all) {
      all.checked = list.length > 0 && marked === list.length;
      all.indeterminate = marked > 0 && marked < list.length;
    }
    if (counter) {
      if (marked === 0) {
        counter.textContent = idle;
      } else if (marked > max) {
        counter.textContent = marked + " seleccionados: el máximo por acción es " + max + ".";
      } else {
        counter.textContent = marked === 1 ? "1 documento seleccionado" : marked + " documentos seleccionados";
      }
    }
    for (var j = 0; j < buttons.length; j++) {
      buttons[j].disabled = marked === 0 || marked > max;
    }
  }

  if (all) {
    all.closest("label").hidden = false;
    all.addEventListener("change", function () {
      var list = boxes();
      for (var i = 0; i < list.length; i++) {
        list[i].checked = all.checked;
      }
      refresh();
    });
  }
  form.addEventListener("change", function (event) {
    if (event.target.name === "ids") {
      refresh();
    }
  });
  refresh();
})();
