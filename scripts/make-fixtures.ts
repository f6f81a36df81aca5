/**
 * Writes the .torrent corpus in test/fixtures/metainfo/ (run with
 * `npx tsx scripts/make-fixtures.ts`). The output is deterministic: no dates,
 * no randomness, so re-running it leaves the committed files unchanged.
 *
 * The bencode writer here is deliberately independent of src/protocol: it
 * writes dictionary keys in the order given (to build unsorted or duplicate
 * keys) and any integer, so hostile files can say exactly what we want.
 * `manifest.json` records the SHA-1 of each valid fixture's info bytes as
 * written (and for v2 ones their SHA-256), so the tests check our info-hash against bytes we never decoded.
 */
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

type Raw = number | bigint | string | Uint8Array | ReadonlyArray<Raw> | Dict

class Dict {
  constructor(readonly entries: ReadonlyArray<readonly [string | Uint8Array, Raw]>) {}
}

const bytesOf = (s: string | Uint8Array): Uint8Array => (typeof s === "string" ? Buffer.from(s, "utf8") : s)

/** A dictionary with its keys in byte order, as BEP 3 asks. */
const dict = (fields: Record<string, Raw | undefined>): Dict =>
  new Dict(
    Object.entries(fields)
      .filter((entry): entry is [string, Raw] => entry[1] !== undefined)
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  )

/** A dictionary with its keys exactly as given (unsorted, repeated…). */
const rawDict = (...entries: ReadonlyArray<readonly [string | Uint8Array, Raw]>): Dict => new Dict(entries)

const encode = (value: Raw): Buffer => {
  if (typeof value === "number" || typeof value === "bigint") return Buffer.from(`i${value}e`)
  if (typeof value === "string" || value instanceof Uint8Array) {
    const b = bytesOf(value)
    return Buffer.concat([Buffer.from(`${b.length}:`), b])
  }
  if (value instanceof Dict) {
    return Buffer.concat([
      Buffer.from("d"),
      ...value.entries.flatMap(([k, v]) => [encode(bytesOf(k)), encode(v)]),
      Buffer.from("e")
    ])
  }
  return Buffer.concat([Buffer.from("l"), ...value.map(encode), Buffer.from("e")])
}

/** Deterministic file contents: byte i of file `seed` is (i * 31 + seed) mod 251. */
const content = (length: number, seed: number): Buffer => {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) % 251
  return b
}

const sha1 = (b: Uint8Array): Buffer => createHash("sha1").update(b).digest()
const sha256 = (b: Uint8Array): Buffer => createHash("sha256").update(b).digest()

/** Concatenated v1 piece hashes of `data`. */
const pieceHashes = (data: Uint8Array, pieceLength: number): Buffer => {
  const hashes: Array<Buffer> = []
  for (let at = 0; at < data.length; at += pieceLength) hashes.push(sha1(data.subarray(at, at + pieceLength)))
  return Buffer.concat(hashes)
}

const PIECE = 16384

interface FileSpec {
  readonly path: ReadonlyArray<string | Uint8Array>
  readonly length: number
  readonly extra?: Record<string, Raw>
}

/** A multi-file info dictionary with correct piece hashes (pad files hold zeros). */
const multiInfo = (
  name: string | Uint8Array,
  files: ReadonlyArray<FileSpec>,
  extra: Record<string, Raw> = {}
): Dict => {
  const data = Buffer.concat(
    files.map((f, i) => (f.extra?.["attr"] === "p" ? Buffer.alloc(f.length) : content(Math.max(f.length, 0), i)))
  )
  return dict({
    name,
    "piece length": PIECE,
    pieces: pieceHashes(data, PIECE),
    files: files.map((f) => dict({ length: f.length, path: f.path, ...f.extra })),
    ...extra
  })
}

/** A single-file info dictionary with correct piece hashes. */
const singleInfo = (name: string | Uint8Array, length: number, extra: Record<string, Raw> = {}): Dict =>
  dict({ name, "piece length": PIECE, pieces: pieceHashes(content(length, 0), PIECE), length, ...extra })

const torrent = (info: Raw, extra: Record<string, Raw> = {}): Dict =>
  dict({ announce: "http://tracker.example/announce", info, ...extra })

const valid = new Map<string, { readonly file: Buffer; readonly info: Buffer }>()
const hostile = new Map<string, Buffer>()

const addValid = (name: string, info: Raw, extra: Record<string, Raw> = {}) =>
  valid.set(name, { file: encode(torrent(info, extra)), info: encode(info) })

// ---------------------------------------------------------------- valid files

addValid("single.torrent", singleInfo("hello.txt", 40000), {
  comment: "a single file of three pieces, the last one short",
  "created by": "make-fixtures",
  "creation date": 1700000000
})

