// The API reference page: reads /api/v1/openapi.json from this server and renders it.
// Everything is built with DOM calls (no innerHTML), so no text of the document is ever read as
// markup; the page's Content-Security-Policy allows scripts, styles and data from this server only.
"use strict";

(function () {
  const METHODS = ["get", "put", "post", "patch", "delete"];
  let doc = null;

  // ---- DOM helpers ----

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // Inline markdown of the document's descriptions: `code` and **strong**.
  function inline(text) {
    const out = [];
    const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(m[1] !== undefined ? el("code", {}, m[1]) : el("strong", {}, m[2]));
      last = re.lastIndex;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  // Block markdown: paragraphs and "- " lists (continuation lines indented).
  function markdown(text) {
    const box = el("div", { class: "md" });
    if (!text) return box;
    for (const block of String(text).trim().split(/\n\s*\n/)) {
      const lines = block.split("\n");
      if (lines.every((l) => /^\s*- /.test(l) || /^\s{2,}\S/.test(l))) {
        const ul = el("ul");
        let cur = null;
        for (const l of lines) {
          if (/^\s*- /.test(l)) {
            cur = el("li", {}, inline(l.replace(/^\s*- /, "")));
            ul.append(cur);
          } else if (cur) {
            cur.append(" ", ...inline(l.trim()));
          }
        }
        box.append(ul);
      } else {
        box.append(el("p", {}, inline(lines.map((l) => l.trim()).join(" "))));
      }
    }
    return box;
  }

  function anchor(...parts) {
    return parts.join("-").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  }

  // ---- the document ----

  function resolve(obj) {
    let seen = 0;
    while (obj && obj.$ref && seen++ < 16) {
      let cur = doc;
      for (const p of obj.$ref.replace(/^#\//, "").split("/"))
        cur = cur ? cur[p.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
      obj = cur;
    }
    return obj || {};
  }

  function refName(obj) {
    return obj && obj.$ref ? obj.$ref.split("/").pop() : null;
  }

  function typeOf(s) {
    s = resolve(s);
    let t = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
    if (!t && s.allOf) t = "object";
    if (!t && (s.anyOf || s.oneOf)) t = (s.anyOf || s.oneOf).map((x) => refName(x) || typeOf(x)).join(" | ");
    if (t === "array" || (Array.isArray(s.type) && s.type.includes("array"))) {
      const it = s.items ? refName(s.items) || typeOf(s.items) : "any";
      t = t.replace("array", "array of " + it);
    }
    if (s.format) t += " (" + s.format + ")";
    return t || "any";
  }

  // The limits of a schema as short phrases.
  function limits(s) {
    s = resolve(s);
    const out = [];
    if (s.const !== undefined) out.push("always " + JSON.stringify(s.const));
    if (s.enum) out.push("one of " + s.enum.map((x) => JSON.stringify(x)).join(", "));
    if (s.minLength !== undefined) out.push("at least " + s.minLength + " bytes");
    if (s.maxLength !== undefined) out.push("at most " + s.maxLength + " bytes");
    if (s.minimum !== undefined) out.push("≥ " + s.minimum);
    if (s.maximum !== undefined) out.push("≤ " + s.maximum);
    if (s.minItems !== undefined) out.push("at least " + s.minItems + (s.minItems === 1 ? " item" : " items"));
    if (s.maxItems !== undefined) out.push("at most " + s.maxItems + (s.maxItems === 1 ? " item" : " items"));
    if (s.uniqueItems) out.push("no repeats");
    if (s.pattern) out.push("matches " + s.pattern);
    if (s.default !== undefined) out.push("default " + JSON.stringify(s.default));
    return out;
  }

  // A schema's own properties, with those of its allOf parts.
  function properties(s, acc) {
    s = resolve(s);
    acc = acc || { props: {}, required: new Set() };
    for (const part of s.allOf || []) properties(part, acc);
    Object.assign(acc.props, s.properties || {});
    for (const r of s.required || []) acc.required.add(r);
    return acc;
  }

  // A schema as a table of its fields; nested objects and named schemas open on demand.
  function schemaView(schema, depth) {
    depth = depth || 0;
    const s = resolve(schema);
    const box = el("div", { class: "schema" });
    const name = refName(schema);
    const head = el("div", { class: "schema-head" },
      name ? el("a", { href: "#schema-" + anchor(name), class: "ref" }, name) : null,
      el("span", { class: "type" }, typeOf(schema)));
    box.append(head);
    if (s.description && depth === 0) box.append(markdown(s.description));
    const lim = limits(s);
    if (lim.length) box.append(el("p", { class: "limits" }, lim.join("; ")));
    const alts = s.anyOf || s.oneOf;
    if (alts) {
      const ul = el("ul", { class: "alts" });
      for (const a of alts) ul.append(el("li", {}, depth < 4 ? schemaView(a, depth + 1) : typeOf(a)));
      box.append(el("p", { class: "note" }, s.anyOf ? "Any of:" : "One of:"), ul);
    }
    const { props, required } = properties(schema);
    const keys = Object.keys(props);
    if (keys.length) {
      const tbody = el("tbody");
      for (const k of keys) {
        const p = props[k], rp = resolve(p);
        const cell = el("td", {}, markdown(rp.description || ""),
          limits(rp).length ? el("p", { class: "limits" }, limits(rp).join("; ")) : null);
        const nested = properties(p);
        const items = rp.items ? properties(rp.items) : null;
        if (depth < 4 && (Object.keys(nested.props).length || (items && Object.keys(items.props).length) || rp.anyOf || rp.oneOf)) {
          const d = el("details", {}, el("summary", {}, "fields"));
          d.addEventListener("toggle", () => {
            if (d.open && d.childNodes.length === 1) d.append(schemaView(rp.items && !Object.keys(nested.props).length ? rp.items : p, depth + 1));
          });
          cell.append(d);
        }
        tbody.append(el("tr", {},
          el("td", {}, el("code", {}, k), required.has(k) ? el("span", { class: "req" }, " required") : null),
          el("td", { class: "type" }, refName(p) ? el("a", { href: "#schema-" + anchor(refName(p)), class: "ref" }, refName(p)) : typeOf(p)),
          cell));
      }
      box.append(el("table", { class: "fields" },
        el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "about"))), tbody));
    }
    return box;
  }

  function exampleView(media) {
    const out = [];
    if (media.example !== undefined) out.push(el("pre", { class: "example" }, pretty(media.example)));
    for (const [name, ex] of Object.entries(media.examples || {})) {
      const e = resolve(ex);
      out.push(el("p", { class: "note" }, name + (e.summary ? ": " + e.summary : "")),
        el("pre", { class: "example" }, pretty(e.value)));
    }
    return out;
  }

  function pretty(v) {
    return typeof v === "string" ? v : JSON.stringify(v, null, 2);
  }

  function contentView(content) {
    const out = [];
    for (const [type, media] of Object.entries(content || {})) {
      out.push(el("div", { class: "media" }, el("p", { class: "mt" }, el("code", {}, type)),
        media.schema ? schemaView(media.schema) : null, exampleView(media)));
    }
    return out;
  }

  function paramsView(params) {
    if (!params.length) return null;
    const tbody = el("tbody");
    for (const raw of params) {
      const p = resolve(raw);
      const lim = limits(p.schema || {});
      tbody.append(el("tr", {},
        el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : null),
        el("td", {}, p.in),
        el("td", { class: "type" }, typeOf(p.schema || {})),
        el("td", {}, markdown(p.description || ""), lim.length ? el("p", { class: "limits" }, lim.join("; ")) : null,
          p.example !== undefined ? el("p", { class: "limits" }, "e.g. ", el("code", {}, String(p.example))) : null)));
    }
    return el("table", { class: "params" },
      el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "about"))),
      tbody);
  }

  function responsesView(responses) {
    const box = el("div", { class: "responses" });
    for (const [code, raw] of Object.entries(responses || {})) {
      const r = resolve(raw);
      const cls = /^2/.test(code) ? "ok" : /^[45]/.test(code) ? "bad" : "other";
      const d = el("details", { class: "response" },
        el("summary", {}, el("span", { class: "code " + cls }, code), " ", inline((r.description || "").split("\n")[0])));
      d.addEventListener("toggle", () => {
        if (d.open && d.childNodes.length === 1) d.append(markdown(r.description), ...contentView(r.content));
      }, { once: false });
      box.append(d);
    }
    return box;
  }

  function operationView(method, path, op, itemParams, id) {
    const params = (itemParams || []).concat(op.parameters || []);
    const security = op.security !== undefined ? op.security : doc.security;
    const sec = security && security.length ? "API key (Authorization: Bearer)" : "no key";
    const body = op.requestBody ? resolve(op.requestBody) : null;
    return el("section", { class: "op", id: id, "data-filter": (method + " " + path + " " + (op.summary || "")).toLowerCase() },
      el("h3", {}, el("span", { class: "method " + method }, method.toUpperCase()), " ", el("code", { class: "path" }, path)),
      el("p", { class: "summary" }, op.summary || "", el("span", { class: "sec" }, " · " + sec)),
      markdown(op.description),
      params.length ? el("h4", {}, "Parameters") : null, paramsView(params),
      body ? el("h4", {}, "Request body", body.required ? "" : " (optional)") : null,
      body ? contentView(body.content) : null,
      el("h4", {}, "Responses"), responsesView(op.responses));
  }

  // ---- the page ----

  function render() {
    const content = document.getElementById("content");
    const toc = document.getElementById("toc");
    document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
    document.title = doc.info.title + " reference";
    const status = document.getElementById("status");
    status.replaceChildren(markdown(doc.info.description));
    const byTag = new Map();
    for (const t of doc.tags || []) byTag.set(t.name, []);
    const add = (tag, entry) => { if (!byTag.has(tag)) byTag.set(tag, []); byTag.get(tag).push(entry); };
    for (const [path, item] of Object.entries(doc.paths || {}))
      for (const m of METHODS)
        if (item[m]) add((item[m].tags || ["Other"])[0], { method: m, path, op: item[m], params: item.parameters });
    for (const [name, item] of Object.entries(doc.webhooks || {}))
      for (const m of METHODS)
        if (item[m]) add((item[m].tags || ["Receiving"])[0], { method: m, path: name, op: item[m], params: item.parameters });
    const tagInfo = new Map((doc.tags || []).map((t) => [t.name, t]));
    for (const [tag, ops] of byTag) {
      if (!ops.length) continue;
      const id = "tag-" + anchor(tag);
      const sub = el("ul");
      toc.append(el("li", {}, el("a", { href: "#" + id, class: "tag" }, tag), sub));
      const sec = el("section", { class: "tag", id: id }, el("h2", {}, tag),
        markdown((tagInfo.get(tag) || {}).description));
      for (const o of ops) {
        const oid = "op-" + anchor(o.op.operationId || o.method + " " + o.path);
        sub.append(el("li", { "data-filter": (o.method + " " + o.path + " " + (o.op.summary || "")).toLowerCase() },
          el("a", { href: "#" + oid }, el("span", { class: "method small " + o.method }, o.method.toUpperCase()), " ", o.op.summary || o.path)));
        sec.append(operationView(o.method, o.path, o.op, o.params, oid));
      }
      content.append(sec);
    }
    const schemas = doc.components && doc.components.schemas || {};
    const sec = el("section", { class: "tag", id: "schemas" }, el("h2", {}, "Schemas"));
    const sub = el("ul");
    toc.append(el("li", {}, el("a", { href: "#schemas", class: "tag" }, "Schemas"), sub));
    for (const name of Object.keys(schemas)) {
      sub.append(el("li", { "data-filter": name.toLowerCase() }, el("a", { href: "#schema-" + anchor(name) }, name)));
      sec.append(el("section", { class: "op", id: "schema-" + anchor(name) }, el("h3", {}, name),
        schemaView({ $ref: "#/components/schemas/" + name })));
    }
    content.append(sec);
    document.getElementById("filter").addEventListener("input", (ev) => {
      const q = ev.target.value.trim().toLowerCase();
      for (const li of toc.querySelectorAll("li[data-filter]"))
        li.hidden = q !== "" && !li.dataset.filter.includes(q);
      for (const s of content.querySelectorAll("section.op[data-filter]"))
        s.hidden = q !== "" && !s.dataset.filter.includes(q);
    });
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  fetch("/api/v1/openapi.json", { headers: { Accept: "application/json" } })
    .then((r) => {
      if (!r.ok) throw new Error("GET /api/v1/openapi.json answered " + r.status);
      return r.json();
    })
    .then((d) => { doc = d; render(); document.body.classList.add("ready"); })
    .catch((e) => {
      document.getElementById("status").textContent = "Could not load the document: " + e.message;
    });
})();
