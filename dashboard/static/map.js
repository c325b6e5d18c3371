/* radmon live map: draws every station, then polls the stations layer with If-None-Match and
   updates the markers in place. Station names come from devices and CSV files, so they only
   ever reach the page as textContent (never innerHTML). Plain ES5-ish JS, no build step. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("radmon-config").textContent);
  var t = config.strings;
  var statusEl = document.getElementById("status");
  var map = L.map("map");
  var state = { map: map, markers: {}, etag: null, updates: 0 };
  window.radmonMap = state;

  L.tileLayer(config.tile_url, { attribution: config.tile_attribution, maxZoom: 19 }).addTo(map);

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

  function colourFor(p) {
    if (p.dose_rate_nsv_h === null || !p.online) return config.no_data_colour;
    var colour = config.bands[0].colour;
    config.bands.forEach(function (band) {
      if (p.dose_rate_nsv_h >= band.lower_nsv_h) colour = band.colour;
    });
    return colour;
  }

  function styleFor(p) {
    var alarm = Boolean(p.severity);
    return {
      fillColor: colourFor(p),
      fillOpacity: 0.9,
      color: alarm ? "#b71c1c" : "#263238",
      weight: alarm ? 3 : 1,
      radius: alarm ? 11 : 8,
    };
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

  function row(box, label, value) {
    var line = element("div");
    line.appendChild(element("span", "label", label + ": "));
    line.appendChild(element("span", "value", value));
    box.appendChild(line);
  }

  function popupContent(p) {
    var box = element("div", "station-popup");
    box.appendChild(element("strong", "station-name", p.name));
    row(box, t.station_id, p.station_id);
    var dose = p.dose_rate_nsv_h === null ? t.never_reported : formatDose(p.dose_rate_nsv_h);
    row(box, t.dose_rate, p.online || p.dose_rate_nsv_h === null ? dose : dose + " (" + t.offline + ")");
    if (p.time) row(box, t.time, timeFormat(p.timezone || config.timezone, true).format(new Date(p.time)));
    if (p.district) row(box, t.district, p.district);
    if (p.severity) row(box, t.alarm, t["severity_" + p.severity] || p.severity);
    return box;
  }

  function apply(collection) {
    var seen = {};
    collection.features.forEach(function (feature) {
      var p = feature.properties;
      var id = p.station_id;
      var at = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
      var marker = state.markers[id];
      seen[id] = true;
      if (!marker) {
        marker = L.circleMarker(at, Object.assign({ className: "station-marker station-" + id }, styleFor(p)));
        marker.addTo(map).bindPopup(popupContent(p)).bindTooltip(element("span", null, p.name));
        marker.getElement().setAttribute("data-station-id", id);
        state.markers[id] = marker;
      } else {
        marker.setLatLng(at).setStyle(styleFor(p));
        marker.setPopupContent(popupContent(p)).setTooltipContent(element("span", null, p.name));
      }
      marker.getElement().setAttribute("data-colour", colourFor(p));
    });
    Object.keys(state.markers).forEach(function (id) {
      if (!seen[id]) {
        map.removeLayer(state.markers[id]);
        delete state.markers[id];
      }
    });
  }

  function showStatus() {
    var n = Object.keys(state.markers).length;
    statusEl.textContent = t.status.replace("{n}", n).replace("{time}", clock.format(new Date()));
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

  fit(config.initial.data);  // first: Leaflet draws layers only once the map has a view
  apply(config.initial.data);
  state.etag = config.initial.etag;
  showStatus();
  setTimeout(poll, config.poll_ms);
})();
