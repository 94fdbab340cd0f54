// Rapport dashboard: light behaviour only (theme, login hand-off, charts, composer, confirmations).
(function () {
  "use strict";

  // --- Telegram Mini App: theme colours and initData come in the URL fragment ---------------
  function fragmentParams() {
    var hash = window.location.hash.replace(/^#/, "");
    var out = {};
    hash.split("&").forEach(function (pair) {
      if (!pair) return;
      var i = pair.indexOf("=");
      var key = decodeURIComponent(i < 0 ? pair : pair.slice(0, i));
      out[key] = i < 0 ? "" : decodeURIComponent(pair.slice(i + 1));
    });
    return out;
  }

  function applyTheme(theme) {
    var root = document.documentElement;
    Object.keys(theme).forEach(function (key) {
      if (/^[a-z_]+$/.test(key) && /^#[0-9a-fA-F]{3,8}$/.test(theme[key])) {
        root.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), theme[key]);
      }
    });
  }

  var params = fragmentParams();
  try {
    if (params.tgWebAppThemeParams) {
      sessionStorage.setItem("tgTheme", params.tgWebAppThemeParams);
    }
    var stored = sessionStorage.getItem("tgTheme");
    if (stored) applyTheme(JSON.parse(stored));
  } catch (e) { /* no storage or bad theme: keep the default colours */ }

  document.addEventListener("DOMContentLoaded", function () {
    var webappForm = document.getElementById("webapp-form");
    if (webappForm) {
      if (params.tgWebAppData) {
        webappForm.elements.initData.value = params.tgWebAppData;
        webappForm.submit();
      } else {
        document.getElementById("webapp-status").hidden = true;
        document.getElementById("webapp-missing").hidden = false;
      }
    }
    var loginForm = document.getElementById("login-form");
    if (loginForm && loginForm.dataset.autosubmit === "yes") loginForm.submit();

    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });

    document.querySelectorAll("canvas.chart").forEach(drawChart);
    setUpComposer();
  });

  // --- Charts: Chart.js (served from /static/vendor), every bar labelled with its number -----
  var valueLabels = {
    id: "valueLabels",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      chart.data.datasets.forEach(function (dataset, i) {
        var meta = chart.getDatasetMeta(i);
        // Every bar keeps its number unless they would overlap; then every k-th (hover shows all).
        var widest = Math.max.apply(null, dataset.data.map(function (v) { return String(v).length; }).concat([1]));
        var room = chart.chartArea.width / Math.max(1, meta.data.length);
        var step = Math.max(1, Math.ceil((widest * 7 + 4) / room));
        meta.data.forEach(function (bar, index) {
          if ((meta.data.length - 1 - index) % step) return;
          var value = dataset.data[index];
          if (value === null || value === undefined) return;
          ctx.save();
          ctx.fillStyle = getComputedStyle(document.body).color;
          ctx.font = "11px system-ui, sans-serif";
          ctx.textAlign = "center";
          ctx.fillText(String(value), bar.x, bar.y - 4);
          ctx.restore();
        });
      });
    }
  };

  function drawChart(canvas) {
    if (typeof Chart === "undefined") return;
    var spec = JSON.parse(canvas.dataset.chart);
    var accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#2a6fdb";
    new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: [{ label: spec.label, data: spec.values, backgroundColor: accent, borderColor: accent }] },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        layout: { padding: { top: 18 } },
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxRotation: 60, autoSkip: true } } }
      },
      plugins: [valueLabels]
    });
  }

  // --- Broadcast composer: live recipient count, time field, plain-text preview -------------
  function setUpComposer() {
    var form = document.getElementById("composer");
    if (!form) return;
    var segment = form.elements.segment, days = form.elements.days, text = form.elements.text;
    var count = document.getElementById("recipient-count");
    var daysField = document.getElementById("days-field");
    var at = document.getElementById("at");
    var timer = null;

    function refreshCount() {
      daysField.hidden = segment.value !== "inactive";
      var url = "/broadcast/recipients?segment=" + encodeURIComponent(segment.value) +
        (segment.value === "inactive" ? "&days=" + encodeURIComponent(days.value) : "");
      count.textContent = "…";
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (body) {
        count.textContent = body.error ? body.error : String(body.count);
      }).catch(function () { count.textContent = "?"; });
    }
    function refreshPreview() {
      document.getElementById("preview").textContent = text.value;
      document.getElementById("chars").textContent = String(text.value.trim().length);
    }
    function refreshWhen() {
      at.disabled = form.querySelector("input[name=when]:checked").value !== "at";
    }
    segment.addEventListener("change", refreshCount);
    days.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refreshCount, 300); });
    text.addEventListener("input", refreshPreview);
    form.querySelectorAll("input[name=when]").forEach(function (r) { r.addEventListener("change", refreshWhen); });
    refreshCount(); refreshPreview(); refreshWhen();
  }
})();
