// guitarlab review: the page. Plain JavaScript, no library, nothing from the network but
// this app's own JSON API (the token travels in the cookie the first request set; edits
// also send it in the X-Guitarlab-Token header, read from the page's own <meta>, because
// the server refuses a write that only has the cookie).
"use strict";

const COLUMNS = ["id", "guitar", "pickup", "phrase", "tone", "take", "player", "checks_summary", "status", "excluded"];
const HEADINGS = { checks_summary: "checks" };
const state = { version: null, sort: "id", order: "asc", rows: [], row: null, wave: null, selection: null, prediction: null };
const $ = (id) => document.getElementById(id);
const TOKEN = (document.querySelector('meta[name="guitarlab-token"]') || {}).content || "";

function say(text, error = false) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.method && options.method !== "GET" && state.version) headers["If-Match"] = `"${state.version}"`;
  if (options.method && options.method !== "GET" && TOKEN) headers["X-Guitarlab-Token"] = TOKEN;
  const response = await fetch(path, {
    ...options,
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  if (body && body.version) state.version = body.version;
  return body;
}

// ------------------------------------------------------------------ the table

function filterParams() {
  const params = new URLSearchParams();
  for (const select of document.querySelectorAll("#facets select")) {
    if (select.value) params.set(select.name, select.value);
  }
  const q = $("search").value.trim();
  if (q) params.set("q", q);
  params.set("sort", state.sort);
  params.set("order", state.order);
  return params;
}

function buildFacets(facets) {
  const holder = $("facets");
  if (holder.childElementCount) return;
  for (const [name, values] of Object.entries(facets)) {
    const select = document.createElement("select");
    select.name = name;
    select.id = `filter-${name}`;
    select.setAttribute("aria-label", `filter by ${name}`);
    select.append(new Option(`${name}: all`, ""));
    for (const value of values) select.append(new Option(value, value));
    select.addEventListener("change", loadRows);
    holder.append(select);
  }
}

function refreshFacetOptions(facets) {
  for (const [name, values] of Object.entries(facets)) {
    const select = $(`filter-${name}`);
    if (!select) continue;
    const have = new Set([...select.options].map((o) => o.value));
    for (const value of values) if (!have.has(value)) select.append(new Option(value, value));
  }
}

async function loadRows() {
  try {
    const body = await api(`/api/rows?${filterParams()}`);
    buildFacets(body.facets);
    refreshFacetOptions(body.facets);
    state.rows = body.rows;
    $("summary").textContent = `${body.total} files`;
    $("queue-button").hidden = !body.run;
    const counts = Object.entries(body.counts)
      .map(([column, values]) => `${column}: ` + Object.entries(values).map(([v, n]) => `${v} ${n}`).join(", "))
      .join(" | ");
    $("counts").textContent = `${body.shown} of ${body.total} shown. ${counts}`;
    drawTable();
  } catch (error) {
    say(error.message, true);
  }
}

function drawTable() {
  const head = document.querySelector("#rows thead tr");
  head.replaceChildren(...COLUMNS.map((column) => {
    const th = document.createElement("th");
    const arrow = state.sort === column ? (state.order === "asc" ? " ▲" : " ▼") : "";
    th.textContent = (HEADINGS[column] || column) + arrow;
    th.dataset.column = column;
    th.addEventListener("click", () => {
      const sortable = column === "checks_summary" ? "checks" : column;
      state.order = state.sort === sortable && state.order === "asc" ? "desc" : "asc";
      state.sort = sortable;
      loadRows();
    });
    return th;
  }));
  const body = document.querySelector("#rows tbody");
  body.replaceChildren(...state.rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.id = row.id;
    if (row.excluded) tr.classList.add("excluded");
    if (state.row && state.row.row.id === row.id) tr.classList.add("selected");
    for (const column of COLUMNS) {
      const td = document.createElement("td");
      td.textContent = row[column] === null || row[column] === undefined ? "" : row[column];
      if (column === "checks_summary" && row[column] !== "ok") td.classList.add("bad");
      tr.append(td);
    }
    tr.addEventListener("click", () => openRow(row.id));
    return tr;
  }));
}

// ------------------------------------------------------------------ one row

