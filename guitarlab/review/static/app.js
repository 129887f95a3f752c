// guitarlab review: the page. Plain JavaScript, no library, nothing from the network but
// this app's own JSON API (the token travels in the cookie the first request set; edits
// also send it in the X-Guitarlab-Token header, read from the page's own <meta>, because
// the server refuses a write that only has the cookie).
"use strict";

const COLUMNS = ["id", "guitar", "pickup", "phrase", "tone", "take", "player", "checks_summary", "status", "excluded"];
const HEADINGS = { checks_summary: "checks" };
const state = {
  version: null, sort: "id", order: "asc", rows: [], row: null, wave: null, selection: null, prediction: null,
  // segments (labels in time): the take's as /api/segments sends them, the column shown,
  // the selected segment's id, an edge being dragged, and columns typed in but not stored yet
  segs: null, segVersion: null, column: null, picked: null, dragEdge: null, extraColumns: [],
  // edits answered so far: a read sent before the last one answered must not bring back
  // the older version it carries (the next edit would be refused as stale)
  writes: 0, more: false,
};
const PAGE = 200;  // rows per request: /api/rows pages, "Load more" asks for the next
const $ = (id) => document.getElementById(id);
const TOKEN = (document.querySelector('meta[name="guitarlab-token"]') || {}).content || "";

function say(text, error = false) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

// An edit sends the version it read in If-Match: the manifest's, or ``version`` (segment
// edits send the segments' own version, which /api/segments answers as segments_version).
async function api(path, { version, ...options } = {}) {
  const headers = { ...(options.headers || {}) };
  const writing = Boolean(options.method && options.method !== "GET");
  const writesBefore = state.writes;
  const read = version === undefined ? state.version : version;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.method && options.method !== "GET" && read) headers["If-Match"] = `"${read}"`;
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
  if (writing) state.writes += 1;
  if (writing || writesBefore === state.writes) {
    if (body && body.version) state.version = body.version;
    if (body && body.segments_version) state.segVersion = body.segments_version;
  }
  return body;
}

// The page's edits go out one at a time, in the order they were made: each is sent when
// the one before has been answered, with the version that answer returned, so quick edits
// in a row (save labels, exclude a span, exclude the file) all land instead of the later
// ones being refused as stale (409) by the earlier ones.
let editChain = Promise.resolve();
function queueEdit(task) {
  const run = editChain.then(task, task);
  editChain = run.catch(() => {});
  return run;
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
    for (const value of values) select.append(new Option(`${name}: ${value}`, value));
    select.addEventListener("change", () => loadRows());
    holder.append(select);
  }
}

function refreshFacetOptions(facets) {
  for (const [name, values] of Object.entries(facets)) {
    const select = $(`filter-${name}`);
    if (!select) continue;
    const have = new Set([...select.options].map((o) => o.value));
    for (const value of values) if (!have.has(value)) select.append(new Option(`${name}: ${value}`, value));
  }
}