addValid(
  "multi.torrent",
  multiInfo("album", [
    { path: ["cover.jpg"], length: 1000 },
    { path: ["disc 1", "01 intro.flac"], length: 20000 },
    { path: ["disc 1", "empty.txt"], length: 0 },
    { path: ["disc 2", "deep", "er", "track.flac"], length: 30001 }
  ], { private: 1 }),
  {
    "announce-list": [["http://tracker.example/announce"], ["udp://a.example:6969", "udp://b.example:6969"], []],
    "url-list": ["http://seed.example/files/", "http://mirror.example/"]
  }
)

// Keys out of order at both levels: the info-hash must be of these bytes, not
// of a sorted re-encoding.
{
  const pieces = pieceHashes(content(20000, 0), PIECE)
  const info = rawDict(["pieces", pieces], ["name", "unsorted.bin"], ["piece length", PIECE], ["length", 20000])
  valid.set("unsorted-keys.torrent", {
    file: encode(rawDict(["info", info], ["announce", "http://tracker.example/announce"])),
    info: encode(info)
  })
}

addValid("url-list-string.torrent", singleInfo("webseeded.iso", 16384), {
  "url-list": "http://seed.example/webseeded.iso"
})

addValid("announce-only.torrent", singleInfo("announce-only.bin", 1), { announce: "udp://only.example:1337/announce" })

// name and path in Latin-1 (not UTF-8), with the UTF-8 forms alongside.
addValid(
  "utf8-names.torrent",
  multiInfo(Buffer.from("caf\xe9", "latin1"), [
    { path: [Buffer.from("r\xe9sum\xe9.txt", "latin1")], length: 100, extra: { "path.utf-8": ["résumé.txt"] } },
    { path: ["plain.txt"], length: 50 }
  ], { "name.utf-8": "café" })
)

// BEP 47: pad files align each file to a piece boundary. Both pads are 6384
// bytes, so both are named ".pad/6384", as libtorrent names them.
addValid(
  "padding.torrent",
  multiInfo("padded", [
    { path: ["a.bin"], length: 10000 },
    { path: [".pad", "6384"], length: 6384, extra: { attr: "p" } },
    { path: ["b.bin"], length: 10000 },
    { path: [".pad", "6384"], length: 6384, extra: { attr: "p" } },
    { path: ["c.bin"], length: 5, extra: { attr: "x" } }
  ])
)

// BEP 52: with 16 KiB pieces a piece is one block, so a file's piece layer is
// its block hashes and its pieces root their tree's root.

/** The root of a tree over 32-byte leaves padded with zero hashes to a power of two (apart from src/protocol/Merkle.ts). */
const merkleRoot = (leaves: ReadonlyArray<Uint8Array>): Buffer => {
  let width = 1
  while (width < leaves.length) width *= 2
  let layer = [...leaves, ...Array.from({ length: width - leaves.length }, () => Buffer.alloc(32))]
  while (layer.length > 1) {
    const up: Array<Uint8Array> = []
    for (let i = 0; i < layer.length; i += 2) up.push(sha256(Buffer.concat([layer[i]!, layer[i + 1]!])))
    layer = up
  }
  return Buffer.from(layer[0]!)
}

/** A v2 file: its file-tree entry and, past one piece, its piece layer keyed by its root. */
const v2File = (data: Uint8Array) => {
  const blocks: Array<Buffer> = []
  for (let at = 0; at < data.length; at += PIECE) blocks.push(sha256(data.subarray(at, at + PIECE)))
  const root = merkleRoot(blocks)
  return {
    entry: dict({ "": dict({ length: data.length, "pieces root": root }) }),
    layer: data.length > PIECE ? [root, Buffer.concat(blocks)] as const : undefined
  }
}

// BEP 52 hybrid: a v2 file tree plus the v1 files (in the tree's byte order)
// and pieces, with pad files; the last file of three pieces, so its tree has
// a padded leaf.
const hybridSizes = [["one.bin", 20000], ["three.bin", 100], ["two.bin", 40000]] as const
const hybridInfo = (v1Order: ReadonlyArray<number>) => {
  const v1: Array<FileSpec> = []
  const data: Array<Uint8Array> = []
  v1Order.forEach((index, i) => {
    const [name, length] = hybridSizes[index]!
    v1.push({ path: [name], length })
    data.push(content(length, index))
    const pad = (PIECE - (length % PIECE)) % PIECE
    if (pad > 0 && i < v1Order.length - 1) {
      v1.push({ path: [".pad", String(pad)], length: pad, extra: { attr: "p" } })
      data.push(Buffer.alloc(pad))
    }
  })
  const files = hybridSizes.map(([, length], i) => v2File(content(length, i)))
  return {
    info: dict({
      name: "hybrid",
      "piece length": PIECE,
      "meta version": 2,
      "file tree": dict(Object.fromEntries(hybridSizes.map(([name], i) => [name, files[i]!.entry]))),
      pieces: pieceHashes(Buffer.concat(data), PIECE),
      files: v1.map((f) => dict({ length: f.length, path: f.path, ...f.extra }))
    }),
    layers: rawDict(...files.flatMap((file) => (file.layer === undefined ? [] : [file.layer])))
  }
}
{
  const { info, layers } = hybridInfo([0, 1, 2])
  addValid("hybrid.torrent", info, { "piece layers": layers })
}

