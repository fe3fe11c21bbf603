// Wharf console: reloads the live tables (elements with data-refresh) from
// their same-origin fragment URL. The pages work without this script.
(function () {
  "use strict";
  function poll(el) {
    var url = el.getAttribute("data-refresh");
    var every = parseInt(el.getAttribute("data-every"), 10) || 2000;
    function tick() {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 401) { window.location = "/ui/login"; return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) { if (html !== null) { el.innerHTML = html; } })
        .catch(function () {})
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < els.length; i++) { poll(els[i]); }
  });
})();

// ---- Live parts (followed logs) --------------------------------------
// The app page's log view follows new lines without a reload: an
// EventSource on the same-origin stream (data-stream) appends each line
// and keeps the last data-max of them; every (re)connection starts with a
// "reset" event and resends the newest lines, so nothing shows twice. The
// filter form restarts the stream with its fields instead of reloading.
// Without this script the page shows the newest lines and the filter form
// reloads it.
(function () {
  "use strict";
  // The server renders times as "2006-01-02 15:04:05Z" (UTC).
  function when(t) {
    var d = new Date(t);
    if (isNaN(d.getTime())) { return String(t); }
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function query(form) {
    var q = new URLSearchParams();
    ["grep", "instance"].forEach(function (k) {
      var el = form.elements[k];
      if (el && el.value !== "") { q.set(k, el.value); }
    });
    var s = q.toString();
    return s === "" ? "" : "?" + s;
  }
  function follow(box) {
    var max = parseInt(box.getAttribute("data-max"), 10) || 500;
    var base = box.getAttribute("data-stream").split("?")[0];
    var status = document.getElementById("logs-status");
    var es = null;
    var pre = null;
    var retry = null;
    function say(s) { if (status) { status.textContent = s; } }
    function add(l) {
      var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      var span = document.createElement("span");
      span.className = l.stream === "stderr" ? "log-stderr" : "log-stdout";
      span.textContent = when(l.time) + " " + l.instance + " " + l.line + "\n";
      pre.appendChild(span);
      while (pre.childNodes.length > max) { pre.removeChild(pre.firstChild); }
      if (stick) { pre.scrollTop = pre.scrollHeight; }
    }
    function start(url) {
      if (es) { es.close(); }
      if (retry) { clearTimeout(retry); retry = null; }
      es = new EventSource(url);
      var mine = es;
      es.addEventListener("reset", function () {
        pre = document.createElement("pre");
        pre.id = "logs-lines";
        pre.setAttribute("data-following", "true");
        box.replaceChildren(pre);
        say("following new lines");
      });
      es.onmessage = function (ev) {
        if (!pre) { return; }
        try { add(JSON.parse(ev.data)); } catch (e) { /* not a line */ }
      };
      es.addEventListener("end", function () {
        mine.close();
        window.location = "/ui/login";
      });
      es.onerror = function () {
        if (mine.readyState !== EventSource.CLOSED) { say("reconnecting…"); return; }
        // Refused (signed out, no such app): ask the fragment why.
        say("stopped");
        fetch(box.getAttribute("data-fragment"), { credentials: "same-origin", cache: "no-store" })
          .then(function (r) {
            if (r.status === 401) { window.location = "/ui/login"; return; }
            if (mine === es) { retry = setTimeout(function () { start(url); }, 5000); }
          })
          .catch(function () {});
      };
    }
    var form = document.getElementById("log-filter");
    if (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var q = query(form);
        box.setAttribute("data-stream", base + q);
        box.setAttribute("data-fragment", base.replace(/\/stream$/, "") + q);
        var page = new URLSearchParams(q.slice(1));
        var r = form.elements.range;
        if (r && r.value) { page.set("range", r.value); }
        window.history.replaceState(null, "", window.location.pathname + "?" + page.toString());
        start(base + q);
      });
    }
    start(box.getAttribute("data-stream"));
  }
  // Opened once the page has loaded: a stream opened before would keep
  // the page loading for as long as it lasts.
  function begin() {
    var box = document.querySelector("#logs[data-stream]");
    if (box && window.EventSource) { setTimeout(function () { follow(box); }, 0); }
  }
  if (document.readyState === "complete") { begin(); } else { window.addEventListener("load", begin); }
})();
