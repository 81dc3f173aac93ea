// Searchable pickers: every <select data-searchable> becomes a combobox (WAI-ARIA 1.2 pattern,
// "list autocomplete"): type part of a name, a RUT (with or without dots) or a code, pick with
// the mouse, a finger or the keyboard (↑ ↓ Enter, Esc to give up).
//
// Progressive enhancement: the real <select> stays in the form, visually hidden, and holds the
// value that is sent; picking an option sets it and fires "input" and "change" on it, so scripts
// listening there (document_form.js fills a line from its product) work as before. A script or
// a test that changes the <select> itself is reflected in the text box. Selects added later (a
// new document line from its <template>) are enhanced as they appear (MutationObserver).
(function () {
  "use strict";

  var SHOWN = 60; // options listed at once; typing narrows the rest
  var PLACEHOLDERS = {
    clientes: "Nombre o RUT…",
    proveedores: "Nombre o RUT…",
    productos: "Código o nombre…",
  };
  var counter = 0;

  function fold(text) {
    return (text || "")
      .normalize("NFD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase();
  }

  function compact(text) {
    return fold(text).replace(/[^a-z0-9]/g, "");
  }

  // "Cliente Ltda. (96790240-3)" reads "Cliente Ltda. (96.790.240-3)", as RUTs are written.
  function prettyRut(text) {
    return text.replace(/\b(\d{1,2})(\d{3})(\d{3})-([\dkK])\b/g, "$1.$2.$3-$4");
  }

  function matches(option, words) {
    return words.every(function (word) {
      if (option.folded.indexOf(word.folded) !== -1) return true;
      return word.compact.length > 0 && option.compacted.indexOf(word.compact) !== -1;
    });
  }

  function labelFor(select) {
    if (select.getAttribute("aria-label")) return select.getAttribute("aria-label");
    var cell = select.closest("td");
    var table = cell && cell.closest("table");
    if (table && table.tHead && table.tHead.rows[0]) {
      var head = table.tHead.rows[0].cells[cell.cellIndex];
      if (head && head.textContent.trim()) return head.textContent.trim();
    }
    return "";
  }

  function Picker(select) {
    this.select = select;
    this.id = "picker-" + ++counter;
    this.open = false;
    this.active = -1;
    this.visible = [];
    this.typed = false;
    this.build();
  }

  Picker.prototype.options = function () {
    var required = this.select.required;
    var options = Array.prototype.filter.call(this.select.options, function (option) {
      return !(required && option.value === "") && !option.disabled;
    });
    return options.map(function (option) {
      var text = option.value === "" ? "— Ninguno —" : prettyRut(option.text.trim());
      return {
        value: option.value,
        text: text,
        folded: fold(text),
        compacted: compact(option.text),
        empty: option.value === "",
      };
    });
  };

  Picker.prototype.build = function () {
    var select = this.select;
    // Moving the select into the picker takes its focus (document_form.js focuses a new
    // line's product at once): the text box gets it back.
    var hadFocus = document.activeElement === select;
    var wrapper = document.createElement("span");
    wrapper.className = "picker";
    var input = document.createElement("input");
    input.type = "text";
    input.id = this.id + "-input";
    input.className = "picker-input";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", this.id + "-list");
    input.setAttribute("autocomplete", "off");
    input.setAttribute("autocapitalize", "off");
    input.setAttribute("spellcheck", "false");
    input.placeholder =
      select.getAttribute("data-placeholder") ||
      PLACEHOLDERS[select.getAttribute("data-searchable")] ||
      "Buscar…";
    var label = labelFor(select);
    if (label) input.setAttribute("aria-label", label);
    if (select.getAttribute("aria-describedby")) {
      input.setAttribute("aria-describedby", select.getAttribute("aria-describedby"));
    }
    if (select.getAttribute("aria-invalid")) input.setAttribute("aria-invalid", select.getAttribute("aria-invalid"));
    input.disabled = select.disabled;
    input.dataset.pickerFor = select.name;

    var list = document.createElement("ul");
    list.id = this.id + "-list";
    list.className = "picker-list";
    list.setAttribute("role", "listbox");
    if (label) list.setAttribute("aria-label", label);
    list.hidden = true;

    // The text box takes the select's place (and its <label>: the first control inside a
    // label, or the one named by for=, is the one the label names).
    select.parentNode.insertBefore(wrapper, select);
    wrapper.appendChild(input);
    wrapper.appendChild(select);
    document.body.appendChild(list);
    if (select.id) {
      document.querySelectorAll('label[for="' + select.id + '"]').forEach(function (l) {
        l.htmlFor = input.id;
      });
    }
    select.classList.add("picker-native");
    select.tabIndex = -1;
    select.setAttribute("aria-hidden", "true");
    select.dataset.pickerReady = "1";

    this.wrapper = wrapper;
    this.input = input;
    this.list = list;
    this.showSelected();
    this.bind();
    if (hadFocus) input.focus();
  };

  Picker.prototype.selectedText = function () {
    var option = this.select.options[this.select.selectedIndex];
    if (!option || option.value === "") return "";
    return prettyRut(option.text.trim());
  };

  Picker.prototype.showSelected = function () {
    this.input.value = this.selectedText();
    this.typed = false;
  };

  Picker.prototype.bind = function () {
    var self = this;
    var input = this.input;
    var list = this.list;

    input.addEventListener("input", function () {
      self.typed = true;
      self.render(input.value);
      self.show();
    });
    input.addEventListener("focus", function () {
      // The whole text selected: typing replaces it, as in a search box.
      if (input.value) input.select();
    });
    input.addEventListener("click", function () {
      if (!self.open) {
        self.render(self.typed ? input.value : "");
        self.show();
      }
    });
    input.addEventListener("keydown", function (event) {
      self.keydown(event);
    });
    input.addEventListener("blur", function () {
      // A click on the list keeps the focus (mousedown is cancelled there); anything else
      // leaves: text that picked nothing goes back to the current choice.
      window.setTimeout(function () {
        if (document.activeElement === input) return;
        self.commitTyped();
        self.hide();
      }, 0);
    });

    list.addEventListener("mousedown", function (event) {
      event.preventDefault(); // keep the focus in the text box
    });
    list.addEventListener("click", function (event) {
      var item = event.target.closest('[role="option"]');
      if (!item) return;
      self.choose(item.dataset.value);
      input.focus();
    });

    // Someone else changed the select (a script, a test, the form's reset): show it.
    this.select.addEventListener("change", function () {
      if (!self.choosing) self.showSelected();
    });
    this.select.addEventListener("focus", function () {
      input.focus();
    });
    // The browser's "required" bubble points at the hidden select: send the user to the box.
    this.select.addEventListener("invalid", function () {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    });
    if (this.select.form) {
      this.select.form.addEventListener("reset", function () {
        window.setTimeout(function () {
          self.showSelected();
        }, 0);
      });
    }
  };

  Picker.prototype.keydown = function (event) {
    var key = event.key;
    if (key === "ArrowDown" || key === "ArrowUp") {
      event.preventDefault();
      if (!this.open) {
        this.render(this.typed ? this.input.value : "");
        this.show();
        if (event.altKey) return;
      }
      this.move(key === "ArrowDown" ? 1 : -1);
    } else if (key === "Enter") {
      if (this.open) {
        event.preventDefault(); // never submit the form while choosing
        var item = this.visible[this.active];
        if (item) this.choose(item.value);
        else this.hide();
      }
    } else if (key === "Escape") {
      if (this.open || this.typed) {
        event.preventDefault();
        event.stopPropagation();
        this.showSelected();
        this.hide();
      }
    } else if (key === "Tab") {
      if (this.open && this.typed && this.visible[this.active]) {
        this.choose(this.visible[this.active].value);
      }
      this.hide();
    } else if (key === "Home" || key === "End") {
      if (this.open && this.visible.length) {
        event.preventDefault();
        this.setActive(key === "Home" ? 0 : this.visible.length - 1);
      }
    }
  };

  Picker.prototype.render = function (query) {
    var words = fold(query)
      .split(/\s+/)
      .filter(Boolean)
      .map(function (w) {
        return { folded: w, compact: compact(w) };
      });
    var all = this.options();
    var found = words.length
      ? all.filter(function (o) {
          return !o.empty && matches(o, words);
        })
      : all;
    this.visible = found.slice(0, SHOWN);
    var list = this.list;
    var current = this.select.value;
    list.textContent = "";
    var self = this;
    this.visible.forEach(function (option, index) {
      var item = document.createElement("li");
      item.id = self.id + "-option-" + index;
      item.setAttribute("role", "option");
      item.dataset.value = option.value;
      item.setAttribute("aria-selected", option.value === current && !option.empty ? "true" : "false");
      item.textContent = option.text;
      if (option.empty) item.classList.add("muted");
      list.appendChild(item);
    });
    if (!found.length) {
      var none = document.createElement("li");
      none.className = "picker-empty";
      none.textContent = "Sin resultados para «" + query.trim() + "»";
      list.appendChild(none);
    } else if (found.length > SHOWN) {
      var more = document.createElement("li");
      more.className = "picker-more";
      more.textContent = found.length - SHOWN + " más: escriba para acotar la búsqueda";
      list.appendChild(more);
    }
    // The first match is active while typing; otherwise the current choice, if listed.
    var start = -1;
    if (words.length) start = this.visible.length ? 0 : -1;
    else
      this.visible.forEach(function (o, i) {
        if (o.value === current && start === -1) start = i;
      });
    this.setActive(start);
  };

  Picker.prototype.setActive = function (index) {
    var items = this.list.querySelectorAll('[role="option"]');
    items.forEach(function (item) {
      item.classList.remove("active");
    });
    this.active = index;
    if (index >= 0 && items[index]) {
      items[index].classList.add("active");
      this.input.setAttribute("aria-activedescendant", items[index].id);
      var list = this.list;
      var item = items[index];
      if (item.offsetTop < list.scrollTop) list.scrollTop = item.offsetTop;
      else if (item.offsetTop + item.offsetHeight > list.scrollTop + list.clientHeight)
        list.scrollTop = item.offsetTop + item.offsetHeight - list.clientHeight;
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  };

  Picker.prototype.move = function (step) {
    if (!this.visible.length) return;
    var next = this.active + step;
    if (next < 0) next = this.visible.length - 1;
    if (next >= this.visible.length) next = 0;
    this.setActive(next);
  };

  Picker.prototype.place = function () {
    var box = this.input.getBoundingClientRect();
    var list = this.list;
    var below = window.innerHeight - box.bottom;
    var width = Math.max(box.width, Math.min(320, window.innerWidth - 16));
    var left = Math.min(box.left, window.innerWidth - width - 8);
    list.style.left = Math.max(8, left) + "px";
    list.style.width = width + "px";
    var height = Math.min(list.scrollHeight, 288);
    if (below < height + 8 && box.top > below) {
      list.style.top = Math.max(8, box.top - height - 4) + "px";
      list.style.maxHeight = Math.min(288, box.top - 12) + "px";
    } else {
      list.style.top = box.bottom + 4 + "px";
      list.style.maxHeight = Math.max(120, Math.min(288, below - 12)) + "px";
    }
  };

  Picker.prototype.show = function () {
    if (!this.open) {
      this.open = true;
      this.list.hidden = false;
      this.input.setAttribute("aria-expanded", "true");
      var self = this;
      this.reposition = function (event) {
        if (event && event.target === self.list) return;
        self.place();
      };
      window.addEventListener("scroll", this.reposition, true);
      window.addEventListener("resize", this.reposition);
    }
    this.place();
  };

  Picker.prototype.hide = function () {
    if (!this.open) return;
    this.open = false;
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    window.removeEventListener("scroll", this.reposition, true);
    window.removeEventListener("resize", this.reposition);
  };

  Picker.prototype.choose = function (value) {
    var select = this.select;
    var changed = select.value !== value;
    select.value = value;
    this.showSelected();
    this.input.removeAttribute("aria-invalid");
    this.hide();
    if (changed) {
      this.choosing = true;
      try {
        select.dispatchEvent(new Event("input", { bubbles: true }));
        select.dispatchEvent(new Event("change", { bubbles: true }));
      } finally {
        this.choosing = false;
      }
    }
  };

  // Leaving the box: an emptied box clears the choice (when the select allows none); a text
  // that names exactly one option picks it; anything else goes back to the current choice.
  Picker.prototype.commitTyped = function () {
    if (!this.typed) return;
    var text = this.input.value.trim();
    var all = this.options();
    if (!text) {
      var empty = all.filter(function (o) {
        return o.empty;
      })[0];
      if (empty) {
        this.choose(empty.value);
        return;
      }
    } else {
      var words = fold(text)
        .split(/\s+/)
        .filter(Boolean)
        .map(function (w) {
          return { folded: w, compact: compact(w) };
        });
      var found = all.filter(function (o) {
        return !o.empty && matches(o, words);
      });
      if (found.length === 1) {
        this.choose(found[0].value);
        return;
      }
    }
    this.showSelected();
  };

  function enhance(root) {
    var selects = [];
    if (root.matches && root.matches("select[data-searchable]")) selects.push(root);
    if (root.querySelectorAll) {
      root.querySelectorAll("select[data-searchable]").forEach(function (s) {
        selects.push(s);
      });
    }
    selects.forEach(function (select) {
      if (!select.dataset.pickerReady && !select.multiple) new Picker(select);
    });
  }

  function start() {
    enhance(document);
    new MutationObserver(function (mutations) {
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(function (node) {
          if (node.nodeType === 1) enhance(node);
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