async function openRow(id) {
  try {
    const body = await api(`/api/rows/${encodeURIComponent(id)}`);
    const changed = !state.row || state.row.row.id !== id;
    state.row = body;
    if (changed) {
      state.selection = null;
      state.wave = null;
      state.prediction = null;
      history.replaceState(null, "", `#row=${encodeURIComponent(id)}`);
      const player = $("player");
      player.src = `/api/audio/${encodeURIComponent(id)}`;
      $("spectrogram").src = `/api/rows/${encodeURIComponent(id)}/spectrogram.png`;
      loadWave(id);
      if (body.run) loadPrediction(id);
    }
    $("row").hidden = false;
    drawRow();
    drawTable();
  } catch (error) {
    say(error.message, true);
  }
}

function drawRow() {
  const { row, take, checks, spans, editable, choices } = state.row;
  $("row-title").textContent = row.id;
  $("row-labels").textContent = `${row.guitar} / ${row.pickup || "-"} / ${row.phrase} / ${row.tone} / take ${row.take}, ${row.duration_s} s`;
  const none = row.checks ? "all passed" : "none recorded for this file";
  $("checks").replaceChildren(...(checks.length
    ? checks.map((f) => item(`${f.check} (${f.severity}): ${f.message}` + (f.at_s && f.at_s.length ? ` at ${f.at_s.join(", ")} s` : "")))
    : [item(none)]));
  $("spans").replaceChildren(...(spans.length ? spans.map((span) => {
    const li = item(`${span[0].toFixed(3)}-${span[1].toFixed(3)} s `);
    const remove = document.createElement("button");
    remove.textContent = "remove";
    remove.addEventListener("click", () => change("exclude", { remove_span: span }, "span taken back"));
    li.append(remove);
    return li;
  }) : [item("none")]));
  const fields = $("fields");
  fields.replaceChildren(...editable.map((column) => {
    const label = document.createElement("label");
    const name = document.createElement("span");
    name.textContent = column;
    const input = document.createElement("input");
    input.name = column;
    input.id = `field-${column}`;
    input.value = row[column] === null || row[column] === undefined ? "" : row[column];
    input.setAttribute("list", `choices-${column}`);
    const list = document.createElement("datalist");
    list.id = `choices-${column}`;
    for (const value of choices[column] || []) list.append(new Option(value));
    label.append(name, input, list);
    return label;
  }));
  $("excluded-now").textContent = row.excluded ? `excluded: ${row.excluded}` : "included in dataset builds";
  $("include-button").disabled = !row.excluded;
  $("renders").replaceChildren(...take.map((other) => {
    const box = document.createElement("div");
    box.className = "render" + (other.id === row.id ? " current" : "");
    const title = document.createElement("a");
    title.href = `#row=${encodeURIComponent(other.id)}`;
    title.textContent = other.tone + (other.excluded ? " (excluded)" : "");
    title.addEventListener("click", (event) => { event.preventDefault(); openRow(other.id); });
    const image = document.createElement("img");
    image.alt = `spectrogram of ${other.tone}`;
    image.src = `/api/rows/${encodeURIComponent(other.id)}/spectrogram.png`;
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "none";
    audio.src = `/api/audio/${encodeURIComponent(other.id)}`;
    box.append(title, image, audio);
    return box;
  }));
  drawWave();
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

// Fetch something for row ``id`` and apply it, unless another row was opened meanwhile.
async function loadFor(id, path, apply) {
  try {
    const body = await api(path);
    if (state.row && state.row.row.id === id) apply(body);
  } catch (error) {
    say(error.message, true);
  }
}

function loadWave(id) {
  const points = Math.max(200, Math.min(4000, $("waveform").clientWidth || 800));
  return loadFor(id, `/api/rows/${encodeURIComponent(id)}/waveform?points=${points}`, (wave) => {
    state.wave = wave;
    drawWave();
  });
}

function duration() {
  return (state.wave && state.wave.duration_s) || (state.row && state.row.duration_s) || 1;
}

function drawWave() {
  const canvas = $("waveform");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(120 * ratio);
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const x = (seconds) => (seconds / duration()) * w;
  g.fillStyle = "rgba(229, 57, 53, 0.25)";
  for (const [a, b] of (state.row ? state.row.spans : [])) g.fillRect(x(a), 0, x(b) - x(a), h);
  if (state.selection) {
    g.fillStyle = "rgba(30, 136, 229, 0.3)";
    const [a, b] = state.selection;
    g.fillRect(x(a), 0, x(b) - x(a), h);
  }
  if (state.wave) {
    g.strokeStyle = "#37474f";
    g.beginPath();
    const n = state.wave.min.length;
    for (let i = 0; i < n; i++) {
      const px = (i / n) * w;
      g.moveTo(px, h / 2 - state.wave.max[i] * (h / 2));
      g.lineTo(px, h / 2 - state.wave.min[i] * (h / 2) + 1);
    }
    g.stroke();
  }
  canvas.dataset.drawn = state.wave ? "1" : "";
  const t = $("player").currentTime || 0;
  g.fillStyle = "#00bcd4";
  g.fillRect(x(t) - ratio, 0, 2 * ratio, h);
  $("spec-cursor").style.left = `${(100 * t) / duration()}%`;
  drawPrediction(t);
}

function secondsAt(event) {
  const box = $("waveform").getBoundingClientRect();
  const frac = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  return Math.round(frac * duration() * 1000) / 1000;
}

function setupWaveform() {
  const canvas = $("waveform");
  let start = null;
  canvas.addEventListener("mousedown", (event) => { start = secondsAt(event); });
  window.addEventListener("mousemove", (event) => {
    if (start === null) return;
    const now = secondsAt(event);
    state.selection = [Math.min(start, now), Math.max(start, now)];
    drawWave();
  });
  window.addEventListener("mouseup", (event) => {
    if (start === null) return;
    const end = secondsAt(event);
    if (Math.abs(end - start) < duration() / 200) {
      $("player").currentTime = end;
      state.selection = null;
    } else {
      state.selection = [Math.min(start, end), Math.max(start, end)];
    }
    start = null;
    $("span-button").disabled = !state.selection;
    $("selection").textContent = state.selection ? `${state.selection[0].toFixed(3)}-${state.selection[1].toFixed(3)} s selected` : "";
    drawWave();
  });
  const player = $("player");
  const tick = () => { drawWave(); if (!player.paused) requestAnimationFrame(tick); };
  player.addEventListener("play", () => requestAnimationFrame(tick));
  player.addEventListener("timeupdate", drawWave);
  player.addEventListener("seeked", drawWave);
  window.addEventListener("resize", drawWave);
}

// ------------------------------------------------------------------ the model (--run)

function loadPrediction(id) {
  return loadFor(id, `/api/rows/${encodeURIComponent(id)}/predictions`, (prediction) => {
    state.prediction = prediction;
    $("model").hidden = false;
    $("model-label").textContent = prediction.error
      ? prediction.error
      : `${prediction.label} (confidence ${Number(prediction.confidence).toFixed(2)}; labelled ${state.row.row[state.row.label_column]})`;
    drawWave();
  });
}

function drawPrediction(t) {
  const p = state.prediction;
  if (!p || !p.times_s) return;
  const canvas = $("model-canvas");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(60 * ratio);
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const names = [...new Set(p.labels_over_time)].sort();
  const colours = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#546e7a"];
  g.clearRect(0, 0, w, h);
  p.times_s.forEach((second, i) => {
    g.fillStyle = colours[names.indexOf(p.labels_over_time[i]) % colours.length];
    const conf = p.confidence_over_time[i];
    g.fillRect((second / duration()) * w, h * (1 - conf), (w / duration()) * 0.95, h * conf);
  });
  g.fillStyle = "#00bcd4";
  g.fillRect((t / duration()) * w - ratio, 0, 2 * ratio, h);
  $("model-legend").textContent = "label per second, bar height = confidence: " +
    names.map((n, i) => `${n} (${["blue", "red", "green", "orange", "purple", "teal", "brown", "grey"][i % 8]})`).join(", ");
}

// ------------------------------------------------------------------ changes

async function change(kind, body, done) {
  const id = state.row.row.id;
  const path = kind === "patch" ? `/api/rows/${encodeURIComponent(id)}` : `/api/rows/${encodeURIComponent(id)}/exclude`;
  try {
    const result = await api(path, { method: kind === "patch" ? "PATCH" : "POST", body });
    say(result.change ? `${done} (change ${result.change.n}, by ${result.change.who})` : "nothing changed");
    await openRow(id);
    await loadRows();
  } catch (error) {
    say(error.status === 409 ? `${error.message} (reloaded: check and save again)` : error.message, true);
    if (error.status === 409) { await openRow(id); await loadRows(); }
  }
}

function setupForms() {
  $("labels-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const { row, editable, per_file } = state.row;
    const edits = {};
    for (const column of editable) {
      const value = $(`field-${column}`).value.trim();
      if (value !== String(row[column] === null ? "" : row[column])) edits[column] = value;
    }
    if (!Object.keys(edits).length) return say("no label changed");
    const names = Object.keys(edits);
    const mine = names.filter((c) => (per_file || []).includes(c));
    const shared = names.filter((c) => !mine.includes(c));
    const said = [shared.length ? `${shared.join(", ")} for every tone of ${row.take}` : "", mine.length ? `${mine.join(", ")} for this file` : ""];
    change("patch", edits, `saved ${said.filter(Boolean).join("; ")}`);
  });
  $("exclude-form").addEventListener("submit", (event) => {
    event.preventDefault();
    change("exclude", { reason: $("reason").value }, "excluded");
  });
  $("include-button").addEventListener("click", () => change("exclude", { include: true }, "included again"));
  $("span-button").addEventListener("click", () => {
    if (!state.selection) return;
    const span = state.selection;
    state.selection = null;
    $("span-button").disabled = true;
    $("selection").textContent = "";
    change("exclude", { span }, `span ${span[0]}-${span[1]} s excluded in every tone`);
  });
  $("undo-button").addEventListener("click", async () => {
    try {
      const result = await api("/api/undo", { method: "POST" });
      say(`undid change ${result.change.undoes}`);
      if (state.row) await openRow(state.row.row.id);
      await loadRows();
    } catch (error) {
      say(error.message, true);
    }
  });
  $("history-button").addEventListener("click", showHistory);
  $("queue-button").addEventListener("click", showQueue);
  $("search").addEventListener("input", loadRows);
  $("filters").addEventListener("submit", (event) => event.preventDefault());
}

