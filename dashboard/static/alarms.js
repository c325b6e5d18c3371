/* radmon alarm board and alarm page.
   The board polls /api/v1/alarms with If-None-Match, keeps its rows in place, and cues alarms it
   had not seen since it loaded (row highlight, banner, count in the title, a Web Audio beep).
   Both pages acknowledge, clear and comment through the JSON API with the page's CSRF token.
   Station names and comments come from devices and people: they only ever reach the page as
   textContent (never innerHTML). Plain ES5-ish JS, no build step. */
(function () {
  "use strict";

  var configEl = document.getElementById("radmon-config");
  if (!configEl) return;
  var config = JSON.parse(configEl.textContent);
  var t = config.strings;
  var statusEl = document.getElementById("status");
  var RANK = {};
  config.severities.forEach(function (s, i) { RANK[s] = i; });

  // -- shared ------------------------------------------------------------------------------

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function say(key, values) {
    var text = t[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  function dateFormat(options) {
    try {
      return new Intl.DateTimeFormat(config.locale, Object.assign({ timeZone: config.timezone }, options));
    } catch (e) {  // a zone this browser does not know: the browser's own
      return new Intl.DateTimeFormat(config.locale, options);
    }
  }

  var fullTime = dateFormat({
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short",
  });
  var clock = dateFormat({ hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  var numberFormat = new Intl.NumberFormat(config.locale, { maximumFractionDigits: 2 });

  function localTime(iso) {
    if (!iso) return "–";
    var moment = new Date(iso);
    return isNaN(moment.getTime()) ? String(iso) : fullTime.format(moment);
  }

  function number(value) {
    return value === null || value === undefined ? "–" : numberFormat.format(value);
  }

  function timeElement(iso) {
    var node = element("time", null, localTime(iso));
    if (iso) node.setAttribute("datetime", iso);
    return node;
  }

  function localiseTimes(root) {
    Array.prototype.forEach.call(root.querySelectorAll("time[datetime]"), function (node) {
      node.textContent = localTime(node.getAttribute("datetime"));
    });
  }

  function isOpen(alarm) {
    return alarm.state === "active_unack" || alarm.state === "active_ack";
  }

  function stateText(alarm) {
    return say("state_" + alarm.state, { name: alarm.acked_by || "" });
  }

  function kindText(kind) {
    return t["kind_" + kind] || kind;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function detailText(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map(function (item) {
        return item && item.msg ? item.msg : JSON.stringify(item);
      }).join("; ");
    }
    return "";
  }

  /* The server's answer to a refused write, in words: what kind of refusal, then its detail. */
  function problem(response) {
    return response.json().then(function (body) {
      return detailText(body && body.detail);
    }, function () {
      return "";
    }).then(function (detail) {
      var head = t["error_" + response.status] || t.error_other + " (HTTP " + response.status + ")";
      return detail ? head + ": " + detail : head;
    });
  }

  /* POST one action; resolves with the alarm as stored, rejects with an Error in words. */
  function send(alarmId, action, note) {
    var path = action === "comment" ? "comments" : action;
    var body = action === "comment" ? { text: note } : note ? { comment: note } : {};
    return fetch(config.alarms_url + "/" + alarmId + "/" + path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRF-Token": csrfToken(),
      },
      body: JSON.stringify(body),
    }).then(function (response) {
      if (response.ok) return response.json();
      return problem(response).then(function (message) { throw new Error(message); });
    }, function () {
      throw new Error(t.error_network);
    });
  }

  function showMessage(node, text, isError) {
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  // -- the alarm page ------------------------------------------------------------------------

  function eventDetails(details) {
    return Object.keys(details || {}).map(function (key) {
      var value = details[key];
      if (key === "severity" || key === "from" || key === "to") value = t["severity_" + value] || value;
      else if (/_at$/.test(key)) value = localTime(value);
      else if (typeof value === "number") value = number(value);
      return (t["detail_" + key] || key) + ": " + value;
    }).join("; ");
  }

  function historyRow(item) {
    var row = element("tr", "event event-" + item.event);
    var when = element("td");
    when.appendChild(timeElement(item.at));
    row.appendChild(when);
    row.appendChild(element("td", null, t["event_" + item.event] || item.event));
    row.appendChild(element("td", "actor", item.actor || t.system));
    var note = element("td", "note");
    if (item.note) note.appendChild(element("span", "note-text", item.note));
    var extra = eventDetails(item.details);
    if (extra) note.appendChild(element("span", "event-details", " " + extra));
    row.appendChild(note);
    return row;
  }

  function alarmPage() {
    var alarm = config.alarm;
    var form = document.getElementById("alarm-actions");
    localiseTimes(document.querySelector("main"));
    if (!form) return;
    var note = document.getElementById("action-note");
    var message = form.querySelector(".action-message");
    var buttons = form.querySelectorAll("button[data-action]");
    var page = { actions: 0 };
    window.radmonAlarm = page;

    function setTime(id, iso) {
      var cell = document.getElementById(id);
      cell.textContent = "";
      if (iso) cell.appendChild(timeElement(iso));
      else cell.textContent = "–";
    }

    function showAlarm(stored) {
      alarm = stored;
      document.getElementById("alarm-state").textContent = stateText(alarm);
      document.getElementById("acked-by").textContent = alarm.acked_by || "–";
      setTime("acked-at", alarm.acked_at);
      setTime("cleared-at", alarm.cleared_at);
      document.getElementById("cleared-by").textContent =
        alarm.cleared_by || (alarm.cleared_at ? t.system : "–");
      statusEl.textContent = (t["severity_" + alarm.severity] || alarm.severity) + " · " + stateText(alarm);
      form.querySelector('[data-action="ack"]').hidden = Boolean(alarm.acked_by);
      form.querySelector('[data-action="clear"]').hidden = !isOpen(alarm);
    }

    function reloadHistory() {
      return fetch(config.alarms_url + "/" + alarm.id, {
        headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin",
      }).then(function (response) {
        if (!response.ok) return;
        return response.json().then(function (body) {
          var rows = document.getElementById("history-rows");
          while (rows.firstChild) rows.removeChild(rows.firstChild);
          body.history.forEach(function (item) { rows.appendChild(historyRow(item)); });
        });
      });
    }

    function act(action) {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      showMessage(message, t.sending, false);
      send(alarm.id, action, note.value.trim()).then(function (stored) {
        page.actions += 1;
        note.value = "";
        showAlarm(stored);
        showMessage(message, t["done_" + action], false);
        return reloadHistory();
      }, function (error) {
        showMessage(message, error.message, true);
      }).then(function () {
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      });
    }

    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () { act(button.getAttribute("data-action")); });
    });
  }

  // -- the board: sound ----------------------------------------------------------------------

  var SOUND_KEY = "radmon.alarmSound";
  // How often an emergency nobody has dealt with sounds again.
  var REMIND_MS = 15000;

  function makeSound(board) {
    var AudioCtor = window.AudioContext || window.webkitAudioContext;
    var toggle = document.getElementById("sound-toggle");
    var hint = document.getElementById("sound-hint");
    var audio = null;

    function enabled() {
      try {
        return window.localStorage.getItem(SOUND_KEY) !== "off";
      } catch (e) {
        return true;
      }
    }

    function remember(on) {
      try {
        window.localStorage.setItem(SOUND_KEY, on ? "on" : "off");
      } catch (e) { /* private mode: the choice lasts for this page only */ }
    }

    function context() {
      if (!audio && AudioCtor) {
        try {
          audio = new AudioCtor();
          audio.onstatechange = showHint;
        } catch (e) {
          audio = null;
        }
      }
      return audio;
    }

    function showHint() {
      hint.hidden = !(enabled() && audio && audio.state === "suspended");
    }

    function showToggle() {
      var on = enabled();
      toggle.textContent = on ? t.sound_on : t.sound_off;
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.hidden = !AudioCtor;
      showHint();
    }

    function unlock() {
      if (audio && audio.state === "suspended" && enabled()) {
        audio.resume().then(showHint, showHint);
      }
    }

    function tone(at) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.2);
      board.beeps += 1;
    }

    /* One short beep; three for an emergency. Nothing while the browser holds audio back. */
    function beep(emergency) {
      if (!enabled() || !context()) return;
      if (audio.state !== "running") {
        showHint();
        return;
      }
      var start = audio.currentTime + 0.02;
      var count = emergency ? 3 : 1;
      for (var i = 0; i < count; i += 1) tone(start + 0.3 * i);
    }

    toggle.addEventListener("click", function () {
      remember(!enabled());
      if (enabled()) {
        context();
        unlock();
      }
      showToggle();
    });
    hint.addEventListener("click", unlock);
    // Browsers release audio after the first gesture on the page, whichever it is.
    document.addEventListener("click", unlock, true);
    document.addEventListener("keydown", unlock, true);
    if (enabled()) context();
    showToggle();
    return { beep: beep };
  }

  // -- the board -----------------------------------------------------------------------------

  function alarmBoard() {
    var tbody = document.getElementById("alarm-rows");
    var empty = document.getElementById("no-alarms");
    var banner = document.getElementById("new-alarms");
    var boardMessage = document.getElementById("board-message");
    var filterForm = document.getElementById("filters");
    var baseTitle = document.title;
    var filters = Object.assign({}, config.filters);
    var board = { alarms: 0, shown: 0, cues: 0, beeps: 0, polls: 0, fresh: 0 };
    window.radmonBoard = board;
    var data = {};         // id -> alarm, as last answered
    var seen = {};         // every id this page has shown since it loaded
    var fresh = {};        // ids cued and not yet looked at
    var rows = {};         // id -> <tr>
    var formRow = null;    // the open action form: {id, action, tr}
    var etag = null;       // {url, tag} of the answer now shown
    var version = 0;       // bumped by every local change, so older polls are dropped
    var timer = null;
    var polling = false;
    var lastRemind = 0;
    var sound = makeSound(board);

    function stationName(id) {
      return Object.prototype.hasOwnProperty.call(config.stations, id) ? config.stations[id] : id;
    }

    function shown(alarm) {
      if (filters.severity && alarm.severity !== filters.severity) return false;
      if (filters.category && alarm.category !== filters.category) return false;
      if (filters.station && alarm.station_id !== filters.station) return false;
      if (!filters.cleared && !isOpen(alarm)) return false;
      return !(filters.unacked && alarm.acked_by);
    }

    function order(a, b) {
      var bySeverity = (RANK[b.severity] || 0) - (RANK[a.severity] || 0);
      if (bySeverity) return bySeverity;
      var byTime = Date.parse(b.opened_at) - Date.parse(a.opened_at);
      return byTime || b.id - a.id;
    }

    function setText(node, text) {
      if (node.textContent !== text) node.textContent = text;
    }

    function actionButton(action, id) {
      var button = element("button", "act act-" + action, t["action_" + action]);
      button.type = "button";
      button.addEventListener("click", function () { openForm(id, action); });
      return button;
    }

    function newRow(alarm) {
      var tr = element("tr", "alarm-row");
      tr.setAttribute("data-alarm-id", alarm.id);
      var station = element("td", "station");
      var link = element("a", "station-link");
      link.href = config.station_page + encodeURIComponent(alarm.station_id);
      station.appendChild(link);
      station.appendChild(document.createTextNode(" "));
      station.appendChild(element("span", "station-id"));
      tr.appendChild(station);
      ["kind", "category", "severity"].forEach(function (name) { tr.appendChild(element("td", name)); });
      var opened = element("td", "opened");
      opened.appendChild(element("time"));
      tr.appendChild(opened);
      tr.appendChild(element("td", "num peak"));
      tr.appendChild(element("td", "num baseline"));
      tr.appendChild(element("td", "state"));
      var actions = element("td", "actions");
      var details = element("a", "open-alarm", t.open_alarm);
      details.href = config.alarm_page + alarm.id;
      actions.appendChild(details);
      if (config.can_act) {
        ["ack", "clear", "comment"].forEach(function (action) {
          actions.appendChild(document.createTextNode(" "));
          actions.appendChild(actionButton(action, alarm.id));
        });
      }
      tr.appendChild(actions);
      return tr;
    }

    function fillRow(tr, alarm) {
      var classes = "alarm-row severity-" + alarm.severity;
      if (fresh[alarm.id]) classes += " new";
      if (alarm.acked_by) classes += " acked";
      if (!isOpen(alarm)) classes += " cleared";
      if (tr.className !== classes) tr.className = classes;
      tr.setAttribute("data-severity", alarm.severity);
      tr.setAttribute("data-state", alarm.state);
      setText(tr.querySelector(".station-link"), stationName(alarm.station_id));
      setText(tr.querySelector(".station-id"), alarm.station_id);
      setText(tr.querySelector(".kind"), kindText(alarm.kind));
      setText(tr.querySelector(".category"), t["category_" + alarm.category] || alarm.category);
      setText(tr.querySelector(".severity"), t["severity_" + alarm.severity] || alarm.severity);
      var time = tr.querySelector("time");
      if (time.getAttribute("datetime") !== alarm.opened_at) {
        time.setAttribute("datetime", alarm.opened_at);
        time.textContent = localTime(alarm.opened_at);
      }
      setText(tr.querySelector(".peak"), number(alarm.peak_nsv_h));
      setText(tr.querySelector(".baseline"), number(alarm.baseline_nsv_h));
      setText(tr.querySelector(".state"), stateText(alarm));
      var ack = tr.querySelector(".act-ack");
      if (ack) ack.hidden = Boolean(alarm.acked_by);
      var clear = tr.querySelector(".act-clear");
      if (clear) clear.hidden = !isOpen(alarm);
    }

    function render() {
      var list = Object.keys(data).map(function (id) { return data[id]; }).filter(shown).sort(order);
      var desired = [];
      var keep = {};
      list.forEach(function (alarm) {
        var tr = rows[alarm.id] || (rows[alarm.id] = newRow(alarm));
        fillRow(tr, alarm);
        keep[alarm.id] = true;
        desired.push(tr);
        if (formRow && formRow.id === alarm.id) desired.push(formRow.tr);
      });
      if (formRow && !keep[formRow.id]) formRow = null;
      Object.keys(rows).forEach(function (id) { if (!keep[id]) delete rows[id]; });
      // Move only what is out of place, so a comment being typed keeps its focus.
      desired.forEach(function (node, i) {
        if (tbody.children[i] !== node) tbody.insertBefore(node, tbody.children[i] || null);
      });
      while (tbody.children.length > desired.length) tbody.removeChild(tbody.lastChild);
      empty.hidden = list.length > 0;
      board.alarms = Object.keys(data).length;
      board.shown = list.length;
      showFresh();
    }

    function showStatus() {
      statusEl.textContent = say("board_status", { n: board.shown, time: clock.format(new Date()) });
    }

    // -- new alarms --

    function showFresh() {
      Object.keys(fresh).forEach(function (id) {
        if (!data[id] || data[id].acked_by) delete fresh[id];
      });
      var n = Object.keys(fresh).length;
      board.fresh = n;
      banner.hidden = n === 0;
      banner.querySelector(".new-count").textContent = say("new_alarms", { n: n });
      document.title = n ? "(" + n + ") " + baseTitle : baseTitle;
    }

    function freshEmergency() {
      return Object.keys(fresh).some(function (id) {
        return data[id] && data[id].severity === "emergency" && isOpen(data[id]);
      });
    }

    function cue(newcomers) {
      newcomers.forEach(function (alarm) { fresh[alarm.id] = true; });
      board.cues += 1;
      var emergency = newcomers.some(function (a) { return a.severity === "emergency"; });
      sound.beep(emergency);
      if (emergency) lastRemind = Date.now();
    }

    function remind() {
      if (freshEmergency() && Date.now() - lastRemind >= REMIND_MS) {
        lastRemind = Date.now();
        sound.beep(true);
      }
    }

    banner.querySelector(".dismiss").addEventListener("click", function () {
      fresh = {};
      render();
    });

    // -- data --

    function apply(list, quiet) {
      var newcomers = [];
      var next = {};
      list.forEach(function (alarm) {
        next[alarm.id] = alarm;
        if (!seen[alarm.id]) {
          seen[alarm.id] = true;
          // an old cleared alarm shown by "show cleared" is not news; a new id always is
          if (isOpen(alarm) || alarm.id > config.max_id) newcomers.push(alarm);
        }
      });
      data = next;
      if (newcomers.length && !quiet) cue(newcomers);
    }

    function pollUrl() {
      return config.alarms_url + "?state=" + (filters.cleared ? "all" : "open");
    }

    function schedule(ms) {
      clearTimeout(timer);
      timer = setTimeout(poll, ms);
    }

    function poll() {
      if (polling) return;  // the answer on its way schedules the next poll
      polling = true;
      var url = pollUrl();
      var asked = version;
      var headers = { Accept: "application/json" };
      if (etag && etag.url === url) headers["If-None-Match"] = etag.tag;
      var stale = false;
      fetch(url, { headers: headers, cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          board.polls += 1;
          if (response.status === 304) return showStatus();
          if (response.status === 401) {
            statusEl.textContent = t.error_401;
            return;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          var tag = response.headers.get("ETag");
          return response.json().then(function (list) {
            if (url !== pollUrl() || asked !== version) {
              stale = true;  // filters or a local action changed the picture meanwhile
              return;
            }
            etag = tag ? { url: url, tag: tag } : null;
            apply(list);
            render();
            showStatus();
          });
        })
        .catch(function () {
          statusEl.textContent = t.connection_lost;
        })
        .then(function () {
          polling = false;
          remind();
          schedule(stale ? 0 : config.poll_ms);
        });
    }

    // -- actions --

    function closeForm() {
      if (formRow && formRow.tr.parentNode) formRow.tr.parentNode.removeChild(formRow.tr);
      formRow = null;
    }

    function openForm(id, action) {
      closeForm();
      var tr = element("tr", "action-row");
      var td = element("td");
      td.colSpan = 9;
      var form = element("form", "action-form action-" + action);
      var label = element("label", null, say(action + "_title", { id: id }));
      var area = element("textarea");
      area.rows = 2;
      area.cols = 60;
      area.maxLength = 2000;
      area.placeholder = action === "comment" ? t.note_required : t.note_optional;
      area.setAttribute("aria-label", area.placeholder);
      var submit = element("button", "submit", t.submit);
      submit.type = "submit";
      var cancel = element("button", "cancel", t.cancel);
      cancel.type = "button";
      var message = element("p", "action-message");
      message.setAttribute("role", "status");
      label.appendChild(element("br"));
      label.appendChild(area);
      form.appendChild(label);
      form.appendChild(submit);
      form.appendChild(document.createTextNode(" "));
      form.appendChild(cancel);
      form.appendChild(message);
      td.appendChild(form);
      tr.appendChild(td);
      formRow = { id: id, action: action, tr: tr };
      cancel.addEventListener("click", function () { closeForm(); render(); });
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        submit.disabled = true;
        showMessage(message, t.sending, false);
        send(id, action, area.value.trim()).then(function (stored) {
          version += 1;
          etag = null;  // the next poll fetches everything again
          data[stored.id] = stored;
          if (action !== "comment") delete fresh[stored.id];
          closeForm();
          render();
          showStatus();
          showMessage(boardMessage, say("done_" + action) + " #" + stored.id, false);
        }, function (error) {
          submit.disabled = false;
          showMessage(message, error.message, true);
        });
      });
      render();
      area.focus();
    }

    // -- filters --

    function readFilters() {
      var wasCleared = filters.cleared;
      filters = {
        severity: filterForm.elements.severity.value,
        category: filterForm.elements.category.value,
        station: filterForm.elements.station.value,
        cleared: filterForm.elements.cleared.checked,
        unacked: filterForm.elements.unacked.checked,
      };
      var params = new URLSearchParams(window.location.search);
      ["severity", "category", "station"].forEach(function (name) {
        if (filters[name]) params.set(name, filters[name]);
        else params.delete(name);
      });
      ["cleared", "unacked"].forEach(function (name) {
        if (filters[name]) params.set(name, "1");
        else params.delete(name);
      });
      var query = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
      render();
      showStatus();
      if (filters.cleared !== wasCleared) schedule(0);
    }

    filterForm.addEventListener("change", readFilters);
    filterForm.addEventListener("submit", function (event) {
      event.preventDefault();
      readFilters();
    });

    apply(config.initial.data, true);
    render();
    showStatus();
    schedule(config.poll_ms);
  }

  if (document.getElementById("alarm-rows")) alarmBoard();
  else if (config.alarm) alarmPage();
})();
