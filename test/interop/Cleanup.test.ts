/**
 * Stopping a torrent releases what it held: counted in this process's file
 * descriptors (/proc/self/fd) — sockets, and files under the download folder —
 * before, during and after a download (from a webtorrent seeder found
 * through opentracker, both child processes, so none of their descriptors
 * are ours) that is paused, resumed, then interrupted with its whole
 * TorrentManager. Each stop is also announced: the tracker drops us from
 * its leechers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import type { Progress } from "../../src/torrent/Orchestrator.ts"
import { createWithCreateTorrent, tempDir, writeTree } from "../util/Files.ts"
import { startManager } from "../util/Leecher.ts"
import {
  freePort,
  opentracker,
  scrape,
  trackerUrls,
  waitForSeeders,
  waitUntil,
  webtorrentSeeder
} from "../util/Swarm.ts"

interface Descriptors {
  readonly sockets: number
  /** Open files under the download folder. */
  readonly files: number
  /** Socket inodes, to tell which ones are left over. */
  readonly inodes: ReadonlySet<string>
}

/** What this process has open now (descriptors that close while being read are skipped). */
const descriptors = (downloadDir: string): Descriptors => {
  let files = 0
  const inodes = new Set<string>()
  for (const fd of Fs.readdirSync("/proc/self/fd")) {
    let target: string
    try {
      target = Fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue
    }
    const socket = /^socket:\[(\d+)\]$/.exec(target)
    if (socket !== null) inodes.add(socket[1]!)
    else if (target.startsWith(`${downloadDir}/`)) files++
  }
  return { sockets: inodes.size, files, inodes }
}

/** "tcp 127.0.0.1:41000 -> 127.0.0.1:6881 (state 01)" for a socket inode, from /proc/net. */
const describeSocket = (inode: string): string => {
  const hex = (address: string) => {
    const [ip, port] = address.split(":")
    const bytes = ip!.match(/../g)!.map((b) => parseInt(b, 16)).reverse()
    return `${bytes.join(".")}:${parseInt(port!, 16)}`
  }
  for (const proto of ["tcp", "udp"]) {
    for (const line of Fs.readFileSync(`/proc/net/${proto}`, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/)
      if (fields[9] === inode) return `${proto} ${hex(fields[1]!)} -> ${hex(fields[2]!)} (state ${fields[3]})`
    }
  }
  return `socket ${inode} (not IPv4 TCP/UDP)`
}

const show = (d: Descriptors) => `${d.sockets} sockets, ${d.files} files`

/** The sockets open in `now` that were not in `before`, described. */
const extra = (before: Descriptors, now: Descriptors) =>
  [...now.inodes].filter((inode) => !before.inodes.has(inode)).map(describeSocket).join("; ")

describe.runIf(process.platform === "linux")("stopping a torrent", () => {
  it.live(
    "closes its sockets and files: after a pause, and after interrupting the manager",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("cleanup")
        const src = join(root, "src")
        const dst = Fs.realpathSync(root) + "/dst" // /proc shows resolved paths
        yield* writeTree(src, [
          { path: "cleanup/a.bin", size: 5 * 1024 * 1024 + 3 },
          { path: "cleanup/b.bin", size: 3 * 1024 * 1024 + 5 }
        ])
        const port = yield* freePort
        const torrentFile = join(root, "cleanup.torrent")
        const { meta } = yield* createWithCreateTorrent(join(src, "cleanup"), torrentFile, {
          pieceLength: 64 * 1024,
          announce: [trackerUrls(port).http]
        })
        const tracker = yield* opentracker({ port, dir: yield* tempDir("opentracker"), torrents: [meta] })
        // Throttled: about 8 s for the whole torrent, so that there is a "during".
        yield* webtorrentSeeder({ torrent: torrentFile, dir: src, trackers: true, uploadLimit: 1024 * 1024 })
        yield* waitForSeeders(tracker.http, meta, 1)

        // The manager holds sockets of its own (its listener); the torrent's come on top.
        const before = descriptors(dst)
        const { fiber: running, manager } = yield* startManager(dst)
        const baseline = descriptors(dst)
        const handle = yield* manager.add(meta)

        /** Waits for a progress value that `f` accepts. */
        const reach = (what: string, f: (p: Progress) => boolean) =>
          handle.progress.changes.pipe(
            Stream.filter(f),
            Stream.runHead,
            Effect.timeoutOrElse({ duration: 30_000, orElse: () => Effect.die(new Error(`never reached: ${what}`)) })
          )
        /** Waits (bounded) for the descriptors to be back at `expected`. */
        const backTo = (expected: Descriptors, after: string) => {
          let now = descriptors(dst)
          return waitUntil(() => {
            now = descriptors(dst)
            return now.sockets <= expected.sockets && now.files <= expected.files
          }, {
            timeoutMillis: 5000,
            message: () =>
              `after ${after}: ${show(now)} open, against ${show(expected)} before; new: ${extra(expected, now)}`
          }).pipe(Effect.andThen(Effect.sync(() => {
            const after = descriptors(dst)
            assert.deepStrictEqual([after.sockets, after.files], [expected.sockets, expected.files])
          })))
        }

        // During: a peer connection and the files being written.
        yield* reach("20% with a peer", (p) => p.done > 0.2 * meta.length && p.peers > 0)
        const during = descriptors(dst)
        assert.isAbove(during.sockets, baseline.sockets, `during: ${show(during)}, before: ${show(baseline)}`)
        assert.isAbove(during.files, baseline.files, `during: ${show(during)}, before: ${show(baseline)}`)

        const leechers = (count: number, after: string) => {
          let now = -1
          return waitUntil(async () => (now = (await scrape(tracker.http, meta)).incomplete) === count, {
            timeoutMillis: 5000,
            message: () => `after ${after}, the tracker lists ${now} leechers, not ${count}`
          })
        }
        yield* leechers(1, "starting")

        // A pause interrupts the torrent's fiber: everything it opened is closed, and it
        // told the tracker it stopped.
        yield* manager.pause(meta.infoHash)
        yield* backTo(baseline, "pausing the torrent")
        yield* leechers(0, "pausing")

        // Resumed, it opens them again; interrupting the fiber that holds the manager closes them.
        yield* manager.resume(meta.infoHash)
        yield* reach("60% with a peer", (p) => p.done > 0.6 * meta.length && p.peers > 0)
        const again = descriptors(dst)
        assert.isAbove(again.sockets, baseline.sockets)
        assert.isAbove(again.files, baseline.files)
        const progress = yield* handle.progress.get
        assert.notStrictEqual(progress.state, "complete", "still downloading when interrupted")
        yield* leechers(1, "resuming")
        yield* Fiber.interrupt(running)
        yield* backTo(before, "interrupting the manager")
        yield* leechers(0, "interrupting")
      }),
    60_000
  )
})
