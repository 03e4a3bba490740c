// Upgrades a /lite run page when JavaScript is on: follows the run's event stream, writes the text as
// it comes (as text nodes, never as HTML), keeps the status region up to date and hides Check again.
// A reasoning model's thoughts go into the collapsed "Thinking…" box above the answer, never into it.
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
  var notices = document.getElementById("notices");
  var startedAt = Date.now() - parseFloat(run.dataset.elapsed || "0") * 1000;
  var finished = false;
  var writing = false;
  var textBegan = answer.textContent !== "";  // the page came with some of the answer
  // When the model began to think, in seconds since the run started (null: it has not).
  var thinkingBegan = run.dataset.thinking !== undefined
    ? parseFloat(run.dataset.elapsed || "0") - parseFloat(run.dataset.thinking) : null;
  var reasoning = null;  // the <details> box, its summary and the text growing in it
  var reasoningSummary = null;
  var reasoningLive = null;

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

  function wholeSeconds(s) {
    s = Math.max(0, Math.floor(s));
    return s < 120 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s";
  }

  function seconds(s) {  // as the server says it: 3.2 s, 14 s, 2 min 5 s
    s = Math.max(0, s);
    if (s < 10) {
      return s.toFixed(1) + " s";
    }
    return s < 120 ? Math.round(s) + " s" : wholeSeconds(Math.round(s));
  }

  function sinceStart() {
    return (Date.now() - startedAt) / 1000;
  }

  function tick() {
    waited.textContent = "You have waited " + wholeSeconds(sinceStart()) + ".";
    waited.hidden = false;
    if (reasoningSummary && thinkingBegan !== null && !textBegan) {
      reasoningSummary.textContent = "Thinking… (" + wholeSeconds(sinceStart() - thinkingBegan) + ")";
    }
  }

  function reasoningBox() {
    if (reasoning) {
      return;
    }
    reasoning = document.getElementById("reasoning");
    if (!reasoning) {
      reasoning = document.createElement("details");
      reasoning.id = "reasoning";
      reasoning.className = "reasoning";
      reasoning.appendChild(document.createElement("summary")).id = "reasoning-summary";
      reasoning.appendChild(document.createElement("div")).id = "reasoning-text";
      reasoning.lastChild.className = "reasoning-text";
      answerPart.insertBefore(reasoning, answerPart.firstChild);
    }
    reasoningSummary = reasoning.querySelector("summary");
    reasoningLive = document.createElement("div");
    reasoningLive.className = "live";
    reasoning.querySelector(".reasoning-text").appendChild(reasoningLive);
    if (!textBegan) {
      reasoningSummary.textContent = "Thinking…";
    }
    reasoning.hidden = false;
  }

  var live = document.createElement("div");
  live.className = "live";
  answer.appendChild(live);
  setCheckAgain(false);
  tick();
  var timer = window.setInterval(tick, 1000);

  var source = new EventSource(run.dataset.events + "?after=" + encodeURIComponent(run.dataset.after));
  run.dataset.live = "true";

  if (thinkingBegan !== null && !textBegan) {
    reasoningBox();
    tick();
  }

  source.addEventListener("reasoning", function (message) {
    var event = JSON.parse(message.data);
    if (thinkingBegan === null) {
      thinkingBegan = event.elapsed;
    }
    reasoningBox();
    if (event.text) {  // empty: the model began to think without showing its thoughts
      reasoningLive.appendChild(document.createTextNode(event.text));
    }
    if (!textBegan && state.textContent.indexOf("Thinking") !== 0) {
      say("Thinking…");
    }
  });
  source.addEventListener("notice", function (message) {
    var event = JSON.parse(message.data);
    notices.appendChild(document.createElement("li")).textContent = event.message;
    notices.hidden = false;
  });
  source.addEventListener("text", function (message) {
    var event = JSON.parse(message.data);
    live.appendChild(document.createTextNode(event.text));
    if (!writing) {
      writing = true;
      say("Writing…");
    }
    if (!textBegan) {
      textBegan = true;
      if (reasoningSummary && thinkingBegan !== null) {
        reasoningSummary.textContent = "Thought for " + seconds(event.elapsed - thinkingBegan);
      }
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
        var open = reasoning !== null && reasoning.open;
        answerPart.innerHTML = part.answer_html;  // rendered and sanitized by the server
        var rendered = document.getElementById("reasoning");
        if (rendered && open) {
          rendered.open = true;  // the reader had opened the thoughts: keep them open
        }
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
