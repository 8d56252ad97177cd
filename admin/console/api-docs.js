// tokengate admin API reference: the OpenAPI document this gateway serves,
// read in the browser, with a form to try each operation.
//
// Served beside the console (console/api-docs.html on a tokengate_admin
// mount), it reads the mount's openapi.json, and requests tried from it go
// to the console's API with a UI admin's personal token, as the console's
// do. (Caddy's admin endpoint refuses browsers by design: its own
// cross-site protection turns away any request a browser marks with
// Sec-Fetch-Mode unless it names an allowed origin, which a page typed in
// does not; it serves the document, /tokengate/openapi.json, to other
// clients.) As in the console, every node is built with DOM calls, never
// from HTML strings, and the only network access is to this origin.

import { $, el } from "./dom.js";

const TOKEN_KEY = "tokengate.console.token";
// Where tried requests go: relative, so the page works wherever the mount
// is.
const base = "api";

let doc = null;

// resolve follows a local $ref ("#/components/…").
function resolve(node) {
  let n = node;
  for (let i = 0; n && n.$ref && i < 20; i++) {
    n = n.$ref.replace(/^#\//, "").split("/").reduce((o, k) => (o ? o[k.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), doc);
  }
  return n || {};
}

const refName = (node) => (node && node.$ref ? node.$ref.split("/").pop() : "");

// schemaView shows a schema as a nested list of its fields, types and
// rules, two levels of objects deep; deeper ones by name.
function schemaView(schema, depth = 0) {
  const s = resolve(schema);
  const name = refName(schema);
  if (s.type === "array") {
    return el("span", {}, "array of ", schemaView(s.items || {}, depth));
  }
  if ((s.type === "object" || s.properties) && s.properties) {
    if (depth >= 2) return el("code", { text: name || "object" });
    const required = new Set(s.required || []);
    return el("span", {}, name ? el("code", { text: name }) : "object",
      el("ul", { class: "schema" }, ...Object.entries(s.properties).map(([key, prop]) => {
        const p = resolve(prop);
        return el("li", {}, el("code", { text: key }), required.has(key) ? el("span", { class: "badge", text: "required" }) : null,
          " ", schemaView(prop, depth + 1),
          p.description ? el("span", { class: "hint block", text: p.description }) : null);
      })));
  }
  const bits = [s.type || name || (s.oneOf || s.anyOf ? "one of several shapes" : "any")];
  if (s.enum) bits.push(`one of ${s.enum.join(", ")}`);
  if (s.format) bits.push(s.format);
  if (s.pattern) bits.push(`matching ${s.pattern}`);
  if (s.maxLength !== undefined) bits.push(`at most ${s.maxLength} characters`);
  if (s.minimum !== undefined || s.maximum !== undefined) bits.push(`${s.minimum ?? "…"} to ${s.maximum ?? "…"}`);
  return el("span", { class: "hint", text: bits.join(", ") });
}

// exampleOf is a request body's example, as text to edit.
function exampleOf(media) {
  if (!media) return "";
  if (media.example !== undefined) return JSON.stringify(media.example, null, 2);
  const first = media.examples && Object.values(media.examples)[0];
  if (first) return JSON.stringify(resolve(first).value, null, 2);
  return "{}";
}

const slug = (method, path) => `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");

function operationView(path, method, op, shared) {
  const id = slug(method, path);
  const params = [...(shared || []), ...(op.parameters || [])].map(resolve);
  const body = op.requestBody && resolve(op.requestBody).content && resolve(op.requestBody).content["application/json"];
  const section = el("details", { id: `op-${id}`, class: "operation" },
    el("summary", {}, el("span", { class: `method method-${method}`, text: method.toUpperCase() }), " ",
      el("code", { text: path }), " ", el("span", { text: op.summary || "" })));
  if (op.description) section.append(el("p", { text: op.description }));
  if (params.length > 0) {
    section.append(el("h4", { text: "Parameters" }), el("table", {},
      el("thead", {}, el("tr", {}, ...["Name", "In", "Type", "Description"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...params.map((p) => el("tr", {},
        el("th", { scope: "row" }, el("code", { text: p.name }), p.required ? el("span", { class: "badge", text: "required" }) : null),
        el("td", { text: p.in }), el("td", {}, schemaView(p.schema || {})), el("td", { text: p.description || "" }))))));
  }
  if (body) section.append(el("h4", { text: "Request body" }), el("p", {}, schemaView(body.schema || {})));
  section.append(el("h4", { text: "Responses" }), el("ul", {}, ...Object.entries(op.responses || {}).map(([code, r]) => {
    const res = resolve(r);
    const media = res.content && res.content["application/json"];
    return el("li", {}, el("code", { text: code }), " ", res.description || "",
      media && media.schema ? el("span", { class: "block" }, schemaView(media.schema)) : null);
  })));
  section.append(tryForm(id, path, method, params, body));
  return section;
}

// tryForm sends the operation with the values given and shows the answer.
function tryForm(id, path, method, params, body) {
  const fields = params.filter((p) => p.in === "path" || p.in === "query").map((p) => {
    const input = el("input", { id: `try-${id}-${p.name}`, type: "text", autocomplete: "off", spellcheck: "false",
      class: "mono", "data-in": p.in, "data-name": p.name, required: p.required || p.in === "path" });
    return el("div", { class: "field" }, el("label", { for: input.id, text: `${p.name} (${p.in})` }), input);
  });
  let bodyField = null;
  if (body) {
    bodyField = el("textarea", { id: `try-${id}-body`, rows: "8", class: "mono", spellcheck: "false" });
    bodyField.value = exampleOf(body);
    fields.push(el("div", { class: "field" }, el("label", { for: bodyField.id, text: "Body (JSON)" }), bodyField));
  }
  const answer = el("pre", { id: `try-${id}-answer`, class: "answer", tabindex: "-1", hidden: true });
  const form = el("form", { class: "card try", "aria-label": `Try ${method.toUpperCase()} ${path}`, novalidate: true },
    el("h4", { text: "Try it" }), ...fields,
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Send" }, el("span", {
      class: "visually-hidden", text: ` ${method.toUpperCase()} ${path}` }))), answer);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const input of form.querySelectorAll("input[data-in]")) {
      const v = input.value.trim();
      if (input.dataset.in === "path") {
        if (!v) {
          input.setAttribute("aria-invalid", "true");
          input.focus();
          answer.hidden = false;
          answer.textContent = `Give ${input.dataset.name}.`;
          return;
        }
        input.removeAttribute("aria-invalid");
        url = url.replace(`{${input.dataset.name}}`, encodeURIComponent(v));
      } else if (v) {
        query.set(input.dataset.name, v);
      }
    }
    const init = { method: method.toUpperCase(), headers: {} };
    const tok = $("try-token").value.trim() || sessionStorage.getItem(TOKEN_KEY);
    if (tok) init.headers.Authorization = `Bearer ${tok}`;
    if (bodyField) {
      try {
        JSON.parse(bodyField.value);
      } catch (err) {
        bodyField.setAttribute("aria-invalid", "true");
        bodyField.focus();
        answer.hidden = false;
        answer.textContent = `The body is not JSON: ${err.message}`;
        return;
      }
      bodyField.removeAttribute("aria-invalid");
      init.headers["Content-Type"] = "application/json";
      init.body = bodyField.value;
    }
    const target = base + url + (query.size > 0 ? `?${query}` : "");
    answer.hidden = false;
    answer.textContent = "Sending…";
    try {
      const res = await fetch(target, init);
      const text = await res.text();
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // Not JSON: shown as it came.
      }
      answer.textContent = `${res.status} ${res.statusText}\n\n${shown}`;
    } catch (err) {
      answer.textContent = `The request failed: ${err.message}`;
    }
    answer.focus();
  });
  return form;
}

async function boot() {
  try {
    const res = await fetch("../openapi.json");
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    doc = await res.json();
  } catch (err) {
    $("alert").textContent = `Could not read the OpenAPI document: ${err.message}`;
    return;
  }
  $("doc-title").textContent = `${doc.info.title} ${doc.info.version}`;
  document.title = `${doc.info.title} ${doc.info.version}`;
  $("doc-description").textContent = doc.info.description || "";
  $("try-auth-text").textContent =
    "Requests you try here go to the API as the console's do, with a UI admin's personal access token.";
  const byTag = new Map((doc.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, op, item.parameters));
    }
  }
  const toc = [];
  const sections = [];
  for (const [tag, ops] of byTag) {
    if (ops.length === 0) continue;
    const info = (doc.tags || []).find((t) => t.name === tag) || {};
    const heading = el("h2", { id: `tag-${tag}`, text: tag[0].toUpperCase() + tag.slice(1) });
    sections.push(el("section", { "aria-labelledby": heading.id }, heading,
      info.description ? el("p", { class: "hint", text: info.description }) : null, ...ops));
    toc.push(el("li", {}, el("a", { href: `#tag-${tag}`, text: `${heading.textContent} (${ops.length})` })));
  }
  $("doc-toc").replaceChildren(...toc);
  $("doc-operations").replaceChildren(...sections);
  $("status").textContent = `${Object.keys(doc.paths).length} paths read.`;
}

boot();
