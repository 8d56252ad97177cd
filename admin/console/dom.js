// The DOM helpers the console's pages share. Nodes are built with DOM
// calls only, never from HTML strings, so nothing the API returns can run
// as script.

export const $ = (id) => document.getElementById(id);

// el builds an element: props are attributes, except "class", "text" and
// "on…" (event listeners); children are nodes or strings (as text).
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// svgEl builds an SVG element like el, in the namespace of root, an <svg>
// of the page (so no namespace URL is written here); "class" and "text"
// as in el, every other prop an attribute.
export function svgEl(root, tag, props, ...children) {
  const node = document.createElementNS(root.namespaceURI, tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}
