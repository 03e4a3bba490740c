// Upgrades a /lite run page when JavaScript is on: follows the run's event stream, writes the text as
// it comes (as text nodes, never as HTML), keeps the status region up to date and hides Check again.
// When the run ends the server's own rendering (sanitized Markdown, the next-question box) replaces
// the live text. A lost connection resumes from the last event id (EventSource sends Last-Event-ID).
(function () {
  "use strict";
  var run = document.getElementById("run");
  if (!run || run.dataset.ended === "true" || !window.EventSource || !window.fetch) {
    return;
  }
  var state = document.getElementById("state");
  var statusBox = document.getElementById("run-status");
  var waited = document.getElementById("waited");
  var estimate = document.getElementById("estimate");
  var answerPart = document.getElementById("answer-part");
  var controls = document.getElementById("controls");
  var answer = document.getElementById("answer");
  var startedAt = Date.now() - parseFloat(run.dataset.elapsed || "0") * 1000;
  var finished = false;
  var writing = false;

  function setCheckAgain(visible) {
    controls.querySelectorAll(".check-again, .check-again-hint").forEach(function (el) {
      el.hidden = !visible;
    });
  }

  function say(text) {
    if (state.textContent !== text) {
      state.textContent = text;
    }
  }

  function tick() {
    var s = Math.max(0, Math.floor((Date.now() - startedAt) / 1000));
    waited.textContent = "You have waited " + (s < 120 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s") + ".";
    waited.hidden = false;
  }

  var live = document.createElement("div");
  live.className = "live";
  answer.appendChild(live);
  setCheckAgain(false);
  tick();
  var timer = window.setInterval(tick, 1000);

  var source = new EventSource(run.dataset.events + "?after=" + encodeURIComponent(run.dataset.after));
  run.dataset.live = "true";

  source.addEventListener("text", function (message) {
    var event = JSON.parse(message.data);
    live.appendChild(document.createTextNode(event.text));
    if (!writing) {
      writing = true;
      say("Writing…");
    }
  });
  source.addEventListener("retrying", function (message) {
    var event = JSON.parse(message.data);
    say(event.reason + " — trying again (attempt " + event.attempt + " of " + event.max_attempts + ")");
  });
  ["completed", "stopped", "failed", "interrupted"].forEach(function (kind) {
    source.addEventListener(kind, function () {
      source.close();
      finish();
    });
  });
  source.onerror = function () {
    // CONNECTING: the browser reconnects by itself from the last id. CLOSED: it gave up (the run
    // had already ended, or an error answer): ask the server how the run stands.
    if (source.readyState === EventSource.CLOSED) {
      finish();
    }
  };

  function finish() {
    if (finished) {
      return;
    }
    finished = true;
    window.clearInterval(timer);
    fetch(run.dataset.part, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (part) {
        say(part.state);
        if (!part.ended) {  // still running where this page cannot follow it: back to Check again
          setCheckAgain(true);
          return;
        }
        answerPart.innerHTML = part.answer_html;  // rendered and sanitized by the server
        controls.innerHTML = part.controls_html;
        statusBox.className = "status ended " + part.status;
        estimate.hidden = true;
        waited.hidden = true;
        run.dataset.ended = "true";
      })
      .catch(function () {
        say("The live view lost touch with the server: choose Check again.");
        setCheckAgain(true);
      });
  }
})();
