/**
 * nginx (Debian's nginx-light) serving a folder on 127.0.0.1 at a free
 * port: in the foreground, one process, its config, logs and temp folders
 * under a folder of its own; stopped when the scope closes. Its access log
 * tells which requests it answered, and how.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import { tempDir } from "./Files.ts"
import { freePort, spawnChild, waitForPort } from "./Swarm.ts"

export const nginx = (root: string) =>
  Effect.gen(function*() {
    const prefix = yield* tempDir("nginx")
    const port = yield* freePort
    const log = join(prefix, "access.log")
    const temp = (name: string) => `${name}_temp_path ${join(prefix, name)};`
    Fs.writeFileSync(
      join(prefix, "nginx.conf"),
      [
        "daemon off;",
        "master_process off;",
        "worker_processes 1;",
        `pid ${join(prefix, "nginx.pid")};`,
        `error_log ${join(prefix, "error.log")} warn;`,
        "events { worker_connections 256; }",
        "http {",
        // The status and the Range asked for, per request.
        `  log_format ranges '$status "$request" "$http_range"';`,
        `  access_log ${log} ranges;`,
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((name) => `  ${temp(name)}`),
        `  server { listen 127.0.0.1:${port}; root ${root}; }`,
        "}"
      ].join("\n")
    )
    const child = yield* spawnChild(`nginx :${port}`, "nginx", [
      "-p",
      prefix,
      "-c",
      join(prefix, "nginx.conf"),
      "-e",
      join(prefix, "error.log")
    ])
    yield* waitForPort(child, port, 15_000)
    return {
      url: `http://127.0.0.1:${port}/`,
      /** The access log's lines so far: `<status> "<request line>" "<Range header>"`. */
      requests: () => (Fs.existsSync(log) ? Fs.readFileSync(log, "utf8").split("\n").filter((line) => line !== "") : [])
    }
  })
