/* radmon station page: the dose-rate chart (SVG drawn here, no library), the period and
   resolution controls, drag-to-zoom, alarm spans, rain bars, availability and open alarms.
   Text from devices, files and people reaches the page only as textContent (never innerHTML).
   Plain ES5-ish JS, no build step. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("radmon-config").textContent);
  var t = config.strings;
  var SVG = "http://www.w3.org/2000/svg";
  var MINUTE = 60e3, HOUR = 3600e3, DAY = 86400e3;
  var PRESETS = { "6h": 6 * HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "1y": 365 * DAY };
  var ORDER = ["raw", "hour", "day"];
  // About one point per pixel of a wide chart: finer than that is drawn over itself.
  var MAX_POINTS = 1500;
  var MIN_ZOOM = 10 * MINUTE;
  var HEIGHT = 340;
  var MARGIN = { left: 64, right: 58, top: 14, bottom: 46 };

  var chartEl = document.getElementById("chart");
  var statusEl = document.getElementById("status");
  var messageEl = document.getElementById("chart-message");
  var readoutEl = document.getElementById("chart-readout");
  var resetButton = document.getElementById("reset-zoom");

  var maxSpan = { raw: config.max_span_s.raw * 1000, hour: config.max_span_s.hour * 1000, day: Infinity };
  var stepOf = { raw: config.interval_s * 1000, hour: HOUR, day: DAY };

  // What the page shows, for people and for tests: counts of what the chart drew.
  var state = {
    points: 0,
    resolution: null,
    spans: 0,
    rainBars: 0,
    loads: 0,
    start: null,
    end: null,
    preset: config.default_preset,
    zoomed: false,
    availability: null,
    error: null,
  };
  window.radmonStation = state;

  var view = null;  // {start, end, resolution} in ms
  var drawn = null;  // the last answers, to redraw on resize
  var loadSeq = 0;

  // -- formatting ----------------------------------------------------------------------------

  function zoneFormat(options) {
    try {
      return new Intl.DateTimeFormat(config.locale, Object.assign({ timeZone: config.timezone }, options));
    } catch (e) {  // a zone this browser does not know: UTC, and the label says so
      return new Intl.DateTimeFormat(config.locale, Object.assign({ timeZone: "UTC" }, options));
    }
  }

  var fmt = {
    clock: zoneFormat({ hour: "2-digit", minute: "2-digit", hour12: false }),
    seconds: zoneFormat({ hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }),
    day: zoneFormat({ day: "2-digit", month: "2-digit" }),
    month: zoneFormat({ month: "2-digit", year: "numeric" }),
    full: zoneFormat({
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      hour12: false, timeZoneName: "short",
    }),
    stamp: zoneFormat({
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hour12: false, timeZoneName: "short",
    }),
  };
  var partsFormat = (function () {
    var options = {
      hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    };
    try {
      return new Intl.DateTimeFormat("en-US", Object.assign({ timeZone: config.timezone }, options));
    } catch (e) {
      return new Intl.DateTimeFormat("en-US", Object.assign({ timeZone: "UTC" }, options));
    }
  })();
  var dose1 = new Intl.NumberFormat(config.locale, { maximumFractionDigits: 1 });
  var dose2 = new Intl.NumberFormat(config.locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var percent = new Intl.NumberFormat(config.locale, { style: "percent", maximumFractionDigits: 1 });

  function formatDose(value) {
    var text = dose1.format(value) + " nSv/h";
    if (value >= 1000) text += " (" + dose2.format(value / 1000) + " µSv/h)";
    return text;
  }

  function words(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // The zone's offset from UTC at *ms*, in ms (local wall clock = ms + offset).
  function zoneOffset(ms) {
    var p = {};
    partsFormat.formatToParts(new Date(ms)).forEach(function (part) { p[part.type] = part.value; });
    var local = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return local - Math.floor(ms / 1000) * 1000;
  }

  // The instant at which the site's wall clock reads *wall* (wall clock as if it were UTC).
  function fromWall(wall) {
    return wall - zoneOffset(wall - zoneOffset(wall));
  }

  // -- DOM helpers ---------------------------------------------------------------------------

  function svg(tag, attrs, parent) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function showMessage(text) {
    messageEl.textContent = text || "";
    messageEl.hidden = !text;
  }

  // -- periods and resolutions ---------------------------------------------------------------

  function fits(resolution, span) {
    return span <= maxSpan[resolution];
  }

  // The finest resolution that fits the API's limits and keeps the chart readable.
  function autoResolution(span) {
    for (var i = 0; i < ORDER.length; i++) {
      var res = ORDER[i];
      if (fits(res, span) && span / stepOf[res] <= MAX_POINTS) return res;
    }
    return "day";
  }

  function finer(a, b) {
    return ORDER.indexOf(a) <= ORDER.indexOf(b) ? a : b;
  }

  function presetView(key) {
    var end = Date.now();
    var span = PRESETS[key];
    return { start: end - span, end: end, resolution: autoResolution(span) };
  }

  function syncControls() {
    var span = view.end - view.start;
    Array.prototype.forEach.call(document.querySelectorAll("[data-preset]"), function (button) {
      var on = !state.zoomed && button.getAttribute("data-preset") === state.preset;
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-resolution]"), function (button) {
      var res = button.getAttribute("data-resolution");
      button.setAttribute("aria-pressed", res === view.resolution ? "true" : "false");
      button.disabled = !fits(res, span);
      button.title = button.disabled ? t.res_too_long : "";
    });
    resetButton.disabled = !state.zoomed;
  }

  // -- loading -------------------------------------------------------------------------------

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) throw new Error(t.login_pending);
        return response.json().then(function (body) {
          if (!response.ok) throw new Error((body && body.detail) || "HTTP " + response.status);
          return body;
        }, function () {
          throw new Error("HTTP " + response.status);
        });
      });
  }

  function query(params) {
    return Object.keys(params).map(function (key) {
      return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]);
    }).join("&");
  }

  function load() {
    var seq = ++loadSeq;
    var period = { start: new Date(view.start).toISOString(), end: new Date(view.end).toISOString() };
    var readingsUrl = config.readings_url + "?" + query(Object.assign({ resolution: view.resolution }, period));
    var alarmsUrl = config.alarms_url + "?" + query({ station_id: config.station_id, state: "all" });
    var statsUrl = config.stats_url + "?" + query(Object.assign({ station_id: config.station_id }, period));
    syncControls();
    showPeriod();
    return Promise.all([getJSON(readingsUrl), getJSON(alarmsUrl), getJSON(statsUrl)])
      .then(function (answers) {
        if (seq !== loadSeq) return;  // a newer request superseded this one
        state.error = null;
        showMessage(answers[0].points.length ? "" : t.no_readings);
        drawn = { series: answers[0], alarms: answers[1] };
        draw();
        showOpenAlarms(answers[1]);
        showAvailability(answers[2]);
        state.loads += 1;
        statusEl.textContent = words(t.updated, { time: fmt.seconds.format(new Date()) });
      })
      .catch(function (error) {
        if (seq !== loadSeq) return;
        state.error = error.message;
        state.loads += 1;
        showMessage(words(t.load_failed, { detail: error.message }));
        statusEl.textContent = t.connection_lost;
      });
  }

  function showPeriod() {
    state.start = new Date(view.start).toISOString();
    state.end = new Date(view.end).toISOString();
    state.resolution = view.resolution;
    document.getElementById("chart-period").textContent =
      fmt.full.format(new Date(view.start)) + " – " + fmt.full.format(new Date(view.end));
  }

  function showAvailability(stats) {
    var el = document.getElementById("availability");
    var mine = stats.filter(function (s) { return s.station_id === config.station_id; })[0];
    if (!mine) {
      el.textContent = "–";
      state.availability = null;
      return;
    }
    state.availability = mine.availability_pct;
    el.textContent = words(t.availability_detail, {
      pct: percent.format(mine.availability_pct / 100),
      count: mine.count,
      expected: mine.expected,
    });
  }

  function showOpenAlarms(alarms) {
    var list = document.getElementById("open-alarms");
    var open = alarms.filter(function (a) { return a.state === "active_unack" || a.state === "active_ack"; });
    clear(list);
    open.forEach(function (alarm) {
      var item = element("li", "open-alarm severity-" + alarm.severity);
      var link = element("a");
      link.href = config.alarm_page + encodeURIComponent(alarm.id);
      link.appendChild(element("strong", null, t["severity_" + alarm.severity] || alarm.severity));
      link.appendChild(document.createTextNode(" · " + alarm.kind));
      item.appendChild(link);
      item.appendChild(element("span", "alarm-since", words(t.since, { time: fmt.stamp.format(new Date(alarm.opened_at)) })));
      item.appendChild(element("span", "alarm-ack", alarm.acked_by ? words(t.acknowledged, { who: alarm.acked_by }) : t.unacknowledged));
      if (alarm.peak_nsv_h !== null && alarm.peak_nsv_h !== undefined) {
        item.appendChild(element("span", "alarm-peak", words(t.peak, { value: formatDose(alarm.peak_nsv_h) })));
      }
      list.appendChild(item);
    });
    document.getElementById("no-alarms").hidden = open.length > 0;
  }

  // The latest reading, fresh: readings of the last few intervals (none: offline).
  function refreshLatest() {
    var end = Date.now() + 5 * MINUTE;  // a probe's clock a little ahead still counts
    var start = Date.now() - config.offline_after_s * 1000;
    var url = config.readings_url + "?" + query({
      resolution: "raw", start: new Date(start).toISOString(), end: new Date(end).toISOString(),
    });
    // the map's layer says whether the station's edge reports it offline (a fresh reading
    // and a dead probe or edge: the page said "online" while the map said offline)
    return Promise.all([getJSON(url), getJSON(config.stations_url)]).then(function (got) {
      var series = got[0];
      var stateEl = document.getElementById("latest-state");
      var last = series.points[series.points.length - 1];
      var feature = got[1].features.filter(function (f) { return f.id === config.station_id; })[0];
      var reported = Boolean(feature && feature.properties.reported_offline);
      if (last) {
        document.getElementById("latest-value").textContent = formatDose(last.mean_nsv_h);
        document.getElementById("latest-time").textContent = fmt.stamp.format(new Date(last.time));
      }
      if (reported) {
        stateEl.textContent = t.reported_offline;
        stateEl.className = "latest-state offline";
      } else if (last) {
        stateEl.textContent = t.online;
        stateEl.className = "latest-state online";
      } else if (document.getElementById("latest-time").textContent) {
        stateEl.textContent = t.offline;
        stateEl.className = "latest-state offline";
      }
    }).catch(function () { /* the chart's load reports the connection */ });
  }

  // -- scales and ticks ----------------------------------------------------------------------

  function niceStep(range, count) {
    var raw = range / Math.max(1, count);
    var power = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var unit = raw / power;
    var nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 2.5 ? 2.5 : unit <= 5 ? 5 : 10;
    return nice * power;
  }

  function niceDomain(low, high, count) {
    if (!(high > low)) {
      var pad = Math.max(1, Math.abs(high) * 0.1);
      low -= pad;
      high += pad;
    }
    var step = niceStep(high - low, count);
    var lo = Math.floor(low / step) * step;
    var hi = Math.ceil(high / step) * step;
    var ticks = [];
    for (var v = lo; v <= hi + step / 2; v += step) ticks.push(Math.round(v / step) * step);
    return { lo: lo, hi: hi, ticks: ticks, step: step };
  }

  var TIME_STEPS = [
    MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY,
  ];

  // Ticks at round local times of the site's zone, each with its label lines.
  function timeTicks(start, end, width) {
    var wanted = Math.max(2, Math.floor(width / 90));
    var span = end - start;
    var ticks = [];
    var step = null;
    for (var i = 0; i < TIME_STEPS.length; i++) {
      if (span / TIME_STEPS[i] <= wanted) {
        step = TIME_STEPS[i];
        break;
      }
    }
    if (step !== null) {
      var local = Math.ceil((start + zoneOffset(start)) / step) * step;
      var lastDay = null;
      for (; ticks.length < 200; local += step) {
        var at = fromWall(local);
        if (at > end) break;
        if (at < start) continue;
        var day = fmt.day.format(new Date(at));
        var lines = step >= DAY ? [day] : [fmt.clock.format(new Date(at))];
        if (step < DAY && day !== lastDay) lines.push(day);
        lastDay = day;
        ticks.push({ at: at, lines: lines });
      }
      return ticks;
    }
    // Months: the first of every 1, 3, 6 or 12 local months.
    var months = [1, 3, 6, 12].filter(function (m) { return span / (m * 30 * DAY) <= wanted; })[0] || 12;
    var first = new Date(start + zoneOffset(start));
    var y = first.getUTCFullYear();
    var m = first.getUTCMonth();
    if (first.getUTCDate() > 1 || first.getUTCHours() || first.getUTCMinutes()) m += 1;
    m = Math.ceil(m / months) * months;
    for (; ticks.length < 200; m += months) {
      var moment = fromWall(Date.UTC(y, m, 1));
      if (moment > end) break;
      if (moment >= start) ticks.push({ at: moment, lines: [fmt.month.format(new Date(moment))] });
    }
    return ticks;
  }

  // -- drawing -------------------------------------------------------------------------------

  function parsePoints(series) {
    return series.points.map(function (p) {
      return {
        t: Date.parse(p.time),
        mean: p.mean_nsv_h,
        min: p.min_nsv_h,
        max: p.max_nsv_h,
        count: p.count,
        rain: p.precip_mm_h === undefined ? null : p.precip_mm_h,
      };
    });
  }

  // Where a point sits on the time axis: a reading at its time, a bucket at its middle.
  function placed(point, resolution) {
    if (resolution === "raw") return point.t;
    var width = resolution === "hour" ? HOUR : DAY;
    return point.t + width / 2;
  }

  function draw() {
    if (!drawn) return;
    var resolution = drawn.series.resolution;
    var points = parsePoints(drawn.series);
    var width = Math.max(360, chartEl.clientWidth || 800);
    var plotW = width - MARGIN.left - MARGIN.right;
    var plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    var x0 = view.start, x1 = view.end;
    var banded = resolution !== "raw";

    var low = Infinity, high = -Infinity, rainHigh = 0, hasRain = false;
    points.forEach(function (p) {
      low = Math.min(low, banded ? p.min : p.mean);
      high = Math.max(high, banded ? p.max : p.mean);
      if (p.rain !== null) {
        hasRain = true;
        rainHigh = Math.max(rainHigh, p.rain);
      }
    });
    if (!points.length) {
      low = 0;
      high = 200;
    }
    var yDomain = niceDomain(low, high, 6);
    var rainDomain = niceDomain(0, Math.max(rainHigh, 1), 4);

    function x(ms) { return MARGIN.left + (ms - x0) / (x1 - x0) * plotW; }
    function y(v) { return MARGIN.top + plotH - (v - yDomain.lo) / (yDomain.hi - yDomain.lo) * plotH; }
    function yRain(v) { return MARGIN.top + plotH - v / rainDomain.hi * plotH; }
    function f(n) { return n.toFixed(1); }

    clear(chartEl);
    var root = svg("svg", {
      width: width, height: HEIGHT, viewBox: "0 0 " + width + " " + HEIGHT,
      class: "chart-svg", "aria-hidden": "true",
    }, chartEl);
    var defs = svg("defs", {}, root);
    var clip = svg("clipPath", { id: "plot-clip" }, defs);
    svg("rect", { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH }, clip);
    svg("rect", { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, class: "plot-bg" }, root);

    // grid and axes
    var grid = svg("g", { class: "grid" }, root);
    var axes = svg("g", { class: "axes" }, root);
    yDomain.ticks.forEach(function (v) {
      svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: f(y(v)), y2: f(y(v)) }, grid);
      var label = svg("text", { x: MARGIN.left - 6, y: f(y(v) + 4), class: "tick y-tick", "text-anchor": "end" }, axes);
      label.textContent = dose1.format(v);
    });
    var yTitle = svg("text", {
      x: 14, y: MARGIN.top + plotH / 2, class: "axis-title",
      transform: "rotate(-90 14 " + (MARGIN.top + plotH / 2) + ")", "text-anchor": "middle",
    }, axes);
    yTitle.textContent = "nSv/h";
    timeTicks(x0, x1, plotW).forEach(function (tick) {
      var at = f(x(tick.at));
      svg("line", { x1: at, x2: at, y1: MARGIN.top, y2: MARGIN.top + plotH }, grid);
      var label = svg("text", { x: at, y: MARGIN.top + plotH + 16, class: "tick x-tick", "text-anchor": "middle" }, axes);
      tick.lines.forEach(function (line, i) {
        var span = svg("tspan", { x: at, dy: i ? 14 : 0 }, label);
        span.textContent = line;
      });
    });
    svg("line", { x1: MARGIN.left, x2: MARGIN.left + plotW, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH, class: "axis" }, axes);
    svg("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotH, class: "axis" }, axes);

    var plot = svg("g", { "clip-path": "url(#plot-clip)" }, root);

    // alarm spans, behind everything else
    var spans = svg("g", { class: "alarm-spans" }, plot);
    var spanCount = 0;
    drawn.alarms.forEach(function (alarm) {
      var opened = Date.parse(alarm.opened_at);
      var ended = alarm.cleared_at || (alarm.state.indexOf("cleared") === 0 ? alarm.updated_at : null);
      var closed = ended ? Date.parse(ended) : Date.now();
      if (closed < x0 || opened > x1) return;
      var left = x(Math.max(opened, x0));
      var right = x(Math.min(closed, x1));
      var rect = svg("rect", {
        x: f(left), y: MARGIN.top, width: f(Math.max(2, right - left)), height: plotH,
        fill: config.severity_colours[alarm.severity] || "#888", class: "alarm-span",
        "data-severity": alarm.severity, "data-alarm-id": alarm.id,
      }, spans);
      var title = svg("title", {}, rect);
      title.textContent = (t["severity_" + alarm.severity] || alarm.severity) + " · " + alarm.kind + " · " +
        fmt.stamp.format(new Date(opened)) + " – " +
        (ended ? fmt.stamp.format(new Date(closed)) : t.ongoing);
      spanCount += 1;
    });

    // rain bars on their own axis (right)
    var bars = 0;
    if (hasRain) {
      var rainLayer = svg("g", { class: "rain-bars" }, plot);
      var slot = resolution === "raw" ? stepOf.raw : stepOf[resolution];
      var barW = Math.max(1, Math.min(40, slot / (x1 - x0) * plotW * 0.8));
      points.forEach(function (p) {
        if (!(p.rain > 0)) return;
        var centre = x(placed(p, resolution));
        var top = yRain(p.rain);
        svg("rect", {
          x: f(centre - barW / 2), y: f(top), width: f(barW),
          height: f(MARGIN.top + plotH - top), class: "rain-bar",
        }, rainLayer);
        bars += 1;
      });
      var rainAxis = svg("g", { class: "axes rain-axis" }, root);
      rainDomain.ticks.forEach(function (v) {
        var label = svg("text", {
          x: MARGIN.left + plotW + 6, y: f(yRain(v) + 4), class: "tick rain-tick", "text-anchor": "start",
        }, rainAxis);
        label.textContent = dose1.format(v);
      });
      var rainTitle = svg("text", {
        x: width - 10, y: MARGIN.top + plotH / 2, class: "axis-title rain-title", "text-anchor": "middle",
        transform: "rotate(90 " + (width - 10) + " " + (MARGIN.top + plotH / 2) + ")",
      }, rainAxis);
      rainTitle.textContent = t.rain_axis;
    }

    // the series: break the line where readings are missing
    var gap = 2.5 * stepOf[resolution];
    var segments = [];
    var current = null;
    points.forEach(function (p, i) {
      if (!current || p.t - points[i - 1].t > gap) {
        current = [];
        segments.push(current);
      }
      current.push(p);
    });
    var series = svg("g", { class: "series" }, plot);
    segments.forEach(function (segment) {
      if (banded) {
        var upper = segment.map(function (p) { return f(x(placed(p, resolution))) + "," + f(y(p.max)); });
        var lower = segment.slice().reverse().map(function (p) { return f(x(placed(p, resolution))) + "," + f(y(p.min)); });
        svg("polygon", { points: upper.concat(lower).join(" "), class: "minmax-band" }, series);
      }
      var d = segment.map(function (p, i) {
        return (i ? "L" : "M") + f(x(placed(p, resolution))) + " " + f(y(p.mean));
      }).join("");
      svg("path", { d: d, class: "mean-line" }, series);
      if (segment.length === 1) {
        svg("circle", { cx: f(x(placed(segment[0], resolution))), cy: f(y(segment[0].mean)), r: 2.5, class: "lone-point" }, series);
      }
    });

    // hover guide, drag selection and the surface that takes the pointer
    var guide = svg("line", { class: "hover-guide", y1: MARGIN.top, y2: MARGIN.top + plotH, x1: -10, x2: -10 }, root);
    var selection = svg("rect", { class: "zoom-selection", x: 0, y: MARGIN.top, width: 0, height: plotH, visibility: "hidden" }, root);
    var surface = svg("rect", {
      x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, class: "pointer-surface",
    }, root);
    attachPointer(surface, guide, selection, points, resolution, { x: x, plotW: plotW });

    state.points = points.length;
    state.spans = spanCount;
    state.rainBars = bars;
    document.getElementById("chart-points").textContent =
      "· " + t["res_" + resolution] + " · " + words(t.points, { n: points.length });
  }

  // -- pointer: read a value, drag to zoom ---------------------------------------------------

  function attachPointer(surface, guide, selection, points, resolution, scale) {
    var dragFrom = null;

    function timeAt(clientX) {
      var box = surface.getBoundingClientRect();
      var ratio = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
      return { ms: view.start + ratio * (view.end - view.start), px: MARGIN.left + ratio * scale.plotW };
    }

    function nearest(ms) {
      var lo = 0, hi = points.length - 1;
      if (hi < 0) return null;
      while (hi - lo > 1) {
        var mid = (lo + hi) >> 1;
        if (placed(points[mid], resolution) < ms) lo = mid; else hi = mid;
      }
      return Math.abs(placed(points[lo], resolution) - ms) <= Math.abs(placed(points[hi], resolution) - ms)
        ? points[lo] : points[hi];
    }

    function readout(ms) {
      var p = nearest(ms);
      if (!p) return;
      var at = scale.x(placed(p, resolution)).toFixed(1);
      guide.setAttribute("x1", at);
      guide.setAttribute("x2", at);
      var text = fmt.stamp.format(new Date(p.t)) + " · " + formatDose(p.mean);
      if (resolution !== "raw") text += " (" + dose1.format(p.min) + "–" + dose1.format(p.max) + ")";
      if (p.rain !== null) text += " · " + words(t.rain, { value: dose1.format(p.rain) });
      readoutEl.textContent = text;
    }

    surface.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      dragFrom = timeAt(event.clientX);
      if (surface.setPointerCapture) surface.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    surface.addEventListener("pointermove", function (event) {
      var here = timeAt(event.clientX);
      if (dragFrom) {
        selection.setAttribute("x", Math.min(dragFrom.px, here.px).toFixed(1));
        selection.setAttribute("width", Math.abs(here.px - dragFrom.px).toFixed(1));
        selection.setAttribute("visibility", "visible");
      } else {
        readout(here.ms);
      }
    });
    function finish(event) {
      if (!dragFrom) return;
      var from = dragFrom;
      dragFrom = null;
      selection.setAttribute("visibility", "hidden");
      var here = timeAt(event.clientX);
      if (Math.abs(here.px - from.px) < 6) return;  // a click, not a drag
      zoomTo(Math.min(from.ms, here.ms), Math.max(from.ms, here.ms));
    }
    surface.addEventListener("pointerup", finish);
    surface.addEventListener("pointercancel", function () {
      dragFrom = null;
      selection.setAttribute("visibility", "hidden");
    });
  }

  function zoomTo(start, end) {
    if (end - start < MIN_ZOOM) {
      var middle = (start + end) / 2;
      start = middle - MIN_ZOOM / 2;
      end = middle + MIN_ZOOM / 2;
    }
    start = Math.round(start / 1000) * 1000;
    end = Math.round(end / 1000) * 1000;
    view = { start: start, end: end, resolution: finer(view.resolution, autoResolution(end - start)) };
    state.zoomed = true;
    load();
  }

  // -- controls ------------------------------------------------------------------------------

  function choosePreset(key) {
    state.preset = key;
    state.zoomed = false;
    view = presetView(key);
    load();
  }

  document.getElementById("presets").addEventListener("click", function (event) {
    var button = event.target.closest("[data-preset]");
    if (button) choosePreset(button.getAttribute("data-preset"));
  });
  document.getElementById("resolutions").addEventListener("click", function (event) {
    var button = event.target.closest("[data-resolution]");
    if (!button || button.disabled) return;
    view = { start: view.start, end: view.end, resolution: button.getAttribute("data-resolution") };
    load();
  });
  resetButton.addEventListener("click", function () { choosePreset(state.preset); });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(draw, 150);
  });

  // A period that ends now follows the clock; a zoomed one stays where the officer put it.
  setInterval(function () {
    refreshLatest();
    if (state.zoomed) return;
    var span = view.end - view.start;
    view = { start: Date.now() - span, end: Date.now(), resolution: view.resolution };
    load();
  }, config.poll_ms);

  view = presetView(state.preset);
  load();
})();
