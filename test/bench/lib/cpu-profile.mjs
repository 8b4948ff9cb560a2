// Reading a V8 .cpuprofile (what `node --cpu-prof` writes): the functions with the most self
// and total time as a markdown table, folded stacks (one "a;b;c count" line per stack, the
// input of flamegraph.pl, inferno and speedscope) and a plain SVG flame graph. No package
// does just this without re-running the process under its own profiler (0x) or needing a
// browser (the d3 flame graphs), hence these few functions.

const IDLE = new Set(['(idle)', '(program)']);

/**
 * The profile with only the samples taken in [fromUs, toUs] (CLOCK_MONOTONIC µs, the clock
 * of V8's profiler and of process.hrtime in any process), so start-up and the benchmark's
 * prefill do not count.
 */
export function within(profile, fromUs, toUs) {
  const samples = [];
  const timeDeltas = [];
  let t = profile.startTime;
  let last = fromUs;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    samples.push(profile.samples[i]);
    timeDeltas.push(t - last);
    last = t;
  }
  return { ...profile, samples, timeDeltas, startTime: fromUs, endTime: Math.min(toUs, profile.endTime) };
}

function frameName(node) {
  const f = node.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/');
  return `${name} ${file}:${f.lineNumber + 1}`;
}

function indexNodes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const root = profile.nodes.find((n) => !parent.has(n.id));
  return { byId, root };
}

/** Samples per node id. */
function hits(profile) {
  const counts = new Map();
  for (const id of profile.samples ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

export function topFunctions(profile, top = 25) {
  const { byId, root } = indexNodes(profile);
  const counts = hits(profile);
  const total = profile.samples.length;
  const idle = profile.nodes.filter((n) => IDLE.has(n.callFrame.functionName)).reduce((s, n) => s + (counts.get(n.id) ?? 0), 0);
  const busy = Math.max(1, total - idle);
  const self = new Map();
  const inclusive = new Map();
  // Depth-first; a function's total counts once per stack even when it recurses.
  const walk = (id, onStack) => {
    const node = byId.get(id);
    const key = frameName(node);
    let sum = counts.get(id) ?? 0;
    self.set(key, (self.get(key) ?? 0) + sum);
    const fresh = !onStack.has(key);
    if (fresh) onStack.add(key);
    for (const c of node.children ?? []) sum += walk(c, onStack);
    if (fresh) {
      onStack.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + sum);
    }
    return sum;
  };
  walk(root.id, new Set());
  const ms = ((profile.endTime - profile.startTime) / 1000).toFixed(0);
  const pct = (n) => ((100 * n) / busy).toFixed(1);
  const rows = (map, label) => [
    `| ${label} % of busy | function |`,
    '| ---: | --- |',
    ...[...map]
      .filter(([k]) => !IDLE.has(k) && k !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, n]) => `| ${pct(n)} | \`${k}\` |`),
  ];
  return [
    `${total} samples over ${ms} ms; busy (not idle): ${((100 * busy) / Math.max(1, total)).toFixed(1)}%`,
    '',
    ...rows(self, 'self'),
    '',
    ...rows(inclusive, 'total'),
  ].join('\n');
}

export function foldedStacks(profile) {
  const { byId, root } = indexNodes(profile);
  const counts = hits(profile);
  const lines = [];
  const walk = (id, path) => {
    const node = byId.get(id);
    const here = node === root ? path : [...path, frameName(node).replaceAll(';', ',')];
    const n = counts.get(id) ?? 0;
    if (n > 0 && here.length > 0) lines.push(`${here.join(';')} ${n}`);
    for (const c of node.children ?? []) walk(c, here);
  };
  walk(root.id, []);
  return lines.join('\n') + '\n';
}

const escapeXml = (s) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);

export function flameGraphSvg(profile, title, width = 1400) {
  const { byId, root } = indexNodes(profile);
  const counts = hits(profile);
  const totals = new Map();
  const sum = (id) => {
    const node = byId.get(id);
    let s = counts.get(id) ?? 0;
    for (const c of node.children ?? []) s += sum(c);
    totals.set(id, s);
    return s;
  };
  const all = sum(root.id) || 1;
  const row = 16;
  const rects = [];
  let depthMax = 0;
  const place = (id, x, depth) => {
    const node = byId.get(id);
    const w = (totals.get(id) / all) * width;
    if (w < 0.3) return;
    depthMax = Math.max(depthMax, depth);
    const name = node === root ? 'all' : frameName(node);
    rects.push({ x, depth, w, name, n: totals.get(id) });
    let cx = x;
    for (const c of node.children ?? []) {
      place(c, cx, depth + 1);
      cx += (totals.get(c) / all) * width;
    }
  };
  place(root.id, 0, 0);
  const height = (depthMax + 1) * row + 40;
  const hue = (s) => [...s].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7) % 60;
  const body = rects.map((r) => {
    const y = height - (r.depth + 1) * row - 4;
    const label = r.w > 40 ? escapeXml(r.name.slice(0, Math.floor(r.w / 7))) : '';
    return `<g><title>${escapeXml(r.name)} (${((100 * r.n) / all).toFixed(1)}%)</title><rect x="${r.x.toFixed(1)}" y="${y}" width="${r.w.toFixed(1)}" height="${row - 1}" fill="hsl(${hue(r.name)},80%,60%)"/><text x="${(r.x + 2).toFixed(1)}" y="${y + 12}" font-size="11" font-family="monospace">${label}</text></g>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<text x="4" y="16" font-size="14" font-family="sans-serif">${escapeXml(title)} — ${profile.samples.length} samples (hover for names)</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}
