"use strict";
// Renders /api/v1/openapi.json as a readable page; no library, no network beyond hotline.
(function () {
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    (children || []).forEach((c) => node.append(c));
    return node;
  }
  function code(text) { return el("code", {}, [text]); }
  function refName(ref) { return ref.split("/").pop(); }

  function operation(path, method, op) {
    const box = el("div", { class: "op", id: op.operationId });
    box.append(el("h3", {}, [el("span", { class: "method " + method }, [method.toUpperCase()]), code(path)]));
    box.append(el("p", {}, [op.summary]));
    const sec = (op.security || []).map((s) => Object.keys(s)[0] + (Object.values(s)[0].length ? " (" + Object.values(s)[0].join(", ") + ")" : ""));
    box.append(el("p", {}, ["Authentication: ", code(sec.length ? sec.join(", ") : "none")]));
    if (op.requestBody) {
      const ref = op.requestBody.content["application/json"].schema.$ref;
      box.append(el("p", {}, ["Body: ", el("a", { href: "#schema-" + refName(ref) }, [refName(ref)])]));
    }
    const list = el("ul");
    Object.entries(op.responses).forEach(([status, r]) => {
      const content = Object.values(r.content || {})[0];
      const name = content ? refName(content.schema.$ref) : "";
      list.append(el("li", {}, [code(status), " ", r.description, name ? " — " : "", name ? el("a", { href: "#schema-" + name }, [name]) : ""]));
    });
    box.append(list);
    return box;
  }

  fetch("/api/v1/openapi.json").then((r) => r.json()).then((doc) => {
    const ops = document.getElementById("operations");
    document.getElementById("loading").remove();
    Object.entries(doc.paths).forEach(([path, methods]) => {
      Object.entries(methods).forEach(([method, op]) => ops.append(operation(path, method, op)));
    });
    const body = document.querySelector("#error-table tbody");
    doc["x-error-codes"].forEach((e) => {
      body.append(el("tr", { id: "error-" + e.code }, [
        el("td", {}, [code(e.code)]), el("td", {}, [String(e.status)]),
        el("td", {}, [e.en]), el("td", {}, [e.zh]), el("td", {}, [e.action]),
      ]));
    });
    const schemas = document.getElementById("schemas");
    Object.entries(doc.components.schemas).forEach(([name, schema]) => {
      const d = el("details", { id: "schema-" + name }, [el("summary", {}, [name])]);
      d.append(el("pre", {}, [JSON.stringify(schema, null, 2)]));
      schemas.append(d);
    });
    if (location.hash) { const t = document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); }
  });
})();