// BEP 52 v2-only: a file tree (a file of one block, a folder with a file of
// three pieces), its piece layer, no v1 pieces.
const v2Only = (layer: (layer: Uint8Array) => Uint8Array) => {
  const a = v2File(content(100, 0))
  const b = v2File(content(40000, 1))
  return {
    info: dict({
      name: "v2",
      "piece length": PIECE,
      "meta version": 2,
      "file tree": dict({ "a.bin": a.entry, sub: dict({ "b.bin": b.entry }) })
    }),
    layers: rawDict([b.layer![0], layer(b.layer![1])])
  }
}
{
  const { info, layers } = v2Only((layer) => layer)
  addValid("v2-only.torrent", info, { "piece layers": layers })
}

// -------------------------------------------------------------- hostile files

const multi = valid.get("multi.torrent")!.file
hostile.set("truncated.torrent", multi.subarray(0, Math.floor(multi.length / 2)))
hostile.set("truncated-end.torrent", multi.subarray(0, multi.length - 1))
hostile.set("empty.torrent", Buffer.alloc(0))
hostile.set("deep-nesting.torrent", Buffer.from(`d4:info${"l".repeat(5000)}${"e".repeat(5000)}e`))
hostile.set("huge-string.torrent", Buffer.from("d4:info99999999999:abce"))
hostile.set("trailing-garbage.torrent", Buffer.concat([valid.get("single.torrent")!.file, Buffer.from("\n")]))
hostile.set("unsafe-integer.torrent", encode(torrent(singleInfo("x", 1, { length: 9007199254740993n }))))
hostile.set("not-a-dict.torrent", encode([torrent(singleInfo("x", 1))]))
hostile.set("no-info.torrent", encode(dict({ announce: "http://tracker.example/announce" })))
hostile.set("info-not-dict.torrent", encode(dict({ info: "hello" })))
hostile.set("no-pieces.torrent", encode(torrent(dict({ name: "x", "piece length": PIECE, length: 1 }))))

// Unsafe names and paths, in every place a path can come from.
const unsafe: ReadonlyArray<readonly [string, string]> = [
  ["dotdot", ".."],
  ["dot", "."],
  ["empty", ""],
  ["slash", "/etc/passwd"],
  ["backslash", "..\\..\\windows"],
  ["drive", "C:"],
  ["drive-path", "C:evil.exe"],
  ["nul", "evil\0.txt"]
]
for (const [label, bad] of unsafe) {
  hostile.set(`unsafe-name-${label}.torrent`, encode(torrent(singleInfo(bad, 100))))
  hostile.set(
    `unsafe-name-utf8-${label}.torrent`,
    encode(torrent(singleInfo("fine.bin", 100, { "name.utf-8": bad })))
  )
  hostile.set(
    `unsafe-path-${label}.torrent`,
    encode(torrent(multiInfo("folder", [{ path: ["ok.txt"], length: 10 }, { path: ["sub", bad], length: 10 }])))
  )
  hostile.set(
    `unsafe-path-utf8-${label}.torrent`,
    encode(torrent(multiInfo("folder", [
      { path: ["ok.txt"], length: 10 },
      { path: ["sub", "fine.txt"], length: 10, extra: { "path.utf-8": ["sub", bad] } }
    ])))
  )
  hostile.set(
    `unsafe-multi-name-${label}.torrent`,
    encode(torrent(multiInfo(bad, [{ path: ["ok.txt"], length: 10 }])))
  )
}
hostile.set("empty-path.torrent", encode(torrent(multiInfo("folder", [{ path: [], length: 10 }]))))

hostile.set(
  "collision-duplicate.torrent",
  encode(torrent(multiInfo("folder", [{ path: ["a", "b.txt"], length: 10 }, { path: ["a", "b.txt"], length: 20 }])))
)
hostile.set(
  "collision-file-then-folder.torrent",
  encode(torrent(multiInfo("folder", [{ path: ["a"], length: 10 }, { path: ["a", "b.txt"], length: 20 }])))
)
hostile.set(
  "collision-folder-then-file.torrent",
  encode(torrent(multiInfo("folder", [{ path: ["a", "b.txt"], length: 10 }, { path: ["a"], length: 20 }])))
)

