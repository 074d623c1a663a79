/* A training job's page, live: GET /v2/training/jobs/{id} and …/metrics on load, then the
   server-sent events of …/events (state, recommended, progress, eval, checkpoint, hub) move the progress
   bar, the ETA and the hand-drawn SVG loss curve, and fill the events list. Cancel, the Hub
   push, and "Try it" (a chat link for SFT models, a classify box for classifiers). */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;
  var SVG = "http://www.w3.org/2000/svg";
  var TERMINAL = ["succeeded", "failed", "cancelled"];
  /* Events kept in the list (the oldest go first). */
  var MAX_EVENTS = 300;

  var app = document.getElementById("job-app");
  if (!app) return;

  function byId(id) {
    return document.getElementById(id);
  }

  var jobId = app.getAttribute("data-job-id");
  var base = "/v2/training/jobs/" + encodeURIComponent(jobId);

  var ui = {
    state: byId("job-state"),
    cancel: byId("job-cancel"),
    error: byId("job-error"),
    progress: byId("job-progress"),
    progressLabel: byId("job-progress-label"),
    percent: byId("job-percent"),
    loss: byId("stat-loss"),
    speed: byId("stat-speed"),
    eta: byId("stat-eta"),
    elapsed: byId("stat-elapsed"),
    epoch: byId("stat-epoch"),
    chart: byId("loss-chart"),
    waiting: byId("result-waiting"),
    metrics: byId("job-metrics"),
    metricRows: byId("job-metric-rows"),
    hub: byId("hub-push"),
    hubState: byId("hub-state"),
    hubDetail: byId("hub-detail"),
    tryIt: byId("try-it"),
    events: byId("job-events"),
  };

  var state = {
    state: app.getAttribute("data-state"),
    step: -1,
    /* step → loss, for the chart */
    points: {},
    source: null,
    lastLoss: null,
  };

  /* -- formatting -------------------------------------------------------------------- */

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
    var total = Math.max(0, Math.round(seconds));
    if (total < 60) return total + " s";
    var minutes = Math.floor(total / 60);
    if (minutes < 60) return minutes + " min " + String(total % 60).padStart(2, "0") + " s";
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }

  function number(value, digits) {
    if (value === null || value === undefined || !isFinite(value)) return "—";
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  function clock(time) {
    if (!time) return "";
    var date = new Date(time * 1000);
    return date.toLocaleTimeString("en-GB", { hour12: false });
  }

  function metricName(key) {
    var name = key.replace(/_/g, " ");
    return name.charAt(0).toUpperCase() + name.slice(1);
  }

  /* -- state and progress ------------------------------------------------------------ */

  function setState(value) {
    if (!value) return;
    /* A finished job stays finished (the history replayed on load says otherwise). */
    if (TERMINAL.indexOf(state.state) !== -1 && TERMINAL.indexOf(value) === -1) return;
    state.state = value;
    ui.state.textContent = value;
    ui.state.className = "state-pill state-" + value;
    app.setAttribute("data-state", value);
    var finished = TERMINAL.indexOf(value) !== -1;
    ui.cancel.hidden = finished;
    if (value === "queued" && state.step < 0) ui.progressLabel.textContent = "Waiting to start…";
    if (value === "validating" && state.step < 0) {
      ui.progressLabel.textContent = "Loading the data and the base model…";
    }
    if (value === "succeeded") {
      ui.progress.value = ui.progress.max;
      ui.percent.textContent = "100%";
      ui.eta.textContent = "done";
      ui.progressLabel.textContent = "Finished" + (state.step > 0 ? " after " + state.step + " steps" : "");
      ui.tryIt.hidden = false;
      ui.waiting.textContent = "The model is ready.";
    } else if (value === "failed" || value === "cancelled") {
      ui.eta.textContent = "—";
      ui.progressLabel.textContent =
        (value === "failed" ? "Failed" : "Cancelled") + (state.step > 0 ? " at step " + state.step : "");
      ui.waiting.textContent = value === "failed" ? "The job failed; no model was saved." : "The job was cancelled.";
    }
  }

  function showProgress(progress) {
    if (!progress || progress.step === undefined || progress.step === null) return;
    if (progress.step < state.step) return;
    state.step = progress.step;
    var total = progress.total_steps || 0;
    if (total > 0) {
      ui.progress.max = total;
      ui.progress.value = Math.min(progress.step, total);
      var percent = Math.round((100 * progress.step) / total);
      ui.percent.textContent = percent + "%";
      if (TERMINAL.indexOf(state.state) === -1) {
        ui.progressLabel.textContent = "Step " + progress.step + " of " + total;
      }
    }
    if (progress.loss !== null && progress.loss !== undefined) ui.loss.textContent = number(progress.loss, 4);
    ui.speed.textContent = number(progress.samples_per_second, 1);
    ui.eta.textContent = state.state === "succeeded" ? "done" : duration(progress.eta_seconds);
    ui.elapsed.textContent = duration(progress.elapsed_seconds);
    ui.epoch.textContent = number(progress.epoch, 2);
    if (progress.loss !== null && progress.loss !== undefined) addPoint(progress.step, progress.loss);
  }

  /* The metrics worth reading (not timings), the evaluation's first. */
  function shownMetrics(metrics) {
    return Object.keys(metrics || {})
      .filter(function (key) { return typeof metrics[key] === "number" && !/runtime|per_second|^epoch$/.test(key); })
      .sort(function (a, b) { return (b.indexOf("eval_") === 0) - (a.indexOf("eval_") === 0); });
  }

  function showMetrics(metrics) {
    var keys = shownMetrics(metrics);
    if (!keys.length) return;
    ui.metricRows.textContent = "";
    keys.forEach(function (key) {
      ui.metricRows.appendChild(
        el("tr", {}, [el("th", { scope: "row", text: metricName(key) }), el("td", { className: "num", text: number(metrics[key], 4) })])
      );
    });
    ui.metrics.hidden = false;
    showReport(metrics);
  }

  /* The test split's report: the tuned model beside the baseline, per class, confusion. */
  function showReport(metrics) {
    var report = metrics && metrics.test_report;
    if (!report || typeof report !== "object") return;
    byId("job-test-split").textContent = report.split || "";
    var compare = byId("job-test-compare-rows");
    compare.textContent = "";
    function row(label, accuracy, f1) {
      compare.appendChild(el("tr", {}, [
        el("th", { scope: "row", text: label }),
        el("td", { className: "num", text: number(accuracy, 4) }),
        el("td", { className: "num", text: number(f1, 4) }),
      ]));
    }
    row("Fine-tuned", metrics.test_accuracy, metrics.test_f1_macro);
    var baseline = report.baseline || {};
    if (baseline.method) row("Baseline (" + baseline.method + ")", baseline.accuracy, baseline.f1_macro);
    var classes = byId("job-test-class-rows");
    classes.textContent = "";
    Object.keys(report.per_class || {}).forEach(function (label) {
      var values = report.per_class[label];
      classes.appendChild(el("tr", {}, [
        el("th", { scope: "row", text: label }),
        el("td", { className: "num", text: number(values.precision, 3) }),
        el("td", { className: "num", text: number(values.recall, 3) }),
        el("td", { className: "num", text: String(values.support) }),
      ]));
    });
    var confusion = report.confusion_matrix || { labels: [], rows: [] };
    var head = byId("job-confusion-head");
    head.textContent = "";
    head.appendChild(el("th", { scope: "col", text: "True \\ predicted" }));
    confusion.labels.forEach(function (label) { head.appendChild(el("th", { scope: "col", className: "num", text: label })); });
    var rows = byId("job-confusion-rows");
    rows.textContent = "";
    confusion.rows.forEach(function (counts, index) {
      rows.appendChild(el("tr", {}, [el("th", { scope: "row", text: confusion.labels[index] })].concat(
        counts.map(function (count) { return el("td", { className: "num", text: String(count) }); })
      )));
    });
    byId("job-test-report").hidden = false;
  }

  function showHub(hub) {
    if (!hub) {
      ui.hub.hidden = true;
      return;
    }
    ui.hub.hidden = false;
    var where = hub.repo_id || "your account";
    ui.hubState.textContent = hub.state;
    ui.hubState.className = "state-pill hub-" + hub.state;
    ui.hubDetail.textContent = "";
    if (hub.state === "pushed" && hub.url && /^https?:\/\//i.test(hub.url)) {
      ui.hubDetail.appendChild(
        el("a", { href: hub.url, target: "_blank", rel: "noopener noreferrer", id: "hub-link", text: hub.repo_id || hub.url })
      );
      if (hub.private) ui.hubDetail.appendChild(el("span", { className: "badge subtle", text: "private" }));
    } else if (hub.state === "pending") {
      ui.hubDetail.textContent = "Pushed to " + where + (hub.private ? " (private)" : "") + " when training succeeds.";
    } else if (hub.state === "pushing") {
      ui.hubDetail.textContent = "Pushing to " + where + "…";
    } else if (hub.error) {
      ui.hubDetail.textContent = hub.error;
    }
  }

  function showJob(job) {
    showProgress(job.progress);
    setState(job.state);
    showMetrics(job.metrics);
    showHub(job.hub_push);
    M.showError(ui.error, job.error || "");
  }

  /* -- the loss chart ---------------------------------------------------------------- */

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, String(attrs[key]));
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* A "nice" step for 4 ticks that cover max (1, 2 or 5 times a power of ten). */
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

  /* Four nice ticks from a round number at or below low to one at or above high (the
     curve fills the chart: losses of 0.69 and 0.70 are not drawn as a flat line at the top). */
  function lossRange(low, high) {
    var span = high - low || Math.abs(high) * 0.1 || 1;
    var step = niceStep(span);
    var min = Math.floor(low / step) * step;
    while (min + 4 * step < high) {
      step = niceStep(step * 4 * 1.01);
      min = Math.floor(low / step) * step;
    }
    if (low >= 0 && min < 0) min = 0;
    return { min: min, step: step };
  }

  function addPoint(step, loss) {
    if (!isFinite(loss)) return;
    if (state.points[step] === loss) return;
    state.points[step] = loss;
    drawChart();
  }

  function drawChart() {
    var steps = Object.keys(state.points)
      .map(Number)
      .sort(function (a, b) { return a - b; });
    if (!steps.length) return;
    var width = 560, height = 240, left = 52, right = 14, top = 12, bottom = 30;
    var plotWidth = width - left - right, plotHeight = height - top - bottom;
    var losses = steps.map(function (step) { return state.points[step]; });
    var range = lossRange(Math.min.apply(null, losses), Math.max.apply(null, losses));
    var yStep = range.step, yMin = range.min, yMax = range.min + 4 * range.step;
    var xMin = Math.min(0, steps[0]);
    var xMax = Math.max(steps[steps.length - 1], xMin + 1);
    function x(step) { return left + (plotWidth * (step - xMin)) / (xMax - xMin); }
    function y(loss) { return top + plotHeight - (plotHeight * (loss - yMin)) / (yMax - yMin); }

    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + height,
      role: "img",
      "aria-label": "Training loss by step: " + losses.length + " points, last " + number(losses[losses.length - 1], 4),
    });
    /* As many decimals as the step needs, so that no two tick labels read the same. */
    var decimals = Math.min(8, Math.max(0, -Math.floor(Math.log10(yStep))));
    for (var tick = 0; tick <= 4; tick += 1) {
      var value = Number((yMin + yStep * tick).toPrecision(12));
      var ty = y(value);
      root.appendChild(svg("line", { x1: left, x2: width - right, y1: ty, y2: ty, class: tick ? "grid" : "axis" }));
      root.appendChild(svg("text", { x: left - 6, y: ty + 4, "text-anchor": "end" }, value.toFixed(decimals)));
    }
    var xTicks = Math.min(5, xMax - xMin);
    for (var i = 0; i <= xTicks; i += 1) {
      var stepValue = Math.round(xMin + ((xMax - xMin) * i) / xTicks);
      root.appendChild(svg("text", { x: x(stepValue), y: height - 10, "text-anchor": "middle" }, String(stepValue)));
    }
    var path = steps
      .map(function (step, index) {
        return (index ? "L" : "M") + x(step).toFixed(1) + " " + y(state.points[step]).toFixed(1);
      })
      .join(" ");
    root.appendChild(svg("path", { d: path, class: "loss-line" }));
    steps.forEach(function (step) {
      var dot = svg("circle", { cx: x(step).toFixed(1), cy: y(state.points[step]).toFixed(1), r: 3, class: "loss-point" });
      dot.appendChild(svg("title", {}, "step " + step + ": loss " + number(state.points[step], 4)));
      root.appendChild(dot);
    });
    ui.chart.textContent = "";
    ui.chart.appendChild(root);
  }

  /* -- events ------------------------------------------------------------------------ */

  function describe(kind, data) {
    if (kind === "state") {
      var text = "State: " + data.state;
      if (data.phase === "search") text += " — searching within a " + data.time_budget_s + " s time budget";
      if (data.reason) text += " — " + data.reason;
      if (data.resume_from) text += " (resuming from " + data.resume_from + ")";
      if (data.error) text += " — " + data.error;
      return text;
    }
    if (kind === "progress") {
      return (
        "Step " + data.step + (data.total_steps ? " of " + data.total_steps : "") +
        " · loss " + number(data.loss, 4) + " · " + number(data.samples_per_second, 1) + " samples/s"
      );
    }
    if (kind === "checkpoint") return "Checkpoint saved at step " + data.step;
    if (kind === "recommended") {
      var chosen = data.recommended || {};
      var names = Object.keys(chosen);
      if (!names.length) return "Hyperparameters: all as set";
      return "Chosen for the data: " + names.map(function (name) {
        return name.replace(/_/g, " ") + " " + chosen[name].value;
      }).join(", ");
    }
    if (kind === "eval") {
      var metrics = data.metrics || {};
      return "Evaluation: " + shownMetrics(metrics)
        .filter(function (key) { return key.indexOf("eval_") === 0; })
        .map(function (key) { return key.slice(5).replace(/_/g, " ") + " " + number(metrics[key], 4); })
        .join(", ");
    }
    if (kind === "trial") {
      var params = data.params || {};
      return "Trial " + data.number + " " + data.state + " · " + Object.keys(params).map(function (name) {
        return name.replace(/_/g, " ") + " " + params[name];
      }).join(", ") + (data.metric === null || data.metric === undefined ? "" : " · " + number(data.metric, 4)) +
        " · " + number(data.seconds, 3) + " s" + (data.note ? " — " + data.note : "");
    }
    if (kind === "search") {
      var picked = data.chosen || {};
      var keys = Object.keys(picked);
      if (!keys.length) return "Search: " + data.trials + " trials; the recommendation is kept (" + data.stopped + ")";
      return "Search: best of " + data.trials + " trials (trial " + data.best_trial + "): " + keys.map(function (name) {
        return name.replace(/_/g, " ") + " " + picked[name].value;
      }).join(", ");
    }
    if (kind === "hub") {
      return "Hub: " + data.state + (data.repo_id ? " " + data.repo_id : "") + (data.error ? " — " + data.error : "");
    }
    return kind + (data.message ? ": " + data.message : "");
  }

  function logEvent(kind, data) {
    if (kind === "progress") {
      /* Only the steps that report a new loss (the bar shows the rest). */
      if (data.loss === null || data.loss === undefined || data.loss === state.lastLoss) return;
      state.lastLoss = data.loss;
    }
    var item = el("li", { className: "event event-" + kind }, [
      el("span", { className: "event-time", text: clock(data.time) }),
      el("span", { className: "event-text", text: describe(kind, data) }),
    ]);
    ui.events.appendChild(item);
    while (ui.events.children.length > MAX_EVENTS) ui.events.removeChild(ui.events.firstChild);
  }

  async function refresh() {
    var job = await M.api("GET", base);
    if (job.ok) showJob(job.data);
    var metrics = await M.api("GET", base + "/metrics");
    if (metrics.ok) {
      metrics.data.history.forEach(function (point) {
        if (point.loss !== null && point.loss !== undefined) addPoint(point.step, point.loss);
      });
    }
  }

  function follow() {
    var source = new EventSource(base + "/events");
    state.source = source;
    function handle(kind) {
      source.addEventListener(kind, function (message) {
        var data;
        try {
          data = JSON.parse(message.data);
        } catch (error) {
          return;
        }
        logEvent(kind, data);
        if (kind === "state") {
          setState(data.state);
          if (TERMINAL.indexOf(data.state) !== -1) {
            source.close();
            state.source = null;
            if (data.error) M.showError(ui.error, data.error);
            if (data.metrics) showMetrics(data.metrics);
            refresh();
          }
        } else if (kind === "progress") {
          showProgress(data);
        } else if (kind === "eval") {
          showMetrics(data.metrics);
        } else if (kind === "hub") {
          showHub(data);
        }
      });
    }
    ["state", "recommended", "trial", "search", "progress", "eval", "checkpoint", "hub", "log"].forEach(handle);
  }

  /* -- actions ----------------------------------------------------------------------- */

  async function cancel() {
    if (!window.confirm("Cancel this training job? Its progress is lost.")) return;
    ui.cancel.disabled = true;
    var result = await M.api("POST", base + "/cancel");
    ui.cancel.disabled = false;
    if (!result.ok) {
      M.showError(ui.error, result.error);
      return;
    }
    showJob(result.data);
    if (result.data.cancel_requested && TERMINAL.indexOf(result.data.state) === -1) {
      ui.progressLabel.textContent = "Stopping…";
      ui.cancel.hidden = true;
    }
  }

  function setupSharing() {
    var form = byId("share-form");
    if (!form) return;
    var select = byId("share-visibility");
    var status = byId("share-status");
    var saved = select.value;
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    select.addEventListener("change", async function () {
      select.disabled = true;
      var path = "/v2/models/trained/" + encodeURIComponent(form.getAttribute("data-model-id"));
      var result = await M.api("PATCH", path, { visibility: select.value });
      select.disabled = false;
      if (!result.ok) {
        select.value = saved;
        status.textContent = result.error;
        return;
      }
      saved = result.data.visibility;
      status.textContent = saved === "everyone" ? "Shared: everyone on this server can use it." : "Private: only you (and staff) can use it.";
    });
  }

  function setupClassify() {
    var form = byId("classify-form");
    if (!form) return;
    var input = byId("classify-input");
    var error = byId("classify-error");
    var button = byId("classify-button");
    var name = app.getAttribute("data-output-name");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) {
        input.setAttribute("aria-invalid", "true");
        M.showError(error, "Type a text to classify first.");
        input.focus();
        return;
      }
      button.disabled = true;
      var result = await M.api("POST", "/v2/models/" + encodeURIComponent(name) + "/classify", { input: text });
      button.disabled = false;
      if (!result.ok) {
        M.showError(error, result.error);
        return;
      }
      input.removeAttribute("aria-invalid");
      M.showError(error, "");
      var answer = result.data.data[0];
      byId("classify-label").textContent = answer.label;
      byId("classify-score").textContent = "(" + number(100 * answer.score, 1) + "%)";
      var list = byId("classify-scores");
      list.textContent = "";
      Object.keys(answer.scores || {})
        .sort(function (a, b) { return answer.scores[b] - answer.scores[a]; })
        .forEach(function (label, index) {
          var id = "score-" + index;
          list.appendChild(
            el("li", {}, [
              el("label", { for: id, text: label }),
              el("meter", { id: id, min: "0", max: "1", value: String(answer.scores[label]) }),
              el("span", { className: "muted small", text: number(100 * answer.scores[label], 1) + "%" }),
            ])
          );
        });
      byId("classify-result").hidden = false;
    });
    input.addEventListener("input", function () {
      input.removeAttribute("aria-invalid");
      M.showError(error, "");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    ui.cancel.addEventListener("click", cancel);
    setupClassify();
    setupSharing();
    if (!byId("try-it-link") && !byId("classify-form")) ui.tryIt.hidden = true;
    refresh().then(follow);
  });

  window.addEventListener("pagehide", function () {
    if (state.source) state.source.close();
  });
})();
