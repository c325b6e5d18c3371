/* radmon live map: draws every station, then polls the stations layer with If-None-Match and
   updates the markers in place. A marker's fill is its dose-rate band, its ring the severity of
   its open alarms, grey when the station is offline. A popup shows the latest value, a
   sparkline of the last 24 h and the open alarms. Without tiles (no internet) the base layer
   falls back to the province outline. Station names and alarm texts come from devices, files
   and people, so they only ever reach the page as textContent (never innerHTML). Plain ES5-ish
   JS, no build step. */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var config = JSON.parse(document.getElementById("radmon-config").textContent);
  var initial = config.initial.data;
  var t = config.strings;
  var statusEl = document.getElementById("status");
  var map = L.map("map");
  var state = {
    map: map,
    markers: {},       // station id -> L.circleMarker (also those filtered out)
    props: {},         // station id -> latest GeoJSON properties
    etag: null,
    updates: 0,
    base: "tiles",     // which base layer is on: "tiles" or "outline"
    fallback: false,   // the outline replaced unreachable tiles
    tiles: { loaded: 0, errors: 0 },
    popup: null,       // { id, box } of the open popup
    layers: {},
  };
  window.radmonMap = state;

  var rings = {};
  config.rings.forEach(function (ring) { rings[ring.severity] = ring; });

  var doseFormat = new Intl.NumberFormat(config.locale, { maximumFractionDigits: 1 });
  var microFormat = new Intl.NumberFormat(config.locale, {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });

  function timeFormat(zone, withDate) {
    var options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
    if (withDate) {
      options.year = "numeric";
      options.month = "2-digit";
      options.day = "2-digit";
      options.timeZoneName = "short";
    }
    try {
      return new Intl.DateTimeFormat(config.locale, Object.assign({ timeZone: zone }, options));
    } catch (e) {  // a zone this browser does not know: fall back to the site's
      return new Intl.DateTimeFormat(config.locale, Object.assign({ timeZone: config.timezone }, options));
    }
  }

  var clock = timeFormat(config.timezone, false);
  var siteTime = timeFormat(config.timezone, true);

  // -- base layers: configured tiles, or the province outline when they cannot be reached ----

  map.createPane("outline");  // under the markers, above the tiles
  map.getPane("outline").style.zIndex = 350;

  var tiles = L.tileLayer(config.tile_url, { attribution: config.tile_attribution, maxZoom: 19 });
  var outline = null;
  if (config.outline_url) {
    outline = L.geoJSON(null, {
      pane: "outline",
      interactive: false,
      className: "province-outline",
      attribution: config.outline_attribution,
      style: { color: "#37474f", weight: 1.5, fillColor: "#f3efe4", fillOpacity: 1 },
    });
  }
  state.layers.tiles = tiles;
  state.layers.outline = outline;

  function noteBase(name) {
    state.base = name;
    map.getContainer().classList.toggle("base-outline", name === "outline");
  }

  function fallBack() {
    // tiles unreachable (no internet, blocked proxy): the outline, unless a person chose
    if (state.fallback || state.chosenBase || state.tiles.loaded > 0) return;
    state.fallback = true;
    if (outline) {
      state.switching = true;  // not a person's choice: see baselayerchange below
      map.removeLayer(tiles);
      outline.addTo(map);
      state.switching = false;
      noteBase("outline");
    }
    showStatus();
  }

  tiles.on("tileload", function () { state.tiles.loaded += 1; });
  tiles.on("tileerror", function () {
    state.tiles.errors += 1;
    if (state.tiles.errors >= config.tile_errors_before_fallback) fallBack();
  });
  setTimeout(fallBack, config.tile_timeout_ms);
  tiles.addTo(map);

  if (outline) {
    fetch(config.outline_url, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        outline.addData(data);
        state.outlineLoaded = true;
      })
      .catch(function () { state.outlineLoaded = false; });
  }

  // -- overlays: which stations are drawn --------------------------------------------------------

  var drawn = L.layerGroup().addTo(map);  // the markers on the map now
  var filters = {
    all: L.layerGroup().addTo(map),
    alarm: L.layerGroup(),
    offline: L.layerGroup(),
  };
  state.layers.filters = filters;

  function wanted(p) {
    if (map.hasLayer(filters.all)) return true;
    if (map.hasLayer(filters.alarm) && p.severity) return true;
    return map.hasLayer(filters.offline) && !p.online;
  }

  function refilter() {
    Object.keys(state.markers).forEach(function (id) { place(id); });
    showStatus();
  }

  function place(id) {
    var marker = state.markers[id];
    var show = wanted(state.props[id]);
    if (show && !drawn.hasLayer(marker)) drawn.addLayer(marker);
    else if (!show && drawn.hasLayer(marker)) drawn.removeLayer(marker);
  }

  var bases = {};
  bases[t.layer_tiles] = tiles;
  if (outline) bases[t.layer_outline] = outline;
  var overlays = {};
  overlays[t.layer_all] = filters.all;
  overlays[t.layer_alarm] = filters.alarm;
  overlays[t.layer_offline] = filters.offline;
  state.layers.control = L.control.layers(bases, overlays, { collapsed: true }).addTo(map);

  function listenToControl() {
    // only after the first view: layers added before it join the map when the view is set,
    // and the control reports that as a change too
    map.on("baselayerchange", function (e) {
      if (state.switching) return;
      state.chosenBase = true;  // a person chose: no more automatic switching
      noteBase(e.layer === outline ? "outline" : "tiles");
      showStatus();
    });
    map.on("overlayadd overlayremove", refilter);
  }

  // -- markers -------------------------------------------------------------------------------

  function colourFor(p) {
    if (p.dose_rate_nsv_h === null || !p.online) return config.no_data_colour;
    var colour = config.bands[0].colour;
    config.bands.forEach(function (band) {
      if (p.dose_rate_nsv_h >= band.lower_nsv_h) colour = band.colour;
    });
    return colour;
  }

  function styleFor(p) {
    var ring = p.severity ? rings[p.severity] : null;
    return {
      fillColor: colourFor(p),
      fillOpacity: 0.9,
      color: ring ? ring.colour : config.plain_edge,
      weight: ring ? ring.weight : 1,
      radius: ring ? 11 : 8,
    };
  }

  function decorate(marker) {
    // the element is made anew each time the marker is added to the map
    var el = marker.getElement();
    var p = state.props[marker.stationId];
    if (!el || !p) return;
    el.setAttribute("data-station-id", p.station_id);
    el.setAttribute("data-colour", colourFor(p));
    el.setAttribute("data-severity", p.severity || "");
    el.classList.toggle("offline", !p.online);
  }

  function signature(feature) {
    var p = feature.properties;
    return [feature.geometry.coordinates[0], feature.geometry.coordinates[1], p.name,
      p.dose_rate_nsv_h, p.time, p.severity, p.online, p.district].join("\u0001");
  }

  function formatDose(value) {
    var text = doseFormat.format(value) + " nSv/h";
    if (value >= 1000) text += " (" + microFormat.format(value / 1000) + " µSv/h)";
    return text;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(href, className, text) {
    var a = element("a", className, text);
    a.setAttribute("href", href);
    return a;
  }

  function row(box, label, value) {
    var line = element("div");
    line.appendChild(element("span", "label", label + ": "));
    line.appendChild(element("span", "value", value));
    box.appendChild(line);
  }

  function latestPart(p) {
    var part = element("div", "popup-latest");
    part.appendChild(element("strong", "station-name", p.name));
    row(part, t.station_id, p.station_id);
    var dose = p.dose_rate_nsv_h === null ? t.never_reported : formatDose(p.dose_rate_nsv_h);
    var offline = p.reported_offline ? t.reported_offline : t.offline;
    row(part, t.dose_rate, p.online || p.dose_rate_nsv_h === null ? dose : dose + " (" + offline + ")");
    if (p.time) row(part, t.time, timeFormat(p.timezone || config.timezone, true).format(new Date(p.time)));
    if (p.district) row(part, t.district, p.district);
    if (p.severity) row(part, t.alarm, t["severity_" + p.severity] || p.severity);
    return part;
  }

  function popupFor(marker) {
    var id = marker.stationId;
    var p = state.props[id];
    var box = element("div", "station-popup");
    box.setAttribute("data-station-id", id);
    box.appendChild(latestPart(p));
    var spark = element("div", "popup-spark");
    spark.appendChild(element("div", "popup-heading", t.last_24h));
    spark.appendChild(element("div", "popup-note", t.loading_short));
    box.appendChild(spark);
    var alarms = element("div", "popup-alarms");
    alarms.appendChild(element("div", "popup-heading", t.open_alarms));
    alarms.appendChild(element("div", "popup-note", t.loading_short));
    box.appendChild(alarms);
    box.appendChild(link(config.station_page + encodeURIComponent(id), "station-link", t.station_page + " →"));
    state.popup = { id: id, box: box, severity: p.severity };
    loadSeries(id, spark);
    loadAlarms(id, alarms);
    return box;
  }

  function getJSON(url) {
    return fetch(url, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function replaceNote(part, node) {
    var note = part.querySelector(".popup-note, .sparkline, .alarm-list");
    if (note) part.replaceChild(node, note);
    else part.appendChild(node);
  }

  function loadSeries(id, part) {
    var url = config.readings_url + encodeURIComponent(id) + "/readings?resolution=hour";
    getJSON(url)
      .then(function (series) { replaceNote(part, sparkline(series)); })
      .catch(function () { replaceNote(part, element("div", "popup-note", t.unavailable)); });
  }

  function sparkline(series) {
    var points = series.points || [];
    if (!points.length) return element("div", "popup-note", t.no_series);
    var width = 220, height = 48, pad = 3;
    var start = Date.parse(series.start), end = Date.parse(series.end);
    var low = Infinity, high = -Infinity;
    points.forEach(function (point) {
      low = Math.min(low, point.mean_nsv_h);
      high = Math.max(high, point.mean_nsv_h);
    });
    var span = high - low || Math.max(high * 0.1, 1);  // a flat line sits in the middle
    var base = high - low ? low : low - span / 2;
    function x(time) {
      var at = (Date.parse(time) - start) / Math.max(end - start, 1);
      return (pad + Math.min(Math.max(at, 0), 1) * (width - 2 * pad)).toFixed(1);
    }
    function y(value) {
      return (height - pad - ((value - base) / span) * (height - 2 * pad)).toFixed(1);
    }
    var d = points.map(function (point, i) {
      return (i ? "L" : "M") + x(point.time) + " " + y(point.mean_nsv_h);
    }).join(" ");
    var wrap = element("div", "sparkline");
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", "sparkline-chart");
    svg.setAttribute("role", "img");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    path.setAttribute("class", "sparkline-path");
    path.setAttribute("data-points", String(points.length));
    svg.appendChild(path);
    var last = points[points.length - 1];
    var dot = document.createElementNS(SVG_NS, "circle");
    dot.setAttribute("cx", x(last.time));
    dot.setAttribute("cy", y(last.mean_nsv_h));
    dot.setAttribute("r", "2.5");
    dot.setAttribute("class", "sparkline-last");
    svg.appendChild(dot);
    var label = t.series_range.replace("{min}", formatDose(low)).replace("{max}", formatDose(high));
    svg.setAttribute("aria-label", t.last_24h + ": " + label);
    wrap.appendChild(svg);
    wrap.appendChild(element("div", "popup-note sparkline-range", label));
    return wrap;
  }

  function loadAlarms(id, part) {
    var url = config.alarms_url + "?state=open&limit=20&station_id=" + encodeURIComponent(id);
    getJSON(url)
      .then(function (alarms) { replaceNote(part, alarmList(alarms)); })
      .catch(function () { replaceNote(part, element("div", "popup-note", t.unavailable)); });
  }

  function alarmList(alarms) {
    if (!alarms.length) return element("div", "popup-note alarm-list", t.no_open_alarms);
    var list = element("ul", "alarm-list");
    alarms.forEach(function (alarm) {
      var item = element("li", "alarm-item severity-" + alarm.severity);
      var words = [t["severity_" + alarm.severity] || alarm.severity, alarm.kind];
      if (alarm.opened_at) words.push(siteTime.format(new Date(alarm.opened_at)));
      item.appendChild(link(config.alarm_page + encodeURIComponent(alarm.id), "alarm-link", words.join(" · ")));
      list.appendChild(item);
    });
    return list;
  }

  function refreshPopup(id) {
    var open = state.popup;
    if (!open || open.id !== id) return;
    var p = state.props[id];
    var old = open.box.querySelector(".popup-latest");
    if (old) open.box.replaceChild(latestPart(p), old);
    if (p.severity !== open.severity) {
      open.severity = p.severity;
      loadAlarms(id, open.box.querySelector(".popup-alarms"));
    }
  }

  function apply(collection) {
    var seen = {};
    collection.features.forEach(function (feature) {
      var p = feature.properties;
      var id = p.station_id;
      var at = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
      var marker = state.markers[id];
      var sig = signature(feature);
      seen[id] = true;
      state.props[id] = p;
      if (!marker) {
        marker = L.circleMarker(at, Object.assign({ className: "station-marker station-" + id }, styleFor(p)));
        marker.stationId = id;
        marker.signature = sig;
        marker.on("add", function () { decorate(marker); });
        marker.bindPopup(popupFor, { minWidth: 240, maxWidth: 320 });
        marker.bindTooltip(function () { return element("span", null, state.props[id].name); });
        state.markers[id] = marker;
        place(id);
        return;
      }
      if (marker.signature !== sig) {
        marker.signature = sig;
        marker.setLatLng(at).setStyle(styleFor(p));
        decorate(marker);
        refreshPopup(id);
      }
      place(id);
    });
    Object.keys(state.markers).forEach(function (id) {
      if (!seen[id]) {
        drawn.removeLayer(state.markers[id]);
        delete state.markers[id];
        delete state.props[id];
      }
    });
  }

  map.on("popupclose", function (e) {
    // another station's popup may already be open: forget only the one that closed
    var closed = e.popup.getElement();
    if (state.popup && closed && closed.contains(state.popup.box)) state.popup = null;
  });

  function showStatus() {
    var n = Object.keys(state.markers).length;
    var text = t.status.replace("{n}", n).replace("{time}", clock.format(new Date()));
    if (state.fallback) text += " · " + (outline ? t.tiles_fallback : t.tiles_unavailable);
    statusEl.textContent = text;
  }

  function fit(collection) {
    var points = collection.features.map(function (f) {
      return [f.geometry.coordinates[1], f.geometry.coordinates[0]];
    });
    var legend = document.querySelector(".legend");
    var below = legend ? legend.offsetHeight + 30 : 30;  // keep markers clear of the legend
    if (points.length) {
      map.fitBounds(L.latLngBounds(points), {
        paddingTopLeft: [30, 30],
        paddingBottomRight: [30, below],
        maxZoom: 13,
      });
    } else {
      map.setView([16.0, 106.0], 6);  // Vietnam, until stations exist
    }
  }

  function poll() {
    var headers = { Accept: "application/geo+json, application/json" };
    if (state.etag) headers["If-None-Match"] = state.etag;
    fetch(config.stations_url, { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 304) return showStatus();
        if (response.status === 401) {
          statusEl.textContent = t.login_pending;
          return;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        state.etag = response.headers.get("ETag");
        return response.json().then(function (collection) {
          apply(collection);
          state.updates += 1;
          showStatus();
        });
      })
      .catch(function () {
        statusEl.textContent = t.connection_lost;
      })
      .then(function () {
        setTimeout(poll, config.poll_ms);
      });
  }

  fit(initial);  // first: Leaflet draws layers only once the map has a view
  listenToControl();
  apply(initial);
  state.etag = config.initial.etag;
  state.drawnAt = performance.now();  // ms since navigation start: what the map benchmark reads
  requestAnimationFrame(function () {
    setTimeout(function () { state.paintedAt = performance.now(); }, 0);  // after that paint
  });
  showStatus();
  setTimeout(poll, config.poll_ms);
})();