{
  const good = pieceHashes(content(40000, 0), PIECE) // 3 hashes
  const withPieces = (pieces: Uint8Array) =>
    encode(torrent(dict({ name: "x.bin", "piece length": PIECE, pieces, length: 40000 })))
  hostile.set("pieces-not-multiple-of-20.torrent", withPieces(good.subarray(0, 59)))
  hostile.set("pieces-too-few.torrent", withPieces(good.subarray(0, 40)))
  hostile.set("pieces-too-many.torrent", withPieces(Buffer.concat([good, good.subarray(0, 20)])))
  hostile.set("pieces-empty.torrent", withPieces(new Uint8Array(0)))
}

hostile.set("negative-length.torrent", encode(torrent(singleInfo("x.bin", 100, { length: -100 }))))
hostile.set(
  "negative-file-length.torrent",
  encode(torrent(multiInfo("folder", [{ path: ["a"], length: 10 }, { path: ["b"], length: -5 }])))
)
hostile.set("zero-length.torrent", encode(torrent(dict({ name: "x", "piece length": PIECE, pieces: "", length: 0 }))))
hostile.set("piece-length-zero.torrent", encode(torrent(singleInfo("x", 100, { "piece length": 0 }))))
hostile.set("piece-length-huge.torrent", encode(torrent(singleInfo("x", 100, { "piece length": 2 ** 30 }))))
hostile.set(
  "length-and-files.torrent",
  encode(torrent(multiInfo("folder", [{ path: ["a"], length: 10 }], { length: 10 })))
)
hostile.set(
  "no-length-no-files.torrent",
  encode(torrent(dict({ name: "x", "piece length": PIECE, pieces: sha1(content(1, 0)) })))
)
hostile.set(
  "empty-file-list.torrent",
  encode(torrent(dict({ name: "x", "piece length": PIECE, pieces: "", files: [] })))
)
hostile.set(
  "total-length-overflow.torrent",
  encode(torrent(dict({
    name: "x",
    "piece length": PIECE,
    pieces: "",
    files: [dict({ length: Number.MAX_SAFE_INTEGER, path: ["a"] }), dict({ length: 2, path: ["b"] })]
  })))
)

// BEP 52: a piece layer with one hash changed, which no longer leads to its pieces root.
{
  const { info, layers } = v2Only((layer) => {
    const bad = Buffer.from(layer)
    bad[40]! ^= 1
    return bad
  })
  hostile.set("v2-bad-piece-layer.torrent", encode(torrent(info, { "piece layers": layers })))
}

// BEP 52 hybrid whose v1 files come in another order than its file tree's.
{
  const { info, layers } = hybridInfo([0, 2, 1])
  hostile.set("hybrid-mismatch.torrent", encode(torrent(info, { "piece layers": layers })))
}

// BEP 52: a file of data without its pieces root.
hostile.set(
  "v2-no-pieces-root.torrent",
  encode(torrent(dict({
    name: "v2",
    "piece length": PIECE,
    "meta version": 2,
    "file tree": dict({ "a.bin": dict({ "": dict({ length: 100 }) }) })
  })))
)

// A meta version we do not know.
hostile.set(
  "meta-version-3.torrent",
  encode(torrent(dict({
    name: "v3",
    "piece length": PIECE,
    "meta version": 3,
    "file tree": dict({ "a.bin": dict({ "": dict({ length: 100, "pieces root": sha256(content(100, 0)) }) }) })
  })))
)

// --------------------------------------------------------------------- write

const dir = join(import.meta.dirname, "..", "test", "fixtures", "metainfo")
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })
const manifest: Record<string, { readonly infoHash: string; readonly infoHashV2?: string }> = {}
for (const [name, { file, info }] of valid) {
  writeFileSync(join(dir, name), file)
  // v2 (BEP 52): the SHA-256 too; a v2-only torrent's info-hash is its first 20 bytes.
  const v2 = name.startsWith("v2") || name.startsWith("hybrid") ? sha256(info).toString("hex") : undefined
  manifest[name] = {
    infoHash: name.startsWith("v2") ? v2!.slice(0, 40) : sha1(info).toString("hex"),
    ...(v2 !== undefined ? { infoHashV2: v2 } : {})
  }
}
for (const [name, file] of hostile) writeFileSync(join(dir, name), file)
writeFileSync(
  join(dir, "manifest.json"),
  JSON.stringify({ valid: manifest, hostile: [...hostile.keys()] }, null, 2) + "\n"
)
console.log(`wrote ${readdirSync(dir).length} files to ${dir}`)
