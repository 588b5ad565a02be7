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

  // Show record times in local time too; the UTC time stays in the title.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) return;
    el.title = el.textContent + " (UTC)";
    el.textContent = d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  });

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

  document.querySelectorAll("[data-chart]").forEach(function (fig) {
    var svg = fig.querySelector("svg");
    var line = fig.querySelector("polyline.temp");
    var caption = fig.querySelector("[data-chart-caption]");
    var status = fig.querySelector("[data-live-status]");
    var ring = new Ring(CAP);
    var pts = [];
    try { pts = JSON.parse(fig.getAttribute("data-points") || "[]"); } catch (e) { pts = []; }
    pts.slice(-CAP).forEach(function (p) { ring.push(p); });
    var lo = fig.getAttribute("data-has-lo") ? parseFloat(fig.getAttribute("data-lo")) : null;
    var hi = fig.getAttribute("data-has-hi") ? parseFloat(fig.getAttribute("data-hi")) : null;
    var limits = svg.querySelectorAll("line.limit");
    var pending = false;
    fig.ringSize = function () { return ring.len; };

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
      var out = [];
      for (i = 0; i < ring.len; i++) {
        p = ring.at(i);
        out.push(((p[0] - t0) / (t1 - t0) * 600).toFixed(1) + "," + (160 - (p[1] - min) / (max - min) * 160).toFixed(1));
      }
      line.setAttribute("points", out.join(" "));
      var li = 0;
      [hi, lo].forEach(function (v) {
        if (v === null || !limits[li]) return;
        var y = (160 - (v - min) / (max - min) * 160).toFixed(1);
        limits[li].setAttribute("y1", y); limits[li].setAttribute("y2", y); li++;
      });
      if (caption) caption.textContent = ring.len + " readings shown, " + dmin.toFixed(1) + " to " + dmax.toFixed(1) + " °C, latest " + ring.at(ring.len - 1)[1].toFixed(1) + " °C";
    }
    function schedule() { if (!pending) { pending = true; requestAnimationFrame(draw); } }

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
    window.addEventListener("pagehide", function () { es.close(); });
  });
})();
