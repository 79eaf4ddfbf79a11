// The Formation page: polls /factor6/state once a second, draws cards, numbers and the chart, sends the buttons.
// Faults come as spans (bench/chaos/vocabulary.py fault_spans): any action, known or new, is drawn as a band.
"use strict";

const COLOURS = {kill: "#d32f2f", term: "#ef6c00", reload: "#1976d2", rolling: "#00838f", freeze: "#7b1fa2",
                 scale: "#388e3c", scale_web: "#5d4037", bad: "#c2185b"};
const PALETTE = ["#6d4c41", "#00897b", "#5e35b1", "#f4511e", "#3949ab", "#7cb342"];
const $ = (id) => document.getElementById(id);
let state = null, chart = null;

function colour(action) {
  if (COLOURS[action]) return COLOURS[action];
  let hash = 0;
  for (const c of action) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

function say(text, error) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

async function post(path, body) {
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify(body || {})});
  const answer = await response.json().catch(() => ({error: response.statusText}));
  if (!response.ok) { say(answer.error || response.statusText, true); return null; }
  say(`${answer.action} ${answer.target || ""} ${answer.pid ? "pid " + answer.pid : ""}: ${answer.outcome}`);
  refresh();
  return answer;
}

function drawFaults(u) {
  if (!state || !state.faults) return;
  const {ctx} = u, {left, top, width, height} = u.bbox;
  ctx.save();
  for (const fault of state.faults) {
    const x0 = u.valToPos(fault.start, "x", true), x1 = u.valToPos(fault.end, "x", true);
    const from = Math.max(left, x0), to = Math.min(left + width, Math.max(x1, x0 + 3 * devicePixelRatio));
    if (to <= left || from >= left + width) continue;
    ctx.fillStyle = colour(fault.action);
    ctx.globalAlpha = fault.end > fault.start ? 0.18 : 0.55;
    ctx.fillRect(from, top, to - from, height);
  }
  ctx.restore();
}

function makeChart() {
  const box = $("chart");
  return new uPlot({
    width: box.clientWidth || 900, height: 260,
    series: [{}, {label: "requests/s", stroke: "#1d232b", width: 2, scale: "rps"},
             {label: "p95 ms", stroke: "#78909c", width: 2, scale: "ms"}],  // grey: no fault's colour
    axes: [{}, {scale: "rps", label: "requests/s"}, {scale: "ms", side: 1, label: "p95 ms", grid: {show: false}}],
    // One sample alone would make uPlot span two years around it: a minute instead.
    scales: {x: {time: true, range: (u, min, max) => (min === max ? [min - 30, max + 30] : [min, max])}},
    hooks: {drawClear: [drawFaults]},
  }, [[], [], []], box);
}

function drawChart() {
  const series = state.series || [];
  chart = chart || makeChart();
  chart.setData([series.map((s) => s.t), series.map((s) => s.rps), series.map((s) => s.p95)]);
  const kinds = [...new Set((state.faults || []).map((f) => f.action))];
  $("fault-legend").innerHTML = kinds.map((k) =>
    `<span><i style="background:${colour(k)}"></i>${k}</span>`).join("") ||
    "<span>no fault yet: every one will show here as a band over its duration</span>";
}

function drawNumbers() {
  const n = state.numbers || {};
  for (const name of ["acknowledged", "lost", "duplicated"]) {
    const el = $(name);
    el.textContent = (n[name] || 0).toLocaleString();
    if (name !== "acknowledged") el.className = n[name] ? "bad-number" : "zero";
  }
  $("verdict").textContent = n.verdict || "—";
  $("verdict").className = n.status || "";
  $("headline").textContent = n.headline || "verdict";
  $("run").textContent = state.running ? `running: run ${state.run}` : (state.run ? `idle: last run ${state.run}` :
                                                                         state.note || "idle");
}

// The count next to "scale web": the scaler's, else the web instances serving; left alone while being edited.
let scaleEdited = false;
function drawCount(f) {
  if (scaleEdited || document.activeElement === $("scale-count")) return;
  const serving = (f.instances || []).filter((i) => i.kind === "web" && !["gone", "draining"].includes(i.state));
  $("scale-count").value = f.desired ?? serving.length;
}

function field(card, label, value) {
  return `<dt>${label}</dt><dd>${value === undefined || value === null ? "—" : value}</dd>`;
}

