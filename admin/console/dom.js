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