// The first page of rows that match the filters; ``mode`` "more" adds the next page below,
// "keep" reloads as many rows as are listed (after an edit). Anything else: a new first page.
async function loadRows(mode) {
  try {
    const params = filterParams();
    const offset = mode === "more" ? state.rows.length : 0;
    params.set("offset", String(offset));
    params.set("limit", String(mode === "keep" ? Math.max(PAGE, state.rows.length) : PAGE));
    const body = await api(`/api/rows?${params}`);
    buildFacets(body.facets);
    refreshFacetOptions(body.facets);
    state.rows = offset ? state.rows.concat(body.rows) : body.rows;
    state.more = state.rows.length < body.shown;
    $("summary").textContent = `${body.total} files`;
    $("queue-button").hidden = !body.run;
    const counts = Object.entries(body.counts)
      .map(([column, values]) => `${column}: ` + Object.entries(values).map(([v, n]) => `${v} ${n}`).join(", "))
      .join(" | ");
    const cut = Object.entries(body.facets_cut || {}).map(([c, n]) => `${c} lists the first ${body.facets[c].length} of ${n}: search by id`);
    $("counts").textContent = `${body.shown} of ${body.total} match, ${state.rows.length} listed. ${counts}` + (cut.length ? ` (${cut.join("; ")})` : "");
    $("more-button").hidden = !state.more;
    $("more-button").textContent = `Load ${Math.min(PAGE, body.shown - state.rows.length)} more`;
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
      state.picked = null;
      showSelection();
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
    await loadSegments(id, body.row.take);
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
  drawSegments(g, w, h, x, ratio);
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

function showSelection() {
  $("span-button").disabled = !state.selection;
  $("selection").textContent = state.selection ? `${state.selection[0].toFixed(3)}-${state.selection[1].toFixed(3)} s selected` : "";
}

function setupWaveform() {
  const canvas = $("waveform");
  let start = null;
  canvas.addEventListener("mousedown", (event) => {
    const focused = document.activeElement;
    if (focused && focused.closest && focused.closest("input, select, textarea")) focused.blur();  // keys label again
    const edge = edgeAt(event);
    if (edge) {
      const seg = pickedSegment();
      state.dragEdge = { id: seg.id, edge, span: [seg.start_s, seg.end_s] };
      event.preventDefault();
      return;
    }
    start = secondsAt(event);
  });
  window.addEventListener("mousemove", (event) => {
    const drag = state.dragEdge;
    if (drag) {
      const t = secondsAt(event), least = Math.max(0.01, duration() / 1000);
      if (drag.edge === "start_s") drag.span[0] = Math.min(t, drag.span[1] - least);
      else drag.span[1] = Math.max(t, drag.span[0] + least);
      drawWave();
      return;
    }
    if (start === null) {
      if (event.target === canvas) canvas.style.cursor = edgeAt(event) ? "ew-resize" : "";
      return;
    }
    const now = secondsAt(event);
    state.selection = [Math.min(start, now), Math.max(start, now)];
    drawWave();
  });
  window.addEventListener("mouseup", (event) => {
    const drag = state.dragEdge;
    if (drag) {
      state.dragEdge = null;
      const seg = pickedSegment();
      const value = Math.round(drag.span[drag.edge === "start_s" ? 0 : 1] * 1000) / 1000;
      if (seg && value !== seg[drag.edge]) {
        segmentEdit("PATCH", `/api/segments/${encodeURIComponent(seg.id)}`, { [drag.edge]: value },
          `segment ${seg.id}: ${drag.edge === "start_s" ? "start" : "end"} moved to ${value} s`);
      }
      drawWave();
      return;
    }
    if (start === null) return;
    const end = secondsAt(event);
    if (Math.abs(end - start) < duration() / 200) {
      $("player").currentTime = end;
      state.selection = null;
      const hit = segmentAt(end);
      state.picked = hit ? hit.id : null;
    } else {
      state.selection = [Math.min(start, end), Math.max(start, end)];
      state.picked = null;
    }
    start = null;
    showSelection();
    drawSegmentPanel();
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
    $("model-strip-wrap").hidden = !prediction.times_s;
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
  const column = state.row.label_column;
  g.clearRect(0, 0, w, h);
  p.times_s.forEach((second, i) => {
    g.fillStyle = colourOf(column, p.labels_over_time[i]);
    const conf = p.confidence_over_time[i];
    g.fillRect((second / duration()) * w, h * (1 - conf), (w / duration()) * 0.95, h * conf);
  });
  g.fillStyle = "#00bcd4";
  g.fillRect((t / duration()) * w - ratio, 0, 2 * ratio, h);
  $("model-legend").replaceChildren(`${column} per second, bar height = confidence: `,
    ...names.map((n) => swatch(colourOf(column, n), n)));
  drawModelStrip(t);
}

// The model's label per second as one strip right under the waveform, in the colours the
// segments of the same column have, so where the model and the segments disagree shows.
function drawModelStrip(t) {
  const p = state.prediction;
  const canvas = $("model-strip");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(16 * ratio);
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const column = state.row.label_column;
  g.clearRect(0, 0, w, h);
  p.times_s.forEach((second, i) => {
    g.globalAlpha = 0.35 + 0.65 * Number(p.confidence_over_time[i] || 0);
    g.fillStyle = colourOf(column, p.labels_over_time[i]);
    g.fillRect((second / duration()) * w, 0, Math.ceil(w / duration()), h);
  });
  g.globalAlpha = 1;
  g.fillStyle = "#00bcd4";
  g.fillRect((t / duration()) * w - ratio, 0, 2 * ratio, h);
  canvas.title = `the model's ${column} per second (fainter = less sure)`;
  canvas.dataset.drawn = String(p.times_s.length);
}

// ------------------------------------------------------------------ segments (labels in time)

const PALETTE = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#d81b60", "#546e7a", "#c0ca33"];
const DEFAULT_COLUMNS = ["phrase", "position", "technique"];
const EDGE_PX = 6;

function segmentColumns() {
  const names = new Set([...(state.segs ? state.segs.columns : []), ...state.extraColumns]);
  if (state.row && state.row.run && state.row.label_column) names.add(state.row.label_column);
  if (!names.size) DEFAULT_COLUMNS.forEach((c) => names.add(c));
  return [...names].sort();
}

// The chosen column's values, corpus-wide: keys 1-9 pick the first nine.
function keyValues(column = state.column) {
  const values = [...((state.segs && state.segs.choices[column]) || [])];
  for (const seg of (state.segs ? state.segs.segments : [])) {
    const v = seg.labels[column];
    if (v !== undefined && !values.includes(v)) values.push(v);
  }
  return values;
}

// One colour per value of a column, the same on the waveform, the legend and the model strip.
function colourOf(column, value) {
  const values = keyValues(column);
  if (state.prediction && state.row && column === state.row.label_column) {
    for (const v of [...new Set(state.prediction.labels_over_time || [])].sort()) if (!values.includes(v)) values.push(v);
  }
  const i = values.indexOf(String(value));
  return PALETTE[(i < 0 ? values.length : i) % PALETTE.length];
}

function swatch(colour, text) {
  const span = document.createElement("span");
  span.className = "swatch";
  const box = document.createElement("i");
  box.style.background = colour;
  span.append(box, text);
  return span;
}

function shownSegments() {
  return state.segs ? state.segs.segments.filter((s) => s.labels[state.column] !== undefined) : [];
}

function pickedSegment() {
  return state.segs && state.picked ? state.segs.segments.find((s) => s.id === state.picked) || null : null;
}

function segmentAt(seconds) {
  const hits = shownSegments().filter((s) => s.start_s <= seconds && seconds <= s.end_s);
  return hits.sort((a, b) => (a.end_s - a.start_s) - (b.end_s - b.start_s))[0] || null;  // the shortest on top
}

// Which edge of the selected segment the pointer is on (within EDGE_PX), if any.
function edgeAt(event) {
  const seg = pickedSegment();
  if (!seg) return null;
  const box = $("waveform").getBoundingClientRect();
  const px = event.clientX - box.left;
  const at = (seconds) => (seconds / duration()) * box.width;
  if (Math.abs(px - at(seg.start_s)) <= EDGE_PX) return "start_s";
  if (Math.abs(px - at(seg.end_s)) <= EDGE_PX) return "end_s";
  return null;
}

function drawSegments(g, w, h, x, ratio) {
  const canvas = $("waveform");
  canvas.dataset.segments = String(shownSegments().length);
  if (!state.segs) return;
  g.font = `${11 * ratio}px system-ui, sans-serif`;
  g.textBaseline = "top";
  for (const seg of state.segs.segments) {
    const drag = state.dragEdge && state.dragEdge.id === seg.id ? state.dragEdge.span : null;
    const [a, b] = drag || [seg.start_s, seg.end_s];
    const value = seg.labels[state.column];
    if (value === undefined) {  // another column's segment: a faint mark at the bottom
      g.fillStyle = "rgba(96, 125, 139, 0.35)";
      g.fillRect(x(a), h - 4 * ratio, x(b) - x(a), 4 * ratio);
      continue;
    }
    const colour = colourOf(state.column, value);
    g.fillStyle = colour;
    g.globalAlpha = 0.25;
    g.fillRect(x(a), 0, x(b) - x(a), h);
    g.globalAlpha = 1;
    g.fillRect(x(a), 0, x(b) - x(a), 4 * ratio);
    g.fillText(value, x(a) + 3 * ratio, 6 * ratio, Math.max(0, x(b) - x(a) - 6 * ratio));
    if (seg.id === state.picked) {
      g.strokeStyle = colour;
      g.lineWidth = 2 * ratio;
      g.strokeRect(x(a) + ratio, ratio, x(b) - x(a) - 2 * ratio, h - 2 * ratio);
      g.fillRect(x(a) - 2 * ratio, h / 2 - 10 * ratio, 4 * ratio, 20 * ratio);  // edge handles
      g.fillRect(x(b) - 2 * ratio, h / 2 - 10 * ratio, 4 * ratio, 20 * ratio);
    }
  }
}

async function loadSegments(id, take) {
  return loadFor(id, `/api/segments?take=${encodeURIComponent(take)}`, applySegments);
}

function applySegments(body) {
  state.segs = body;
  if (state.picked && !pickedSegment()) state.picked = null;
  const columns = segmentColumns();
  if (!columns.includes(state.column)) {
    const run = state.row && state.row.run ? state.row.label_column : null;
    state.column = body.columns.includes(run) ? run : (body.columns[0] || columns[0]);
  }
  drawSegmentPanel();
  drawWave();
}

function drawSegmentPanel() {
  const select = $("segment-column");
  const columns = segmentColumns();
  if (state.column && !columns.includes(state.column)) columns.push(state.column);
  select.replaceChildren(...columns.map((c) => new Option(c, c, false, c === state.column)));
  const values = keyValues();
  $("segment-keys").replaceChildren(...(values.length
    ? values.map((v, i) => {
      const key = swatch(colourOf(state.column, v), i < 9 ? ` ${i + 1} ${v}` : ` ${v}`);
      key.dataset.key = i < 9 ? String(i + 1) : "";
      key.title = i < 9 ? `press ${i + 1} to label the selected span ${state.column}=${v}` : "type it in the label box";
      return key;
    })
    : [`no ${state.column} labels yet: type one`]));
  const picked = pickedSegment();
  $("segment-delete").disabled = !picked;
  const shown = shownSegments();
  const others = state.segs ? state.segs.segments.length - shown.length : 0;
  const lines = shown.map((seg) => {
    const li = item(`${seg.start_s.toFixed(3)}-${seg.end_s.toFixed(3)} s ${state.column}=${seg.labels[state.column]}` +
      (seg.origin ? ` (${seg.origin})` : ""));
    li.dataset.id = seg.id;
    li.className = "segment" + (seg.id === state.picked ? " picked" : "");
    li.prepend(swatch(colourOf(state.column, seg.labels[state.column]), ""));
    li.addEventListener("click", () => { state.picked = seg.id; state.selection = null; showSelection(); drawSegmentPanel(); drawWave(); });
    return li;
  });
  if (others) lines.push(item(`${others} more in other columns`));
  $("segment-list").replaceChildren(...(lines.length ? lines : [item("none")]));
}

// Send one segment edit; the answer is the take's segments as they are now.
function segmentEdit(method, path, body, done) {
  return queueEdit(() => sendSegmentEdit(method, path, body, done));
}

async function sendSegmentEdit(method, path, body, done) {
  try {
    const result = await api(path, { method, body, version: state.segVersion });
    if (result.ids && result.ids.length) state.picked = result.ids[0];
    applySegments(result);
    say(done);
  } catch (error) {
    say(error.status === 409 ? `${error.message} (reloaded: make the change again)` : error.message, true);
    if (error.status === 409 && state.row) await openRow(state.row.row.id);
  }
}

// Label the selected span (a new segment) or relabel the selected segment with ``value``.
function labelWith(value) {
  const column = state.column;
  if (!column) return say("choose or type a segment column first", true);
  if (!value) return say(`give a ${column} label`, true);
  if (state.selection) {
    const [a, b] = state.selection;
    state.selection = null;
    showSelection();
    return segmentEdit("POST", "/api/segments", { take: state.row.row.take, start_s: a, end_s: b, [column]: value },
      `segment ${a}-${b} s labelled ${column}=${value} (every tone of ${state.row.row.take})`);
  }
  const seg = pickedSegment();
  if (seg) return segmentEdit("PATCH", `/api/segments/${encodeURIComponent(seg.id)}`, { [column]: value }, `segment ${seg.id} relabelled ${column}=${value}`);
  say("drag on the waveform to select a span first, or click a segment", true);
}

function deleteSegment() {
  const seg = pickedSegment();
  if (!seg) return;
  state.picked = null;
  segmentEdit("DELETE", `/api/segments/${encodeURIComponent(seg.id)}`, undefined, `segment ${seg.id} deleted`);
}

function setupSegments() {
  $("segment-column").addEventListener("change", (event) => {
    state.column = event.target.value;
    state.picked = null;
    drawSegmentPanel();
    drawWave();
  });
  $("segment-new-column").addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const name = event.target.value.trim();
    if (!/^[a-z0-9][a-z0-9_]*$/.test(name)) return say(`column ${JSON.stringify(name)}: use lower-case letters, digits and '_' such as 'technique'`, true);
    if (!state.extraColumns.includes(name)) state.extraColumns.push(name);
    state.column = name;
    state.picked = null;
    event.target.value = "";
    drawSegmentPanel();
    drawWave();
  });
  $("segment-value").addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const value = event.target.value.trim();
    event.target.value = "";
    event.target.blur();  // back to the keys
    labelWith(value);
  });
  $("segment-delete").addEventListener("click", deleteSegment);
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!state.row || $("row").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && target.closest && target.closest("input, select, textarea")) return;
    if (/^[1-9]$/.test(event.key)) {
      if (!state.selection && !pickedSegment()) return;
      event.preventDefault();
      const value = keyValues()[Number(event.key) - 1];
      if (value === undefined) return say(`no ${state.column} label on key ${event.key} yet: type it in the label box`, true);
      labelWith(value);
    } else if ((event.key === "Delete" || event.key === "Backspace") && pickedSegment()) {
      event.preventDefault();
      deleteSegment();
    } else if (event.key === "Escape") {
      state.selection = null;
      state.picked = null;
      showSelection();
      drawSegmentPanel();
      drawWave();
    }
  });
}