function cardElement(key, kind) {
  let el = document.querySelector(`.card[data-name="${key}"]`);
  if (el) return el;
  el = document.createElement("div");
  el.className = "card";
  el.dataset.name = key;
  el.innerHTML = `<h3><span class="name">${key}</span><span class="state"></span></h3><dl></dl>
                  <div class="workers"></div><div class="buttons"></div>`;
  const buttons = el.querySelector(".buttons");
  if (kind === "web") {
    for (const [action, label] of [["kill", "kill worker"], ["term", "TERM worker"], ["reload", "reload"]]) {
      buttons.insertAdjacentHTML("beforeend", `<button type="button" data-action="${action}">${label}</button>`);
    }
    buttons.insertAdjacentHTML("beforeend", `<button type="button" data-action="freeze">freeze</button>
      <input type="number" min="1" max="120" value="5" aria-label="seconds"> s`);
    buttons.addEventListener("click", (e) => {
      const action = e.target.dataset.action;
      if (!action) return;
      const body = {action, target: key};
      if (action === "freeze") body.seconds = Number(buttons.querySelector("input").value);
      post("factor6/act", body);
    });
  } else if (kind === "bad") {
    buttons.insertAdjacentHTML("beforeend", `<button type="button" data-action="remove">remove</button>`);
    buttons.addEventListener("click", () => post("factor6/bad/remove", {name: key}));
  }
  $("cards").appendChild(el);
  return el;
}

function drawCard(card, kind, rows, workers) {
  const el = cardElement(card.name, kind);
  el.className = `card kind-${kind} state-${card.state}`;
  el.dataset.state = card.state;
  el.querySelector(".state").textContent = card.state;
  el.querySelector("dl").innerHTML = rows.join("");
  el.querySelector(".workers").innerHTML = workers || "";
  const usable = state.running && card.ours !== false && !["gone", "draining"].includes(card.state);
  el.querySelectorAll("button").forEach((b) => { b.disabled = !usable; });
}

function drawCards() {
  const f = state.formation || {};
  const seen = new Set();
  if (f.proxy) {
    const p = f.proxy;
    drawCard(p, "proxy", [field(p, "address", p.address), field(p, "pid", p.pid), field(p, "in flight", p.in_flight),
                          field(p, "requests", p.requests), field(p, "p95 ms", p.p95_ms), field(p, "backends", p.backends)]);
    seen.add(p.name);
  }
  if (f.backing) {
    const b = f.backing;
    const extra = Object.entries(b.extra || {}).map(([k, v]) => field(b, k, v));
    drawCard(b, "backing", [field(b, "address", b.address), field(b, "pid", b.pid), field(b, "role", b.role),
                            field(b, "persistence", b.persistence), ...extra, b.reason ? field(b, "why", b.reason) : ""]);
    seen.add(b.name);
  }
  for (const i of f.instances || []) {
    const workers = i.workers.map((w) => `<span title="${w.status}">${w.pid} (${Math.round(w.age_s)}s${
      w.status === "stopped" ? ", frozen" : ""})</span>`).join(", ");
    drawCard(i, i.kind, [field(i, "address", i.address), field(i, "master pid", i.master),
                         field(i, "in flight", i.in_flight), field(i, "hits served", i.served.toLocaleString()),
                         field(i, "restarts", i.restarts)], `workers: ${workers || "none"}`);
    seen.add(i.name);
  }
  document.querySelectorAll(".card").forEach((el) => { if (!seen.has(el.dataset.name)) el.remove(); });
  drawCount(f);
  if (f.error || f.identity) say(f.error || f.identity, true);
}

function drawEvents() {
  $("events").innerHTML = (state.events || []).map((e) =>
    `<li class="${e.manual ? "manual" : ""}">${e.manual ? "[by hand] " : ""}${e.text.replace(/</g, "&lt;")}</li>`).join("");
  $("add-bad").disabled = !state.running;
  $("scale").disabled = !state.formation || !!state.formation.error;
}

async function refresh() {
  try {
    const response = await fetch("factor6/state");
    state = await response.json();
    if (!response.ok) { say(state.error, true); return; }
    drawNumbers(); drawCards(); drawChart(); drawEvents();
  } catch (error) {
    say(`cannot reach Locust: ${error}`, true);
  }
}

$("scale-count").addEventListener("input", () => { scaleEdited = true; });
$("scale").addEventListener("click", () => {
  scaleEdited = false;
  post("factor6/scale", {count: Number($("scale-count").value)});
});
$("add-bad").addEventListener("click", () => { say("starting a bad instance…"); post("factor6/bad"); });
window.addEventListener("resize", () => chart && chart.setSize({width: $("chart").clientWidth, height: 260}));
refresh();
setInterval(refresh, 1000);