async function showHistory() {
  try {
    const { entries, skipped_lines } = await api("/api/history");
    if (skipped_lines && skipped_lines.length) say(`history.jsonl: skipped unreadable line(s) ${skipped_lines.join(", ")}`, true);
    $("side").hidden = false;
    $("side-title").textContent = "History (newest first)";
    $("side-list").replaceChildren(...entries.map((e) => {
      const first = e.edits[0];
      const li = item(`#${e.n} ${e.when} ${e.who}: ${e.action} ${e.take} ${first.column} ${JSON.stringify(first.old)} -> ${JSON.stringify(first.new)}` +
        (e.edits.length > 1 ? ` (${e.edits.length} cells)` : ""));
      li.addEventListener("click", () => openRow(e.row));
      return li;
    }));
  } catch (error) {
    say(error.message, true);
  }
}

async function showQueue() {
  say("labelling every file with the run's model (once per file)...");
  try {
    const { rows, label_column } = await api("/api/queue");
    say(`${rows.filter((r) => r.disagrees).length} file(s) where the model disagrees with ${label_column}`);
    $("side").hidden = false;
    $("side-title").textContent = `Review queue (${label_column})`;
    $("side-list").replaceChildren(...rows.map((r) => {
      const li = item(`${r.disagrees ? "!" : ""} ${r.id}: ${r.label} -> model ${r.predicted} (${Number(r.confidence).toFixed(2)})`);
      if (r.disagrees) li.classList.add("bad");
      li.addEventListener("click", () => openRow(r.id));
      return li;
    }));
  } catch (error) {
    say(error.message, true);
  }
}

async function start() {
  if (location.search.includes("token=")) history.replaceState(null, "", "/" + location.hash);
  setupWaveform();
  setupForms();
  await loadRows();
  const match = location.hash.match(/row=([^&]+)/);
  if (match) await openRow(decodeURIComponent(match[1]));
}

start();
