"""The storage dashboard: one static page that fetches /v1/stats/storage with a key typed into it.

Kept as a string in a module (not a package data file) so it ships in every kind of install.
"""

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>cctv-archive · storage</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; max-width: 60rem; }
  table { border-collapse: collapse; margin: 1rem 0; width: 100%; }
  th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .bar { fill: #4a7bd0; } .cache { fill: #d08a4a; } .up { fill: #ccc; }
  #error { color: #b00; }
  small { color: #666; }
</style>
</head>
<body>
<h1>cctv-archive · storage</h1>
<form id="auth">
  <label>API key (read scope) <input id="key" type="password" size="50" autocomplete="off"></label>
  <button>Show</button>
</form>
<p id="error"></p>
<div id="out" hidden>
  <h2>Totals</h2><table id="totals"></table>
  <h2>Per camera</h2><table id="cameras"></table>
  <h2>Per capture day</h2>
  <p><small>grey: uploaded · blue: stored · orange: restore cache</small></p>
  <svg id="chart" width="100%" height="180"></svg>
  <table id="daily"></table>
  <h2>Restoration quality on the audit sample</h2>
  <p><small id="model"></small></p>
  <table id="quality"></table>
</div>
<script>
// Plain DOM, no framework: fetch the JSON with the key from the form and draw it.
const MB = (n) => (n / 1e6).toFixed(2) + " MB";
const PCT = (r) => (100 * r).toFixed(1) + " %";
const HEAD = ["frames", "uploaded", "stored", "restore cache", "saved"];

function cells(row) {
  return [row.frames, MB(row.bytes_uploaded), MB(row.bytes_stored), MB(row.bytes_cache),
          PCT(row.savings_ratio)];
}

function table(el, label, rows) {
  el.replaceChildren();
  const tr = el.insertRow();
  for (const h of [label, ...HEAD]) {
    const th = document.createElement("th");
    th.textContent = h;
    tr.append(th);
  }
  for (const [name, row] of rows) {
    const r = el.insertRow();
    for (const v of [name, ...cells(row)]) r.insertCell().textContent = v;
  }
}

function chart(svg, daily) {
  svg.replaceChildren();
  const max = Math.max(1, ...daily.map((d) => d.bytes_uploaded));
  const w = 100 / Math.max(daily.length, 1);
  const ns = "http://www.w3.org/2000/svg";
  daily.forEach((d, i) => {
    const parts = [["up", d.bytes_uploaded, 0], ["bar", d.bytes_stored, 0],
                   ["cache", d.bytes_cache, d.bytes_stored]];
    parts.forEach(([cls, v, below]) => {
        const rect = document.createElementNS(ns, "rect");
        const h = 170 * v / max, y = 175 - 170 * (v + below) / max;
        rect.setAttribute("class", cls);
        rect.setAttribute("x", (i * w + w * 0.1) + "%");
        rect.setAttribute("width", (w * 0.8) + "%");
        rect.setAttribute("y", y); rect.setAttribute("height", h);
        const title = document.createElementNS(ns, "title");
        title.textContent = d.date + " " + cls + " " + MB(v);
        rect.append(title); svg.append(rect);
      });
  });
}

async function show(key) {
  const res = await fetch("/v1/stats/storage", { headers: { "X-API-Key": key } });
  const body = await res.json();
  if (!res.ok) { document.getElementById("error").textContent = body.error.message; return; }
  document.getElementById("error").textContent = "";
  table(document.getElementById("totals"), "", [["all cameras", body.totals]]);
  table(document.getElementById("cameras"), "camera", body.cameras.map((c) => [c.camera_id, c]));
  table(document.getElementById("daily"), "date", body.daily.map((d) => [d.date, d]));
  chart(document.getElementById("chart"), body.daily);
  const answer = await fetch("/v1/stats/quality", { headers: { "X-API-Key": key } });
  const quality = await answer.json();
  document.getElementById("model").textContent =
    "model " + quality.model.name + " (" + quality.model.weights_sha256.slice(0, 12) + "), " +
    "PSNR on the Y channel in dB against the kept full-resolution frames";
  qualityTable(document.getElementById("quality"),
               [...quality.cameras.map((c) => [c.camera_id, c]), ["all cameras", quality.totals]]);
  document.getElementById("out").hidden = false;
}

function qualityTable(el, rows) {
  el.replaceChildren();
  const head = el.insertRow();
  for (const h of ["camera", "frames measured", "EDSR", "bicubic", "gain"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.append(th);
  }
  const dB = (v) => (v === null ? "-" : v.toFixed(2) + " dB");
  for (const [name, q] of rows) {
    const r = el.insertRow();
    const values = [name, q.frames_measured, dB(q.psnr_y_edsr), dB(q.psnr_y_bicubic),
                    dB(q.gain_db)];
    for (const v of values) r.insertCell().textContent = v;
  }
}

document.getElementById("auth").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = document.getElementById("key").value.trim();
  sessionStorage.setItem("cctv-key", key);
  show(key);
});
const saved = sessionStorage.getItem("cctv-key");
if (saved) { document.getElementById("key").value = saved; show(saved); }
</script>
</body>
</html>
"""
