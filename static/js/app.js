// Behaviour every page shares, without inline handlers (the Content-Security-Policy allows
// scripts from this site only). Loaded in <head>, not deferred: it marks <html> as scripted at
// once, so the CSS can fold the navigation before the first paint; the rest waits for the DOM.
//
// - a <select data-autosubmit> submits its form when it changes;
// - a <form data-confirm="…"> asks before it is sent;
// - the menu button (#nav-toggle) opens and closes the navigation on narrow screens;
// - a <details class="dropdown"> closes on Escape, on a click elsewhere, and when another opens;
// - the current section's link is marked (aria-current="page");
// - every table.table scrolls inside its own box instead of widening the page, and its cells get
//   their column's name (data-label): on a phone each row becomes a card (table.cards);
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) {
      select.form.submit();
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // --- Navigation ---------------------------------------------------------------------------
  function setMenu(open) {
    var toggle = document.getElementById("nav-toggle");
    var menu = document.getElementById("topbar-menu");
    if (!toggle || !menu) return;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("open", open);
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("#nav-toggle");
    if (toggle) {
      setMenu(toggle.getAttribute("aria-expanded") !== "true");
      return;
    }
    // A click outside an open dropdown closes it.
    document.querySelectorAll("details.dropdown[open]").forEach(function (details) {
      if (!details.contains(event.target)) details.open = false;
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var details = event.target.closest && event.target.closest("details.dropdown[open]");
    if (details) {
      details.open = false;
      details.querySelector("summary").focus();
      return;
    }
    var toggle = document.getElementById("nav-toggle");
    var menu = document.getElementById("topbar-menu");
    var inside = menu && (menu.contains(event.target) || event.target === toggle);
    if (toggle && menu && menu.classList.contains("open") && inside) {
      setMenu(false);
      toggle.focus();
    }
  });

  // Only one dropdown open at a time ("toggle" does not bubble: listen in the capture phase).
  document.addEventListener(
    "toggle",
    function (event) {
      var opened = event.target;
      if (!(opened instanceof HTMLDetailsElement) || !opened.open) return;
      if (!opened.classList.contains("dropdown")) return;
      document.querySelectorAll("details.dropdown[open]").forEach(function (other) {
        if (other !== opened) other.open = false;
      });
    },
    true
  );

  // Keyboard users leaving a dropdown with Tab close it behind them.
  document.addEventListener("focusout", function (event) {
    var details = event.target.closest && event.target.closest("details.dropdown[open]");
    if (details && event.relatedTarget && !details.contains(event.relatedTarget)) {
      details.open = false;
    }
  });

  function markCurrentSection() {
    var links = document.querySelectorAll(".main-nav a[href]");
    var path = window.location.pathname;
    var best = null;
    links.forEach(function (link) {
      var href = link.getAttribute("href");
      var match = link.hasAttribute("data-nav-exact")
        ? path === href
        : path === href || path.indexOf(href.replace(/\/?$/, "/")) === 0;
      if (match && (!best || href.length > best.getAttribute("href").length)) best = link;
    });
    if (best) {
      best.setAttribute("aria-current", "page");
      var more = best.closest("details.nav-more");
      if (more) more.classList.add("current");
    }
  }

  // --- Tables -------------------------------------------------------------------------------
  function headerLabels(table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) return null;
    var labels = [];
    Array.prototype.forEach.call(head.cells, function (cell) {
      for (var i = 0; i < (cell.colSpan || 1); i++) labels.push(cell.textContent.trim());
    });
    return labels;
  }

  function labelCells(table) {
    // Tables already written as cards (table.stack) carry their own labels.
    if (table.classList.contains("stack")) return;
    var labels = headerLabels(table);
    if (!labels) return;
    table.classList.add("cards");
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          // A cell spanning columns ("No hay documentos.") needs no column name.
          var span = cell.colSpan || 1;
          if (span === 1 && !cell.hasAttribute("data-label") && labels[column]) {
            cell.setAttribute("data-label", labels[column]);
          }
          column += span;
        });
      });
    });
  }

  function wrapTable(table) {
    if (table.dataset.scrollReady) return;
    table.dataset.scrollReady = "1";
    var parent = table.parentElement;
    if (!parent.classList.contains("table-scroll")) {
      var box = document.createElement("div");
      box.className = "table-scroll";
      parent.insertBefore(box, table);
      box.appendChild(table);
    }
    labelCells(table);
  }

  function enhanceTables(root) {
    if (root.matches && root.matches("table.table")) wrapTable(root);
    if (root.querySelectorAll) root.querySelectorAll("table.table").forEach(wrapTable);
  }

  function start() {
    markCurrentSection();
    enhanceTables(document);
    // Rows added later (a document's lines, a search's results) get their column names too.
    new MutationObserver(function (mutations) {
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (node.matches("tr")) {
            var table = node.closest("table.table");
            if (table) labelCells(table);
          } else {
            enhanceTables(node);
          }
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
    // Leaving the narrow layout closes the menu, so it does not stay open off-screen.
    var wide = window.matchMedia("(min-width: 901px)");
    var onChange = function () {
      if (wide.matches) setMenu(false);
    };
    if (wide.addEventListener) wide.addEventListener("change", onChange);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
