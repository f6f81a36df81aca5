/**
 * Making torrents through the daemon (`POST /api/v1/create`, and
 * `effect-torrent remote create`), and its files streamed at
 * `/files/<torrent>/<index>/<name>` behind the same authentication as the
 * API: a hybrid torrent made there is the one `CreateTorrent.create` makes
 * here; seeded, a Range of its file is a 206 with the file's bytes; a
 * torrent of which half is on disk serves the verified half; an aria2c
 * leecher taking a torrent's data is counted in Transmission's
 * `peersGettingFromUs`; a missing
 * path, a relative one and a bad piece length are each refused with a 4xx.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as CreateTorrent from "../../src/torrent/CreateTorrent.ts"
import * as Daemon from "../util/Daemon.ts"
import { tempDir, writeTree } from "../util/Files.ts"
import { aria2Leecher, freePort, runCli, waitFor, waitForPort } from "../util/Swarm.ts"

const auth = { authorization: `Basic ${Buffer.from("me:pw").toString("base64")}` }

const decode = (base64: string) => Result.getOrThrow(Metainfo.decode(Buffer.from(base64, "base64")))

interface Created {
  readonly torrent: string
  readonly infoHash: string
  readonly name: string
  readonly magnet: string
  readonly added?: Daemon.Torrent
}

describe("daemon: create and stream", () => {
  it.live(
    "create through the API and remote create; a seeded torrent's and a half-downloaded one's files by Range",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-create")
        yield* writeTree(root, [
          { path: "pack/a.bin", size: 100_000 },
          { path: "pack/sub/b.bin", size: 40_000 },
          { path: "half.bin", size: 4 * 16384 },
          { path: "solo.bin", size: 30_000 },
          { path: "up.bin", size: 2 * 1024 * 1024 }
        ])
        const url = yield* Daemon.inProcess(join(root, "session"), { auth: "me:pw" })
        const api = <A>(path: string, json: unknown, status = 200) =>
          Daemon.api<A>(url, path, { json, headers: auth, status })

        // A hybrid torrent of the folder: the same info-hash as the library makes of it here.
        const options = {
          trackers: ["http://127.0.0.1:1/announce"],
          pieceLength: 16384,
          version: "hybrid" as const,
          private: true,
          comment: "made remotely"
        }
        const pack = yield* api<Created>("create", { path: join(root, "pack"), ...options, seed: true })
        const local = yield* CreateTorrent.create(join(root, "pack"), options).pipe(
          Effect.provide(NodeServices.layer)
        )
        assert.strictEqual(pack.infoHash, local.meta.infoHash)
        const meta = decode(pack.torrent)
        assert.deepStrictEqual(
          [meta.name, meta.private, meta.comment, meta.announce, meta.infoHashV2 !== undefined],
          ["pack", true, "made remotely", [["http://127.0.0.1:1/announce"]], true]
        )
        assert.match(pack.magnet, new RegExp(`^magnet:\\?xt=urn:btih:${pack.infoHash}`))

        // Seeded from where it lies: checked, then complete, and its files streamed.
        const id = pack.added!.id
        yield* Daemon.waitForTorrent(url, id, (t) => t.state === "seeding" && t.done === t.wanted, 30_000, auth)
        const b = Fs.readFileSync(join(root, "pack", "sub", "b.bin"))
        const index = meta.files.findIndex((f) => f.path.join("/") === "pack/sub/b.bin")
        const range = yield* Daemon.request(`${url}files/${id}/${index}/b.bin`, {
          headers: { ...auth, range: "bytes=1000-20999" }
        })
        assert.strictEqual(range.status, 206)
        assert.strictEqual(range.headers.get("content-range"), `bytes 1000-20999/${b.length}`)
        assert.isTrue(range.bytes.equals(b.subarray(1000, 21000)))
        const whole = yield* Daemon.request(`${url}files/${pack.infoHash}/${index}/b.bin`, { headers: auth })
        assert.isTrue(whole.bytes.equals(b))
        assert.strictEqual((yield* Daemon.request(`${url}files/${id}/${index}/b.bin`)).status, 401)
        assert.strictEqual(
          (yield* Daemon.request(`${url}files/${id}/${index}/other.bin`, { headers: auth })).status,
          404
        )
        assert.strictEqual((yield* Daemon.request(`${url}files/77/0/a.bin`, { headers: auth })).status, 404)

        // Half of a file on disk: its verified pieces are served.
        const halfPath = join(root, "half.bin")
        const half = yield* api<Created>("create", { path: halfPath, pieceLength: 16384 })
        const original = Fs.readFileSync(halfPath)
        Fs.writeFileSync(halfPath, Buffer.concat([original.subarray(0, 2 * 16384), Buffer.alloc(2 * 16384)]))
        const added = yield* api<Daemon.Torrent>("torrents", { torrent: half.torrent, downloadDir: root })
        yield* Daemon.waitForTorrent(url, added.id, (t) => t.state !== "checking", 30_000, auth)
        const progress = yield* Daemon.api<Daemon.Torrent>(url, `torrents/${added.id}`, { headers: auth })
        assert.strictEqual(progress.done, 2 * 16384)
        const part = yield* Daemon.request(`${url}files/${added.id}/0/half.bin`, {
          headers: { ...auth, range: "bytes=100-32767" }
        })
        assert.strictEqual(part.status, 206)
        assert.isTrue(part.bytes.equals(original.subarray(100, 32768)))

        // An aria2c leecher the daemon dials, downloading at most 64 KiB/s: while it takes the data, the daemon
        // counts it as a peer it uploads to (Transmission's peersGettingFromUs).
        const up = yield* api<Created>("create", { path: join(root, "up.bin") })
        const upTorrent = join(root, "up.torrent")
        Fs.writeFileSync(upTorrent, Buffer.from(up.torrent, "base64"))
        const leecherPort = yield* freePort
        const leecher = yield* aria2Leecher({
          torrent: upTorrent,
          dir: join(root, "leecher"),
          port: leecherPort,
          extraArgs: ["--max-download-limit=64K"]
        })
        yield* waitForPort(leecher, leecherPort, 30_000)
        const seeding = yield* api<Daemon.Torrent>("torrents", {
          torrent: up.torrent,
          downloadDir: root,
          peers: [`127.0.0.1:${leecherPort}`]
        })
        const rpc = `${url}transmission/rpc`
        const handshake = yield* Daemon.request(rpc, { method: "POST", headers: auth })
        const rpcHeaders = {
          ...auth,
          "x-transmission-session-id": handshake.headers.get("x-transmission-session-id")!
        }
        yield* waitFor(
          Effect.map(
            Daemon.request(rpc, {
              json: {
                method: "torrent-get",
                arguments: { ids: [seeding.id], fields: ["peersGettingFromUs", "peersSendingToUs"] }
              },
              headers: rpcHeaders
            }),
            (reply) => {
              const [t] = JSON.parse(reply.body).arguments.torrents
              return t.peersGettingFromUs === 1 && t.peersSendingToUs === 0
            }
          ),
          { timeoutMillis: 30_000, message: () => "the leecher was never counted as a peer getting from us" }
        )

        // Refused: a path that is not there, a relative one, a piece length that is no power of two.
        const missing = yield* api<{ _tag: string; problem: string }>("create", { path: join(root, "nope") }, 422)
        assert.deepStrictEqual([missing._tag, missing.problem], ["CreateFailed", "Missing"])
        assert.strictEqual((yield* api<{ _tag: string }>("create", { path: "pack" }, 400))._tag, "BadInput")
        const odd = yield* api<{ problem: string }>("create", { path: halfPath, pieceLength: 20000 }, 422)
        assert.strictEqual(odd.problem, "PieceLength")

        // effect-torrent remote create: made there, written here, seeded.
        const out = join(root, "solo.torrent")
        const remote = yield* runCli([
          "remote",
          "create",
          join(root, "solo.bin"),
          "-o",
          out,
          "--comment",
          "by the CLI",
          "--seed",
          "--url",
          url,
          "--auth",
          "me:pw"
        ])
        assert.strictEqual(remote.code, 0, remote.stderr)
        assert.match(remote.stdout, /^created:\s+.*solo\.torrent\nname:\s+solo\.bin\n/)
        assert.match(remote.stdout, /seeding as \d+\n$/)
        const solo = Result.getOrThrow(Metainfo.decode(Fs.readFileSync(out)))
        assert.strictEqual(solo.comment, "by the CLI")
        const listed = yield* Daemon.api<ReadonlyArray<Daemon.Torrent>>(url, "torrents?fields=name", { headers: auth })
        assert.includeMembers(listed.map((t) => t.infoHash), [solo.infoHash])
        const again = yield* runCli([
          "remote",
          "create",
          join(root, "gone"),
          "--url",
          url,
          "--auth",
          "me:pw",
          "-o",
          join(root, "gone.torrent")
        ])
        assert.strictEqual(again.code, 1)
        assert.match(again.stderr, /^effect-torrent: the daemon: .*gone/)
      }),
    { timeout: 180_000 }
  )
})
