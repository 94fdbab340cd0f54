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
    var buttons = form.elements.buttons, csrf = form.elements.csrf.value;
    var preview = document.getElementById("preview"), previewButtons = document.getElementById("preview-buttons");
    var previewError = document.getElementById("preview-error"), chars = document.getElementById("chars");
    var previewTimer = null, previewSeq = 0;
    function fmt() { return form.querySelector("input[name=fmt]:checked").value; }
    function showButtons(rows) {
      previewButtons.replaceChildren();
      (rows || []).forEach(function (row) {
        var line = document.createElement("div"); line.className = "tg-row";
        row.forEach(function (b) {
          var a = document.createElement("span"); a.className = "tg-button";
          a.textContent = b.text; a.title = b.url; line.appendChild(a);
        });
        previewButtons.appendChild(line);
      });
    }
    function refreshPreview() {
      document.getElementById("format-hint-plain").hidden = fmt() !== "plain";
      document.getElementById("format-hint-html").hidden = fmt() !== "html";
      var body = new FormData();
      body.append("text", text.value); body.append("fmt", fmt()); body.append("buttons", buttons.value);
      var seq = ++previewSeq;
      fetch("/broadcast/preview", { method: "POST", body: body, credentials: "same-origin",
                                    headers: { "X-CSRF-Token": csrf } })
        .then(function (r) { return r.json(); }).then(function (answer) {
          if (seq !== previewSeq) return;  // a later keystroke's answer wins
          previewError.hidden = !answer.error;
          previewError.textContent = answer.error || "";
          if (answer.error) return;
          // The server rebuilt this HTML from Telegram's tag whitelist, every text escaped.
          preview.innerHTML = answer.html;
          showButtons(answer.buttons);
          chars.textContent = String(answer.chars);
        }).catch(function () { previewError.hidden = false; previewError.textContent = "?"; });
    }
    function schedulePreview() { clearTimeout(previewTimer); previewTimer = setTimeout(refreshPreview, 250); }
    function refreshWhen() {
      at.disabled = form.querySelector("input[name=when]:checked").value !== "at";
    }
    segment.addEventListener("change", refreshCount);
    days.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refreshCount, 300); });
    text.addEventListener("input", schedulePreview);
    buttons.addEventListener("input", schedulePreview);
    form.querySelectorAll("input[name=fmt]").forEach(function (r) { r.addEventListener("change", refreshPreview); });
    form.querySelectorAll("input[name=when]").forEach(function (r) { r.addEventListener("change", refreshWhen); });
    refreshCount(); refreshPreview(); refreshWhen();
  }
})();
