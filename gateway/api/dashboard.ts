/**
 * GET /: one static page that renders /api/v1/status every few seconds. No build step and
 * no external assets, so it works on an isolated management network.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>blockgate</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
.optimal, .in-sync, .active { color: #176117; } .degraded, .rebuilding, .stale, .resyncing, .standby, .marginal { color: #9a6700; }
.failed, .quarantined, .offline { color: #b00020; font-weight: bold; }
</style>
</head>
<body>
<h1>blockgate <span id="member"></span></h1>
<p id="error" class="failed"></p>
<h2>Front ends</h2><table id="frontEnds"></table>
<h2>Exports</h2><table id="exports"></table>
<h2>Devices</h2><table id="devices"></table>
<h2>Failover sets</h2><table id="sets"></table>
<h2>Ports</h2><table id="ports"></table>
<script>
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
const cell = (v, cls) => '<td' + (cls ? ' class="' + esc(cls) + '"' : '') + '>' + esc(v) + '</td>';
function table(id, head, rows) {
  document.getElementById(id).innerHTML = '<tr>' + head.map((h) => '<th>' + esc(h) + '</th>').join('') + '</tr>' +
    rows.map((r) => '<tr>' + r.join('') + '</tr>').join('');
}
const ops = (io) => Object.entries(io.ops || {}).map(([op, c]) => op + ' ' + c.ops + (c.errors ? ' (' + c.errors + ' errors)' : '')).join(', ');
async function refresh() {
  try {
    const s = await (await fetch('api/v1/status')).json();
    document.getElementById('member').textContent = s.member;
    table('frontEnds', ['protocol', 'address'], Object.entries(s.frontEnds).flatMap(([p, as]) => as.map((a) => [cell(p), cell(a)])));
    table('exports', ['export', 'device', 'read-only'], s.exports.map((e) => [cell(e.name), cell(e.device), cell(e.readOnly)]));
    table('devices', ['device', 'size', 'state', 'in flight', 'operations'],
      s.devices.map((d) => [cell(d.name), cell(d.size), cell(d.state, d.state), cell(d.io.inFlight), cell(ops(d.io))]));
    const sets = [];
    for (const set of s.failoverSets) {
      const resync = set.resync || [];
      for (const m of set.members) {
        const r = resync.find((x) => x.target === m.name);
        sets.push([cell(set.name), cell(set.kind + ' (' + set.composition + ')'), cell(set.state, set.state), cell(m.name + (m.set ? ' ⊃ set' : '')), cell(m.role), cell(m.state, m.state), cell(r ? r.percent + ' %' : '')]);
      }
    }
    table('sets', ['set', 'kind', 'set state', 'member', 'role', 'state', 'resync'], sets);
    table('ports', ['port', 'in flight', 'operations'], s.ports.map((p) => [cell(p.port), cell(p.io.inFlight), cell(ops(p.io))]));
    document.getElementById('error').textContent = '';
  } catch (err) {
    document.getElementById('error').textContent = 'status unavailable: ' + err;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
