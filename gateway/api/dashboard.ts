/**
 * GET /: the dashboard's page. It holds no data (anyone reaching the API may load it); the
 * script asks for an API token and draws everything from the live stream. Its scripts
 * and styles come from this API only (assets.ts), so it works on an isolated management
 * network, and its content-security policy allows nothing else.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>blockgate</title>
<link rel="stylesheet" href="assets/uplot.min.css">
<link rel="stylesheet" href="assets/dashboard.css">
<script src="assets/uplot.js" defer></script>
<script src="assets/morphdom.js" defer></script>
<script type="module" src="assets/dashboard/main.js"></script>
</head>
<body>
<header>
  <h1>blockgate <span id="member"></span></h1>
  <span id="link" data-link="down">connecting…</span>
  <span class="muted">updated <span id="updated">never</span></span>
  <span id="who"></span>
</header>
<form id="token-form" hidden autocomplete="off">
  <p id="token-message"></p>
  <input name="token" type="password" placeholder="API token" aria-label="API token" size="50">
  <button type="submit">Use token</button>
  <span class="muted">Kept in this tab only (sessionStorage).</span>
</form>
<div id="toast" hidden role="status"></div>
<main>
  <section><div id="summary"></div></section>
  <section><h2>Performance <span class="muted">last 5 minutes, per second</span></h2><div id="charts"></div></section>
  <section><h2>Failover sets</h2><div id="sets"></div></section>
  <section><h2>Paths</h2><div id="paths"></div></section>
  <section><h2>Exports and LUNs</h2><div id="exports"></div></section>
  <section><h2>Sessions</h2><div id="sessions"></div></section>
  <section><h2>Image jobs</h2><div id="jobs"></div></section>
  <section><h2>Devices</h2><div id="devices"></div></section>
  <section><h2>Front ends</h2><div id="frontends"></div></section>
</main>
</body>
</html>
`;

/** Scripts and styles from this API only; the live stream and actions to this API only. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export const DASHBOARD_CSS = `
:root { --ok: #176117; --warn: #9a6700; --bad: #b00020; --muted: #666; --line: #d8d8d8; }
body { font: 14px system-ui, sans-serif; margin: 0 1.5em 2em; color: #222; background: #fafafa; }
header { display: flex; gap: 1.2em; align-items: baseline; flex-wrap: wrap; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.4em; margin: 0.6em 0; } h2 { font-size: 1.1em; margin: 1.4em 0 0.5em; } h3 { font-size: 1em; margin: 0.4em 0; }
.muted { color: var(--muted); font-weight: normal; }
#link[data-link=up] { color: var(--ok); } #link[data-link=down] { color: var(--warn); } #link[data-link=auth] { color: var(--bad); }
#token-form { margin: 1em 0; padding: 0.8em; border: 1px solid var(--line); background: #fff; }
#toast { margin: 0.8em 0; padding: 0.5em 0.8em; border-radius: 4px; }
#toast[data-outcome=ok] { background: #e6f4e6; } #toast[data-outcome=error] { background: #fbe4e7; }
body:not([data-role]) main { opacity: 0.35; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; margin-top: 1em; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 1em; min-width: 11em; }
.card .label { color: var(--muted); font-size: 0.85em; } .card .value { font-size: 1.5em; margin: 0.1em 0; } .card .detail { font-size: 0.85em; color: var(--muted); }
table { border-collapse: collapse; margin-bottom: 0.8em; background: #fff; }
th, td { border: 1px solid var(--line); padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; } td.empty { color: var(--muted); font-style: italic; }
.badge { font-weight: 600; }
.state-optimal, .state-in-sync, .state-active { color: var(--ok); }
.state-degraded, .state-rebuilding, .state-stale, .state-resyncing, .state-standby, .state-marginal, .state-unknown { color: var(--warn); }
.state-failed, .state-quarantined, .state-offline { color: var(--bad); }
.role-primary { font-weight: 600; } .error-text { color: var(--bad); font-size: 0.9em; max-width: 28em; }
.set { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.4em 1em 0.8em; margin-bottom: 1em; }
.set-actions { display: flex; gap: 0.6em; flex-wrap: wrap; } .action-form input { width: 7em; }
.progress { display: flex; gap: 0.8em; align-items: center; margin: 0.3em 0; } .progress progress { width: 16em; }
.state-succeeded, .state-running { color: var(--ok); } .state-cancelled { color: var(--warn); }
button.action { margin: 0 0.2em 0.2em 0; } body:not([data-role=admin]) .action, body:not([data-role=admin]) .set-actions { display: none; }
.chart-card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.4em 0.8em; margin-bottom: 1em; }
.chart-card .headline { color: var(--muted); font-weight: normal; margin-left: 1em; }
.chart-row { display: flex; gap: 0.8em; flex-wrap: wrap; }
`;
