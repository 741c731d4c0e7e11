// Plain JS, no build step. Recording is encoded to 16-bit WAV here, so the server needs no codec.
"use strict";
const $ = (id) => document.getElementById(id);
let recordedBlob = null;

function headers() {
  const key = $("apikey").value.trim();
  return key ? { "X-API-Key": key } : {};
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (response.status === 401 || response.status === 403) $("key-row").hidden = false;
  const body = await response.json().catch(() => ({ error: "bad_response", detail: response.statusText }));
  if (!response.ok) throw new Error(`${response.status} ${body.error}: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`);
  return body;
}

function renderBars(probabilities, best) {
  const bars = $("bars");
  bars.innerHTML = "";
  for (const [label, p] of Object.entries(probabilities).sort((a, b) => b[1] - a[1])) {
    const row = document.createElement("div");
    row.className = "bar" + (label === best ? " best" : "");
    row.innerHTML = `<span>${label}</span><div class="track"><div class="fill" style="width:${(100 * p).toFixed(1)}%"></div></div><span>${(100 * p).toFixed(1)}%</span>`;
    bars.appendChild(row);
  }
}

// --- timeline strip ----------------------------------------------------------------------------
// One colour per emotion, the same as ser-predict --plot (EMOTION_COLOURS in
// service/timeline_plot.py; a test checks they agree). The Okabe-Ito palette: its colours stay
// apart for the common colour-vision deficiencies, and none is grey, which marks silence.
const EMOTION_COLOURS = {
  angry: "#D55E00",
  disgust: "#009E73",
  fear: "#CC79A7",
  happy: "#F0E442",
  neutral: "#56B4E9",
  sad: "#0072B2",
  surprise: "#E69F00",
};
const OTHER_COLOUR = "#555555";
const colourOf = (label) => EMOTION_COLOURS[label] || OTHER_COLOUR;
const seconds = (t) => `${t.toFixed(2)} s`;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function swatch(colour) {
  const node = element("span", "swatch");
  node.style.background = colour;
  return node;
}

// Dark text on the light colours (yellow, sky blue, orange), white on the dark ones.
function textColour(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 ? "#1d2330" : "white";
}

// The stretches of [0, duration] outside the speech segments (service/timeline_plot.silences).
function silences(segments, duration) {
  const gaps = [];
  let cursor = 0;
  for (const s of segments) {
    if (s.start > cursor) gaps.push([cursor, s.start]);
    cursor = Math.max(cursor, s.end);
  }
  if (duration > cursor) gaps.push([cursor, duration]);
  return gaps;
}

// A tick step of 1, 2 or 5 times a power of ten giving at most about eight ticks.
function tickStep(duration) {
  const raw = Math.max(duration, 1e-3) / 8;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw);
}

function placeAt(node, start, end, duration) {
  node.style.left = `${(100 * start) / duration}%`;
  node.style.width = `${(100 * (end - start)) / duration}%`;
}

function showTip(target) {
  const tip = $("strip-tip");
  tip.replaceChildren(...target.tipContent());
  tip.hidden = false;
  // Centred under the element, kept inside the strip.
  const wrap = tip.parentElement.clientWidth;
  const centre = target.offsetLeft + target.offsetWidth / 2;
  tip.style.left = `${Math.max(0, Math.min(wrap - tip.offsetWidth, centre - tip.offsetWidth / 2))}px`;
}

function hideTip() { $("strip-tip").hidden = true; }

function withTip(node, content) {
  node.tipContent = content;
  node.addEventListener("mouseenter", () => showTip(node));
  node.addEventListener("mouseleave", hideTip);
  node.addEventListener("focus", () => showTip(node));
  node.addEventListener("blur", hideTip);
}

function segmentTip(s, labels) {
  const head = element("div", "tip-head");
  head.append(element("b", "", s.label), ` ${seconds(s.start)}–${seconds(s.end)}`);
  const table = element("table", "tip-probs");
  for (const label of [...labels].sort((a, b) => s.probabilities[b] - s.probabilities[a])) {
    const row = element("tr");
    const name = element("td");
    name.append(swatch(colourOf(label)), label);
    row.append(name, element("td", "", `${(100 * s.probabilities[label]).toFixed(1)}%`));
    table.append(row);
  }
  return [head, table];
}

function renderStrip(timeline, labels) {
  const duration = timeline.summary.duration_s || 1e-3;
  const strip = $("strip");
  strip.replaceChildren();
  for (const [start, end] of silences(timeline.segments, duration)) {
    const gap = element("div", "silence");
    gap.setAttribute("aria-hidden", "true");
    placeAt(gap, start, end, duration);
    withTip(gap, () => [element("div", "tip-head", `silence ${seconds(start)}–${seconds(end)}`)]);
    strip.append(gap);
  }
  for (const s of timeline.segments) {
    const seg = element("div", "seg", s.label);
    const colour = colourOf(s.label);
    seg.style.background = colour;
    seg.style.color = textColour(colour);
    seg.dataset.label = s.label;
    seg.tabIndex = 0;  // keyboard users get the tooltip on focus
    seg.setAttribute("role", "listitem");
    seg.setAttribute("aria-label", `${s.label} ${(100 * s.confidence).toFixed(0)}%, ${seconds(s.start)} to ${seconds(s.end)}`);
    seg.setAttribute("aria-describedby", "strip-tip");
    placeAt(seg, s.start, s.end, duration);
    withTip(seg, () => segmentTip(s, labels));
    strip.append(seg);
  }
  fitNames();
  const axis = $("axis");
  axis.replaceChildren();
  const step = tickStep(duration);
  for (let i = 0; i * step <= duration + 1e-9; i++) {
    const tick = element("span", "tick", `${+(i * step).toFixed(3)} s`);
    tick.style.left = `${(100 * i * step) / duration}%`;
    axis.append(tick);
  }
  const legend = $("legend");
  legend.replaceChildren();
  for (const label of labels) {
    const item = element("li");
    item.append(swatch(colourOf(label)), label);
    legend.append(item);
  }
  const quiet = element("li");
  quiet.append(element("span", "swatch silence-swatch"), "silence");
  legend.append(quiet);
}

