// mptcpspec plot page: draws the plot embedded in this file on a canvas, with zoom, pan and a
// hover that names the frame.  No network access, no library.
(function () {
  "use strict";
  const P = JSON.parse(document.getElementById("plot-data").textContent);
  const canvas = document.getElementById("plot");
  const tip = document.getElementById("tip");
  const legend = document.getElementById("legend");
  const g = canvas.getContext("2d");
  const M = { l: 80, r: 20, t: 36, b: 48 };
  const hidden = new Set();
  let W = 0, H = 0, home = null, view = null, drag = null;

  function extent() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const s of P.series) {
      for (let i = 0; i < s.t.length; i++) {
        const t = s.t[i], a = s.y[i], b = s.y2.length ? s.y2[i] : a;
        if (t < x0) x0 = t; if (t > x1) x1 = t;
        const lo = Math.min(a, b), hi = Math.max(a, b);
        if (lo < y0) y0 = lo; if (hi > y1) y1 = hi;
      }
    }
    if (!isFinite(x0)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (x1 === x0) x1 = x0 + 1; if (y1 === y0) y1 = y0 + 1;
    const dx = (x1 - x0) * 0.02, dy = (y1 - y0) * 0.04;
    return { x0: x0 - dx, x1: x1 + dx, y0: y0 - dy, y1: y1 + dy };
  }
  const X = (t) => M.l + (t - view.x0) / (view.x1 - view.x0) * (W - M.l - M.r);
  const Y = (v) => H - M.b - (v - view.y0) / (view.y1 - view.y0) * (H - M.t - M.b);
  const invX = (px) => view.x0 + (px - M.l) / (W - M.l - M.r) * (view.x1 - view.x0);
  const invY = (py) => view.y0 + (H - M.b - py) / (H - M.t - M.b) * (view.y1 - view.y0);

  function ticks(a, b, n) {
    const step0 = (b - a) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= step0) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(a / step) * step; v <= b; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  const fmt = (v) => Math.abs(v) >= 1e6 ? v.toExponential(3) : String(+v.toPrecision(7));

  function resize() {
    const r = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    W = r.width; H = r.height;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }

  function draw() {
    let count = 0;
    g.clearRect(0, 0, W, H);
    g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
    g.strokeStyle = "#ddd"; g.fillStyle = "#333"; g.font = "11px sans-serif"; g.lineWidth = 1;
    for (const v of ticks(view.x0, view.x1, 10)) {
      const x = X(v); g.beginPath(); g.moveTo(x, M.t); g.lineTo(x, H - M.b); g.stroke();
      g.textAlign = "center"; g.fillText(fmt(v), x, H - M.b + 14);
    }
    for (const v of ticks(view.y0, view.y1, 8)) {
      const y = Y(v); g.beginPath(); g.moveTo(M.l, y); g.lineTo(W - M.r, y); g.stroke();
      g.textAlign = "right"; g.fillText(fmt(v), M.l - 6, y + 4);
    }
    g.textAlign = "center"; g.font = "14px sans-serif"; g.fillText(P.title, W / 2, 20);
    g.font = "12px sans-serif"; g.fillText(P.xlabel, W / 2, H - 10);
    g.save(); g.translate(14, H / 2); g.rotate(-Math.PI / 2); g.fillText(P.ylabel, 0, 0); g.restore();
    g.save(); g.beginPath(); g.rect(M.l, M.t, W - M.l - M.r, H - M.t - M.b); g.clip();
    for (const s of P.series) {
      if (hidden.has(s.name)) continue;
      count += drawSeries(s);
    }
    g.restore();
    g.strokeStyle = "#333"; g.strokeRect(M.l, M.t, W - M.l - M.r, H - M.t - M.b);
    document.body.dataset.drawn = String(count);
    document.body.dataset.size = W + "x" + H;
  }

  function visible(s, i) { return s.t[i] >= view.x0 && s.t[i] <= view.x1; }

  function drawSeries(s) {
    let n = 0;
    g.strokeStyle = s.color; g.fillStyle = s.color;
    const st = s.style;
    if (st === "BARS") {
      g.lineWidth = s.role === "reinjection" ? 3 : 1.5;
      g.beginPath();
      for (let i = 0; i < s.t.length; i++) {
        if (!visible(s, i)) continue;
        const x = X(s.t[i]); g.moveTo(x, Y(s.y[i])); g.lineTo(x, Y(s.y2[i])); n++;
      }
      g.stroke();
      if (s.role === "reinjection" || s.role === "retransmission") {
        for (let i = 0; i < s.t.length; i++) {
          if (!visible(s, i)) continue;
          const x = X(s.t[i]), y = Y(s.y2[i]);
          g.beginPath();
          if (s.role === "reinjection") { g.moveTo(x, y - 5); g.lineTo(x + 5, y); g.lineTo(x, y + 5); g.lineTo(x - 5, y); g.closePath(); g.fill(); g.strokeStyle = "#000"; g.lineWidth = 1; g.stroke(); g.strokeStyle = s.color; }
          else { g.moveTo(x - 4, y - 4); g.lineTo(x + 4, y + 4); g.moveTo(x + 4, y - 4); g.lineTo(x - 4, y + 4); g.lineWidth = 1.5; g.stroke(); }
        }
      }
    } else if (st === "STEPS" || st === "LINE") {
      g.lineWidth = 1.2; g.beginPath();
      let started = false, py = 0;
      for (let i = 0; i < s.t.length; i++) {
        const x = X(s.t[i]), y = Y(s.y[i]);
        if (!started) { g.moveTo(x, y); started = true; }
        else if (st === "STEPS") { g.lineTo(x, py); g.lineTo(x, y); }
        else g.lineTo(x, y);
        py = y; if (visible(s, i)) n++;
      }
      if (st === "STEPS" && started) g.lineTo(W, py);
      g.stroke();
    } else if (st === "POINTS") {
      for (let i = 0; i < s.t.length; i++) {
        if (!visible(s, i)) continue;
        g.fillRect(X(s.t[i]) - 1.5, Y(s.y[i]) - 1.5, 3, 3); n++;
      }
    } else if (st === "AREA") {
      g.globalAlpha = 0.6;
      for (let i = 0; i < s.t.length; i++) {
        const x = X(s.t[i]), x2 = i + 1 < s.t.length ? X(s.t[i + 1]) : x + 2;
        const lo = s.y2.length ? s.y2[i] : 0;
        g.fillRect(x, Y(s.y[i]), Math.max(1, x2 - x), Y(lo) - Y(s.y[i])); if (visible(s, i)) n++;
      }
      g.globalAlpha = 1;
    } else if (st === "BANDS") {
      g.globalAlpha = 0.5;
      for (let i = 0; i < s.t.length; i++) {
        g.fillRect(M.l, Y(s.y2[i]), W - M.l - M.r, Math.max(2, Y(s.y[i]) - Y(s.y2[i]))); n++;
      }
      g.globalAlpha = 1;
    } else if (st === "MARKERS") {
      g.font = "10px sans-serif"; g.textAlign = "left";
      for (let i = 0; i < s.t.length; i++) {
        if (!visible(s, i)) continue;
        const x = X(s.t[i]), y = Y(s.y[i]);
        g.beginPath(); g.moveTo(x - 5, y - 9); g.lineTo(x + 5, y - 9); g.lineTo(x, y); g.closePath(); g.fill();
        g.save(); g.translate(x + 3, y - 12); g.rotate(-Math.PI / 2); g.fillText(s.labels[i] || "", 0, 0); g.restore();
        n++;
      }
    }
    return n;
  }

  function nearest(px, py) {
    let best = null, bd = 144;  // within 12 pixels
    for (const s of P.series) {
      if (hidden.has(s.name) || s.style === "BANDS") continue;
      for (let i = 0; i < s.t.length; i++) {
        if (!visible(s, i)) continue;
        const x = X(s.t[i]);
        if (Math.abs(x - px) > 12) continue;
        let y = Y(s.y[i]);
        if (s.style === "BARS") { const a = Y(s.y[i]), b = Y(s.y2[i]); y = Math.max(Math.min(py, Math.max(a, b)), Math.min(a, b)); }
        const d = (x - px) * (x - px) + (y - py) * (y - py);
        if (d < bd) { bd = d; best = [s, i]; }
      }
    }
    return best;
  }

  function describe(s, i) {
    const f = s.frame[i];
    let text = s.name + " — " + (f ? "frame " + f : "several frames") + ", t " + fmt(s.t[i]) + " s, " + P.yname + " " + fmt(s.y[i]);
    if (s.y2.length && s.style === "BARS") text += "–" + fmt(s.y2[i]);
    if (s.labels.length) text += ", " + s.labels[i];
    return text;
  }

  function hover(px, py) {
    const hit = nearest(px, py);
    if (!hit) { tip.style.display = "none"; tip.textContent = ""; return; }
    tip.textContent = describe(hit[0], hit[1]);
    tip.style.display = "block";
    tip.style.left = Math.min(px + 14, W - 320) + "px"; tip.style.top = (py + 14) + "px";
  }

  function pos(e) { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  canvas.addEventListener("mousedown", (e) => {
    const [x, y] = pos(e);
    drag = { x, y, pan: e.shiftKey || e.button !== 0, view: Object.assign({}, view) };
  });
  window.addEventListener("mouseup", (e) => {
    if (!drag) return;
    const [x, y] = pos(e);
    if (!drag.pan && Math.abs(x - drag.x) > 4 && Math.abs(y - drag.y) > 4) {
      const a = [invX(drag.x), invX(x)].sort((p, q) => p - q), b = [invY(drag.y), invY(y)].sort((p, q) => p - q);
      view = { x0: a[0], x1: a[1], y0: b[0], y1: b[1] };
    }
    drag = null; draw();
  });
  canvas.addEventListener("mousemove", (e) => {
    const [x, y] = pos(e);
    if (drag && drag.pan) {
      const v = drag.view, dx = (x - drag.x) / (W - M.l - M.r) * (v.x1 - v.x0), dy = (y - drag.y) / (H - M.t - M.b) * (v.y1 - v.y0);
      view = { x0: v.x0 - dx, x1: v.x1 - dx, y0: v.y0 + dy, y1: v.y1 + dy }; draw(); return;
    }
    if (drag) { draw(); g.strokeStyle = "#06c"; g.strokeRect(drag.x, drag.y, x - drag.x, y - drag.y); return; }
    hover(x, y);
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y] = pos(e), k = e.deltaY > 0 ? 1.25 : 0.8, cx = invX(x), cy = invY(y);
    view = { x0: cx - (cx - view.x0) * k, x1: cx + (view.x1 - cx) * k, y0: e.ctrlKey ? view.y0 : cy - (cy - view.y0) * k, y1: e.ctrlKey ? view.y1 : cy + (view.y1 - cy) * k };
    draw();
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { view = Object.assign({}, home); draw(); });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  window.addEventListener("keydown", (e) => { if (e.key === "r") { view = Object.assign({}, home); draw(); } });

  for (const s of P.series) {
    const item = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true;
    box.addEventListener("change", () => { if (box.checked) hidden.delete(s.name); else hidden.add(s.name); draw(); });
    const sw = document.createElement("span"); sw.className = "sw"; sw.style.background = s.color;
    item.append(box, sw, document.createTextNode(" " + (P.names[s.name] || s.name) + " (" + s.t.length + ")"));
    legend.append(item);
  }
  home = extent(); view = Object.assign({}, home);
  window.addEventListener("resize", resize);
  resize();
  // #frame=N: point at frame N's mark as a reader would (the tests' way in)
  const m = /frame=(\d+)/.exec(location.hash);
  if (m) {
    for (const s of P.series) {
      const i = s.frame.indexOf(+m[1]);
      if (i < 0 || s.style === "BANDS") continue;
      const y = s.style === "BARS" ? (s.y[i] + s.y2[i]) / 2 : s.y[i];
      hover(X(s.t[i]), Y(y));
      document.body.dataset.pointed = X(s.t[i]).toFixed(1) + "," + Y(y).toFixed(1);
      break;
    }
  }
})();
