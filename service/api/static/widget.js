/*
 * Stride chat widget. One line embeds it on any site:
 *
 *   <script src="https://HOST/widget.js" data-stride-url="https://HOST" defer></script>
 *
 * It adds a chat bubble that opens a panel. The full page at "/" loads this same file with
 * data-stride-mode="page" so both share one implementation.
 *
 * Everything renders inside a Shadow DOM root: the host page's CSS cannot reach in and ours cannot leak
 * out. All text from the server or the user is inserted with textContent, never as HTML.
 * Answers stream over POST /chat/stream; EventSource cannot POST, so the SSE stream is parsed by hand.
 *
 * Script attributes:
 *   data-stride-url     base URL of the Stride service (default: where this script came from)
 *   data-stride-mode    "bubble" (default) or "page" (fills data-stride-target, no bubble)
 *   data-stride-target  CSS selector of the element to fill in page mode (default "#stride")
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) return; // loaded as a module or injected oddly: nothing to read our settings from

  var STARTERS = [
    "I weigh 70 kg. How much protein do I need each day to build muscle?",
    "Which muscles does running work?",
    "What do the glutes do when running?",
    "How often should runners do strength training?"
  ];
  var MAX_HISTORY_MESSAGES = 40; // the API refuses more
  var MAX_HISTORY_CHARS = 8000; // per message, likewise
  var REQUEST_TIMEOUT_MS = 45000;
  var uid = 0;

  var base = (script.getAttribute("data-stride-url") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var mode = script.getAttribute("data-stride-mode") === "page" ? "page" : "bubble";
  var targetSelector = script.getAttribute("data-stride-target") || "#stride";

  // --- tiny DOM helper ------------------------------------------------------------------
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") el.textContent = v;
        else if (k === "class") el.className = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return el;
  }

  // Thumb icon (Material Icons "thumb_up", Apache-2.0) as inline SVG: emoji fonts are missing on many systems.
  var THUMB = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 " +
    "7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";

  function thumbIcon(down) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", THUMB);
    path.setAttribute("fill", "currentColor");
    if (down) path.setAttribute("transform", "rotate(180 12 12)");
    svg.appendChild(path);
    return svg;
  }

  function nextId(prefix) {
    uid += 1;
    return "stride-" + prefix + "-" + uid;
  }

  // --- SSE over fetch ---------------------------------------------------------------------
  function StrideHttpError(message, status, retryAfter) {
    this.message = message;
    this.status = status;
    this.retryAfter = retryAfter; // seconds, from Retry-After on 429 and 503
  }

  function retryAfterOf(res) {
    var n = parseInt(res.headers.get("Retry-After") || "", 10);
    return isNaN(n) ? null : n;
  }

  function parseEvent(block) {
    var event = "message";
    var data = [];
    block.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === ":") return; // keep-alive comments
      var i = line.indexOf(":");
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    });
    return data.length ? { event: event, data: data.join("\n") } : null;
  }

  // POSTs the question and calls onEvent(name, parsedData) per SSE event. Resolves after "done";
  // rejects on HTTP errors, network failures (including CORS refusals) and streams that end early.
  function streamChat(message, history, onEvent, signal) {
    return fetch(base + "/chat/stream", {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ message: message, history: history }),
      signal: signal
    }).then(function (res) {
      if (!res.ok) {
        return res.json().then(
          function (body) {
            throw new StrideHttpError(body && body.detail ? String(body.detail) : "", res.status, retryAfterOf(res));
          },
          function () { throw new StrideHttpError("", res.status, retryAfterOf(res)); }
        );
      }
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var pendingCR = false;
      var finished = false;

      function drain() {
        var idx;
        while ((idx = buffer.indexOf("\n\n")) >= 0) {
          var ev = parseEvent(buffer.slice(0, idx));
          buffer = buffer.slice(idx + 2);
          if (!ev) continue;
          var data;
          try { data = JSON.parse(ev.data); } catch (e) { data = ev.data; }
          if (ev.event === "done") finished = true;
          onEvent(ev.event, data);
        }
      }

      function pump() {
        return reader.read().then(function (step) {
          if (step.done) {
            buffer += (pendingCR ? "\n" : "") + "\n\n"; // flush a final event without its blank line
            pendingCR = false;
            drain();
            if (!finished) throw new StrideHttpError("The connection dropped before the answer was complete.", 0);
            return;
          }
          // sse-starlette ends lines with \r\n; a \r at a chunk's end may pair with the next chunk's \n.
          var text = (pendingCR ? "\r" : "") + decoder.decode(step.value, { stream: true });
          pendingCR = text.slice(-1) === "\r";
          if (pendingCR) text = text.slice(0, -1);
          buffer += text.replace(/\r\n|\r/g, "\n");
          drain();
          return finished ? reader.cancel().catch(function () {}) : pump();
        });
      }
      return pump();
    });
  }

  function postJSON(path, body) {
    return fetch(base + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          throw new StrideHttpError(data && data.detail ? String(data.detail) : "", res.status, retryAfterOf(res));
        }
        return data;
      });
    });
  }

  function describeError(err) {
    if (err && err.name === "AbortError") return "Stride took too long to answer.";
    if (err instanceof StrideHttpError) {
      var wait = err.retryAfter ? " Try again in " + err.retryAfter + " s." : " Try again shortly.";
      if (err.status === 429) return "That's more questions than Stride takes from one reader at a time." + wait;
      if (err.status === 503) return "Stride is busy or starting up right now." + wait;
      if (err.status === 0) return err.message;
      return "Stride couldn't answer (error " + err.status + ")" + (err.message ? ": " + err.message : ".");
    }
    // fetch() rejects with a bare TypeError for offline networks and for CORS refusals alike.
    return "Couldn't reach Stride. Check your connection; if it persists, this site may not be allowed to use Stride.";
  }

  // Publishers by article id, from GET /articles, so copied sources can name them. Loaded once it works
  // (it is 503 while Stride starts); until then a copy names title and section only.
  var publishers = null;
  function loadPublishers() {
    if (publishers) return;
    fetch(base + "/articles", { mode: "cors", credentials: "omit" }).then(function (res) {
      return res.ok ? res.json() : null;
    }).then(function (list) {
      if (!list || publishers) return;
      publishers = {};
      list.forEach(function (a) { if (a.publisher) publishers[a.id] = a.publisher; });
    }).catch(function () {});
  }

  // --- the chat UI ----------------------------------------------------------------------
  function Chat(root, opts) {
    this.root = root;
    this.mode = opts.mode;
    this.history = []; // completed turns as {role, content}, sent with each question
    this.busy = false;
    this.build();
  }

  Chat.prototype.build = function () {
    var self = this;
    var panelId = nextId("panel");
    var inputId = nextId("input");
    var titleId = nextId("title");

    this.status = h("p", { class: "sr-only", role: "status", "aria-live": "polite" });
    // The log itself is not live (the user knows what they typed); each answer is its own live region.
    this.log = h("div", { class: "log", role: "region", "aria-label": "Conversation", tabindex: "-1" });
    this.intro = this.buildIntro();
    this.log.appendChild(this.intro);

    this.input = h("textarea", {
      id: inputId, class: "input", rows: "1", maxlength: "2000", autocomplete: "off",
      placeholder: "Ask a question…", enterkeyhint: "send"
    });
    this.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        self.submit();
      }
    });
    this.input.addEventListener("input", function () { self.fitInput(); });
    this.sendButton = h("button", { type: "submit", class: "send", "aria-label": "Send question" }, [
      h("span", { "aria-hidden": "true", text: "Send" })
    ]);
    var form = h("form", { class: "composer", onsubmit: function (e) { e.preventDefault(); self.submit(); } }, [
      h("label", { class: "sr-only", for: inputId, text: "Your question for Stride" }),
      this.input,
      this.sendButton
    ]);

    var newChat = h("button", { type: "button", class: "ghost newchat", text: "New chat",
      "aria-label": "New chat: forget this conversation", onclick: function () { self.reset(); } });
    var fineprint = h("p", { class: "fineprint", text: "Answers quote five articles on running and strength. Not medical advice." });
    var children;
    if (this.mode === "bubble") {
      var head = h("header", { class: "head" }, [
        h("div", { class: "brand" }, [
          h("h2", { class: "title", id: titleId, text: "Stride" }),
          h("p", { class: "sub", text: "Cited from five running articles" })
        ]),
        h("div", { class: "head-actions" }, [
          newChat,
          h("button", { type: "button", class: "ghost close", "aria-label": "Close Stride chat",
            onclick: function () { self.close(); } }, [h("span", { "aria-hidden": "true", text: "×" })])
        ])
      ]);
      children = [head, this.log, this.status, form, h("div", { class: "foot" }, [fineprint])];
    } else {
      // The page around us already has the title: spend the height on the conversation instead.
      children = [this.log, this.status, form, h("div", { class: "foot" }, [fineprint, newChat])];
    }
    this.panel = h("section", {
      class: "panel", id: panelId,
      role: this.mode === "bubble" ? "dialog" : "region",
      "aria-labelledby": this.mode === "bubble" ? titleId : null,
      "aria-label": this.mode === "bubble" ? null : "Stride chat"
    }, children);
    this.panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && self.mode === "bubble") {
        e.stopPropagation();
        self.close();
      }
    });

    var frame = h("div", { class: "stride stride--" + this.mode });
    if (this.mode === "bubble") {
      this.panel.hidden = true;
      this.bubble = h("button", {
        // A toggle: the name stays, aria-expanded says whether the panel is open.
        type: "button", class: "bubble", "aria-label": "Ask Stride about running muscles",
        "aria-expanded": "false", "aria-controls": panelId,
        onclick: function () { self.panel.hidden ? self.open() : self.close(); }
      }, [
        h("span", { class: "bubble-icon", "aria-hidden": "true", text: "?" }),
        h("span", { class: "bubble-label", text: "Ask Stride" })
      ]);
      frame.appendChild(this.bubble);
    }
    frame.appendChild(this.panel);
    this.root.appendChild(frame);
  };

  Chat.prototype.buildIntro = function () {
    var self = this;
    var labelId = nextId("starters");
    var list = h("ul", { class: "starters", "aria-labelledby": labelId });
    STARTERS.forEach(function (q) {
      list.appendChild(h("li", null, [
        h("button", { type: "button", class: "starter", text: q, onclick: function () {
          self.ask(q);
          self.input.focus(); // the starter is gone with the intro: keep keyboard users in the composer
        } })
      ]));
    });
    return h("div", { class: "intro" }, [
      h("p", { text: "Ask about the muscles running uses, strength training for runners, or eating to build muscle. " +
        "Every sentence of an answer links to the passage it comes from." }),
      h("p", { class: "starters-label", id: labelId, text: "Try one of these:" }),
      list
    ]);
  };

  Chat.prototype.open = function () {
    this.panel.hidden = false;
    this.bubble.setAttribute("aria-expanded", "true");
    this.input.focus();
  };

  Chat.prototype.close = function () {
    this.panel.hidden = true;
    this.bubble.setAttribute("aria-expanded", "false");
    this.bubble.focus();
  };

  Chat.prototype.reset = function () {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.history = [];
    this.log.textContent = "";
    this.intro = this.buildIntro();
    this.log.appendChild(this.intro);
    this.setBusy(false);
    this.announce("Started a new conversation.");
    this.input.focus();
  };

  Chat.prototype.fitInput = function () {
    // Grow with the text up to five lines, then scroll: the log keeps its room.
    this.input.style.height = "auto";
    this.input.style.height = Math.min(this.input.scrollHeight, 132) + "px";
  };

  Chat.prototype.announce = function (text) {
    // Clear first so the same sentence twice is still announced.
    var status = this.status;
    status.textContent = "";
    setTimeout(function () { status.textContent = text; }, 50);
  };

  Chat.prototype.setBusy = function (busy) {
    this.busy = busy;
    this.sendButton.setAttribute("aria-disabled", busy ? "true" : "false");
    this.root.querySelectorAll(".starter").forEach(function (b) { b.disabled = busy; });
  };

  Chat.prototype.submit = function () {
    var q = this.input.value.trim();
    if (!q || this.busy) return;
    this.input.value = "";
    this.fitInput();
    this.ask(q);
  };

  Chat.prototype.nearBottom = function () {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
  };

  Chat.prototype.scrollToBottom = function (force) {
    if (force || this.stickToBottom) this.log.scrollTop = this.log.scrollHeight;
  };

  Chat.prototype.ask = function (question) {
    if (this.busy) return;
    if (this.intro && this.intro.parentNode) this.intro.remove();
    var turn = new Turn(this, question, this.historyToSend());
    this.log.appendChild(h("div", { class: "msg msg--user" }, [
      h("span", { class: "sr-only", text: "You asked: " }),
      h("p", { class: "user-text", text: question })
    ]));
    this.log.appendChild(turn.el);
    this.stickToBottom = true;
    this.scrollToBottom(true);
    turn.run();
  };

  Chat.prototype.historyToSend = function () {
    return this.history.slice(-MAX_HISTORY_MESSAGES).map(function (m) {
      return { role: m.role, content: m.content.slice(0, MAX_HISTORY_CHARS) };
    });
  };

  // --- one question and its answer -------------------------------------------------------
  function Turn(chat, question, history) {
    this.chat = chat;
    this.question = question;
    this.history = history;
    this.answer = "";
    this.citations = [];
    this.byN = {};
    this.queryId = null;
    this.abstained = false;
    this.suggestions = [];
    this.activeN = null;
    this.build();
  }

  Turn.prototype.build = function () {
    var self = this;
    // A polite live region that stays busy while tokens arrive: screen readers read the finished answer
    // once instead of every fragment.
    this.answerEl = h("div", { class: "answer", "aria-live": "polite", "aria-atomic": "true", "aria-busy": "true" });
    this.cardEl = h("div", { class: "cite-card", id: nextId("card"), hidden: true });
    this.sourcesEl = h("section", { class: "sources", hidden: true });
    this.errorEl = h("div", { class: "error", role: "alert", hidden: true });
    this.copyButton = h("button", { type: "button", class: "ghost copy", text: "Copy answer with sources",
      onclick: function () { self.copy(); } });
    this.upButton = h("button", { type: "button", class: "vote vote--up", "aria-pressed": "false",
      "aria-label": "Helpful answer", title: "Helpful", onclick: function () { self.vote(1); } },
      [thumbIcon(false)]);
    this.downButton = h("button", { type: "button", class: "vote vote--down", "aria-pressed": "false",
      "aria-label": "Not helpful answer", title: "Not helpful", onclick: function () { self.vote(-1); } },
      [thumbIcon(true)]);
    this.feedbackEl = h("div", { class: "feedback", hidden: true });
    // The actions row exists from the start, invisible, so the answer does not jump when it appears.
    this.actionsEl = h("div", { class: "actions", "data-pending": "true" }, [
      this.copyButton,
      // One group so the two thumbs wrap together on narrow screens.
      this.votesEl = h("span", { class: "votes", role: "group", "aria-label": "Was this answer helpful?" }, [
        h("span", { class: "vote-label", "aria-hidden": "true", text: "Helpful?" }),
        this.upButton,
        this.downButton
      ])
    ]);
    this.el = h("article", { class: "msg msg--bot", "aria-label": "Stride's answer" }, [
      this.answerEl, this.cardEl, this.sourcesEl, this.errorEl, this.actionsEl, this.feedbackEl
    ]);
    this.showThinking();
  };

  Turn.prototype.showThinking = function () {
    this.answerEl.textContent = "";
    this.answerEl.appendChild(h("span", { class: "thinking" }, [
      h("span", { class: "dots", "aria-hidden": "true" }, [h("i"), h("i"), h("i")]),
      " Looking through the articles…"
    ]));
  };

  Turn.prototype.run = function () {
    var self = this;
    var chat = this.chat;
    chat.setBusy(true);
    chat.announce("Stride is answering…");
    this.answer = "";
    this.errorEl.hidden = true;
    this.answerEl.hidden = false;
    this.answerEl.setAttribute("aria-busy", "true");
    this.actionsEl.hidden = false;
    this.actionsEl.setAttribute("data-pending", "true");
    this.showThinking();
    var controller = new AbortController();
    chat.controller = controller;
    var timer = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);

    streamChat(this.question, this.history, function (event, data) {
      if (controller !== chat.controller) return; // a "New chat" replaced this turn
      if (event === "token") {
        self.answer += data.text;
        self.renderAnswer(false);
        chat.scrollToBottom();
      } else if (event === "citations") {
        self.citations = data.citations || [];
        self.abstained = !!data.abstained;
        self.suggestions = data.suggestions || [];
        self.queryId = data.query_id || null;
        self.byN = {};
        self.citations.forEach(function (c) { self.byN[c.n] = c; });
      }
    }, controller.signal).then(function () {
      clearTimeout(timer);
      if (controller !== chat.controller) return;
      self.finish();
    }, function (err) {
      clearTimeout(timer);
      if (controller !== chat.controller) return;
      self.fail(err);
    });
  };

  Turn.prototype.finish = function () {
    var chat = this.chat;
    loadPublishers();
    this.renderAnswer(true);
    this.renderSources();
    this.el.classList.toggle("msg--declined", this.abstained);
    this.answerEl.setAttribute("aria-busy", "false");
    this.copyButton.hidden = this.abstained;
    this.actionsEl.hidden = !this.queryId && this.abstained;
    this.votesEl.hidden = !this.queryId; // nothing to attach feedback to
    this.actionsEl.removeAttribute("data-pending");
    chat.history.push({ role: "user", content: this.question }, { role: "assistant", content: this.answer });
    chat.setBusy(false);
    var n = this.citations.length;
    chat.announce(this.abstained ? "Stride couldn't answer that from its articles."
      : "Answer ready, with " + n + (n === 1 ? " source." : " sources."));
    chat.scrollToBottom();
  };

  Turn.prototype.fail = function (err) {
    var self = this;
    var chat = this.chat;
    this.answerEl.setAttribute("aria-busy", "false");
    this.answerEl.hidden = !this.answer; // no empty reserved box above the error
    if (this.answer) this.renderAnswer(true); // keep what arrived, without the typing caret
    this.actionsEl.hidden = true;
    this.errorEl.textContent = "";
    this.errorEl.appendChild(h("p", { text: describeError(err) }));
    this.errorEl.appendChild(h("button", { type: "button", class: "retry", text: "Retry",
      "aria-label": "Retry: " + this.question, onclick: function () {
        if (chat.busy) return;
        self.history = chat.historyToSend(); // turns may have completed since the first try
        self.run();
      } }));
    this.errorEl.hidden = false;
    chat.setBusy(false);
    chat.scrollToBottom();
  };

  // Answer text with its [n] markers as buttons. While streaming, markers are inert look-alikes of the
  // same size (their sources arrive at the end), so nothing shifts when they become buttons.
  Turn.prototype.renderAnswer = function (final) {
    var self = this;
    var el = this.answerEl;
    el.textContent = "";
    if (final && this.abstained) {
      el.appendChild(h("p", { class: "declined-title", text: "Not covered by the articles" }));
      el.appendChild(h("p", { class: "declined-text", text: this.answer }));
      if (!this.suggestions.length) {
        el.appendChild(h("p", { class: "declined-hint",
          text: "Try asking about the muscles running uses, strength exercises for runners, or protein for building muscle." }));
        return;
      }
      // The closest topics the articles do cover, each a question one click away.
      var labelId = nextId("suggest");
      var list = h("ul", { class: "starters suggestions", "aria-labelledby": labelId });
      this.suggestions.forEach(function (topic) {
        var name = topic.replace(/^\d+[.)]\s*/, "").replace(/^FAQ:\s*/, "").replace(/\?+$/, "");
        var question = "What do the articles say about " + name + "?";
        list.appendChild(h("li", null, [
          h("button", { type: "button", class: "starter", text: name, "aria-label": "Ask: " + question,
            onclick: function () { self.chat.ask(question); self.chat.input.focus(); } })
        ]));
      });
      el.appendChild(h("p", { class: "declined-hint", id: labelId, text: "Ask about one of these instead:" }));
      el.appendChild(list);
      return;
    }
    var p = h("p", { class: "answer-text" });
    var re = /\[(\d+)\]/g;
    var last = 0;
    var m;
    var keep = null;
    while ((m = re.exec(this.answer)) !== null) {
      // The sentence's last word and its markers share one unbreakable span, so a marker never starts a
      // line on its own. Between markers ("[1] [2]") only a space: they join the same span.
      var before = this.answer.slice(last, m.index);
      if (!keep || /\S/.test(before)) {
        var split = /^([\s\S]*?)(\S*)(\s*)$/.exec(before);
        if (split[1]) p.appendChild(document.createTextNode(split[1]));
        keep = h("span", { class: "cite-keep" }, [split[2]]);
        p.appendChild(keep);
      }
      keep.appendChild(document.createTextNode(/\s$/.test(before) || !before ? "\u00a0" : ""));
      keep.appendChild(this.marker(Number(m[1]), final));
      last = re.lastIndex;
    }
    if (last < this.answer.length) p.appendChild(document.createTextNode(this.answer.slice(last)));
    if (!final) p.appendChild(h("span", { class: "caret", "aria-hidden": "true" }));
    el.appendChild(p);
    if (final) this.hideCitation(false);
  };

  Turn.prototype.marker = function (n, final) {
    var self = this;
    var c = this.byN[n];
    if (!final || !c) return h("span", { class: "cite cite--pending", "aria-hidden": "true", text: String(n) });
    var b = h("button", {
      type: "button", class: "cite", "data-n": String(n), "aria-expanded": "false", "aria-controls": this.cardEl.id,
      "aria-label": "Source " + n + ": " + c.title + (c.section ? ", " + c.section : ""),
      text: String(n)
    });
    // Focus shows the passage (keyboard users tab through the markers); a click shows it too and reads it out.
    b.addEventListener("click", function () { self.showCitation(n, true); });
    b.addEventListener("focus", function () { if (!self.refocusing) self.showCitation(n, false); });
    b.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && !self.cardEl.hidden) {
        e.stopPropagation(); // close the passage, not the whole panel
        self.hideCitation(false);
      }
    });
    return b;
  };

  Turn.prototype.showCitation = function (n, announce) {
    var c = this.byN[n];
    if (!c) return;
    var self = this;
    this.activeN = n;
    var card = this.cardEl;
    card.textContent = "";
    card.appendChild(h("div", { class: "cite-head" }, [
      h("span", { class: "cite-n", "aria-hidden": "true", text: String(n) }),
      h("div", { class: "cite-where" }, [
        h("p", { class: "cite-title", text: c.title }),
        h("p", { class: "cite-section", text: c.section || "Introduction" })
      ]),
      h("button", { type: "button", class: "cite-close", "aria-label": "Hide source " + n,
        onclick: function () { self.hideCitation(true); } }, [h("span", { "aria-hidden": "true", text: "×" })])
    ]));
    card.appendChild(h("blockquote", { class: "cite-quote", text: c.quote }));
    card.setAttribute("aria-label", "Source " + n + " passage");
    card.hidden = false;
    this.answerEl.querySelectorAll("button.cite").forEach(function (b) {
      b.setAttribute("aria-expanded", Number(b.getAttribute("data-n")) === n ? "true" : "false");
    });
    // Focus already reads the button's label; an explicit click also reads the quote itself.
    if (announce) this.chat.announce("Source " + n + ": " + c.title + ". " + c.quote);
  };

  Turn.prototype.hideCitation = function (refocus) {
    var n = this.activeN;
    this.cardEl.hidden = true;
    this.activeN = null;
    this.answerEl.querySelectorAll("button.cite").forEach(function (b) { b.setAttribute("aria-expanded", "false"); });
    var b = refocus && n !== null ? this.answerEl.querySelector('button.cite[data-n="' + n + '"]') : null;
    if (b) {
      this.refocusing = true; // give focus back without reopening the passage
      b.focus();
      this.refocusing = false;
    }
  };

  Turn.prototype.renderSources = function () {
    var self = this;
    var el = this.sourcesEl;
    el.textContent = "";
    if (!this.citations.length) { el.hidden = true; return; }
    var headingId = nextId("sources");
    var list = h("ol", { class: "source-list", "aria-labelledby": headingId });
    // One entry per article section: passages quoted from the same section share it, one number each.
    var groups = [];
    var byPlace = {};
    this.citations.forEach(function (c) {
      var place = c.title + "\u0000" + (c.section || "");
      if (!byPlace[place]) { byPlace[place] = []; groups.push(byPlace[place]); }
      byPlace[place].push(c);
    });
    groups.forEach(function (group) {
      var c = group[0];
      var where = c.title + (c.section ? ", " + c.section : "");
      if (group.length === 1) {
        list.appendChild(h("li", null, [
          h("button", { type: "button", class: "source", "aria-label": "Show source " + c.n + " passage: " + where,
            onclick: function () { self.showCitation(c.n, true); } }, [
            h("span", { class: "source-n", text: String(c.n) }),
            h("span", { class: "source-title", text: c.title }),
            h("span", { class: "source-section", text: c.section || "Introduction" })
          ])
        ]));
        return;
      }
      list.appendChild(h("li", { class: "source source--group" }, [
        h("span", { class: "source-ns" }, group.map(function (g) {
          return h("button", { type: "button", class: "source-n", text: String(g.n),
            "aria-label": "Show source " + g.n + " passage: " + where,
            onclick: function () { self.showCitation(g.n, true); } });
        })),
        h("span", { class: "source-title", text: c.title }),
        h("span", { class: "source-section", text: c.section || "Introduction" })
      ]));
    });
    el.appendChild(h("h3", { class: "sources-title", id: headingId, text: "Sources" }));
    el.appendChild(list);
    el.hidden = false;
  };

  // "Copy answer with sources": plain text with the numbered quotes, ready for a training plan or email.
  Turn.prototype.plainText = function () {
    var lines = ["Q: " + this.question, "", this.answer.trim(), "", "Sources:"];
    this.citations.forEach(function (c) {
      var publisher = publishers && publishers[c.article_id];
      lines.push("[" + c.n + "] \u201C" + c.quote + "\u201D \u2014 " + c.title + (publisher ? " (" + publisher + ")" : "") +
        (c.section ? ", " + c.section : ""));
    });
    return lines.join("\n");
  };

  Turn.prototype.copy = function () {
    var self = this;
    var text = this.plainText();
    var done = function () {
      self.copyButton.textContent = "Copied";
      self.chat.announce("Answer and sources copied.");
      setTimeout(function () { self.copyButton.textContent = "Copy answer with sources"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { self.copyFallback(text) && done(); });
    } else if (this.copyFallback(text)) {
      done();
    }
  };

  Turn.prototype.copyFallback = function (text) {
    // Plain-http sites have no clipboard API: copy through a throwaway textarea inside our shadow root.
    var ta = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
    ta.value = text;
    this.el.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    ta.remove();
    if (!ok) this.chat.announce("Copying failed; select the answer text to copy it.");
    return ok;
  };

  // --- feedback ---------------------------------------------------------------------------
  Turn.prototype.vote = function (rating) {
    if (!this.queryId) return;
    this.rating = rating;
    this.upButton.setAttribute("aria-pressed", rating === 1 ? "true" : "false");
    this.downButton.setAttribute("aria-pressed", rating === -1 ? "true" : "false");
    this.sendFeedback(null);
    this.showCommentBox();
  };

  Turn.prototype.showCommentBox = function () {
    var self = this;
    var el = this.feedbackEl;
    if (!el.hidden) return;
    var id = nextId("comment");
    this.commentInput = h("textarea", { id: id, class: "comment", rows: "2", maxlength: "2000",
      placeholder: "What was good or missing? (optional)" });
    this.feedbackStatus = h("p", { class: "feedback-status", role: "status" });
    el.textContent = "";
    el.appendChild(h("label", { for: id, class: "comment-label", text: "Add a comment (optional)" }));
    el.appendChild(this.commentInput);
    el.appendChild(h("div", { class: "feedback-row" }, [
      h("button", { type: "button", class: "ghost send-comment", text: "Send comment", onclick: function () {
        var text = self.commentInput.value.trim();
        if (text) self.sendFeedback(text);
      } }),
      this.feedbackStatus
    ]));
    el.hidden = false;
    this.commentInput.scrollIntoView({ block: "nearest" });
  };

  Turn.prototype.sendFeedback = function (comment) {
    var self = this;
    var body = { query_id: this.queryId, rating: this.rating === 1 ? "up" : "down" };
    if (comment) body.comment = comment;
    else if (this.savedComment) body.comment = this.savedComment; // a changed vote keeps the comment
    var seq = (this.feedbackSeq = (this.feedbackSeq || 0) + 1);
    this.setFeedbackStatus("Saving…");
    postJSON("/feedback", body).then(function () {
      if (comment) self.savedComment = comment;
      if (seq === self.feedbackSeq) self.setFeedbackStatus(comment ? "Thanks, comment saved." : "Thanks for the feedback.");
    }, function (err) {
      if (seq !== self.feedbackSeq) return;
      self.setFeedbackStatus("Couldn't save feedback: " + describeError(err));
    });
  };

  Turn.prototype.setFeedbackStatus = function (text) {
    if (this.feedbackStatus) this.feedbackStatus.textContent = text;
  };

  // --- mount ----------------------------------------------------------------------------
  function mount() {
    var host;
    if (mode === "page") {
      var target = document.querySelector(targetSelector);
      if (!target) return;
      host = document.createElement("stride-chat");
      target.appendChild(host);
    } else {
      if (document.querySelector("stride-chat[data-mode=bubble]")) return; // embedded twice
      host = document.createElement("stride-chat");
      document.body.appendChild(host);
    }
    host.setAttribute("data-mode", mode);
    // Inline !important beats any host-page rule, so selectors such as `* { transform: ... }` or
    // `body > * { display: none }` cannot move, hide or re-style our container.
    host.style.setProperty("all", "initial", "important");
    host.style.setProperty("display", "block", "important");
    if (mode === "page") {
      host.style.setProperty("height", "100%", "important");
    } else {
      host.style.setProperty("position", "fixed", "important");
      host.style.setProperty("z-index", "2147483000", "important");
      host.style.setProperty("right", "0", "important");
      host.style.setProperty("bottom", "0", "important");
      host.style.setProperty("width", "0", "important");
      host.style.setProperty("height", "0", "important");
    }
    var root = host.attachShadow({ mode: "open" });
    var wrap = h("div", { class: "stride-root stride-root--" + mode, hidden: true });
    var css = h("link", { rel: "stylesheet", href: base + "/widget.css" });
    // Stay hidden until our stylesheet is in: no flash of unstyled buttons on the host page.
    var show = function () { wrap.hidden = false; };
    css.addEventListener("load", show);
    css.addEventListener("error", show);
    root.appendChild(css);
    root.appendChild(wrap);
    var chat = new Chat(wrap, { mode: mode });
    host.stride = chat; // handy for debugging from the console
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
