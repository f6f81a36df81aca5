/**
 * The daemon's web page at `/` (and its script at `/app.js`): the torrents
 * with their progress and rates, kept live from the event stream
 * (`/api/v1/events`) and a refresh every two seconds; add by magnet link or
 * .torrent file; pause, resume, remove; a torrent's files (selectable) and
 * peers. Plain HTML and one script over the API: no framework, no build
 * step, nothing fetched from anywhere but the daemon. Names are set as
 * text, never as HTML, and the page's policy allows only its own script.
 * Each file links to its stream (`Streaming`), to play or save it.
 */
import { Effect } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>effect-torrent</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; }
  form { margin: 0.5em 0; display: flex; gap: 0.5em; }
  input[type=text] { flex: 1; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.3em 0.6em; border-bottom: 1px solid #ddd; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  progress { width: 8em; }
  tr.selected { background: #eef4ff; }
  #detail { margin-top: 1.5em; }
  #error { color: #b00; }
</style>
</head>
<body>
<h1>effect-torrent</h1>
<form id="add-magnet"><input type="text" id="magnet" placeholder="magnet:?xt=urn:btih:…" aria-label="magnet link"><button>Add magnet</button></form>
<form id="add-file"><input type="file" id="file" accept=".torrent,application/x-bittorrent" aria-label=".torrent file"><button>Add file</button></form>
<p id="error" role="alert"></p>
<table>
  <thead><tr><th>#</th><th>Name</th><th>Progress</th><th>State</th><th>↓</th><th>↑</th><th>Peers</th><th></th></tr></thead>
  <tbody id="torrents"></tbody>
</table>
<section id="detail" hidden>
  <h2 id="detail-name"></h2>
  <h3>Files</h3><table><tbody id="files"></tbody></table>
  <h3>Peers</h3><ul id="peers"></ul>
</section>
<script src="/app.js"></script>
</body>
</html>
`

const script = `"use strict"
const api = "/api/v1/"
let selected

const $ = (id) => document.getElementById(id)
const el = (tag, text, attributes) => {
  const node = document.createElement(tag)
  if (text !== undefined) node.textContent = text
  Object.assign(node, attributes ?? {})
  return node
}
const rate = (n) => n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB/s" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB/s" : n + " B/s"

async function call(path, options) {
  const response = await fetch(api + path, options)
  if (!response.ok) {
    const body = await response.text()
    let detail = body
    try { const e = JSON.parse(body); detail = e.detail ?? (e._tag === "TorrentNotFound" ? "no torrent " + e.id : body) } catch {}
    throw new Error(detail || response.statusText)
  }
  return response.status === 204 ? undefined : response.json()
}
const shown = (promise) => promise.then(() => { $("error").textContent = ""; refresh() }, (e) => { $("error").textContent = e.message })
const json = (method, body) => ({ method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

async function refresh() {
  const torrents = await call("torrents")
  const rows = torrents.map((t) => {
    const row = el("tr")
    row.dataset.id = t.id
    if (t.id === selected) row.className = "selected"
    const percent = t.wanted > 0 ? t.done / t.wanted : 0
    const bar = el("progress", undefined, { max: 1, value: percent })
    row.append(
      el("td", String(t.id)),
      el("td", t.name),
      Object.assign(el("td"), { className: "num" }),
      el("td", t.paused ? "paused" : t.state),
      el("td", rate(t.downloadRate), { className: "num" }),
      el("td", rate(t.uploadRate), { className: "num" }),
      el("td", String(t.peers), { className: "num" }),
      el("td")
    )
    row.children[2].append(bar, " " + (percent * 100).toFixed(1) + "%")
    const toggle = el("button", t.paused ? "Resume" : "Pause", { className: t.paused ? "resume" : "pause" })
    toggle.onclick = (e) => { e.stopPropagation(); shown(call("torrents/" + t.id + (t.paused ? "/resume" : "/pause"), { method: "POST" })) }
    const remove = el("button", "Remove", { className: "remove" })
    remove.onclick = (e) => {
      e.stopPropagation()
      if (selected === t.id) { selected = undefined; $("detail").hidden = true }
      shown(call("torrents/" + t.id, { method: "DELETE" }))
    }
    row.children[7].append(toggle, " ", remove)
    row.onclick = () => { selected = t.id; refresh() }
    return row
  })
  $("torrents").replaceChildren(...rows)
  if (selected !== undefined) await detail(selected)
}

async function detail(id) {
  const [t, peers] = await Promise.all([call("torrents/" + id), call("torrents/" + id + "/peers")]).catch(() => [])
  if (t === undefined) { $("detail").hidden = true; return }
  $("detail").hidden = false
  $("detail-name").textContent = t.name
  $("files").replaceChildren(...t.files.map((f) => {
    const row = el("tr")
    const box = el("input", undefined, { type: "checkbox", checked: f.priority !== "skip" })
    box.onchange = () => {
      const priorities = t.files.map((g) => g.index === f.index ? (box.checked ? "normal" : "skip") : g.priority)
      shown(call("torrents/" + id + "/files", json("PUT", { priorities })))
    }
    // The file's stream (ranges, so players seek), named as the file so the browser knows what it is.
    const href = "/files/" + id + "/" + f.index + "/" + encodeURIComponent(f.path.split("/").pop())
    const link = el("a", f.path, { href, target: "_blank", rel: "noopener", className: "file" })
    row.append(el("td"), el("td"), el("td", (f.length > 0 ? (100 * f.done / f.length).toFixed(1) : "100") + "%", { className: "num" }))
    row.children[0].append(box)
    row.children[1].append(link)
    return row
  }))
  $("peers").replaceChildren(...peers.map((p) => el("li", p.address + (p.outgoing ? " (we dialled)" : " (dialled us)"))))
}

$("add-magnet").onsubmit = (e) => {
  e.preventDefault()
  shown(call("torrents", json("POST", { magnet: $("magnet").value.trim() })).then(() => { $("magnet").value = "" }))
}
$("add-file").onsubmit = (e) => {
  e.preventDefault()
  const file = $("file").files[0]
  if (file === undefined) return
  shown(file.arrayBuffer().then((bytes) => {
    let binary = ""
    new Uint8Array(bytes).forEach((b) => { binary += String.fromCharCode(b) })
    return call("torrents", json("POST", { torrent: btoa(binary) }))
  }))
}

// Events (pieces verified, states, peers) refresh the page at most every 500 ms; rates every 2 s.
let pending = false
new EventSource(api + "events").onmessage = () => {
  if (pending) return
  pending = true
  setTimeout(() => { pending = false; refresh() }, 500)
}
setInterval(refresh, 2000)
refresh()
`

const headers = {
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store"
}

/** The page's routes. */
export const layer = HttpRouter.use(Effect.fnUntraced(function*(router) {
  yield* router.add("GET", "/", HttpServerResponse.text(page, { contentType: "text/html; charset=utf-8", headers }))
  yield* router.add(
    "GET",
    "/app.js",
    HttpServerResponse.text(script, { contentType: "text/javascript; charset=utf-8", headers })
  )
}))
