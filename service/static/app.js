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

function renderTimeline(timeline) {
  $("timeline-view").hidden = !timeline;
  if (!timeline) return;
  const list = $("segments");
  list.innerHTML = "";
  for (const s of timeline.segments) {
    const row = document.createElement("div");
    row.className = "segment";
    row.innerHTML = `<span>${s.start.toFixed(2)}–${s.end.toFixed(2)} s</span><b>${s.label}</b><span>${(100 * s.confidence).toFixed(0)}%</span>`;
    list.appendChild(row);
  }
  const summary = timeline.summary;
  const p = document.createElement("p");
  p.className = "meta";
  p.textContent = `${summary.segments} segments, ${summary.speech_s} s of speech in ${summary.duration_s} s; dominant: ${summary.dominant}`;
  list.appendChild(p);
}

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
    renderTimeline(body.timeline);
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
