/**
 * Building DOM nodes without HTML strings: every name, address and error message from the
 * member is set as text, so nothing it reports can inject markup into the page.
 */
export type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | ((event: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(parent: Node, children: Array<Child | Child[]>): void {
  for (const child of children) {
    if (Array.isArray(child)) append(parent, child);
    else if (child === null || child === undefined || child === false) continue;
    else parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

/** Replace the content of #id. */
export function fill(id: string, ...children: Array<Child | Child[]>): void {
  const element = byId(id);
  element.replaceChildren();
  append(element, children);
}

/** A table with a header row; an empty body says `empty` instead. */
export function table(head: readonly string[], rows: ReadonlyArray<Child[] | HTMLTableRowElement>, empty = 'none'): HTMLTableElement {
  const body =
    rows.length === 0
      ? [h('tr', {}, h('td', { colspan: head.length, class: 'empty' }, empty))]
      : rows.map((r) => (r instanceof HTMLTableRowElement ? r : h('tr', {}, r.map((c) => (c instanceof HTMLTableCellElement ? c : h('td', {}, c))))));
  return h('table', {}, h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))), h('tbody', {}, body));
}

/** A state word styled by its value (optimal, degraded, failed…), with `data-state` for tests. */
export function badge(state: string, title?: string): HTMLSpanElement {
  return h('span', { class: `badge state-${state}`, 'data-state': state, title }, state);
}
