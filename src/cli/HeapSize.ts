/**
 * V8's `--optimize-for-size`, for the commands that run several torrents at
 * once. Their requests live through many young collections, so V8 promotes
 * them, and it let that garbage pile up in the old generation before its
 * first full collection: fifty 64 MiB torrents peaked at 207-215 MiB, and at
 * 168-190 with the young generation capped (Node 22). Favouring size, V8
 * collects sooner (110-154 MiB). One torrent pays for it and gains nothing:
 * V8 then releases its pages after collections and maps new ones (1 GiB from
 * aria2c on Node 22, without it and the young generation at 2 MiB against
 * with it at 4: 15,000 page faults against 27,000, 2.8-3.2 CPU s against
 * 3.1-4.0, a peak 4 MiB lower). V8 reads the flag at each collection, so
 * setting it once running is enough; the bin sets it itself where it cannot
 * cap the young generation (Node 20).
 */
import { Effect } from "effect"
import * as v8 from "node:v8"

export const favourSize = Effect.sync(() => v8.setFlagsFromString("--optimize-for-size"))
