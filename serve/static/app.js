// esvae serve: the page. Plain JavaScript, no libraries; every model call goes to the JSON API.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;

function setStatus(msg) { $("status").textContent = msg || ""; }

// api posts body (an object, or a JSON string when it holds a 64-bit seed) and returns the JSON
// answer; an error answer's message goes to the status line and the promise rejects.
async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
  const r = await fetch(path, opts);
  let js;
  try { js = await r.json(); } catch (e) { js = { error: r.status + " " + r.statusText }; }
  if (!r.ok) {
    setStatus(path + ": " + (js.error || r.status));
    throw new Error(js.error);
  }
  setStatus("");
  return js;
}

// seedText returns the seed box's value as decimal digits (a uint64 sent as a JSON number
// without going through a JavaScript number, which would lose digits above 2^53).
function seedText(id) {
  const s = $(id).value.trim() || "0";
  if (!/^\d{1,20}$/.test(s)) { setStatus("the seed must be a whole number from 0 to 18446744073709551615"); return null; }
  return s;
}

// ---- drawing ----
const pad = $("pad"), ctx = pad.getContext("2d");
let drawing = false, last = null, dirty = false;
// drawn counts the pad's changes; the reconstruction's data-version says which change it shows
// (equal when the page is up to date: the browser test waits for that).
let drawn = 0;
function changed() { drawn++; pad.dataset.drawn = String(drawn); }

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  changed();
}

function padPoint(ev) {
  const r = pad.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * pad.width / r.width, y: (ev.clientY - r.top) * pad.height / r.height };
}

function stroke(p) {
  ctx.strokeStyle = "#fff"; ctx.fillStyle = "#fff";
  ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath();
  if (last) { ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke(); }
  else { ctx.arc(p.x, p.y, ctx.lineWidth / 2, 0, 2 * Math.PI); ctx.fill(); }
  last = p; dirty = true;
  changed();
  scheduleReconstruct();
}

pad.addEventListener("mousedown", (ev) => { drawing = true; last = null; stroke(padPoint(ev)); ev.preventDefault(); });
window.addEventListener("mousemove", (ev) => { if (drawing) stroke(padPoint(ev)); });
window.addEventListener("mouseup", () => { if (drawing) { drawing = false; last = null; scheduleReconstruct(); } });
pad.addEventListener("touchstart", (ev) => { drawing = true; last = null; stroke(padPoint(ev.touches[0])); ev.preventDefault(); }, { passive: false });
pad.addEventListener("touchmove", (ev) => { if (drawing) stroke(padPoint(ev.touches[0])); ev.preventDefault(); }, { passive: false });
pad.addEventListener("touchend", () => { drawing = false; last = null; scheduleReconstruct(); });
$("clear").addEventListener("click", () => { clearPad(); scheduleReconstruct(); });

// drawImage fits an image (a dropped file, a test image) onto the pad, on black.
function drawImage(src) {
  const img = new Image();
  img.onload = () => {
    clearPad();
    const k = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * k, h = img.height * k;
    ctx.imageSmoothingEnabled = img.width >= w;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    dirty = true;
    changed();
    scheduleReconstruct();
  };
  img.src = src;
}

