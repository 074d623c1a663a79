/* The training page: upload a dataset and see its validation (line-numbered problems shown
   inline), choose the task, base model and hyperparameters, get advice and apply it, and
   start the job through the API keys dialog.

   Keys typed in the dialog are sent once, in the body of POST /v2/training/jobs; they are
   never put in a URL or in storage, and the inputs are emptied whenever the dialog closes. */
(function () {
  "use strict";

  var M = window.Modelyard;
  var el = M.el;

  var NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
  var ACTIVE = ["queued", "validating", "running"];
  var JOBS_REFRESH_MS = 3000;
  /* The form's numbers and the ranges TrainingConfig accepts. */
  var NUMBERS = {
    epochs: { min: 0, above: true, max: 1000 },
    max_steps: { int: true, min: 1 },
    batch_size: { int: true, min: 1, max: 4096 },
    learning_rate: { min: 0, above: true, max: 1 },
    max_length: { int: true, min: 8, max: 131072 },
    warmup_ratio: { min: 0, max: 1, below: true },
    weight_decay: { min: 0, max: 1 },
    lora_r: { int: true, min: 1, max: 512 },
    logging_steps: { int: true, min: 1 },
    checkpoint_steps: { int: true, min: 1 },
    eval_fraction: { min: 0, above: true, max: 0.5 },
    /* Sent as auto.time_budget_s (the API's bounds: 30 s to 24 h). */
    time_budget_min: { min: 0.5, max: 1440 },
  };
  /* Advice hyperparameter → form field. */
  var ADVICE_FIELDS = [
    ["epochs", "epochs", "Epochs"],
    ["learning_rate", "learning_rate", "Learning rate"],
    ["batch_size", "batch_size", "Batch size"],
    ["max_length", "max_length", "Max length"],
    ["method", "method", "Method"],
    ["warmup_ratio", "warmup_ratio", "Warm-up ratio"],
    ["weight_decay", "weight_decay", "Weight decay"],
    ["lora_r", "lora_r", "LoRA rank"],
  ];

  var app = document.getElementById("training-app");
  if (!app) return;

  /* The training tasks (the server's registry, in data-tasks): each task by name, which
     task each kind of dataset serves, and how tasks and kinds are shown. */
  var TASKS = {};
  var KIND_TASK = {};
  var KIND_LABEL = {};
  var TASK_LABEL = {};
  var FIRST_TASK = null;
  JSON.parse(app.getAttribute("data-tasks") || "[]").forEach(function (task) {
    TASKS[task.name] = task;
    TASK_LABEL[task.name] = task.label;
    if (FIRST_TASK === null) FIRST_TASK = task.name;
    Object.keys(task.dataset_kinds).forEach(function (kind) {
      KIND_TASK[kind] = task.name;
      KIND_LABEL[kind] = task.dataset_kinds[kind];
    });
  });

  function offersLora(task) {
    return !!TASKS[task] && TASKS[task].methods.indexOf("lora") !== -1;
  }

  function capitalised(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function byId(id) {
    return document.getElementById(id);
  }

  var ui = {
    uploadForm: byId("upload-form"),
    file: byId("dataset-file"),
    datasetTask: byId("dataset-task"),
    uploadButton: byId("upload-button"),
    uploadError: byId("upload-error"),
    uploadErrorTitle: byId("upload-error-title"),
    uploadIssues: byId("upload-issues"),
    uploadMore: byId("upload-issues-more"),
    result: byId("dataset-result"),
    datasetRows: byId("dataset-rows"),
    datasetsWrap: byId("datasets-wrap"),
    datasetsEmpty: byId("datasets-empty"),
    datasetsError: byId("datasets-error"),
    jobForm: byId("job-form"),
    dataset: byId("job-dataset_id"),
    base: byId("job-base_model"),
    output: byId("job-output_name"),
    method: byId("job-method"),
    description: byId("job-description"),
    advisor: byId("job-advisor"),
    jobError: byId("job-error"),
    adviceButton: byId("advice-button"),
    adviceStatus: byId("advice-status"),
    start: byId("start-button"),
    advice: byId("advice"),
    jobRows: byId("job-rows"),
    jobsWrap: byId("jobs-wrap"),
    jobsEmpty: byId("jobs-empty"),
    jobsError: byId("jobs-error"),
    dialog: byId("keys-dialog"),
    keysForm: byId("keys-form"),
    keysError: byId("keys-error"),
    hf: byId("keys-hf"),
    groq: byId("keys-groq"),
    remember: byId("keys-remember"),
    useSaved: byId("keys-use-saved"),
    repo: byId("keys-repo"),
    private: byId("keys-private"),
    skip: byId("keys-skip"),
    proceed: byId("keys-continue"),
  };

  var state = {
    datasets: [],
    /* The advice shown, and the one applied to the form (sent with the job). */
    advice: null,
    applied: null,
    /* The job settings waiting for the keys dialog. */
    pending: null,
    jobsTimer: null,
  };

  function day(value) {
    return value ? String(value).slice(0, 16).replace("T", " ") : "—";
  }

  /* -- uploads ----------------------------------------------------------------------- */

  async function postForm(url, form) {
    var response;
    try {
      response = await fetch(url, {
        method: "POST",
        body: form,
        headers: { Accept: "application/json", "X-CSRF-Token": M.csrfToken() },
        credentials: "same-origin",
      });
    } catch (error) {
      return { ok: false, status: 0, data: null, error: M.errorMessage(null, 0) };
    }
    var data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return {
      ok: response.ok,
      status: response.status,
      data: data,
      error: response.ok ? null : M.errorMessage(data, response.status),
    };
  }

  function showUploadProblems(title, issues, total) {
    ui.uploadErrorTitle.textContent = title;
    ui.uploadIssues.textContent = "";
    (issues || []).forEach(function (issue) {
      ui.uploadIssues.appendChild(
        el("li", {}, [
          issue.where ? el("strong", { className: "issue-where", text: issue.where }) : null,
          issue.where ? ": " : "",
          issue.message,
        ])
      );
    });
    ui.uploadIssues.hidden = !(issues && issues.length);
    var hiddenCount = (total || 0) - (issues ? issues.length : 0);
    ui.uploadMore.textContent = hiddenCount > 0 ? "… and " + hiddenCount + " more." : "";
    ui.uploadMore.hidden = hiddenCount <= 0;
    ui.uploadError.hidden = false;
    ui.file.setAttribute("aria-invalid", "true");
  }

  function clearUploadProblems() {
    ui.uploadError.hidden = true;
    ui.file.removeAttribute("aria-invalid");
  }

  function showDataset(dataset) {
    byId("result-name").textContent = dataset.name;
    byId("result-kind").textContent = KIND_LABEL[dataset.kind] || dataset.kind;
    byId("result-examples").textContent = M.formatCount(dataset.num_examples);
    byId("result-labels").textContent = dataset.labels && dataset.labels.length ? dataset.labels.join(", ") : "—";
    byId("result-columns").textContent = (dataset.columns || []).join(", ");
    ui.result.hidden = false;
  }

  async function upload(event) {
    event.preventDefault();
    ui.result.hidden = true;
    var file = ui.file.files && ui.file.files[0];
    if (!file) {
      showUploadProblems("Choose a .csv, .jsonl or .parquet file first.", [], 0);
      ui.file.focus();
      return;
    }
    var form = new FormData();
    form.append("file", file, file.name);
    if (ui.datasetTask.value) form.append("task", ui.datasetTask.value);
    ui.uploadButton.disabled = true;
    ui.uploadButton.textContent = "Checking…";
    var result = await postForm("/v2/datasets", form);
    ui.uploadButton.disabled = false;
    ui.uploadButton.textContent = "Upload and check";
    if (!result.ok) {
      var error = (result.data && result.data.error) || {};
      if (error.code === "invalid_dataset") {
        var total = error.total_issues || (error.issues || []).length;
        showUploadProblems(
          file.name + " cannot be used: " + total + (total === 1 ? " problem." : " problems."),
          error.issues || [],
          total
        );
      } else {
        showUploadProblems(result.error, [], 0);
      }
      ui.file.focus();
      return;
    }
    clearUploadProblems();
    ui.uploadForm.reset();
    await loadDatasets();
    chooseDataset(result.data.id);
    /* Shown once it can be chosen in the job form. */
    showDataset(result.data);
  }

  /* -- datasets ---------------------------------------------------------------------- */

  function datasetById(id) {
    return state.datasets.find(function (dataset) {
      return String(dataset.id) === String(id);
    });
  }

  function chooseDataset(id) {
    ui.dataset.value = String(id);
    var dataset = datasetById(id);
    if (dataset && KIND_TASK[dataset.kind] && KIND_TASK[dataset.kind] !== currentTask()) {
      setTask(KIND_TASK[dataset.kind]);
    }
    clearFieldError("dataset_id");
    clearFieldError("task");
  }

  function datasetRow(dataset) {
    var use = el("button", {
      type: "button",
      className: "button ghost small",
      text: "Use",
      "aria-label": "Use dataset " + dataset.name,
    });
    use.addEventListener("click", function () {
      chooseDataset(dataset.id);
      ui.dataset.focus();
    });
    return el("tr", { "data-dataset-id": dataset.id }, [
      el("td", { text: dataset.name }),
      el("td", { text: KIND_LABEL[dataset.kind] || dataset.kind }),
      el("td", { className: "num", text: M.formatCount(dataset.num_examples) }),
      el("td", { className: "labels", text: dataset.labels && dataset.labels.length ? dataset.labels.join(", ") : "—" }),
      el("td", { text: day(dataset.created_at) }),
      el("td", {}, [use]),
    ]);
  }

  async function loadDatasets() {
    var result = await M.api("GET", "/v2/datasets");
    if (!result.ok) {
      M.showError(ui.datasetsError, result.error);
      return;
    }
    M.showError(ui.datasetsError, "");
    state.datasets = result.data.data;
    var chosen = ui.dataset.value;
    ui.dataset.textContent = "";
    ui.dataset.appendChild(el("option", { value: "", text: "Upload or choose a dataset" }));
    ui.datasetRows.textContent = "";
    state.datasets.forEach(function (dataset) {
      ui.dataset.appendChild(
        el("option", {
          value: dataset.id,
          text: dataset.name + " · " + (KIND_LABEL[dataset.kind] || dataset.kind) + " · " + M.formatCount(dataset.num_examples) + " examples",
        })
      );
      ui.datasetRows.appendChild(datasetRow(dataset));
    });
    if (chosen && datasetById(chosen)) ui.dataset.value = chosen;
    ui.datasetsWrap.hidden = state.datasets.length === 0;
    ui.datasetsEmpty.hidden = state.datasets.length !== 0;
  }

  /* -- the job form ------------------------------------------------------------------ */

  function field(name) {
    return byId("job-" + name);
  }

  function currentTask() {
    var checked = ui.jobForm.querySelector('input[name="task"]:checked');
    return checked ? checked.value : FIRST_TASK;
  }

  function setTask(task) {
    var radio = ui.jobForm.querySelector('input[name="task"][value="' + task + '"]');
    if (radio) radio.checked = true;
    updateTask();
  }

  function updateTask() {
    var task = currentTask();
    var lora = offersLora(task);
    ui.base.setAttribute("list", "bases-" + task);
    if (TASKS[task]) ui.base.setAttribute("placeholder", TASKS[task].base_placeholder);
    ui.method.disabled = !lora;
    if (!lora) ui.method.value = "full";
    field("lora_r").disabled = !lora;
    if (state.applied && state.applied.task !== currentTask()) state.applied = null;
  }

  function fieldError(name) {
    return byId("err-" + name);
  }

  function setFieldError(name, message) {
    var node = fieldError(name);
    var input = name === "task" ? null : field(name);
    if (!node) return false;
    M.showError(node, message);
    if (input) input.setAttribute("aria-invalid", "true");
    return true;
  }

  function clearFieldError(name) {
    var node = fieldError(name);
    if (node) M.showError(node, "");
    var input = field(name);
    if (input) input.removeAttribute("aria-invalid");
  }

  function clearFormErrors() {
    ui.jobForm.querySelectorAll(".field-error").forEach(function (node) {
      M.showError(node, "");
    });
    ui.jobForm.querySelectorAll("[aria-invalid]").forEach(function (node) {
      node.removeAttribute("aria-invalid");
    });
    M.showError(ui.jobError, "");
  }

  function rangeText(spec) {
    var parts = [];
    if (spec.min !== undefined) parts.push((spec.above ? "greater than " : "at least ") + spec.min);
    if (spec.max !== undefined) parts.push((spec.below ? "less than " : "at most ") + spec.max);
    return "Enter " + (spec.int ? "a whole number" : "a number") + (parts.length ? ", " + parts.join(" and ") : "") + ".";
  }

  function readNumber(name, spec) {
    var input = field(name);
    if (input.disabled) return { value: undefined };
    var text = input.value.trim();
    if (input.validity && input.validity.badInput) return { error: rangeText(spec) };
    if (text === "") return { value: undefined };
    var value = Number(text);
    var bad =
      !isFinite(value) ||
      (spec.int && !Number.isInteger(value)) ||
      (spec.min !== undefined && (spec.above ? value <= spec.min : value < spec.min)) ||
      (spec.max !== undefined && (spec.below ? value >= spec.max : value > spec.max));
    return bad ? { error: rangeText(spec) } : { value: value };
  }

  /* The job's settings from the form, or the problems found (field → message). */
  function readForm() {
    var task = currentTask();
    var body = { task: task };
    var problems = [];
    var dataset = datasetById(ui.dataset.value);
    if (!dataset) {
      problems.push(["dataset_id", "Choose a dataset (upload one above)."]);
    } else {
      body.dataset_id = dataset.id;
      if (KIND_TASK[dataset.kind] && KIND_TASK[dataset.kind] !== task) {
        problems.push([
          "task",
          dataset.name + " holds " + (KIND_LABEL[dataset.kind] || dataset.kind) + " data: choose " +
            TASK_LABEL[KIND_TASK[dataset.kind]] + ", or another dataset.",
        ]);
      }
    }
    var base = ui.base.value.trim();
    if (base) body.base_model = base;
    else if (TASKS[task] && !TASKS[task].default_base_model) {
      problems.push([
        "base_model",
        capitalised(TASKS[task].noun) + " needs a base model: pick one from the list or type a Hub id.",
      ]);
    }
    var output = ui.output.value.trim();
    if (output) {
      if (NAME.test(output)) body.output_name = output;
      else problems.push(["output_name", "Start with a letter or digit; use only letters, digits, '.', '_' and '-' (at most 100)."]);
    }
    if (offersLora(task)) body.method = ui.method.value;
    Object.keys(NUMBERS).forEach(function (name) {
      var read = readNumber(name, NUMBERS[name]);
      if (read.error) problems.push([name, read.error]);
      else if (read.value !== undefined && name === "lora_r") {
        if (body.method === "lora") body.lora = { r: read.value };
      } else if (read.value !== undefined && name === "time_budget_min") {
        body.auto = { time_budget_s: Math.round(read.value * 60) };
      } else if (read.value !== undefined) body[name] = read.value;
    });
    if (state.applied && state.applied.task === task) body.advice = state.applied.result;
    return { body: body, problems: problems };
  }

  function showProblems(problems) {
    var first = null;
    problems.forEach(function (problem) {
      setFieldError(problem[0], problem[1]);
      if (!first) first = problem[0];
    });
    if (first === "task") {
      var radio = ui.jobForm.querySelector('input[name="task"]:checked');
      if (radio) radio.focus();
    } else if (first) {
      var input = field(first);
      if (input) {
        if (input.closest("details")) input.closest("details").open = true;
        input.focus();
      }
    }
  }

  /* -- advice ------------------------------------------------------------------------ */

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function showAdvice(result, task) {
    var advice = result.advice;
    state.advice = { result: result, task: task };
    var source = byId("advice-source");
    source.textContent = result.source === "llm" ? "LLM · " + (result.model || "model") : "Built-in rules";
    source.className = "badge" + (result.source === "rules" ? " subtle" : "");
    var fallback = byId("advice-fallback");
    fallback.textContent = result.fallback_reason
      ? "The model's advice could not be used (" + result.fallback_reason + "); this is the built-in rules' advice."
      : "";
    fallback.hidden = !result.fallback_reason;

    var hyper = byId("advice-hyper");
    hyper.textContent = "";
    ADVICE_FIELDS.forEach(function (entry) {
      var value = advice.hyperparameters[entry[0]];
      if (value === null || value === undefined) return;
      hyper.appendChild(el("div", {}, [el("dt", { text: entry[2] }), el("dd", { text: String(value) })]));
    });
    byId("advice-strategy").textContent = advice.strategy;

    var sources = byId("advice-sources");
    sources.textContent = "";
    (advice.dataset_sources || []).forEach(function (item) {
      var url = safeUrl(item.url);
      var name = url
        ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: item.name })
        : el("strong", { text: item.name });
      sources.appendChild(el("li", {}, [name, item.why ? " — " + item.why : ""]));
    });
    byId("advice-sources-block").hidden = !(advice.dataset_sources || []).length;

    var notes = byId("advice-notes");
    notes.textContent = "";
    (advice.notes || []).forEach(function (note) {
      notes.appendChild(el("li", { text: note }));
    });
    byId("advice-notes-block").hidden = !(advice.notes || []).length;
    ui.advice.hidden = false;
  }

  async function getAdvice() {
    var task = currentTask();
    var body = { task: task, description: ui.description.value.trim(), compute_type: "cpu" };
    var dataset = datasetById(ui.dataset.value);
    if (dataset) body.dataset_id = dataset.id;
    var base = ui.base.value.trim();
    if (base) body.base_model = base;
    var advisor = ui.advisor.value;
    if (advisor === "groq:saved") body.use_saved_key = true;
    else if (advisor) body.model = advisor;
    ui.adviceButton.disabled = true;
    ui.adviceStatus.textContent = "Asking for advice…";
    M.showError(ui.jobError, "");
    var result = await M.api("POST", "/v2/training/advice", body);
    ui.adviceButton.disabled = false;
    if (!result.ok) {
      ui.adviceStatus.textContent = "";
      M.showError(ui.jobError, "No advice: " + result.error);
      return;
    }
    ui.adviceStatus.textContent = "";
    showAdvice(result.data, task);
  }

  function applyAdvice() {
    if (!state.advice) return;
    var hyper = state.advice.result.advice.hyperparameters;
    if (state.advice.task !== currentTask()) setTask(state.advice.task);
    ADVICE_FIELDS.forEach(function (entry) {
      var value = hyper[entry[0]];
      if (value === null || value === undefined) return;
      var input = field(entry[1]);
      if (!input || (input.disabled && entry[1] !== "method")) return;
      if (entry[1] === "method" && !offersLora(currentTask())) return;
      input.value = String(value);
      clearFieldError(entry[1]);
    });
    state.applied = state.advice;
    var note = "Advice applied to the form.";
    if (field("max_steps").value.trim()) note += " Max steps is still set and overrides the epochs.";
    ui.adviceStatus.textContent = note;
  }

  /* -- the keys dialog --------------------------------------------------------------- */

  function resetReveal(input) {
    input.type = "password";
    var button = ui.dialog.querySelector('[data-reveal="' + input.id + '"]');
    if (!button) return;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Show";
    button.setAttribute("aria-label", (button.getAttribute("aria-label") || "").replace(/^Hide/, "Show"));
  }

  /* Keys leave the page as soon as the dialog closes, however it closes. */
  function clearKeys() {
    [ui.hf, ui.groq].forEach(function (input) {
      input.value = "";
      input.removeAttribute("aria-invalid");
      resetReveal(input);
    });
    ui.remember.checked = false;
    ui.repo.value = "";
    ui.repo.removeAttribute("aria-invalid");
    M.showError(ui.keysError, "");
  }

  function openDialog(body) {
    state.pending = body;
    clearKeys();
    ui.dialog.showModal();
    ui.hf.focus();
  }

  function closeDialog() {
    if (ui.dialog.open) ui.dialog.close();
  }

  function computeType() {
    var checked = ui.dialog.querySelector('input[name="compute_type"]:checked');
    return checked ? checked.value : "cpu";
  }

  /* The input a dialog error is about ("keys.hf_token", "hub.repo_id", "compute_type"). */
  function dialogInput(param) {
    if (param === "keys.hf_token") return ui.hf;
    if (param === "keys.groq_api_key") return ui.groq;
    if (param && param.indexOf("hub.") === 0) return ui.repo;
    if (param === "compute_type") return ui.dialog.querySelector('input[name="compute_type"]:checked');
    return null;
  }

  function busy(on) {
    ui.skip.disabled = on;
    ui.proceed.disabled = on;
    ui.proceed.textContent = on ? "Starting…" : "Continue with Keys";
  }

  async function startJob(body) {
    busy(true);
    var result = await M.api("POST", "/v2/training/jobs", body);
    body = null;
    busy(false);
    if (result.ok) {
      closeDialog();
      state.applied = null;
      window.location.assign("/training/jobs/" + result.data.id);
      return;
    }
    var error = (result.data && result.data.error) || {};
    var input = dialogInput(error.param || "");
    if (input || error.param === "keys" || error.param === "hub") {
      M.showError(ui.keysError, result.error);
      if (input && input.type !== "radio") input.setAttribute("aria-invalid", "true");
      (input || ui.hf).focus();
      return;
    }
    closeDialog();
    var param = error.param || "";
    if (param === "lora.r") param = "lora_r";
    if (param === "auto.time_budget_s") param = "time_budget_min";
    if (!(param && setFieldError(param, result.error))) {
      M.showError(ui.jobError, result.error);
      ui.jobError.scrollIntoView({ block: "nearest" });
      return;
    }
    showProblems([[param, result.error]]);
  }

  function continueWithKeys(event) {
    event.preventDefault();
    if (!state.pending) return;
    var hf = ui.hf.value.trim();
    var groq = ui.groq.value.trim();
    var useSaved = Boolean(ui.useSaved && ui.useSaved.checked);
    if (!hf && !groq && !useSaved) {
      M.showError(ui.keysError, 'Enter a Hugging Face token or a Groq key, or choose "Skip (Train with CPU)".');
      ui.hf.focus();
      return;
    }
    var keys = { remember: ui.remember.checked, use_saved: useSaved };
    if (hf) keys.hf_token = hf;
    if (groq) keys.groq_api_key = groq;
    var repo = ui.repo.value.trim();
    var body = Object.assign({}, state.pending, {
      compute_type: computeType(),
      keys: keys,
      hub: { push: true, repo_id: repo || null, private: ui.private.checked },
    });
    startJob(body);
  }

  function skipKeys() {
    if (!state.pending) return;
    startJob(Object.assign({}, state.pending, { compute_type: "cpu" }));
  }

  /* -- jobs -------------------------------------------------------------------------- */

  function progressText(job) {
    var progress = job.progress || {};
    if (job.state === "succeeded") return "100%";
    if (progress.total_steps) return progress.step + " / " + progress.total_steps;
    return "—";
  }

  function jobRow(job) {
    return el("tr", { "data-job-id": job.id }, [
      el("td", {}, [el("a", { href: "/training/jobs/" + job.id, text: "#" + job.id })]),
      el("td", {}, [el("a", { href: "/training/jobs/" + job.id, text: job.output_name })]),
      el("td", { text: TASK_LABEL[job.task] || job.task }),
      el("td", { className: "base-cell", text: job.base_model, title: job.base_model }),
      el("td", {}, [el("span", { className: "state-pill state-" + job.state, text: job.state })]),
      el("td", { className: "num", text: progressText(job) }),
      el("td", { text: day(job.created_at) }),
    ]);
  }

  async function loadJobs() {
    window.clearTimeout(state.jobsTimer);
    var result = await M.api("GET", "/v2/training/jobs?limit=50");
    if (!result.ok) {
      M.showError(ui.jobsError, result.error);
      return;
    }
    M.showError(ui.jobsError, "");
    var jobs = result.data.data;
    ui.jobRows.textContent = "";
    jobs.forEach(function (job) {
      ui.jobRows.appendChild(jobRow(job));
    });
    ui.jobsWrap.hidden = jobs.length === 0;
    ui.jobsEmpty.hidden = jobs.length !== 0;
    var active = jobs.some(function (job) {
      return ACTIVE.indexOf(job.state) !== -1;
    });
    if (active) state.jobsTimer = window.setTimeout(loadJobs, JOBS_REFRESH_MS);
  }

  /* -- wiring ------------------------------------------------------------------------ */

  document.addEventListener("DOMContentLoaded", function () {
    ui.uploadForm.addEventListener("submit", upload);
    ui.file.addEventListener("change", clearUploadProblems);
    ui.dataset.addEventListener("change", function () {
      if (ui.dataset.value) chooseDataset(ui.dataset.value);
    });
    ui.jobForm.querySelectorAll('input[name="task"]').forEach(function (radio) {
      radio.addEventListener("change", function () {
        clearFieldError("task");
        updateTask();
      });
    });
    ui.jobForm.querySelectorAll("input, select").forEach(function (input) {
      input.addEventListener("input", function () {
        if (input.id) clearFieldError(input.id.replace(/^job-/, ""));
      });
    });
    ui.method.addEventListener("change", function () {
      field("lora_r").disabled = !offersLora(currentTask());
    });
    ui.jobForm.addEventListener("submit", function (event) {
      event.preventDefault();
      clearFormErrors();
      var read = readForm();
      if (read.problems.length) {
        showProblems(read.problems);
        return;
      }
      openDialog(read.body);
    });
    ui.adviceButton.addEventListener("click", getAdvice);
    byId("advice-apply").addEventListener("click", applyAdvice);

    ui.keysForm.addEventListener("submit", continueWithKeys);
    ui.skip.addEventListener("click", skipKeys);
    byId("keys-close").addEventListener("click", closeDialog);
    ui.dialog.addEventListener("close", function () {
      clearKeys();
      state.pending = null;
    });
    [ui.hf, ui.groq, ui.repo].forEach(function (input) {
      input.addEventListener("input", function () {
        input.removeAttribute("aria-invalid");
        M.showError(ui.keysError, "");
      });
    });

    updateTask();
    loadDatasets();
    loadJobs();
    app.dataset.ready = "true"; /* every handler is attached */
  });
})();
