// Sales document form: add/remove lines and references, prefill from a product, and show
// live totals computed by the server (the same rules as saving: POST documentos/totales/).
(function () {
  "use strict";
  const form = document.getElementById("document-form");
  if (!form) return;
  const products = JSON.parse(document.getElementById("products-data").textContent);

  function addRow(prefix, templateId, tbodyId) {
    const total = form.querySelector(`#id_${prefix}-TOTAL_FORMS`);
    const index = parseInt(total.value, 10);
    const html = document.getElementById(templateId).innerHTML.replace(/__prefix__/g, index);
    const tbody = document.getElementById(tbodyId);
    tbody.insertAdjacentHTML("beforeend", html);
    total.value = index + 1;
    return tbody.lastElementChild;
  }

  function removeRow(row) {
    const del = row.querySelector('input[name$="-DELETE"]');
    if (del) del.checked = true;
    row.hidden = true;
    refresh();
  }

  function fillFromProduct(select) {
    const product = products[select.value];
    if (!product) return;
    const row = select.closest("tr");
    const set = (suffix, value) => {
      const input = row.querySelector(`[name$="-${suffix}"]`);
      if (input) input.value = value;
    };
    set("name", product.name);
    set("unit_price", grossPrices() ? product.gross : product.price);
    set("unit", product.unit);
    const exempt = row.querySelector('[name$="-is_exempt"]');
    if (exempt) exempt.checked = product.exempt;
  }

  let pending = null;
  let sequence = 0;
  async function refresh() {
    const mine = ++sequence;
    const body = new FormData(form);
    const response = await fetch(form.dataset.previewUrl, {
      method: "POST",
      body,
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    });
    if (mine !== sequence || !response.ok) return;
    const data = await response.json();
    const errorBox = document.getElementById("totals-error");
    if (!data.ok) {
      errorBox.textContent = data.message;
      errorBox.hidden = false;
      return;
    }
    errorBox.hidden = true;
    for (const [key, value] of Object.entries(data.totals)) {
      const cell = form.querySelector(`[data-total="${key}"]`);
      if (cell) cell.textContent = value;
    }
    const rows = form.querySelectorAll("#line-rows tr.line-row");
    rows.forEach((row, i) => {
      const cell = row.querySelector(".line-amount");
      if (cell) cell.textContent = data.lines[i] || "—";
    });
  }
  function scheduleRefresh() {
    clearTimeout(pending);
    pending = setTimeout(refresh, 150);
  }

  document.getElementById("add-line").addEventListener("click", () => {
    const row = addRow("lines", "line-template", "line-rows");
    const qty = row.querySelector('[name$="-quantity"]');
    if (qty && !qty.value) qty.value = "1";
    row.querySelector('[name$="-product"]').focus();
  });
  document.getElementById("add-ref").addEventListener("click", () => {
    addRow("refs", "ref-template", "ref-rows");
  });
  const addCommission = document.getElementById("add-commission");
  if (addCommission) {
    addCommission.addEventListener("click", () => {
      const row = addRow("commissions", "commission-template", "commission-rows");
      row.querySelector('[name$="-glosa"]').focus();
    });
  }
  form.addEventListener("click", (event) => {
    if (event.target.classList.contains("remove-row")) removeRow(event.target.closest("tr"));
  });
  // The traslado block belongs to guías de despacho only.
  const tipo = form.querySelector('select[name="tipo_dte"]');
  const guia = document.getElementById("guia-fields");
  const basis = document.getElementById("price-basis");
  function grossPrices() {
    return !!(tipo && basis && basis.dataset.grossTypes.split(" ").includes(tipo.value));
  }
  const exportBlock = document.getElementById("export-fields");
  function showTypeFields() {
    if (guia && tipo) guia.hidden = tipo.value !== guia.dataset.tipo;
    if (exportBlock && tipo) exportBlock.hidden = !exportBlock.dataset.tipos.split(" ").includes(tipo.value);
    const exporting = exportBlock && tipo && !exportBlock.hidden;
    // A liquidación factura: the liquidated type of each line, and the commissions.
    const liquidacion = !!tipo && form.dataset.liquidacionTipos.split(" ").includes(tipo.value);
    form.classList.toggle("is-liquidacion", liquidacion);
    if (basis) {
      basis.textContent = exporting
        ? basis.dataset.export
        : liquidacion ? basis.dataset.liquidacion
        : grossPrices() ? basis.dataset.gross : basis.dataset.net;
    }
  }
  form.addEventListener("change", (event) => {
    if (event.target === tipo) showTypeFields();
    if (event.target.matches('select[name$="-product"]')) fillFromProduct(event.target);
    scheduleRefresh();
  });
  form.addEventListener("input", scheduleRefresh);
  showTypeFields();
  refresh();
})();