// A history entry that is not a manifest cell change: a segment edit says which segment,
// its span and labels (``old -> new``); anything else its own fields, short.
function describeEntry(e) {
  if (Array.isArray(e.segments)) {
    const one = (s) => s ? `${Number(s.start_s).toFixed(3)}-${Number(s.end_s).toFixed(3)} s ` +
      Object.entries(s).filter(([k]) => !["id", "take", "start_s", "end_s", "origin"].includes(k)).map(([k, v]) => `${k}=${v}`).join(" ") : "none";
    const first = e.segments[0] || {};
    return `${first.id || ""} ${one(first.old)} -> ${one(first.new)}` + (e.segments.length > 1 ? ` (${e.segments.length} segments)` : "");
  }
  const skip = new Set(["n", "when", "who", "action", "take", "row", "version", "edits"]);
  const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !skip.has(k)));
  const text = JSON.stringify(Object.keys(rest).length ? rest : (e.edits || ""));
  return text.length > 120 ? text.slice(0, 117) + "..." : text;
}

function rowOfTake(e) {
  if (state.rows.some((r) => r.id === e.row)) return e.row;
  const same = state.rows.find((r) => r.take === e.take && r.tone === "raw") || state.rows.find((r) => r.take === e.take);
  return same ? same.id : e.row;
}