function readFile(f) {
  if (!f || !f.type.startsWith("image/")) { setStatus("drop an image file (PNG, JPEG, GIF or WebP)"); return; }
  const rd = new FileReader();
  rd.onload = () => drawImage(rd.result);
  rd.readAsDataURL(f);
}
pad.addEventListener("dragover", (ev) => { ev.preventDefault(); pad.classList.add("dragover"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dragover"));
pad.addEventListener("drop", (ev) => { ev.preventDefault(); pad.classList.remove("dragover"); readFile(ev.dataTransfer.files[0]); });
$("file").addEventListener("change", (ev) => readFile(ev.target.files[0]));
$("load-test").addEventListener("click", async () => {
  const js = await api("/api/test/" + encodeURIComponent($("load-index").value));
  drawImage(js.image);
});

// scheduleReconstruct sends the pad to the model, at most one request at a time: strokes made
// while one is on its way are sent together when it returns (and the flip panel follows).
let inFlight = false, pending = false;
function scheduleReconstruct() {
  if (inFlight) { pending = true; return; }
  inFlight = true; pending = false;
  reconstruct().catch(() => {}).finally(() => {
    inFlight = false;
    if (pending) scheduleReconstruct(); else scheduleFlip();
  });
}

function padBody(extra) {
  const seed = seedText("draw-seed");
  if (seed === null) return null;
  const body = JSON.stringify(Object.assign({ image: pad.toDataURL("image/png") }, extra));
  return body.slice(0, -1) + ',"seed":' + seed + "}";
}

let reconCount = 0;
async function reconstruct() {
  const version = drawn;
  const body = padBody({});
  if (!body) return;
  const js = await api("/api/reconstruct", body);
  $("input").src = js.input;
  $("recon").src = js.reconstruction;
  $("recon").dataset.version = String(version);
  if (js.rates) {
    drawRates($("rates"), js.rates);
    drawRaster($("raster"), js.spikes, null);
    reconCount++;
    $("rates-summary").textContent = "(mean " + js.mean_rate.toFixed(3) + ")";
    $("rates").dataset.updates = String(reconCount);
  }
}

// ---- latent pictures ----
function drawRates(cv, rates) {
  const g = cv.getContext("2d"), n = rates.length, w = cv.width / n, h = cv.height;
  g.fillStyle = "#fafafa"; g.fillRect(0, 0, cv.width, h);
  g.fillStyle = "#1e88e5";
  rates.forEach((r, i) => { const bh = Math.max(0, Math.min(1, r)) * (h - 2); g.fillRect(i * w, h - bh, Math.max(1, w - 1), bh); });
  g.strokeStyle = "#bbb"; g.beginPath(); g.moveTo(0, 1.5); g.lineTo(cv.width, 1.5); g.stroke();
  cv.title = "rates: " + rates.map((r) => r.toFixed(2)).join(" ");
}

// drawRaster draws spikes (T rows of L) as neurons down and time steps across; with base, the
// entries that differ from base are red.
function drawRaster(cv, spikes, base) {
  const T = spikes.length, L = spikes[0].length;
  const cw = Math.max(2, Math.floor(256 / T)), ch = Math.max(1, Math.min(8, Math.floor(320 / L)));
  cv.width = cw * T; cv.height = ch * L;
  const g = cv.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, cv.width, cv.height);
  for (let t = 0; t < T; t++) {
    for (let l = 0; l < L; l++) {
      const on = spikes[t][l], changed = base && base[t][l] !== on;
      if (!on && !changed) continue;
      g.fillStyle = changed ? (on ? "#e53935" : "#ffcdd2") : "#111";
      g.fillRect(t * cw, l * ch, cw - (cw > 3 ? 1 : 0), ch - (ch > 2 ? 1 : 0));
    }
  }
}

// ---- noise robustness ----
let flipBusy = false, flipAgain = false;
function scheduleFlip() {
  if (!info || !info.available.flip || !dirty) return;
  if (flipBusy) { flipAgain = true; return; }
  flipBusy = true; flipAgain = false;
  flip().catch(() => {}).finally(() => { flipBusy = false; if (flipAgain) scheduleFlip(); });
}

async function flip() {
  const p = Number($("p").value);
  const body = padBody({ p: p });
  if (!body) return;
  const js = await api("/api/flip", body);
  $("flip-recon").src = js.reconstruction;
  $("flipped").src = js.flipped;
  drawRaster($("flip-raster"), js.flipped_spikes, js.spikes);
  const n = js.spikes.length * js.spikes[0].length;
  $("flip-summary").textContent = "p = " + p.toFixed(2) + ": " + js.flipped_count + " of " + n +
    " entries flipped; MSE to the reconstruction " + js.mse_vs_reconstruction.toFixed(4);
}
$("p").addEventListener("input", () => { $("p-value").textContent = Number($("p").value).toFixed(2); scheduleFlip(); });

// ---- samples ----
$("sample").addEventListener("click", async () => {
  const seed = seedText("sample-seed");
  const count = Number($("sample-count").value);
  if (seed === null) return;
  if (!Number.isInteger(count) || count < 1 || count > info.max_count) { setStatus("count: 1 to " + info.max_count); return; }
  const js = await api("/api/sample", '{"count":' + count + ',"seed":' + seed + "}");
  $("grid").src = js.grid;
  $("grid").style.width = (info.width + 2) * js.nrow * 2 + "px";
});

// ---- interpolation ----
const ends = { a: null, b: null }; // a drawn snapshot (data URL), or null: the test image index
let interpBusy = false, interpAgain = false;
function endpoint(which) {
  if (ends[which]) return { image: ends[which] };
  return { index: Number($(which === "a" ? "ia" : "ib").value) };
}
function scheduleInterp() {
  if (!info || !info.available.interpolate) return;
  if (!info.test_images && (!ends.a || !ends.b)) return;
  if (interpBusy) { interpAgain = true; return; }
  interpBusy = true; interpAgain = false;
  interpolate().catch(() => {}).finally(() => { interpBusy = false; if (interpAgain) scheduleInterp(); });
}
async function interpolate() {
  const t = Number($("t").value);
  const js = await api("/api/interpolate", { a: endpoint("a"), b: endpoint("b"), t: t, seed: 0 });
  $("img-a").src = js.a; $("img-b").src = js.b; $("interp").src = js.image;
  drawRates($("interp-rates"), js.rates);
}
$("t").addEventListener("input", () => { $("t-value").textContent = Number($("t").value).toFixed(2); scheduleInterp(); });
$("ia").addEventListener("change", () => { ends.a = null; scheduleInterp(); });
$("ib").addEventListener("change", () => { ends.b = null; scheduleInterp(); });
$("a-draw").addEventListener("click", () => { ends.a = pad.toDataURL("image/png"); scheduleInterp(); });
$("b-draw").addEventListener("click", () => { ends.b = pad.toDataURL("image/png"); scheduleInterp(); });

// ---- start ----
function hide(sel) { document.querySelectorAll(sel).forEach((e) => e.classList.add("hidden")); }

async function start() {
  clearPad();
  info = await api("/api/info");
  let desc = info.variant + " model, images " + info.channels + "×" + info.height + "×" + info.width;
  if (info.available.latent) desc += ", T = " + info.timesteps + ", latent " + info.latent_dim;
  desc += "; " + info.checkpoint + " (step " + info.step + ") on " + info.device;
  desc += info.test_images ? "; " + info.test_images + " " + info.data_set + " test images" : "";
  $("model").textContent = desc;
  $("sample-count").max = info.max_count;
  if (!info.available.latent) {
    hide(".latent");
    $("draw-panel").querySelector("h2 small").textContent = "(a " + info.kind + " model: no Poisson latent, so no rates, spikes, flips or interpolation)";
  }
  if (!info.test_images) {
    hide(".needs-data");
    $("interp-note").textContent = "No test images: " + info.data_error + ". Draw two images and take them as a and b.";
  } else {
    $("load-index").max = $("ia").max = $("ib").max = info.test_images - 1;
    scheduleInterp();
  }
  document.body.dataset.ready = "1";
}
start().catch((e) => setStatus("cannot start: " + e.message));
