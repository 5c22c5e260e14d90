/*
 * ragsearch operators' console: collections, uploads and jobs, documents and their chunks,
 * a search/answer playground, API keys. Plain script, no build step, no network but this
 * server. The API key lives in sessionStorage (this tab only) and travels as a bearer header,
 * never in a URL. Every document or model text is set as textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  var KEY_STORE = "ragsearch.console.key";
  var LANG_STORE = "ragsearch.console.lang";
  var PAGE = 50;

  var TEXT = {
    en: {
      console: "console", collections: "Collections", documents: "Documents", playground: "Playground",
      jobs: "Jobs", keys: "API keys", signOut: "Sign out", signInTitle: "Sign in",
      signInHelp: "Paste an API key. It stays in this tab only (session storage) and is sent as a bearer header. Leave it empty when the server has no keys.",
      apiKey: "API key", signIn: "Sign in", refresh: "Refresh", name: "Name", embedder: "Embedder",
      dimensions: "Dimensions", chunkTokens: "Chunk tokens", chunks: "Chunks", noCollections: "No collections yet.",
      newCollection: "New collection", serverDefault: "server default", create: "Create",
      dropExplain: "Dropping deletes every document, chunk and vector of", typeToConfirm: "Type its name to confirm.",
      drop: "Drop", cancel: "Cancel", collection: "Collection", upload: "Upload", dropHere: "Drop files here or",
      chooseFiles: "choose files", metadataJson: "Metadata (JSON object, for every file)", asJob: "Run as a background job",
      searchDocs: "Search sources and titles", title: "Title", source: "Source", size: "Size", updated: "Updated",
      previous: "Previous", next: "Next", close: "Close", "delete": "Delete", metadata: "Metadata",
      askSomething: "Ask or search something…", mode: "Mode", model: "Model", filterJson: "Filter (JSON, optional)",
      search: "Search", answer: "Answer", status: "Status", progress: "Progress", failed: "Failed",
      noJobs: "No ingestion jobs yet.", keysDenied: "Managing keys needs an admin key without collection limits.",
      prefix: "Prefix", scopes: "Scopes", origins: "Origins", rate: "Rate/min", created: "Created", newKey: "New key",
      collectionsComma: "Collections (comma-separated; empty: all)", originsComma: "Widget origins (comma-separated)",
      secretOnce: "The new key, shown only now:", done: "Done", open: "Open", revoke: "Revoke", resume: "Resume",
      badKey: "That key was refused: ", signedIn: "Signed in.", waiting: "waiting", uploading: "uploading",
      processing: "processing", added: "added", updatedShort: "updated", unchanged: "unchanged",
      chunksWritten: "chunks", noMetadata: "No metadata.", page: "page", span: "span", id: "id",
      mediaType: "media type", sha256: "sha256", confirmDelete: "Delete this document? Click Delete again to confirm.",
      deleted: "Deleted.", results: "Results", timings: "Timings (ms)", warnings: "Warnings", usage: "Usage",
      route: "Route", grounded: "grounded", notGrounded: "not grounded: evidence too weak", citations: "Citations",
      promptSources: "Prompt sources", noResults: "No results.", badJson: "Not a JSON object: ",
      created1: "Created ", dropped: "Dropped ", revoked: "Revoked key ", all: "all", job: "job",
      jobStarted: "Job started: #", files: "files",
      moreChunks: "… and {n} more chunks (GET .../chunks?offset=1000)"
    },
    zh: {
      console: "控制台", collections: "集合", documents: "文档", playground: "检索试验",
      jobs: "任务", keys: "API 密钥", signOut: "退出", signInTitle: "登录",
      signInHelp: "粘贴 API 密钥。它只保存在本标签页（会话存储）中，并以 Bearer 头发送。服务器没有密钥时留空即可。",
      apiKey: "API 密钥", signIn: "登录", refresh: "刷新", name: "名称", embedder: "向量模型",
      dimensions: "维度", chunkTokens: "分块词元数", chunks: "分块", noCollections: "还没有集合。",
      newCollection: "新建集合", serverDefault: "服务器默认", create: "创建",
      dropExplain: "删除将清除以下集合的全部文档、分块和向量：", typeToConfirm: "请输入集合名称确认。",
      drop: "删除集合", cancel: "取消", collection: "集合", upload: "上传", dropHere: "把文件拖到这里，或",
      chooseFiles: "选择文件", metadataJson: "元数据（JSON 对象，应用于每个文件）", asJob: "作为后台任务运行",
      searchDocs: "按来源或标题搜索", title: "标题", source: "来源", size: "大小", updated: "更新时间",
      previous: "上一页", next: "下一页", close: "关闭", "delete": "删除", metadata: "元数据",
      askSomething: "输入问题或检索词…", mode: "模式", model: "模型", filterJson: "过滤条件（JSON，可选）",
      search: "检索", answer: "回答", status: "状态", progress: "进度", failed: "失败",
      noJobs: "还没有导入任务。", keysDenied: "管理密钥需要不限集合的管理员密钥。",
      prefix: "前缀", scopes: "权限", origins: "来源站点", rate: "每分钟请求", created: "创建时间", newKey: "新建密钥",
      collectionsComma: "集合（逗号分隔；留空表示全部）", originsComma: "小部件来源站点（逗号分隔）",
      secretOnce: "新密钥（只显示这一次）：", done: "完成", open: "打开", revoke: "吊销", resume: "继续",
      badKey: "密钥被拒绝：", signedIn: "已登录。", waiting: "等待中", uploading: "上传中",
      processing: "处理中", added: "新增", updatedShort: "已更新", unchanged: "未变化",
      chunksWritten: "个分块", noMetadata: "没有元数据。", page: "页", span: "位置", id: "编号",
      mediaType: "类型", sha256: "sha256", confirmDelete: "确定删除该文档？再次点击“删除”确认。",
      deleted: "已删除。", results: "结果", timings: "各阶段耗时（毫秒）", warnings: "提示", usage: "用量",
      route: "路由", grounded: "有据可依", notGrounded: "证据不足，未作回答", citations: "引用",
      promptSources: "提示词中的来源", noResults: "没有结果。", badJson: "不是 JSON 对象：",
      created1: "已创建 ", dropped: "已删除 ", revoked: "已吊销密钥 ", all: "全部", job: "任务",
      jobStarted: "任务已开始：#", files: "个文件",
      moreChunks: "……还有 {n} 个分块（GET .../chunks?offset=1000）"
    }
  };

  var state = {
    lang: localStorage.getItem(LANG_STORE) === "zh" ? "zh" : "en",
    collections: [], collection: null, docsOffset: 0, docsQuery: "", openDoc: null,
    jobsAvailable: false, jobsTimer: null
  };

  function t(key) { return TEXT[state.lang][key] || TEXT.en[key] || key; }
  function $(id) { return document.getElementById(id); }

  /* Build DOM nodes; strings become text nodes, so nothing is ever parsed as HTML. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    var a = attrs || {};
    Object.keys(a).forEach(function (name) {
      var value = a[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = String(value);
      else if (name === "className") node.className = value;
      else if (name.indexOf("on") === 0) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function ApiError(status, error) {
    this.status = status;
    this.code = (error && error.code) || "http_" + status;
    this.message = (error && error.message) || "HTTP " + status;
  }

  function authHeaders() {
    var key = sessionStorage.getItem(KEY_STORE);
    return key ? { Authorization: "Bearer " + key } : {};
  }

  function api(method, path, body) {
    var headers = authHeaders();
    var init = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (ignored) { data = null; }
        if (!response.ok) throw new ApiError(response.status, data && data.error);
        return data;
      });
    });
  }

  function notify(message, bad) {
    var box = $("notice");
    box.textContent = message;
    box.className = bad ? "notice bad" : "notice";
    box.hidden = false;
    clearTimeout(notify.timer);
    notify.timer = setTimeout(function () { box.hidden = true; }, bad ? 8000 : 4000);
  }
  function failed(error) { notify((error && error.message) || String(error), true); }

  function collectionPath(name) { return "/v1/collections/" + encodeURIComponent(name); }

  function bytes(n) {
    if (n === null || n === undefined) return "";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KB";
    return (n / 1048576).toFixed(1) + " MB";
  }
  function when(iso) { return iso ? String(iso).replace("T", " ").slice(0, 19) : ""; }
  function number(n) { return typeof n === "number" ? (Math.round(n * 10000) / 10000).toString() : String(n); }

  /* --- language ------------------------------------------------------------------------ */

  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach(function (node) {
      node.textContent = t(node.getAttribute("data-i18n"));
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (node) {
      node.setAttribute("placeholder", t(node.getAttribute("data-i18n-placeholder")));
    });
    $("lang").textContent = state.lang === "zh" ? "English" : "中文";
    document.title = "ragsearch " + t("console");
  }

  /* --- sign in ------------------------------------------------------------------------- */

  function showSignin(message) {
    $("signin").hidden = false;
    $("tabs").hidden = true;
    $("signout").hidden = true;
    document.querySelectorAll(".view").forEach(function (v) { v.hidden = true; });
    $("signin-error").hidden = !message;
    $("signin-error").textContent = message || "";
    $("signin-key").focus();
  }

  function start() {
    return api("GET", "/v1/collections").then(function (data) {
      state.collections = data.collections;
      $("signin").hidden = true;
      $("tabs").hidden = false;
      $("signout").hidden = !sessionStorage.getItem(KEY_STORE);
      document.querySelector('#tabs a[data-tab="jobs"]').hidden = !state.jobsAvailable;
      $("upload-async").parentNode.hidden = !state.jobsAvailable;
      route();
    });
  }

  function signIn(event) {
    event.preventDefault();
    var key = $("signin-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
    $("signin-key").value = "";
    start().catch(function (error) {
      sessionStorage.removeItem(KEY_STORE);
      showSignin(t("badKey") + error.message);
    });
  }

  function signOut() {
    sessionStorage.removeItem(KEY_STORE);
    stopJobsTimer();
    showSignin("");
  }

  /* --- routing ------------------------------------------------------------------------- */

  var VIEWS = ["collections", "documents", "playground", "jobs", "keys"];

  function route() {
    if (!$("signin").hidden) return;
    var name = location.hash.replace("#", "") || "collections";
    if (VIEWS.indexOf(name) < 0 || (name === "jobs" && !state.jobsAvailable)) name = "collections";
    VIEWS.forEach(function (v) { $("view-" + v).hidden = v !== name; });
    document.querySelectorAll("#tabs a").forEach(function (a) {
      a.classList.toggle("active", a.getAttribute("data-tab") === name);
    });
    stopJobsTimer();
    $("notice").hidden = true;
    var shown = { collections: loadCollections, documents: showDocuments, playground: showPlayground,
      jobs: loadJobs, keys: loadKeys }[name];
    Promise.resolve().then(shown).catch(failed);
  }

  /* --- collections --------------------------------------------------------------------- */

  function loadCollections() {
    return api("GET", "/v1/collections").then(function (data) {
      state.collections = data.collections;
      renderCollections();
      fillCollectionSelects();
    });
  }

  function renderCollections() {
    var body = clear(document.querySelector("#collections-table tbody"));
    $("collections-empty").hidden = state.collections.length > 0;
    state.collections.forEach(function (c) {
      body.appendChild(el("tr", { "data-collection": c.name },
        el("td", null, el("strong", { text: c.name })),
        el("td", { text: c.embedder + " · " + c.model }),
        el("td", { className: "num", text: c.dimensions }),
        el("td", { className: "num", text: c.chunk_tokens }),
        el("td", { className: "num", text: c.documents }),
        el("td", { className: "num", text: c.chunks }),
        el("td", { className: "actions" },
          el("button", { type: "button", className: "small", text: t("open"),
            onclick: function () { state.collection = c.name; location.hash = "#documents"; } }),
          " ",
          el("button", { type: "button", className: "small danger", text: t("drop"),
            onclick: function () { askDrop(c.name); } }))));
    });
  }

  function fillCollectionSelects() {
    if (!state.collection || !state.collections.some(function (c) { return c.name === state.collection; })) {
      state.collection = state.collections.length ? state.collections[0].name : null;
    }
    document.querySelectorAll(".collection-select").forEach(function (select) {
      clear(select);
      state.collections.forEach(function (c) {
        select.appendChild(el("option", { value: c.name, text: c.name }));
      });
      if (state.collection) select.value = state.collection;
    });
  }

  function createCollection(event) {
    event.preventDefault();
    var body = { name: $("cc-name").value.trim() };
    if ($("cc-embedder").value) body.embedder = $("cc-embedder").value;
    if ($("cc-chunk").value) body.chunk_tokens = Number($("cc-chunk").value);
    api("POST", "/v1/collections", body).then(function (created) {
      notify(t("created1") + created.name);
      $("cc-name").value = "";
      state.collection = created.name;
      return loadCollections();
    }).catch(failed);
  }

  function askDrop(name) {
    $("drop-confirm").hidden = false;
    $("drop-name").textContent = name;
    $("drop-typed").value = "";
    $("drop-yes").disabled = true;
    $("drop-typed").focus();
  }

  function confirmDrop() {
    var name = $("drop-name").textContent;
    if ($("drop-typed").value !== name) return;
    api("DELETE", collectionPath(name)).then(function () {
      $("drop-confirm").hidden = true;
      notify(t("dropped") + name);
      return loadCollections();
    }).catch(failed);
  }

  /* --- documents ----------------------------------------------------------------------- */

  function showDocuments() {
    return loadCollections().then(function () {
      $("docs-collection-name").textContent = state.collection || "—";
      $("doc-view").hidden = true;
      return loadDocuments();
    });
  }

  function loadDocuments() {
    var body = clear(document.querySelector("#docs-table tbody"));
    if (!state.collection) return Promise.resolve();
    var query = "?limit=" + PAGE + "&offset=" + state.docsOffset +
      (state.docsQuery ? "&q=" + encodeURIComponent(state.docsQuery) : "");
    return api("GET", collectionPath(state.collection) + "/documents" + query).then(function (data) {
      data.documents.forEach(function (d) {
        body.appendChild(el("tr", { className: "clickable", "data-document": d.id,
          onclick: function () { openDocument(d.id).catch(failed); } },
          el("td", { text: d.title || "—" }),
          el("td", null, el("code", { text: d.source })),
          el("td", { className: "num", text: d.chunks }),
          el("td", { className: "num", text: bytes(d.size_bytes) }),
          el("td", { text: when(d.updated_at) })));
      });
      var last = Math.min(data.offset + data.documents.length, data.total);
      $("docs-total").textContent = (data.total ? (data.offset + 1) + "–" + last : "0") + " / " + data.total;
      $("docs-prev").disabled = data.offset === 0;
      $("docs-next").disabled = last >= data.total;
    });
  }

  function openDocument(id) {
    var base = collectionPath(state.collection) + "/documents/" + id;
    return Promise.all([api("GET", base), api("GET", base + "/chunks?limit=1000")]).then(function (got) {
      var doc = got[0], chunks = got[1];
      state.openDoc = doc.id;
      $("doc-view").hidden = false;
      $("doc-title").textContent = doc.title || doc.source;
      var facts = clear($("doc-facts"));
      [[t("id"), doc.id], [t("source"), doc.source], [t("mediaType"), doc.media_type],
       [t("size"), bytes(doc.size_bytes)], [t("updated"), when(doc.updated_at)], [t("sha256"), doc.sha256]]
        .forEach(function (pair) { facts.appendChild(el("dt", { text: pair[0] })); facts.appendChild(el("dd", { text: pair[1] })); });
      var meta = clear($("doc-metadata"));
      var keys = Object.keys(doc.metadata || {});
      if (!keys.length) meta.appendChild(el("dd", { className: "muted", text: t("noMetadata") }));
      keys.forEach(function (k) {
        var v = doc.metadata[k];
        meta.appendChild(el("dt", { text: k }));
        meta.appendChild(el("dd", { text: typeof v === "string" ? v : JSON.stringify(v) }));
      });
      $("doc-chunk-count").textContent = "(" + chunks.total + ")";
      var list = clear($("doc-chunks"));
      chunks.chunks.forEach(function (c) { list.appendChild(chunkItem(c)); });
      if (chunks.total > chunks.chunks.length) {
        list.appendChild(el("li", { className: "muted", text: t("moreChunks").replace("{n}", chunks.total - chunks.chunks.length) }));
      }
      $("doc-delete").textContent = t("delete");
      $("doc-delete").dataset.armed = "";
      $("doc-view").scrollIntoView({ block: "start" });
    });
  }

  function chunkItem(c) {
    var heading = (c.heading_path || []).join(" › ");
    return el("li", { "data-chunk": c.chunk_id },
      el("div", { className: "chunk-meta" },
        el("span", { text: "#" + c.ordinal + " · " + t("id") + " " + c.chunk_id }),
        heading ? el("span", { className: "heading-path", text: heading }) : null,
        c.page !== null && c.page !== undefined ? el("span", { text: t("page") + " " + c.page }) : null,
        el("span", { text: t("span") + " " + c.span.start + "–" + c.span.end })),
      el("div", { className: "chunk-text", text: c.text }));
  }

  function deleteDocument() {
    var button = $("doc-delete");
    if (!button.dataset.armed) {
      button.dataset.armed = "yes";
      button.textContent = t("delete") + " ?";
      notify(t("confirmDelete"));
      return;
    }
    api("DELETE", collectionPath(state.collection) + "/documents/" + state.openDoc).then(function () {
      $("doc-view").hidden = true;
      notify(t("deleted"));
      return loadDocuments();
    }).catch(failed);
  }

  /* --- uploads ------------------------------------------------------------------------- */

  function metadataField() {
    var raw = $("upload-metadata").value.trim();
    if (!raw) return "";
    var parsed;
    try { parsed = JSON.parse(raw); } catch (error) { throw new Error(t("badJson") + error.message); }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(t("badJson") + raw);
    return raw;
  }

  function uploadFiles(files) {
    if (!state.collection || !files.length) return;
    var metadata;
    try { metadata = metadataField(); } catch (error) { failed(error); return; }
    var list = $("upload-list");
    var rows = Array.prototype.map.call(files, function (file) {
      var bar = el("progress", { max: 100, value: 0 });
      var result = el("span", { className: "muted", text: t("waiting") });
      list.appendChild(el("li", { "data-file": file.name }, el("span", { text: file.name }), bar, result));
      return { file: file, bar: bar, result: result };
    });
    /* One request per file, in turn: each gets its own progress and its own report. */
    rows.reduce(function (previous, row) {
      return previous.then(function () { return sendFile(row, metadata); });
    }, Promise.resolve()).then(function () { return loadDocuments(); }).catch(failed);
  }

  function sendFile(row, metadata) {
    return new Promise(function (resolve) {
      var form = new FormData();
      form.append("files", row.file, row.file.name);
      if (metadata) form.append("metadata", metadata);
      var asJob = state.jobsAvailable && $("upload-async").checked;
      if (asJob) form.append("async", "true");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", collectionPath(state.collection) + "/documents");
      var headers = authHeaders();
      Object.keys(headers).forEach(function (h) { xhr.setRequestHeader(h, headers[h]); });
      row.result.textContent = t("uploading");
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) row.bar.value = Math.round((event.loaded / event.total) * 100);
      };
      xhr.upload.onload = function () { row.bar.value = 100; row.result.textContent = t("processing"); };
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (ignored) { data = null; }
        showUploadResult(row, xhr.status, data);
        resolve();
      };
      xhr.onerror = function () { showUploadResult(row, 0, null); resolve(); };
      xhr.send(form);
    });
  }

  function showUploadResult(row, status, data) {
    row.bar.value = 100;
    if (status >= 200 && status < 300 && data && data.job) {
      row.result.className = "status-ok";
      row.result.textContent = t("jobStarted") + data.job.id;
      return;
    }
    if (status >= 200 && status < 300 && data) {
      var failedOnes = data.failed || [];
      if (failedOnes.length) {
        row.result.className = "status-bad";
        row.result.textContent = failedOnes.map(function (f) { return f.error; }).join("; ");
        return;
      }
      var what = data.added ? t("added") : data.updated ? t("updatedShort") : t("unchanged");
      row.result.className = data.added || data.updated ? "status-ok" : "status-warn";
      row.result.textContent = what + " · " + (data.chunks || 0) + " " + t("chunksWritten");
      return;
    }
    row.result.className = "status-bad";
    row.result.textContent = data && data.error ? data.error.message : "HTTP " + status;
  }

  /* --- playground ---------------------------------------------------------------------- */

  function showPlayground() { return loadCollections(); }

  function playBody(forAnswer) {
    var body = {
      query: $("play-query").value,
      collection: $("play-collection").value,
      mode: $("play-mode").value,
      top_k: Number($("play-topk").value) || 8
    };
    var raw = $("play-filter").value.trim();
    if (raw) {
      var parsed;
      try { parsed = JSON.parse(raw); } catch (error) { throw new Error(t("badJson") + error.message); }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(t("badJson") + raw);
      body.filter = parsed;
    }
    if (forAnswer) body.model = $("play-model").value;
    return body;
  }

  function runPlay(forAnswer) {
    var body;
    try { body = playBody(forAnswer); } catch (error) { failed(error); return; }
    if (!body.query.trim()) return;
    state.collection = body.collection;
    var out = clear($("play-output"));
    out.appendChild(el("p", { className: "muted", text: "…" }));
    var done = forAnswer ? streamAnswer(out, body) : api("POST", "/v1/search", body).then(function (data) {
      clear(out);
      renderSearch(out, data);
    });
    done.catch(function (error) {
      clear(out).appendChild(el("p", { className: "error", text: error.message }));
    });
  }

  /* The answer as Server-Sent Events: the route and the text as they come, then the whole
     answer rendered exactly as the JSON one (the `done` fields equal it). */
  function streamAnswer(out, body) {
    body.stream = true;
    var headers = authHeaders();
    headers["Content-Type"] = "application/json";
    return fetch("/v1/answer", { method: "POST", headers: headers, body: JSON.stringify(body),
                                 credentials: "omit", cache: "no-store" }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return null; }).then(function (data) {
          throw new ApiError(response.status, data && data.error);
        });
      }
      var merged = {};
      var live = el("div", { className: "answer-text", id: "play-live" });
      var route = el("div", { className: "result-meta" });
      clear(out).appendChild(el("div", { className: "card" }, route, live));
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function handle(block) {
        var name = "message", data = "";
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) name = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
        });
        if (!data) return;
        var payload = JSON.parse(data);
        if (name === "error") throw new ApiError(200, payload.error);
        if (name === "delta") { live.appendChild(document.createTextNode(payload.text || "")); return; }
        Object.keys(payload).forEach(function (k) { merged[k] = payload[k]; });
        if (name === "sources") route.textContent = t("route") + ": " + (payload.model || "") + " · " + (payload.route || "");
      }
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            clear(out);
            renderAnswer(out, merged);
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true });
          var blocks = buffer.split("\n\n");
          buffer = blocks.pop();
          blocks.forEach(handle);
          return pump();
        });
      }
      return pump();
    });
  }

  function timingsBlock(timings) {
    var box = el("div", { className: "timings" });
    Object.keys(timings || {}).forEach(function (stage) {
      box.appendChild(el("span", { className: "chip", "data-stage": stage, text: stage + " " + number(timings[stage]) }));
    });
    return el("div", { className: "card" }, el("h3", { text: t("timings") }), box);
  }

  function warningsBlock(warnings) {
    if (!warnings || !warnings.length) return null;
    var list = el("ul");
    warnings.forEach(function (w) { list.appendChild(el("li", { text: w })); });
    return el("div", { className: "card", id: "play-warnings" }, el("h3", { text: t("warnings") }), list);
  }

  function usageBlock(usage) {
    if (!usage || !usage.length) return null;
    var list = el("ul");
    usage.forEach(function (u) {
      list.appendChild(el("li", { text: u.model + ": " + u.prompt_tokens + " + " + u.completion_tokens + " tokens" }));
    });
    return el("div", { className: "card" }, el("h3", { text: t("usage") }), list);
  }

  function resultItem(r, rank) {
    var heading = (r.heading_path || []).join(" › ");
    var chips = el("span", null, el("span", { className: "chip total", text: "score " + number(r.score) }));
    Object.keys(r.scores || {}).forEach(function (k) {
      chips.appendChild(document.createTextNode(" "));
      chips.appendChild(el("span", { className: "chip", "data-retriever": k, text: k + " " + number(r.scores[k]) }));
    });
    return el("li", { className: "result", "data-chunk": r.chunk_id },
      el("div", { className: "result-meta" },
        el("strong", { text: rank + ". " + (r.title || r.source) }),
        el("code", { text: r.source }),
        heading ? el("span", { className: "heading-path", text: heading }) : null,
        r.page !== null && r.page !== undefined ? el("span", { text: t("page") + " " + r.page }) : null,
        r.span ? el("span", { text: t("span") + " " + r.span.start + "–" + r.span.end }) : null),
      chips,
      el("div", { className: "result-text", text: r.text }));
  }

  function renderSearch(out, data) {
    var list = el("ol", { className: "chunks", id: "play-results" });
    (data.results || []).forEach(function (r, i) { list.appendChild(resultItem(r, i + 1)); });
    out.appendChild(warningsBlock(data.warnings) || document.createTextNode(""));
    out.appendChild(timingsBlock(data.timings));
    out.appendChild(el("h2", { text: t("results") + " (" + (data.results || []).length + ")" }));
    out.appendChild((data.results || []).length ? list : el("p", { className: "muted", text: t("noResults") }));
    var usage = usageBlock(data.usage);
    if (usage) out.appendChild(usage);
  }

  function answerText(text) {
    /* Citation markers become styled spans; everything stays text. */
    var box = el("div", { className: "answer-text", id: "play-answer-text" });
    String(text || "").split(/(\[\d+\])/).forEach(function (part) {
      if (/^\[\d+\]$/.test(part)) box.appendChild(el("span", { className: "cite", text: part }));
      else if (part) box.appendChild(document.createTextNode(part));
    });
    return box;
  }

  function renderAnswer(out, data) {
    var routeLine = el("div", { className: "result-meta", id: "play-route" },
      el("span", null, t("route") + ": ", el("strong", { text: data.model || "" })),
      el("span", { text: data.route || "" }),
      el("span", { className: data.grounded ? "chip good" : "chip bad", text: data.grounded ? t("grounded") : t("notGrounded") }));
    out.appendChild(el("div", { className: "card" }, routeLine, answerText(data.answer)));
    out.appendChild(warningsBlock(data.warnings) || document.createTextNode(""));
    var cites = el("ol", { className: "chunks", id: "play-citations" });
    (data.citations || []).forEach(function (c) {
      cites.appendChild(el("li", { "data-chunk": c.chunk_id },
        el("div", { className: "result-meta" },
          el("strong", { text: "[" + c.n + "] " + (c.title || c.source) }),
          el("code", { text: c.source }),
          c.heading_path && c.heading_path.length ? el("span", { className: "heading-path", text: c.heading_path.join(" › ") }) : null,
          c.span ? el("span", { text: t("span") + " " + c.span.start + "–" + c.span.end }) : null),
        el("div", { className: "chunk-text", text: c.snippet || "" })));
    });
    var sources = el("ol", { className: "chunks", id: "play-sources" });
    (data.sources || []).forEach(function (s) {
      sources.appendChild(el("li", { "data-chunk": s.chunk_id },
        el("div", { className: "result-meta" },
          el("strong", { text: "[" + s.n + "] " + (s.title || s.source) }), el("code", { text: s.source })),
        el("div", { className: "chunk-text", text: s.snippet || "" })));
    });
    out.appendChild(el("div", { className: "two-col" },
      el("div", null, el("h2", { text: t("citations") }), cites),
      el("div", null, el("h2", { text: t("promptSources") }), sources)));
    out.appendChild(timingsBlock(data.timings));
    var usage = usageBlock(data.usage);
    if (usage) out.appendChild(usage);
  }

  /* --- jobs ---------------------------------------------------------------------------- */

  function stopJobsTimer() {
    if (state.jobsTimer) clearTimeout(state.jobsTimer);
    state.jobsTimer = null;
  }

  function loadJobs() {
    return api("GET", "/v1/jobs?limit=50").then(function (data) {
      var body = clear(document.querySelector("#jobs-table tbody"));
      $("jobs-empty").hidden = data.jobs.length > 0;
      var live = false;
      data.jobs.forEach(function (j) {
        var p = j.progress || {};
        var total = p.files_total || 0;
        var bar = el("progress", { max: Math.max(total, 1), value: p.files_done || 0 });
        live = live || j.status === "queued" || j.status === "running";
        body.appendChild(el("tr", { "data-job": j.id, "data-status": j.status },
          el("td", { text: j.id }),
          el("td", { text: j.collection }),
          el("td", { className: j.status === "failed" || j.status === "interrupted" ? "status-bad" : j.status === "done" ? "status-ok" : "", text: j.status }),
          el("td", null, bar, " ", (p.files_done || 0) + "/" + total + " " + t("files")),
          el("td", { className: "num", text: p.chunks_embedded || 0 }),
          el("td", { className: "num", text: p.files_failed || 0 }),
          el("td", { text: when(j.updated_at) }),
          el("td", { className: "actions" }, j.status === "interrupted"
            ? el("button", { type: "button", className: "small", text: t("resume"),
                onclick: function () { api("POST", "/v1/jobs/" + j.id + "/resume").then(loadJobs).catch(failed); } })
            : null)));
      });
      stopJobsTimer();
      if (live && location.hash === "#jobs") state.jobsTimer = setTimeout(function () { loadJobs().catch(failed); }, 1000);
    });
  }

  /* --- keys ---------------------------------------------------------------------------- */

  function loadKeys() {
    return api("GET", "/v1/keys").then(function (data) {
      $("keys-denied").hidden = true;
      $("keys-body").hidden = false;
      var body = clear(document.querySelector("#keys-table tbody"));
      data.keys.forEach(function (k) {
        body.appendChild(el("tr", { "data-key": k.id, className: k.revoked_at ? "revoked" : "" },
          el("td", { text: k.id }),
          el("td", { text: k.name }),
          el("td", null, el("code", { text: k.prefix + "…" })),
          el("td", { text: k.scopes.join(", ") + (k.kind === "widget" ? " (widget)" : "") }),
          el("td", { text: k.collections ? k.collections.join(", ") : t("all") }),
          el("td", { text: (k.allowed_origins || []).join(", ") }),
          el("td", { className: "num", text: k.rate_per_minute || "" }),
          el("td", { text: when(k.created_at) }),
          el("td", { className: "actions" }, k.revoked_at ? null
            : el("button", { type: "button", className: "small danger", text: t("revoke"),
                onclick: function () { revokeKey(k); } }))));
      });
    }, function (error) {
      if (error.status !== 403) throw error;
      $("keys-denied").hidden = false;
      $("keys-body").hidden = true;
    });
  }

  function listField(id) {
    return $(id).value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function createKey(event) {
    event.preventDefault();
    var scopes = Array.prototype.map.call(
      document.querySelectorAll("#create-key .scopes input:checked"), function (i) { return i.value; });
    var body = { name: $("key-name").value.trim(), scopes: scopes };
    var collections = listField("key-collections");
    if (collections.length) body.collections = collections;
    var origins = listField("key-origins");
    if (origins.length) body.allowed_origins = origins;
    if ($("key-rate").value) body.rate_per_minute = Number($("key-rate").value);
    api("POST", "/v1/keys", body).then(function (created) {
      $("key-secret").hidden = false;
      $("key-secret-value").textContent = created.key;
      ["key-name", "key-collections", "key-origins", "key-rate"].forEach(function (id) { $(id).value = ""; });
      return loadKeys();
    }).catch(failed);
  }

  function revokeKey(k) {
    api("DELETE", "/v1/keys/" + k.id).then(function () {
      notify(t("revoked") + k.name);
      return loadKeys();
    }).catch(failed);
  }

  /* --- wiring -------------------------------------------------------------------------- */

  function wire() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("lang").addEventListener("click", function () {
      state.lang = state.lang === "zh" ? "en" : "zh";
      localStorage.setItem(LANG_STORE, state.lang);
      applyLanguage();
      route();
    });
    window.addEventListener("hashchange", route);
    $("refresh-collections").addEventListener("click", function () { loadCollections().catch(failed); });
    $("create-collection").addEventListener("submit", createCollection);
    $("drop-typed").addEventListener("input", function () {
      $("drop-yes").disabled = $("drop-typed").value !== $("drop-name").textContent;
    });
    $("drop-yes").addEventListener("click", confirmDrop);
    $("drop-no").addEventListener("click", function () { $("drop-confirm").hidden = true; });
    $("docs-collection").addEventListener("change", function (e) {
      state.collection = e.target.value;
      state.docsOffset = 0;
      showDocuments().catch(failed);
    });
    var searchTimer = null;
    $("docs-search").addEventListener("input", function (e) {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(function () {
        state.docsQuery = e.target.value.trim();
        state.docsOffset = 0;
        loadDocuments().catch(failed);
      }, 200);
    });
    $("docs-prev").addEventListener("click", function () {
      state.docsOffset = Math.max(0, state.docsOffset - PAGE); loadDocuments().catch(failed);
    });
    $("docs-next").addEventListener("click", function () {
      state.docsOffset += PAGE; loadDocuments().catch(failed);
    });
    $("doc-close").addEventListener("click", function () { $("doc-view").hidden = true; });
    $("doc-delete").addEventListener("click", deleteDocument);
    $("upload-files").addEventListener("change", function (e) { uploadFiles(e.target.files); e.target.value = ""; });
    var zone = $("dropzone");
    zone.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (e) {
      e.preventDefault(); zone.classList.remove("over"); uploadFiles(e.dataTransfer.files);
    });
    $("play-collection").addEventListener("change", function (e) { state.collection = e.target.value; });
    $("play-form").addEventListener("submit", function (e) { e.preventDefault(); runPlay(false); });
    $("play-answer").addEventListener("click", function () { runPlay(true); });
    $("refresh-jobs").addEventListener("click", function () { loadJobs().catch(failed); });
    $("create-key").addEventListener("submit", createKey);
    $("key-secret-hide").addEventListener("click", function () {
      $("key-secret").hidden = true; $("key-secret-value").textContent = "";
    });
  }

  wire();
  applyLanguage();
  /* Ask first whether a key is needed, so a fresh tab shows the form instead of a 401. */
  var hadKey = Boolean(sessionStorage.getItem(KEY_STORE));
  api("GET", "/console/config.json").then(function (config) {
    state.jobsAvailable = Boolean(config.jobs);
    if (config.key_required && !hadKey) { showSignin(""); return null; }
    return start();
  }).catch(function (error) {
    if (error.status === 401 || error.status === 403) {
      sessionStorage.removeItem(KEY_STORE);
      showSignin(hadKey ? t("badKey") + error.message : "");
    } else {
      showSignin(error.message);
    }
  });
})();
