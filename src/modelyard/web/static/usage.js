/* The usage page: GET /v2/usage for the chosen period, drawn as SVG bar charts (by day and
   by model), two tables and a CSV link with the same period. */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;
  var SVG = "http://www.w3.org/2000/svg";
  var DAY_MS = 24 * 60 * 60 * 1000;

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, String(attrs[key]));
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  function text(x, y, value, attrs) {
    var node = svg("text", Object.assign({ x: x, y: y }, attrs || {}));
    node.textContent = value;
    return node;
  }

  function tooltip(value) {
    var node = svg("title");
    node.textContent = value;
    return node;
  }

  function isoDay(date) {
    return date.toISOString().slice(0, 10);
  }

  /* A "nice" step between the axis' ticks (1, 2 or 5 times a power of ten), for 4 steps
     that cover max. */
  function niceStep(max) {
    if (!(max > 0)) return 0.25;
    var rough = max / 4;
    var power = Math.pow(10, Math.floor(Math.log10(rough)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i += 1) {
      if (steps[i] * power >= rough) return steps[i] * power;
    }
    return 10 * power;
  }

  function shortNumber(value) {
    if (value >= 1e6) return (value / 1e6).toFixed(value >= 1e7 ? 0 : 1).replace(/\.0$/, "") + "M";
    if (value >= 1e3) return (value / 1e3).toFixed(value >= 1e4 ? 0 : 1).replace(/\.0$/, "") + "K";
    return String(Math.round(value * 100) / 100);
  }

  function shortUsd(value) {
    if (value === 0) return "$0";
    if (value >= 1) return "$" + shortNumber(value);
    return M.formatUsd(value);
  }

  function emptyChart(container, message) {
    container.textContent = "";
    container.appendChild(el("p", { className: "empty-chart", text: message }));
  }

  /* Vertical bars, one per day; series: [{key, className}] stacked bottom-up. */
  function dayChart(container, days, series, format, label) {
    var total = days.reduce(function (sum, day) {
      return sum + series.reduce(function (s, serie) { return s + day[serie.key]; }, 0);
    }, 0);
    if (total === 0) {
      emptyChart(container, "No usage in this period.");
      return;
    }
    var width = 560, height = 240, left = 76, right = 8, top = 12, bottom = 28;
    var plotWidth = width - left - right, plotHeight = height - top - bottom;
    var step = niceStep(Math.max.apply(null, days.map(function (day) {
      return series.reduce(function (s, serie) { return s + day[serie.key]; }, 0);
    })));
    var max = step * 4;
    var root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": label });
    for (var tick = 0; tick <= 4; tick += 1) {
      var value = Number((step * tick).toPrecision(12));
      var y = top + plotHeight - (plotHeight * tick) / 4;
      root.appendChild(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: tick ? "grid" : "axis" }));
      root.appendChild(text(left - 6, y + 4, format(value), { "text-anchor": "end" }));
    }
    var slot = plotWidth / days.length;
    var barWidth = Math.max(1, Math.min(28, slot * 0.7));
    var labelEvery = Math.ceil(days.length / 8);
    days.forEach(function (day, index) {
      var x = left + slot * index + (slot - barWidth) / 2;
      var base = top + plotHeight;
      var parts = [];
      series.forEach(function (serie) {
        var amount = day[serie.key];
        parts.push(serie.name + " " + format(amount));
        if (!amount) return;
        var barHeight = (plotHeight * amount) / max;
        base -= barHeight;
        root.appendChild(
          svg("rect", { x: x, y: base, width: barWidth, height: Math.max(barHeight, 0.5), rx: 2, class: serie.className }, [
            tooltip(day.day + ": " + serie.name + " " + format(amount)),
          ])
        );
      });
      if (index % labelEvery === 0) {
        root.appendChild(text(x + barWidth / 2, height - 8, day.day.slice(5), { "text-anchor": "middle" }));
      }
    });
    container.textContent = "";
    container.appendChild(root);
  }

  /* Horizontal bars, one per model, largest first. */
  function modelChart(container, rows, series, format, label) {
    var shown = rows
      .map(function (row) {
        return { row: row, total: series.reduce(function (s, serie) { return s + row[serie.key]; }, 0) };
      })
      .filter(function (item) { return item.total > 0; })
      .sort(function (a, b) { return b.total - a.total; })
      .slice(0, 10);
    if (!shown.length) {
      emptyChart(container, "No usage in this period.");
      return;
    }
    var rowHeight = 30, width = 560, left = 150, right = 96, top = 6;
    var height = top * 2 + rowHeight * shown.length;
    var max = shown[0].total;
    var root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": label });
    shown.forEach(function (item, index) {
      var y = top + index * rowHeight;
      var name = item.row.model.length > 22 ? item.row.model.slice(0, 21) + "…" : item.row.model;
      root.appendChild(text(left - 8, y + rowHeight / 2 + 4, name, { "text-anchor": "end" }));
      var x = left;
      series.forEach(function (serie) {
        var amount = item.row[serie.key];
        if (!amount) return;
        var barWidth = ((width - left - right) * amount) / max;
        root.appendChild(
          svg("rect", { x: x, y: y + 5, width: Math.max(barWidth, 1), height: rowHeight - 10, rx: 3, class: serie.className }, [
            tooltip(item.row.model + ": " + serie.name + " " + format(amount)),
          ])
        );
        x += barWidth;
      });
      root.appendChild(text(x + 6, y + rowHeight / 2 + 4, format(item.total), { class: "value" }));
    });
    container.textContent = "";
    container.appendChild(root);
  }

  function tableRows(body, rows, first) {
    body.textContent = "";
    if (!rows.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "6", className: "muted", text: "No usage in this period." })]));
      return;
    }
    rows.forEach(function (row) {
      body.appendChild(
        el("tr", {}, [
          el("td", { text: first(row) }),
          el("td", { className: "num", text: M.formatCount(row.requests) }),
          el("td", { className: "num", text: M.formatCount(row.input_tokens) }),
          el("td", { className: "num", text: M.formatCount(row.output_tokens) }),
          el("td", { className: "num", text: M.formatCount(row.errors) }),
          el("td", { className: "num", text: M.formatUsd(row.cost_usd) }),
        ])
      );
    });
  }

  /* Every day of the period, zeros where nothing was used. */
  function fillDays(report) {
    var byDay = {};
    report.by_day.forEach(function (row) {
      byDay[row.day] = row;
    });
    var days = [];
    var start = new Date(report.start + "T00:00:00Z").getTime();
    var end = new Date(report.end + "T00:00:00Z").getTime();
    for (var time = start; time <= end; time += DAY_MS) {
      var key = isoDay(new Date(time));
      var row = byDay[key];
      days.push({
        day: key,
        cost: row ? Number(row.cost_usd) : 0,
        input: row ? row.input_tokens : 0,
        output: row ? row.output_tokens : 0,
      });
    }
    return days;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var app = document.getElementById("usage-app");
    var select = document.getElementById("usage-days");
    var csv = document.getElementById("usage-csv");
    var error = document.getElementById("usage-error");
    var period = document.getElementById("usage-period");
    var userId = app.getAttribute("data-user-id");

    async function load() {
      var days = Number(select.value) || 30;
      var end = new Date();
      var start = new Date(end.getTime() - (days - 1) * DAY_MS);
      var query = "start=" + isoDay(start) + "&end=" + isoDay(end) + "&user_id=" + encodeURIComponent(userId);
      csv.setAttribute("href", "/v2/usage/export.csv?" + query);
      var result = await M.api("GET", "/v2/usage?" + query);
      if (!result.ok) {
        M.showError(error, result.error);
        return;
      }
      M.showError(error, "");
      var report = result.data;
      period.textContent = "Your requests from " + report.start + " to " + report.end + " (UTC days).";
      document.getElementById("total-cost").textContent = M.formatUsd(report.totals.cost_usd);
      document.getElementById("total-requests").textContent = M.formatCount(report.totals.requests);
      document.getElementById("total-input").textContent = M.formatCount(report.totals.input_tokens);
      document.getElementById("total-output").textContent = M.formatCount(report.totals.output_tokens);
      document.getElementById("total-errors").textContent = M.formatCount(report.totals.errors);

      var filled = fillDays(report);
      dayChart(
        document.getElementById("chart-day-cost"),
        filled,
        [{ key: "cost", name: "cost", className: "bar" }],
        shortUsd,
        "Cost by day"
      );
      dayChart(
        document.getElementById("chart-day-tokens"),
        filled,
        [
          { key: "input", name: "input tokens", className: "bar-input" },
          { key: "output", name: "output tokens", className: "bar-output" },
        ],
        shortNumber,
        "Tokens by day"
      );
      var models = report.by_model.map(function (row) {
        return {
          model: row.model,
          cost: Number(row.cost_usd),
          input: row.input_tokens,
          output: row.output_tokens,
        };
      });
      modelChart(
        document.getElementById("chart-model-cost"),
        models,
        [{ key: "cost", name: "cost", className: "bar" }],
        shortUsd,
        "Cost by model"
      );
      modelChart(
        document.getElementById("chart-model-tokens"),
        models,
        [
          { key: "input", name: "input tokens", className: "bar-input" },
          { key: "output", name: "output tokens", className: "bar-output" },
        ],
        shortNumber,
        "Tokens by model"
      );
      tableRows(document.getElementById("model-rows"), report.by_model, function (row) {
        return row.model;
      });
      tableRows(
        document.getElementById("day-rows"),
        report.by_day.slice().reverse(),
        function (row) {
          return row.day;
        }
      );
    }

    select.addEventListener("change", load);
    document.getElementById("usage-form").addEventListener("submit", function (event) {
      event.preventDefault();
      load();
    });
    load();
  });
})();
