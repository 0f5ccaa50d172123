// Renders /api/v1/openapi.json as a readable page and offers a "try it" form for the remove
// endpoint. An external module (no inline script), same-origin fetches only: it runs under
// the server's CSP (script-src 'self', connect-src 'self') and works offline.

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
};

function resolveRef(doc, obj) {
  if (obj && obj.$ref) return obj.$ref.replace(/^#\//, "").split("/").reduce((o, k) => o[k], doc);
  return obj;
}

function schemaText(doc, schema) {
  schema = resolveRef(doc, schema) || {};
  if (schema.enum) return schema.enum.join(" | ");
  if (schema.type === "object" && schema.properties) {
    const props = Object.entries(schema.properties).map(([k, v]) => `${k}: ${schemaText(doc, v)}`);
    return `{ ${props.join(", ")} }`;
  }
  if (schema.type === "array") return `[${schemaText(doc, schema.items)}]`;
  let t = schema.type || "any";
  if (schema.format) t += ` (${schema.format})`;
  if (schema.minimum !== undefined || schema.maximum !== undefined) t += ` ${schema.minimum ?? ""}..${schema.maximum ?? ""}`;
  if (schema.default !== undefined) t += `, default ${JSON.stringify(schema.default)}`;
  return t;
}

function renderOperation(doc, path, method, op) {
  const box = el("section", { class: "op", id: op.operationId || "" });
  box.append(el("h2", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), el("code", {}, path), " — ", op.summary || ""));
  if (op.description) box.append(el("p", {}, op.description));
  if (op.parameters?.length) {
    const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "meaning")));
    for (const p of op.parameters) {
      t.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, schemaText(doc, p.schema)), el("td", {}, p.description || "")));
    }
    box.append(el("h3", {}, "Parameters"), t);
  }
  if (op.requestBody) {
    box.append(el("h3", {}, "Request body"));
    const ul = el("ul");
    for (const [type, media] of Object.entries(op.requestBody.content)) ul.append(el("li", {}, el("code", {}, type), ": ", schemaText(doc, media.schema)));
    box.append(ul);
  }
  const t = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "content"), el("th", {}, "meaning")));
  for (const [code, resp] of Object.entries(op.responses)) {
    const r = resolveRef(doc, resp);
    const types = Object.keys(r.content || {}).join(", ");
    const headers = Object.keys(r.headers || {});
    t.append(el("tr", {},
      el("td", { class: code.startsWith("2") ? "status-ok" : "status-err" }, code),
      el("td", {}, el("code", {}, types)),
      el("td", {}, r.description + (headers.length ? ` Headers: ${headers.join(", ")}.` : ""))));
  }
  box.append(el("h3", {}, "Responses"), t);
  if (method === "get") {
    const out = el("pre", { hidden: "" });
    const b = el("button", { class: "try-get", type: "button" }, "Try it");
    b.addEventListener("click", async () => {
      const r = await fetch(path, { credentials: "same-origin" });
      out.hidden = false;
      out.textContent = `${r.status} ${r.statusText}\n` + JSON.stringify(await r.json().catch(() => null), null, 2).slice(0, 20000);
    });
    box.append(b, out);
  }
  return box;
}

async function setUpTryIt() {
  const section = document.getElementById("try");
  section.hidden = false;
  const select = document.getElementById("f-model");
  try {
    const r = await fetch("/api/v1/models", { credentials: "same-origin" });
    const { models, default: def } = await r.json();
    for (const m of models.filter((m) => m.available)) {
      const o = el("option", { value: m.id }, `${m.id} — ${m.title}`);
      if (m.id === def) o.selected = true;
      select.append(o);
    }
  } catch {
    select.append(el("option", { value: "" }, "(server default)"));
  }
  const form = document.getElementById("try-form");
  const status = document.getElementById("try-status");
  const out = document.getElementById("try-out");
  const curl = document.getElementById("try-curl");
  let lastUrl = null;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = document.getElementById("f-image").files[0];
    if (!file) return;
    const q = new URLSearchParams();
    if (select.value) q.set("model", select.value);
    q.set("format", document.getElementById("f-format").value);
    if (document.getElementById("f-mask").checked) q.set("mask_only", "true");
    const bg = document.getElementById("f-background").value.trim();
    if (bg) q.set("background", bg);
    const quality = document.getElementById("f-quality").value.trim();
    if (quality) q.set("quality", quality);
    const url = `/api/v1/remove?${q}`;
    curl.textContent = `curl -sS --data-binary @${JSON.stringify(file.name)} -H "Content-Type: ${file.type || "application/octet-stream"}" \\\n  "${location.origin}${url}" -o cutout.${q.get("format")}`;
    status.textContent = "Working…";
    out.replaceChildren();
    const t = performance.now();
    const r = await fetch(url, { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" }, credentials: "same-origin" });
    const ms = Math.round(performance.now() - t);
    if (r.ok) {
      const blob = await r.blob();
      if (lastUrl) URL.revokeObjectURL(lastUrl);
      lastUrl = URL.createObjectURL(blob);
      status.textContent = `${r.status}: ${r.headers.get("content-type")}, ${blob.size} bytes in ${ms} ms`;
      out.append(el("img", { src: lastUrl, alt: "cut-out" }), el("p", {}, el("a", { href: lastUrl, download: `cutout.${q.get("format")}` }, "download")));
    } else {
      const text = await r.text();
      status.textContent = `${r.status} ${r.statusText} after ${ms} ms`;
      out.append(el("pre", {}, text));
    }
  });
}

async function main() {
  const root = document.getElementById("doc");
  let doc;
  try {
    const r = await fetch("/api/v1/openapi.json", { credentials: "same-origin" });
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    doc = await r.json();
  } catch (e) {
    root.replaceChildren(el("p", { class: "status-err" }, `Cannot load the OpenAPI document: ${e.message}`));
    return;
  }
  root.replaceChildren(el("p", {}, doc.info.description), el("p", {}, `Version ${doc.info.version}, OpenAPI ${doc.openapi}.`));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) root.append(renderOperation(doc, path, method, op));
  }
  const errors = doc.components?.schemas?.Error;
  if (errors) root.append(el("section", { class: "op" }, el("h2", {}, "Error body"), el("pre", {}, schemaText(doc, errors)), el("p", {}, "Codes: " + errors.properties.error.enum.join(", "))));
  await setUpTryIt();
}

main();
