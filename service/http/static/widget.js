/*
 * ragsearch chat widget.
 *
 *   <script src="https://HOST/widget.js" data-collection="docs" data-key="rsk_..."
 *           data-position="bottom-right"></script>
 *
 * Options (data-*): collection (required), key (a widget key), position (bottom-right,
 * bottom-left, top-right, top-left), title, lang (en or zh; default: the page's), api (the
 * server's base URL; default: where this script came from), mode ("inline" fills the page),
 * greeting (the first message shown; "off" for none), suggestions (questions offered as
 * buttons before the first one is asked: a JSON array, or texts separated by "|").
 * Theme with CSS variables on the page: --ragsearch-accent, --ragsearch-bg, --ragsearch-text,
 * --ragsearch-muted, --ragsearch-border, --ragsearch-radius, --ragsearch-font,
 * --ragsearch-width, --ragsearch-height, --ragsearch-z.
 * Model and document text is never parsed as HTML: answers are rendered as a safe Markdown
 * subset (paragraphs, emphasis, inline code, code blocks, lists, http(s) links) by building
 * DOM nodes whose text is set as textContent.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.collection) {
    if (window.console) console.error("ragsearch widget: data-collection is required");
    return;
  }
  var data = script.dataset;
  var api = (data.api || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var lang = (data.lang || document.documentElement.lang || navigator.language || "en").toLowerCase();
  var zh = lang.indexOf("zh") === 0;
  var text = zh
    ? { title: "知识库问答", placeholder: "输入问题…", send: "发送", open: "打开问答", close: "关闭",
        sources: "来源", failed: "出错了：", empty: "（没有回答）",
        greeting: "你好！请问有什么可以帮你？我会根据文档回答，并注明来源。" }
    : { title: "Ask the docs", placeholder: "Ask a question…", send: "Send", open: "Open chat",
        close: "Close", sources: "Sources", failed: "Something went wrong: ", empty: "(no answer)",
        greeting: "Hi! Ask me anything about these docs. I answer from them and cite my sources." };
  var positions = ["bottom-right", "bottom-left", "top-right", "top-left"];
  var position = positions.indexOf(data.position) >= 0 ? data.position : "bottom-right";
  var inline = data.mode === "inline";
  var conversation = [];
  var busy = false;

  var css = [
    ":host { all: initial; }",
    ".root { font-family: var(--ragsearch-font, system-ui, -apple-system, 'Segoe UI', 'PingFang SC', 'Microsoft YaHei', sans-serif);",
    "  font-size: 14px; line-height: 1.5; color: var(--ragsearch-text, #111827); }",
    ".root.floating { position: fixed; z-index: var(--ragsearch-z, 2147483000); }",
    ".bottom-right { right: 20px; bottom: 20px; } .bottom-left { left: 20px; bottom: 20px; }",
    ".top-right { right: 20px; top: 20px; } .top-left { left: 20px; top: 20px; }",
    ".bubble { width: 56px; height: 56px; border-radius: 50%; border: 0; cursor: pointer;",
    "  background: var(--ragsearch-accent, #2563eb); color: #fff; box-shadow: 0 6px 20px rgba(0,0,0,.2); }",
    ".bubble svg { width: 26px; height: 26px; }",
    ".panel { display: none; flex-direction: column; overflow: hidden;",
    "  width: var(--ragsearch-width, 380px); height: var(--ragsearch-height, 560px); max-height: calc(100vh - 40px);",
    "  max-width: calc(100vw - 40px); background: var(--ragsearch-bg, #fff);",
    "  border: 1px solid var(--ragsearch-border, #e5e7eb); border-radius: var(--ragsearch-radius, 12px);",
    "  box-shadow: 0 12px 40px rgba(0,0,0,.18); }",
    ".open .panel { display: flex; } .open .bubble { display: none; }",
    ".inline .panel { display: flex; width: 100%; height: 100vh; max-width: none; max-height: none;",
    "  border: 0; border-radius: 0; box-shadow: none; }",
    ".inline .bubble, .inline .close { display: none; }",
    ".head { display: flex; align-items: center; justify-content: space-between; padding: 12px 16px;",
    "  background: var(--ragsearch-accent, #2563eb); color: #fff; font-weight: 600; }",
    ".close { background: none; border: 0; color: inherit; font-size: 20px; cursor: pointer; line-height: 1; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px 16px; display: flex; flex-direction: column; gap: 10px; }",
    ".msg { max-width: 88%; padding: 8px 12px; border-radius: var(--ragsearch-radius, 12px); white-space: pre-wrap; word-wrap: break-word; }",
    ".user { align-self: flex-end; background: var(--ragsearch-accent, #2563eb); color: #fff; }",
    ".assistant { align-self: flex-start; background: var(--ragsearch-bubble, #f3f4f6); }",
    ".assistant.error { background: #fef2f2; color: #991b1b; }",
    ".greeting { align-self: flex-start; background: var(--ragsearch-bubble, #f3f4f6); }",
    ".suggestions { display: flex; flex-wrap: wrap; gap: 6px; }",
    ".suggestion { border: 1px solid var(--ragsearch-accent, #2563eb); color: var(--ragsearch-accent, #2563eb);",
    "  background: transparent; border-radius: 999px; padding: 4px 10px; font: inherit; font-size: 12px; cursor: pointer; }",
    ".text p { margin: 0 0 6px; } .text p:last-child { margin-bottom: 0; }",
    ".text ul, .text ol { margin: 0 0 6px; padding-left: 20px; }",
    ".text code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;",
    "  background: rgba(0,0,0,.06); padding: 0 3px; border-radius: 4px; }",
    ".text pre { margin: 0 0 6px; padding: 8px; overflow-x: auto; background: rgba(0,0,0,.06); border-radius: 6px; }",
    ".text pre code { background: none; padding: 0; }",
    ".text a { color: var(--ragsearch-accent, #2563eb); }",
    ".cite { color: var(--ragsearch-accent, #2563eb); font-size: 11px; font-weight: 600; vertical-align: super; }",
    ".citations-box { margin-top: 8px; padding-top: 6px; border-top: 1px solid var(--ragsearch-border, #e5e7eb); white-space: normal; }",
    ".citations { margin: 0; padding: 0; list-style: none; }",
    ".citations-title { font-size: 12px; color: var(--ragsearch-muted, #6b7280); margin-bottom: 4px; }",
    ".citation { margin: 0 0 6px; font-size: 12px; }",
    ".citation .n { color: var(--ragsearch-accent, #2563eb); font-weight: 600; margin-right: 4px; }",
    ".citation a { color: var(--ragsearch-accent, #2563eb); }",
    ".citation .snippet { color: var(--ragsearch-muted, #6b7280); margin-top: 2px; }",
    "form { display: flex; gap: 8px; padding: 12px; border-top: 1px solid var(--ragsearch-border, #e5e7eb); }",
    "textarea { flex: 1; resize: none; font: inherit; padding: 8px 10px; min-height: 20px; max-height: 120px;",
    "  border: 1px solid var(--ragsearch-border, #e5e7eb); border-radius: 8px; color: inherit; background: #fff; }",
    "textarea:focus { outline: 2px solid var(--ragsearch-accent, #2563eb); outline-offset: -1px; }",
    "button.send { border: 0; border-radius: 8px; padding: 0 14px; cursor: pointer; font: inherit;",
    "  background: var(--ragsearch-accent, #2563eb); color: #fff; }",
    "button.send:disabled { opacity: .5; cursor: default; }"
  ].join("\n");

  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  var host = el("div");
  host.id = "ragsearch-widget";
  var shadow = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = css;
  var root = el("div", "root " + (inline ? "inline" : "floating " + position));
  var bubble = el("button", "bubble");
  bubble.type = "button";
  bubble.setAttribute("aria-label", text.open);
  var svgNS = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("fill", "currentColor");
  var path = document.createElementNS(svgNS, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
  svg.appendChild(path);
  bubble.appendChild(svg);

  var panel = el("div", "panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", data.title || text.title);
  var head = el("div", "head");
  head.appendChild(el("span", "title", data.title || text.title));
  var close = el("button", "close", "×");
  close.type = "button";
  close.setAttribute("aria-label", text.close);
  head.appendChild(close);
  var log = el("div", "log");
  log.setAttribute("aria-live", "polite");
  var form = el("form");
  var input = el("textarea");
  input.rows = 1;
  input.placeholder = text.placeholder;
  input.setAttribute("aria-label", text.placeholder);
  var send = el("button", "send", text.send);
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(bubble);
  root.appendChild(panel);
  shadow.appendChild(style);
  shadow.appendChild(root);

  var suggestionsBox = null;
  if (data.greeting !== "off") {  // an empty data-greeting (the /widget page's default) greets
    var greeting = el("div", "msg greeting", data.greeting || text.greeting);
    log.appendChild(greeting);
  }
  var suggested = suggestionsFrom(data.suggestions);
  if (suggested.length) {
    suggestionsBox = el("div", "suggestions");
    suggested.forEach(function (question) {
      var button = el("button", "suggestion", question);
      button.type = "button";
      button.addEventListener("click", function () { input.value = question; ask(); });
      suggestionsBox.appendChild(button);
    });
    log.appendChild(suggestionsBox);
  }

  bubble.addEventListener("click", function () { root.classList.add("open"); input.focus(); });
  close.addEventListener("click", function () { root.classList.remove("open"); });
  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; Enter while an IME composes (Chinese) is not a send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      ask();
    }
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); ask(); });

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  /* The answer as a safe Markdown subset, built node by node: paragraphs, lists, code blocks,
     and inline code, **strong**, *emphasis*, http(s) links and [n] markers (superscripts). */
  function renderAnswer(node, answer) {
    node.textContent = "";
    var lines = String(answer).replace(/\r\n?/g, "\n").split("\n");
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      if (/^\s*```/.test(line)) {
        var code = [];
        for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) code.push(lines[i]);
        i++;
        var pre = el("pre");
        pre.appendChild(el("code", null, code.join("\n")));
        node.appendChild(pre);
      } else if (/^\s*([-*+]|\d{1,3}[.)])\s+/.test(line)) {
        var ordered = /^\s*\d/.test(line);
        var list = el(ordered ? "ol" : "ul");
        for (; i < lines.length && /^\s*([-*+]|\d{1,3}[.)])\s+/.test(lines[i]); i++) {
          var item = el("li");
          renderInline(item, lines[i].replace(/^\s*([-*+]|\d{1,3}[.)])\s+/, ""));
          list.appendChild(item);
        }
        node.appendChild(list);
      } else if (!line.trim()) {
        i++;
      } else {
        var para = [];
        for (; i < lines.length && lines[i].trim() && !/^\s*(```|[-*+]\s|\d{1,3}[.)]\s)/.test(lines[i]); i++) {
          para.push(lines[i]);
        }
        var p = el("p");
        renderInline(p, para.join("\n"));
        node.appendChild(p);
      }
    }
  }

  var INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)|(\[[^\]\n]+\]\([^)\s]+\))|(\[\d{1,3}\])/g;

  function renderInline(node, textValue) {
    var last = 0;
    var match;
    INLINE.lastIndex = 0;
    while ((match = INLINE.exec(textValue)) !== null) {
      if (match.index > last) node.appendChild(document.createTextNode(textValue.slice(last, match.index)));
      var token = match[0];
      if (match[1]) node.appendChild(el("code", null, token.slice(1, -1)));
      else if (match[2]) node.appendChild(el("strong", null, token.slice(2, -2)));
      else if (match[3]) node.appendChild(el("em", null, token.slice(1, -1)));
      else if (match[4]) {
        var label = token.slice(1, token.indexOf("]("));
        var href = safeHref(token.slice(token.indexOf("](") + 2, -1));
        if (href) {
          var a = el("a", null, label);
          a.href = href;
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          node.appendChild(a);
        } else {
          node.appendChild(document.createTextNode(label));
        }
      } else node.appendChild(el("span", "cite", token));
      last = match.index + token.length;
    }
    if (last < textValue.length) node.appendChild(document.createTextNode(textValue.slice(last)));
  }

  function suggestionsFrom(value) {
    if (!value) return [];
    try {
      var parsed = JSON.parse(value);
      if (Array.isArray(parsed)) return parsed.map(String).filter(Boolean).slice(0, 6);
    } catch (e) { /* not JSON: texts separated by "|" */ }
    return value.split("|").map(function (q) { return q.trim(); }).filter(Boolean).slice(0, 6);
  }

  function safeHref(source) {
    try {
      var url = new URL(source);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function renderCitations(bubbleNode, citations) {
    if (!citations || !citations.length) return;
    var box = el("div", "citations-box");
    box.appendChild(el("div", "citations-title", text.sources));
    var list = el("ol", "citations");
    citations.forEach(function (c) {
      var item = el("li", "citation");
      item.appendChild(el("span", "n", "[" + c.n + "]"));
      var label = c.title || c.source || "";
      var href = safeHref(c.source || "");
      var link = el(href ? "a" : "span", "source", label);
      if (href) {
        link.href = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
      }
      link.title = c.source || "";
      item.appendChild(link);
      if (c.snippet) item.appendChild(el("div", "snippet", c.snippet));
      list.appendChild(item);
    });
    box.appendChild(list);
    bubbleNode.appendChild(box);
  }

  function fail(node, message) {
    node.classList.add("error");
    node.textContent = text.failed + message;
  }

  function errorMessage(body, status) {
    if (body && body.error && body.error.message) return body.error.message;
    return "HTTP " + status;
  }

  async function ask() {
    var question = input.value.trim();
    if (!question || busy) return;
    busy = true;
    send.disabled = true;
    input.value = "";
    if (suggestionsBox) {
      suggestionsBox.remove();
      suggestionsBox = null;
    }
    log.appendChild(el("div", "msg user", question));
    var answerNode = el("div", "msg assistant");
    var answerText = el("div", "text", "…");
    answerNode.appendChild(answerText);
    log.appendChild(answerNode);
    scrollDown();
    var messages = conversation.concat([{ role: "user", content: question }]);
    var headers = { "Content-Type": "application/json" };
    if (data.key) headers.Authorization = "Bearer " + data.key;
    var streamed = "";
    try {
      var response = await fetch(api + "/v1/chat/completions", {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ model: "ragsearch:" + data.collection, messages: messages, stream: true })
      });
      if (!response.ok) {
        var body = null;
        try { body = await response.json(); } catch (e) { body = null; }
        fail(answerNode, errorMessage(body, response.status));
        return;
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var final = null;
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        var events = buffer.split("\n\n");
        buffer = events.pop();
        for (var i = 0; i < events.length; i++) {
          var line = events[i].split("\n").filter(function (l) { return l.indexOf("data:") === 0; })
            .map(function (l) { return l.slice(5).trim(); }).join("\n");
          if (!line || line === "[DONE]") continue;
          var event = JSON.parse(line);
          if (event.error) { fail(answerNode, errorMessage(event, 500)); return; }
          var choice = event.choices && event.choices[0];
          if (choice && choice.delta && choice.delta.content) {
            streamed += choice.delta.content;
            answerText.textContent = streamed;
            scrollDown();
          }
          if (choice && choice.finish_reason) final = event;
        }
      }
      var answer = final && final.ragsearch && final.ragsearch.answer ? final.ragsearch.answer : streamed;
      renderAnswer(answerText, answer || text.empty);
      if (final) renderCitations(answerNode, final.citations);
      conversation = messages.concat([{ role: "assistant", content: answer }]);
    } catch (error) {
      fail(answerNode, error && error.message ? error.message : String(error));
    } finally {
      answerNode.setAttribute("data-done", "true");
      busy = false;
      send.disabled = false;
      scrollDown();
    }
  }

  function mount() { document.body.appendChild(host); }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
