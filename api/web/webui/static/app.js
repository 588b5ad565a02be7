// coid web UI script: progressive enhancement only; every form works
// without it. No dependencies, no inline script (CSP script-src 'self').
(function () {
  "use strict";

  var scanField = document.querySelector("[data-autofocus]");

  function editable(el) {
    if (!el || el === document.body) return false;
    var t = el.tagName;
    return t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || el.isContentEditable;
  }

  // Keep the scan field ready: a keyboard-wedge scanner types into
  // whatever has focus, so keystrokes that land on no field go to the scan
  // field, and focus returns to it when nothing else holds it.
  if (scanField) {
    if (!editable(document.activeElement)) scanField.focus();
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey || editable(document.activeElement)) return;
      // Moving focus during keydown sends the key's character to the
      // newly focused field.
      if (e.key.length === 1 && e.key !== " ") scanField.focus();
    });
    document.addEventListener("focusout", function () {
      setTimeout(function () {
        if (!document.activeElement || document.activeElement === document.body) {
          var open = document.querySelector("details[open] form :invalid");
          if (!open) scanField.focus({ preventScroll: true });
        }
      }, 0);
    });
  }

  // Without a scan field (the bedside signatures), start in the first
  // empty required field, so the keyboard alone gets through the form.
  if (!scanField && !editable(document.activeElement)) {
    var req = document.querySelectorAll("main form input[required]");
    for (var i = 0; i < req.length; i++) {
      if (!req[i].value) { req[i].focus(); break; }
    }
  }

  // Time zone of this device, for date-time inputs (minutes east of UTC).
  var tz = String(-new Date().getTimezoneOffset());
  document.querySelectorAll("[data-tz]").forEach(function (el) { el.value = tz; });

  // Times stay as the server wrote them: one format per screen, with its
  // zone, never silently converted to the zone of this device.

  document.querySelectorAll("[data-back]").forEach(function (b) {
    if (history.length > 1) b.hidden = false;
    b.addEventListener("click", function () { history.back(); });
  });

  // One submission per form: a double tap must not sign twice.
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function () {
      var btns = f.querySelectorAll("button[type=submit]");
      setTimeout(function () { btns.forEach(function (b) { b.disabled = true; }); }, 0);
    });
  });

  // Camera scanning where the browser offers BarcodeDetector.
  if ("BarcodeDetector" in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    var video = document.querySelector("[data-camera-view]");
    document.querySelectorAll("[data-camera]").forEach(function (btn) {
      if (!video) return;
      btn.hidden = false;
      var stream = null;
      function stop() {
        if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
        stream = null; video.hidden = true; btn.textContent = "Use camera";
      }
      btn.addEventListener("click", function () {
        if (stream) { stop(); return; }
        var form = btn.closest("form");
        var input = form.querySelector("input[name=code]");
        var detector;
        try { detector = new window.BarcodeDetector({ formats: ["qr_code", "data_matrix"] }); }
        catch (e) { detector = new window.BarcodeDetector(); }
        navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
          stream = s; video.srcObject = s; video.hidden = false; btn.textContent = "Stop camera";
          return video.play();
        }).then(function loop() {
          if (!stream) return;
          detector.detect(video).then(function (codes) {
            if (codes.length > 0 && codes[0].rawValue) {
              input.value = codes[0].rawValue;
              stop();
              form.requestSubmit ? form.requestSubmit() : form.submit();
              return;
            }
            setTimeout(loop, 200);
          }, function () { setTimeout(loop, 500); });
        }).catch(function () {
          stop();
          btn.textContent = "Camera not available";
          btn.disabled = true;
        });
      });
    });
  }

  // Live temperature chart: a bounded ring of points (the page must not
  // grow), redrawn at most once per animation frame.
  var CAP = 600;
  function Ring(cap) { this.cap = cap; this.buf = new Array(cap); this.start = 0; this.len = 0; }
  Ring.prototype.push = function (p) {
    if (this.len < this.cap) { this.buf[(this.start + this.len) % this.cap] = p; this.len++; }
    else { this.buf[this.start] = p; this.start = (this.start + 1) % this.cap; }
  };
  Ring.prototype.at = function (i) { return this.buf[(this.start + i) % this.cap]; };

  var SVGNS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var e = document.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clear(g) { while (g && g.firstChild) g.removeChild(g.firstChild); }
  function niceStep(span, n) {
    if (span <= 0) return 1;
    var raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var ms = [1, 2, 5, 10];
    for (var i = 0; i < ms.length; i++) if (ms[i] * p >= raw) return ms[i] * p;
    return 10 * p;
  }
  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map(function (s) { return s * 1000; });
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  // zoneClock reads times in the named IANA zone (the site's, as the
  // server gave it), never in this device's zone; UTC where the browser
  // does not know the zone.
  function zoneClock(zone) {
    var opts = { hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" };
    var f;
    try { f = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: zone }, opts)); }
    catch (e) { zone = "UTC"; f = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: "UTC" }, opts)); }
    function parts(ms) {
      var o = {};
      f.formatToParts(new Date(ms)).forEach(function (p) { o[p.type] = p.value; });
      o.hour = pad2(parseInt(o.hour, 10) % 24);
      return o;
    }
    return {
      zone: zone,
      // offset is how far the zone is ahead of UTC at ms, in ms.
      offset: function (ms) {
        var p = parts(ms), s = Math.floor(ms / 1000) * 1000;
        return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - s;
      },
      label: function (ms, seconds) {
        var p = parts(ms);
        return p.hour + ":" + p.minute + (seconds ? ":" + p.second : "");
      }
    };
  }

  // The chart is redrawn whole from the ring: axes (°C and the time of
  // the site the leg left, in its zone, as the server labelled it),
  // limit lines, excursion shading, and the line broken across silences
  // (the server's gaps, and any pause longer than data-gap-ms between
  // readings that arrived live).
  document.querySelectorAll("[data-chart]").forEach(function (fig) {
    var svg = fig.querySelector("svg");
    var caption = fig.querySelector("[data-chart-caption]");
    var status = fig.querySelector("[data-live-status]");
    var ring = new Ring(CAP);
    function json(name) { try { return JSON.parse(fig.getAttribute(name) || "[]"); } catch (e) { return []; } }
    var pts = json("data-points"), gaps = json("data-gaps"), exc = json("data-exc");
    var gapMS = parseFloat(fig.getAttribute("data-gap-ms")) || 0;
    var plot = (fig.getAttribute("data-plot") || "64 10 564 170").split(" ").map(parseFloat);
    var L = plot[0], T = plot[1], W = plot[2], H = plot[3];
    var clock = zoneClock(fig.getAttribute("data-zone") || "UTC");
    if (clock.zone !== fig.getAttribute("data-zone")) {
      var xt = svg.querySelector("text.x-title");
      if (xt) xt.textContent = "Device time (UTC)";
    }
    pts.slice(-CAP).forEach(function (p) { ring.push(p); });
    var serverLast = ring.len ? ring.at(ring.len - 1)[0] : -Infinity;
    var lo = fig.getAttribute("data-has-lo") ? parseFloat(fig.getAttribute("data-lo")) : null;
    var hi = fig.getAttribute("data-has-hi") ? parseFloat(fig.getAttribute("data-hi")) : null;
    var gShades = svg.querySelector("g.shades"), gY = svg.querySelector("g.yaxis"), gX = svg.querySelector("g.xaxis"), gS = svg.querySelector("g.series");
    var pending = false;
    fig.ringSize = function () { return ring.len; };

    function broken(a, b) {
      if (b[0] > serverLast && gapMS > 0 && b[0] - a[0] > gapMS) return true;
      for (var i = 0; i < gaps.length; i++) if (gaps[i][0] >= a[0] && gaps[i][1] <= b[0]) return true;
      return false;
    }

    function draw() {
      pending = false;
      if (ring.len === 0) return;
      var min = Infinity, max = -Infinity, i, p;
      for (i = 0; i < ring.len; i++) { p = ring.at(i); if (p[1] < min) min = p[1]; if (p[1] > max) max = p[1]; }
      var dmin = min, dmax = max;
      if (lo !== null) min = Math.min(min, lo);
      if (hi !== null) max = Math.max(max, hi);
      if (max - min < 1) { min -= 0.5; max += 0.5; }
      var pad = (max - min) * 0.08; min -= pad; max += pad;
      var t0 = ring.at(0)[0], t1 = ring.at(ring.len - 1)[0];
      if (t1 === t0) t1 = t0 + 1;
      function X(t) { return L + (t - t0) / (t1 - t0) * W; }
      function Y(v) { return T + H - (v - min) / (max - min) * H; }
      // Line, one polyline per unbroken run.
      clear(gS);
      var run = [];
      function flush() { if (run.length) gS.appendChild(el("polyline", { "class": "temp", points: run.join(" ") })); run = []; }
      for (i = 0; i < ring.len; i++) {
        p = ring.at(i);
        if (i > 0 && broken(ring.at(i - 1), p)) flush();
        run.push(X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1));
      }
      flush();
      // Temperature axis.
      clear(gY);
      var step = niceStep(max - min, 5);
      for (var v = Math.ceil(min / step) * step; v <= max; v += step) {
        var y = Y(v).toFixed(1), lab = String(Math.round(Math.round(v / step) * step * 1e6) / 1e6 || 0);
        gY.appendChild(el("line", { "class": "grid", x1: L, x2: L + W, y1: y, y2: y }));
        gY.appendChild(el("text", { "class": "tick", x: L, dx: -6, y: y, dy: 4, "text-anchor": "end" }, lab));
      }
      // Time axis, in the site's zone: ticks on whole steps of its local
      // time at the first reading.
      clear(gX);
      var ts = TIME_STEPS[TIME_STEPS.length - 1];
      for (i = 0; i < TIME_STEPS.length; i++) if ((t1 - t0) / TIME_STEPS[i] <= 6) { ts = TIME_STEPS[i]; break; }
      var off = clock.offset(t0);
      for (var t = Math.ceil((t0 + off) / ts) * ts - off; t <= t1; t += ts) {
        var x = X(t).toFixed(1);
        gX.appendChild(el("line", { "class": "grid", x1: x, x2: x, y1: T, y2: T + H }));
        gX.appendChild(el("text", { "class": "tick", x: x, y: T + H, dy: 16, "text-anchor": "middle" }, clock.label(t, ts < 60000)));
      }
      // Excursions.
      clear(gShades);
      exc.forEach(function (e) {
        var a = Math.max(e[0], t0), b = e[1] && e[1] < t1 ? e[1] : t1;
        if (b <= a) return;
        gShades.appendChild(el("rect", { "class": "exc", x: X(a).toFixed(1), y: T, width: Math.max(X(b) - X(a), 1).toFixed(1), height: H }));
      });
      // Limits.
      [["hi", hi, -4], ["lo", lo, 12]].forEach(function (l) {
        if (l[1] === null) return;
        var y = Y(l[1]).toFixed(1);
        var line = svg.querySelector("line.limit." + l[0]), label = svg.querySelector("text.limit-label." + l[0]);
        if (line) { line.setAttribute("y1", y); line.setAttribute("y2", y); }
        if (label) label.setAttribute("y", y);
      });
      if (caption) caption.textContent = ring.len + " readings shown, " + dmin.toFixed(1) + " to " + dmax.toFixed(1) + " °C, latest " + ring.at(ring.len - 1)[1].toFixed(1) + " °C";
    }
    function schedule() { if (!pending) { pending = true; requestAnimationFrame(draw); } }
    fig.redraw = draw;

    var url = fig.getAttribute("data-live");
    if (url && "EventSource" in window) {
      var last = ring.len ? ring.at(ring.len - 1)[0] : 0;
      var es = new EventSource(url + (last ? "?after=" + last : ""));
      es.addEventListener("reading", function (ev) {
        try { var d = JSON.parse(ev.data); ring.push([d.t, d.c]); schedule(); } catch (e) { /* ignore a malformed event */ }
      });
      es.onopen = function () { if (status) { status.textContent = "live"; status.classList.remove("off"); } };
      es.onerror = function () {
        if (status) { status.textContent = es.readyState === 2 ? "not live" : "reconnecting"; status.classList.add("off"); }
      };
      window.addEventListener("pagehide", function () { es.close(); });
    }
  });

  // Excursion alerts on the QA console: a bounded list of banners, each
  // linking to the chain. Built with text nodes only.
  document.querySelectorAll("[data-alerts]").forEach(function (box) {
    if (!("EventSource" in window)) return;
    var es = new EventSource(box.getAttribute("data-alerts"));
    es.addEventListener("excursion", function (ev) {
      var a;
      try { a = JSON.parse(ev.data); } catch (e) { return; }
      var div = document.createElement("div");
      div.className = "msg stop";
      div.setAttribute("role", "alert");
      var strong = document.createElement("strong");
      var kind = (a.excursion && a.excursion.kind) || "excursion";
      strong.textContent = "New " + kind + " excursion on chain " + a.coi + " (record " + a.seq + ")";
      var link = document.createElement("a");
      link.href = "/chains/" + encodeURIComponent(a.coi) + "#issues";
      link.className = "btn small";
      link.textContent = "Review";
      div.appendChild(strong);
      div.appendChild(link);
      box.insertBefore(div, box.firstChild);
      while (box.children.length > 10) box.removeChild(box.lastChild);
    });
    // Hold-time warnings: disruption projected (LN2 running out, a leg
    // running late); they block nothing.
    es.addEventListener("warning", function (ev) {
      var a;
      try { a = JSON.parse(ev.data); } catch (e) { return; }
      var w = a.warning || {};
      var div = document.createElement("div");
      div.className = "msg warning";
      div.setAttribute("role", "alert");
      var strong = document.createElement("strong");
      strong.textContent = "Warning on chain " + a.coi + ", leg " + w.leg + " (record " + a.seq + ")";
      var text = document.createElement("span");
      text.textContent = w.message || "";
      var link = document.createElement("a");
      link.href = "/chains/" + encodeURIComponent(a.coi) + "#legs-title";
      link.className = "btn small";
      link.textContent = "View leg";
      div.appendChild(strong);
      div.appendChild(text);
      div.appendChild(link);
      box.insertBefore(div, box.firstChild);
      while (box.children.length > 10) box.removeChild(box.lastChild);
    });
    window.addEventListener("pagehide", function () { es.close(); });
  });
})();