// ------------------------------------------------------------------ changes

// One edit of the open row, queued behind the page's other edits (see queueEdit).
function change(kind, body, done) {
  const id = state.row.row.id;
  return queueEdit(() => sendChange(id, kind, body, done));
}

async function sendChange(id, kind, body, done) {
  const path = kind === "patch" ? `/api/rows/${encodeURIComponent(id)}` : `/api/rows/${encodeURIComponent(id)}/exclude`;
  try {
    const result = await api(path, { method: kind === "patch" ? "PATCH" : "POST", body });
    say(result.change ? `${done} (change ${result.change.n}, by ${result.change.who})` : "nothing changed");
    await openRow(id);
    await loadRows("keep");
  } catch (error) {
    say(error.status === 409 ? `${error.message} (reloaded: check and save again)` : error.message, true);
    if (error.status === 409) { await openRow(id); await loadRows("keep"); }
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
  $("undo-button").addEventListener("click", () => queueEdit(async () => {
    try {
      const headers = state.segVersion ? { "X-Guitarlab-Segments-Version": state.segVersion } : {};
      const result = await api("/api/undo", { method: "POST", headers });
      say(`undid change ${result.change.undoes}`);
      if (state.row) await openRow(state.row.row.id);
      await loadRows("keep");
    } catch (error) {
      say(error.message, true);
    }
  }));
  $("history-button").addEventListener("click", showHistory);
  $("queue-button").addEventListener("click", showQueue);
  $("search").addEventListener("input", () => loadRows());
  $("more-button").addEventListener("click", () => loadRows("more"));
  $("filters").addEventListener("submit", (event) => event.preventDefault());
}

async function showHistory() {
  try {
    const { entries, skipped_lines } = await api("/api/history");
    if (skipped_lines && skipped_lines.length) say(`history.jsonl: skipped unreadable line(s) ${skipped_lines.join(", ")}`, true);
    $("side").hidden = false;
    $("side-title").textContent = "History (newest first)";
    $("side-list").replaceChildren(...entries.map((e) => {
      const edits = Array.isArray(e.edits) ? e.edits : [];
      const first = edits[0];
      const what = first && first.column !== undefined
        ? `${first.column} ${JSON.stringify(first.old)} -> ${JSON.stringify(first.new)}` + (edits.length > 1 ? ` (${edits.length} cells)` : "")
        : describeEntry(e);
      const li = item(`#${e.n} ${e.when} ${e.who}: ${e.action} ${e.take || ""} ${what}`);
      li.addEventListener("click", () => { const row = rowOfTake(e); if (row) openRow(row); });
      return li;
    }));
  } catch (error) {
    say(error.message, true);
  }
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// The model labels every file in the background (POST /api/queue/start); the page polls
// /api/queue/status for the progress and goes on answering clicks meanwhile.
async function showQueue() {
  const bar = $("queue-progress");
  $("queue-button").disabled = true;
  try {
    let status = await api("/api/queue/start", { method: "POST", body: {} });
    while (status.state === "running") {
      bar.hidden = false;
      bar.max = Math.max(1, status.total);
      bar.value = status.done;
      say(`labelling every file with the run's model: ${status.done} of ${status.total} (once per file; the page answers meanwhile)`);
      await sleep(500);
      status = await api("/api/queue/status");
    }
    if (status.state === "failed") throw new Error(`the review queue failed: ${status.error}`);
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
  } finally {
    bar.hidden = true;
    $("queue-button").disabled = false;
  }
}

async function start() {
  if (location.search.includes("token=")) history.replaceState(null, "", "/" + location.hash);
  setupWaveform();
  setupForms();
  setupSegments();
  await loadRows();
  const match = location.hash.match(/row=([^&]+)/);
  if (match) await openRow(decodeURIComponent(match[1]));
}

start();