// A segment shows its emotion's name only when the whole name fits; the tooltip has it anyway.
function fitNames() {
  for (const seg of $("strip").querySelectorAll(".seg")) {
    seg.classList.remove("unnamed");
    seg.classList.toggle("unnamed", seg.scrollWidth > seg.clientWidth);
  }
}
window.addEventListener("resize", fitNames);

function renderTimeline(timeline, labels) {
  $("timeline-view").hidden = !timeline;
  hideTip();
  if (!timeline) return;
  renderStrip(timeline, labels);
  const list = $("segments");
  list.replaceChildren();
  for (const s of timeline.segments) {
    const row = element("div", "segment");
    const name = element("b");
    name.append(swatch(colourOf(s.label)), s.label);
    row.append(element("span", "", `${s.start.toFixed(2)}–${s.end.toFixed(2)} s`), name, element("span", "", `${(100 * s.confidence).toFixed(0)}%`));
    list.append(row);
  }
  const summary = timeline.summary;
  list.append(element("p", "meta", summary.dominant === null
    ? `no speech found in ${summary.duration_s} s`
    : `${summary.segments} segments, ${summary.speech_s} s of speech in ${summary.duration_s} s; dominant: ${summary.dominant}`));
}
document.addEventListener("keydown", (e) => { if (e.key === "Escape") hideTip(); });

async function analyse(blob, name) {
  showError("");
  const form = new FormData();
  form.append("file", blob, name);
  const query = $("timeline").checked ? "?timeline=true" : "";
  try {
    const body = await api("/predict" + query, { method: "POST", body: form });
    $("result").hidden = false;
    $("label").textContent = body.label;
    $("confidence").textContent = `${(100 * body.confidence).toFixed(1)}%`;
    renderBars(body.probabilities, body.label);
    $("meta").textContent = `${body.duration_s} s of audio, model ${body.model}, ${body.timing_ms.total} ms`;
    renderTimeline(body.timeline, Object.keys(body.probabilities));
  } catch (err) {
    $("result").hidden = true;
    showError(err.message);
  }
}

$("file").addEventListener("change", () => { $("send").disabled = !$("file").files.length; });
$("send").addEventListener("click", () => { const f = $("file").files[0]; if (f) analyse(f, f.name); });

// --- microphone -> PCM16 WAV ---------------------------------------------------------------
let recorder = null;
function encodeWav(chunks, rate) {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * length));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * length, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * length, true);
  let offset = 44;
  for (const chunk of chunks) for (const x of chunk) {
    view.setInt16(offset, Math.max(-1, Math.min(1, x)) * 0x7fff, true); offset += 2;
  }
  return new Blob([view], { type: "audio/wav" });
}

$("record").addEventListener("click", async () => {
  if (recorder) {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    const processor = context.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    processor.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(processor); processor.connect(context.destination);
    $("record").classList.add("recording"); $("record").textContent = "■ Stop"; $("rec-status").textContent = "recording…";
    recorder = { stop() {
      processor.disconnect(); source.disconnect(); stream.getTracks().forEach((t) => t.stop());
      recordedBlob = encodeWav(chunks, context.sampleRate); context.close(); recorder = null;
      $("record").classList.remove("recording"); $("record").textContent = "● Record"; $("rec-status").textContent = "";
      analyse(recordedBlob, "recording.wav");
    } };
  } catch (err) { showError("Microphone unavailable: " + err.message); }
});

// --- model page -------------------------------------------------------------------------------
function pct(x) { return (100 * x).toFixed(1) + "%"; }
function confusionTable(summary) {
  const labels = summary.labels;
  let html = "<table><tr><th>true \\ predicted</th>" + labels.map((l) => `<th>${l}</th>`).join("") + "</tr>";
  summary.confusion.forEach((row, i) => { html += `<tr><th>${labels[i]}</th>` + row.map((n) => `<td>${n}</td>`).join("") + "</tr>"; });
  return html + "</table>";
}
async function loadModel() {
  try {
    const info = await api("/v1/model");
    $("model-name").textContent = `${info.name} (${info.version})`;
    $("model-meta").textContent = `Labels: ${info.labels.join(", ")}. Features: ${info.feature_set}. Trained on ${info.training_data.clips} clips.`;
    let html = "";
    for (const [protocol, groups] of Object.entries(info.metrics)) {
      if (typeof groups !== "object" || groups === null) continue;
      for (const [group, s] of Object.entries(groups)) {
        if (!s || !s.confusion) continue;
        html += `<h3>${protocol} — held out: ${group}</h3><p>Unweighted accuracy ${pct(s.unweighted_accuracy)}, accuracy ${pct(s.accuracy)}, macro-F1 ${pct(s.macro_f1)} over ${s.folds} fold(s)</p>` + confusionTable(s);
      }
    }
    $("model-metrics").innerHTML = html;
  } catch (err) { showError(err.message); }
}

function showTab(name) {
  for (const tab of ["predict", "model"]) $("tab-" + tab).hidden = tab !== name;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === name));
  if (name === "model") loadModel();
}
document.querySelectorAll("nav a").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); showTab(a.dataset.tab); }));
fetch("/v1/model").then((r) => { if (r.status === 401) $("key-row").hidden = false; });
window.addEventListener("hashchange", () => showTab(location.hash === "#model" ? "model" : "predict"));
showTab(location.hash === "#model" ? "model" : "predict");
