import { assert, describe, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { Effect, Result, Schema } from "effect"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"

// The corpus is written by scripts/make-fixtures.ts; manifest.json holds the
// SHA-1 of each valid fixture's info bytes as the script wrote them.
const dir = new URL("../fixtures/metainfo/", import.meta.url)
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, dir)))
const manifest = JSON.parse(readFileSync(new URL("manifest.json", dir), "utf8")) as {
  readonly valid: Record<string, { readonly infoHash: string; readonly infoHashV2?: string }>
  readonly hostile: ReadonlyArray<string>
}

const sha1 = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest("hex")
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const ok = (bytes: Uint8Array): Metainfo.Metainfo => {
  const result = Metainfo.decode(bytes)
  if (Result.isFailure(result)) {
    assert.fail(`expected a torrent, got ${result.failure.problem}: ${result.failure.detail}`)
  }
  return result.success
}
const okFixture = (name: string) => ok(fixture(name))

const err = (bytes: Uint8Array): Metainfo.MetainfoError => {
  const result = Metainfo.decode(bytes)
  if (Result.isSuccess(result)) assert.fail(`expected a MetainfoError, got a torrent named ${result.success.name}`)
  return result.failure
}

/** The fixture script's file contents: byte i of file `seed` is (i * 31 + seed) mod 251. */
const content = (length: number, seed: number) => Uint8Array.from({ length }, (_, i) => (i * 31 + seed) % 251)

const paths = (meta: Metainfo.Metainfo) => meta.files.map((f) => f.path.join("/"))

// ------------------------------------------------------------ hostile corpus

type Expectation = readonly [Metainfo.MetainfoProblem, string]

const unsafeForms: ReadonlyArray<readonly [label: string, component: string, reason: string]> = [
  ["dotdot", "..", `has a ".." path component`],
  ["dot", ".", `has a "." path component`],
  ["empty", "", "has an empty path component"],
  ["slash", "/etc/passwd", "has a path separator inside a component"],
  ["backslash", "..\\..\\windows", "has a path separator inside a component"],
  ["drive", "C:", "starts with a drive letter"],
  ["drive-path", "C:evil.exe", "starts with a drive letter"],
  ["nul", "evil\0.txt", "has a NUL byte in its path"]
]

const hostile: Record<string, Expectation> = {
  "truncated.torrent": ["Bencode", "invalid bencode at byte 266: unterminated list"],
  "truncated-end.torrent": ["Bencode", "invalid bencode at byte 0: unterminated dictionary"],
  "empty.torrent": ["Bencode", "invalid bencode at byte 0: unexpected end of input"],
  "deep-nesting.torrent": ["Bencode", "invalid bencode at byte 106: nesting deeper than 100"],
  "huge-string.torrent": ["Bencode", "string of 99999999999 bytes runs past the end of the input (4 left)"],
  "trailing-garbage.torrent": ["Bencode", "trailing data after the value"],
  "unsafe-integer.torrent": ["Bencode", "integer 9007199254740993 is outside the safe range"],
  "not-a-dict.torrent": ["Malformed", "the file is not a bencoded dictionary"],
  "no-info.torrent": ["Malformed", "it has no info dictionary"],
  "info-not-dict.torrent": ["Malformed", "info is not a dictionary"],
  "no-pieces.torrent": ["Malformed", `Missing key at ["pieces"]`],
  "empty-path.torrent": ["UnsafePath", "file 0 has an empty path"],
  "collision-duplicate.torrent": ["PathCollision", `two entries share the path "folder/a/b.txt"`],
  "collision-file-then-folder.torrent": ["PathCollision", `"folder/a" is both a file and a folder`],
  "collision-folder-then-file.torrent": ["PathCollision", `two entries share the path "folder/a"`],
  "pieces-not-multiple-of-20.torrent": ["PieceHashes", "the piece hashes are 59 bytes, not a multiple of 20"],
  "pieces-too-few.torrent": ["PieceHashes", "2 piece hashes for 40000 bytes in 16384-byte pieces (expected 3)"],
  "pieces-too-many.torrent": ["PieceHashes", "4 piece hashes for 40000 bytes in 16384-byte pieces (expected 3)"],
  "pieces-empty.torrent": ["PieceHashes", "0 piece hashes for 40000 bytes in 16384-byte pieces (expected 3)"],
  "negative-length.torrent": ["Malformed", `greater than or equal to 0 at ["length"]`],
  "negative-file-length.torrent": ["Malformed", `greater than or equal to 0 at ["files"][1]["length"]`],
  "zero-length.torrent": ["Malformed", "the torrent holds no data (total length 0)"],
  "piece-length-zero.torrent": ["Malformed", `between 1 and 67108864 at ["piece length"]`],
  "piece-length-huge.torrent": ["Malformed", `between 1 and 67108864 at ["piece length"]`],
  "length-and-files.torrent": ["Malformed", "info has both length and files"],
  "no-length-no-files.torrent": ["Malformed", "info has neither length nor files"],
  "empty-file-list.torrent": ["Malformed", "info has an empty file list"],
  "total-length-overflow.torrent": ["Malformed", "the total length is too large"],
  "v2-bad-piece-layer.torrent": ["PieceLayers", `the piece layer of "v2/sub/b.bin" does not lead to its pieces root`],
  "hybrid-mismatch.torrent": ["Malformed", "the v1 and v2 parts of this hybrid torrent describe different files"],
  "v2-no-pieces-root.torrent": ["PieceLayers", `file "a.bin" has no 32-byte pieces root`],
  "meta-version-3.torrent": ["Unsupported", "meta version 3 is not one we know"],
  ...Object.fromEntries(unsafeForms.flatMap(([label, component, reason]): Array<[string, Expectation]> => {
    const name: Expectation = ["UnsafePath", `the torrent name ${JSON.stringify(component)} ${reason}`]
    const path: Expectation = ["UnsafePath", `file 1 (${JSON.stringify(`sub/${component}`)}) ${reason}`]
    return [
      [`unsafe-name-${label}.torrent`, name],
      [`unsafe-name-utf8-${label}.torrent`, name],
      [`unsafe-multi-name-${label}.torrent`, name],
      [`unsafe-path-${label}.torrent`, path],
      [`unsafe-path-utf8-${label}.torrent`, path]
    ]
  }))
}

// --------------------------------------------------------------------- tests

describe("Metainfo", () => {
  describe("corpus", () => {
    it("every fixture on disk is in the manifest and has an expectation here", () => {
      const onDisk = readdirSync(dir).filter((f) => f.endsWith(".torrent")).sort()
      assert.deepStrictEqual(onDisk, [...Object.keys(manifest.valid), ...manifest.hostile].sort())
      assert.deepStrictEqual([...manifest.hostile].sort(), Object.keys(hostile).sort())
    })

    for (const [name, [problem, detail]] of Object.entries(hostile)) {
      it(`${name} fails with ${problem}`, () => {
        const error = err(fixture(name))
        assert.strictEqual(error.problem, problem, error.detail)
        assert.include(error.detail, detail)
        assert.strictEqual(error.message, `invalid torrent: ${error.detail}`)
        assert.notInclude(error.detail, "\n")
      })
    }

    for (const [name, { infoHash, infoHashV2 }] of Object.entries(manifest.valid)) {
      it(`${name}: the info-hash is the SHA-1 (v2: SHA-256) of the info bytes as written, and encode round-trips`, () => {
        const meta = okFixture(name)
        assert.strictEqual(meta.infoHash, infoHash)
        assert.strictEqual(meta.infoHashV2, infoHashV2)
        if (meta.pieces.length > 0) assert.strictEqual(sha1(meta.info), infoHash)
        const again = ok(Metainfo.encode(meta))
        assert.deepStrictEqual(again, meta)
        assert.strictEqual(again.infoHash, infoHash)
      })
    }
  })

  describe("valid torrents", () => {
    it("single file: fields, piece sizes and piece hashes", () => {
      const meta = okFixture("single.torrent")
      const { info: _info, pieces: _pieces, infoHash: _hash, ...rest } = meta
      assert.deepStrictEqual(rest, {
        name: "hello.txt",
        pieceLength: 16384,
        pieceCount: 3,
        length: 40000,
        files: [{ path: ["hello.txt"], length: 40000, offset: 0, padding: false }],
        multiFile: false,
        private: false,
        announce: [["http://tracker.example/announce"]],
        urlList: [],
        comment: "a single file of three pieces, the last one short",
        createdBy: "make-fixtures",
        creationDate: 1700000000
      })
      assert.deepStrictEqual([0, 1, 2].map((i) => Metainfo.pieceSize(meta, i)), [16384, 16384, 7232])
      const data = content(40000, 0)
      for (const i of [0, 1, 2]) {
        const piece = data.subarray(i * 16384, i * 16384 + Metainfo.pieceSize(meta, i))
        assert.strictEqual(Buffer.from(Metainfo.pieceHash(meta, i)).toString("hex"), sha1(piece))
      }
    })

    it("multi file: nested folders, a zero-length file, offsets, tiers, private, url-list", () => {
      const meta = okFixture("multi.torrent")
      assert.strictEqual(meta.name, "album")
      assert.isTrue(meta.multiFile)
      assert.isTrue(meta.private)
      assert.deepStrictEqual(
        meta.files.map((f) => [f.path.join("/"), f.length, f.offset]),
        [
          ["album/cover.jpg", 1000, 0],
          ["album/disc 1/01 intro.flac", 20000, 1000],
          ["album/disc 1/empty.txt", 0, 21000],
          ["album/disc 2/deep/er/track.flac", 30001, 21000]
        ]
      )
      assert.strictEqual(meta.length, 51001)
      assert.strictEqual(meta.pieceCount, 4)
      assert.strictEqual(Metainfo.pieceSize(meta, 3), 51001 - 3 * 16384)
      // announce-list wins over announce; its empty tier is dropped.
      assert.deepStrictEqual(meta.announce, [
        ["http://tracker.example/announce"],
        ["udp://a.example:6969", "udp://b.example:6969"]
      ])
      assert.deepStrictEqual(meta.urlList, ["http://seed.example/files/", "http://mirror.example/"])
    })

    it("keys out of order: the info-hash is of the original bytes, never a re-encoding", () => {
      const bytes = fixture("unsorted-keys.torrent")
      const meta = ok(bytes)
      const root = Result.getOrThrow(Bencode.decode(bytes)) as Bencode.BDict
      const info = root["info"] as Bencode.BDict
      const original = Bencode.sourceBytes(info)!
      assert.deepStrictEqual(meta.info, original)
      assert.strictEqual(meta.infoHash, sha1(original))
      const reencoded = Bencode.encode(info)
      assert.notDeepEqual(reencoded, original)
      assert.notStrictEqual(meta.infoHash, sha1(reencoded))
      // and encode keeps those bytes: the round trip has the same hash
      assert.strictEqual(ok(Metainfo.encode(meta)).infoHash, meta.infoHash)
    })

    it("url-list may be a single string", () => {
      assert.deepStrictEqual(okFixture("url-list-string.torrent").urlList, ["http://seed.example/webseeded.iso"])
    })

    it("announce alone becomes one tier", () => {
      const meta = okFixture("announce-only.torrent")
      assert.deepStrictEqual(meta.announce, [["udp://only.example:1337/announce"]])
      assert.deepStrictEqual([meta.length, meta.pieceCount, Metainfo.pieceSize(meta, 0)], [1, 1, 1])
    })

    it("name.utf-8 and path.utf-8 are preferred over Latin-1 name and path", () => {
      const meta = okFixture("utf8-names.torrent")
      assert.strictEqual(meta.name, "café")
      assert.deepStrictEqual(paths(meta), ["café/résumé.txt", "café/plain.txt"])
    })

    it("padding files (attr p) are flagged, and two pads named .pad/6384 do not collide", () => {
      const meta = okFixture("padding.torrent")
      assert.deepStrictEqual(
        meta.files.map((f) => [f.path.join("/"), f.length, f.offset, f.padding]),
        [
          ["padded/a.bin", 10000, 0, false],
          ["padded/.pad/6384", 6384, 10000, true],
          ["padded/b.bin", 10000, 16384, false],
          ["padded/.pad/6384", 6384, 26384, true],
          ["padded/c.bin", 5, 32768, false]
        ]
      )
      assert.strictEqual(meta.pieceCount, 3)
    })

    it("a hybrid v1+v2 torrent: its v1 files with their pads, each with its pieces root and piece layer", () => {
      const meta = okFixture("hybrid.torrent")
      assert.deepStrictEqual(
        meta.files.map((f) => [f.path.join("/"), f.length, f.padding, f.piecesRoot?.length, f.pieceLayer?.length]),
        [
          ["hybrid/one.bin", 20000, false, 32, 64],
          ["hybrid/.pad/12768", 12768, true, undefined, undefined],
          ["hybrid/three.bin", 100, false, 32, undefined],
          ["hybrid/.pad/16284", 16284, true, undefined, undefined],
          ["hybrid/two.bin", 40000, false, 32, 96]
        ]
      )
      assert.strictEqual(meta.length, 89152)
      assert.strictEqual(meta.pieceCount, 6)
      assert.strictEqual(meta.infoHashV2, sha256(meta.info))
      // Each piece's v2 target: its file's piece hash, or the root of a file of one piece.
      const target = (i: number) => Metainfo.pieceTarget(meta, i)!
      assert.deepStrictEqual(target(1).hash, meta.files[0]!.pieceLayer!.subarray(32, 64))
      assert.strictEqual(target(1).length, 20000 - 16384)
      assert.deepStrictEqual(target(2).hash, meta.files[2]!.piecesRoot)
      assert.deepStrictEqual([target(2).length, target(2).leaves], [100, 1])
      assert.deepStrictEqual([target(5).length, target(5).leaves], [40000 - 2 * 16384, 1])
    })

    it("a v2-only torrent: piece-aligned files (a pad after each), the truncated SHA-256 as its info-hash", () => {
      const meta = okFixture("v2-only.torrent")
      assert.deepStrictEqual(
        meta.files.map((f) => [f.path.join("/"), f.offset, f.length, f.padding]),
        [
          ["v2/a.bin", 0, 100, false],
          ["v2/.pad/16284", 100, 16284, true],
          ["v2/sub/b.bin", 16384, 40000, false],
          ["v2/.pad/9152", 56384, 9152, true]
        ]
      )
      assert.strictEqual(meta.pieces.length, 0)
      assert.strictEqual(meta.pieceCount, 4)
      assert.isTrue(meta.multiFile)
      assert.strictEqual(meta.infoHashV2, sha256(meta.info))
      assert.strictEqual(meta.infoHash, sha256(meta.info).slice(0, 40))
      assert.strictEqual(Metainfo.pieceHash(meta, 0).length, 0)
    })

    it("keeps its own copies of info and pieces, even when decoded from a Node Buffer", () => {
      const file = Buffer.from(fixture("single.torrent"))
      const meta = ok(file)
      const pieces = Buffer.from(meta.pieces).toString("hex")
      file.fill(0)
      assert.strictEqual(sha1(meta.info), meta.infoHash)
      assert.strictEqual(Buffer.from(meta.pieces).toString("hex"), pieces)
      assert.notStrictEqual(meta.info.buffer, file.buffer)
    })

    it("fromInfo hashes the decoded bytes, or the encoding of a dict it did not decode", () => {
      const bytes = fixture("unsorted-keys.torrent")
      const root = Result.getOrThrow(Bencode.decode(bytes)) as Bencode.BDict
      const decoded = root["info"] as Bencode.BDict
      assert.strictEqual(
        Result.getOrThrow(Metainfo.fromInfo(decoded)).infoHash,
        manifest.valid["unsorted-keys.torrent"]!.infoHash
      )
      const copy: Bencode.BDict = { ...decoded }
      const meta = Result.getOrThrow(Metainfo.fromInfo(copy))
      assert.strictEqual(meta.infoHash, sha1(Bencode.encode(copy)))
      assert.deepStrictEqual([meta.announce, meta.urlList], [[], []])
    })
  })

  describe("properties", () => {
    const Component = Schema.String.check(Schema.isPattern(/^[a-zA-Z0-9 _äé€()-][a-zA-Z0-9 _äé€().-]{0,11}$/))
    const Tracker = Schema.String.check(
      Schema.isPattern(/^(http|udp):\/\/[a-z]{1,8}\.example(:[1-9][0-9]{0,3})?\/announce$/)
    )
    const Spec = Schema.Struct({
      name: Component,
      single: Schema.Boolean,
      files: Schema.Array(Schema.Struct({
        folders: Schema.Array(Component).check(Schema.isMaxLength(3)),
        file: Component,
        length: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100_000 }))
      })).check(Schema.isMinLength(1), Schema.isMaxLength(6)),
      pieceLength: Schema.Literals([16384, 32768, 262144]),
      tiers: Schema.Array(Schema.Array(Tracker).check(Schema.isMinLength(1), Schema.isMaxLength(3))).check(
        Schema.isMaxLength(3)
      ),
      urlList: Schema.Array(Tracker).check(Schema.isMaxLength(2)),
      private: Schema.Boolean,
      comment: Schema.optionalKey(Component)
    })
    type Spec = typeof Spec.Type

    /** Files named so no two collide: folders are "d-…", files "f<index>-…". */
    const filesOf = (spec: Spec) =>
      spec.files.map((f, i) => ({
        path: [...f.folders.map((c) => `d-${c}`), `f${i}-${f.file}`],
        length: i === 0 ? Math.max(f.length, 1) : f.length
      }))

    const build = (spec: Spec, edit?: (info: Record<string, unknown>) => void): Uint8Array => {
      const files = filesOf(spec)
      const length = spec.single ? files[0]!.length : files.reduce((n, f) => n + f.length, 0)
      const count = Math.ceil(length / spec.pieceLength)
      const pieces = Buffer.concat(
        Array.from({ length: count }, (_, i) => createHash("sha1").update(String(i)).digest())
      )
      const info: Record<string, unknown> = {
        name: spec.name,
        "piece length": spec.pieceLength,
        pieces,
        ...(spec.single ? { length } : { files }),
        ...(spec.private ? { private: 1 } : {})
      }
      edit?.(info)
      return Bencode.encode({
        info,
        ...(spec.tiers.length > 0 ? { announce: spec.tiers[0]![0], "announce-list": spec.tiers } : {}),
        ...(spec.urlList.length > 0 ? { "url-list": spec.urlList } : {}),
        ...(spec.comment !== undefined ? { comment: spec.comment } : {})
      })
    }

    it.effect.prop(
      "random well-formed torrents decode to what was written and round-trip through encode",
      [Spec],
      ([spec]) =>
        Effect.gen(function*() {
          const bytes = build(spec)
          const meta = yield* Effect.fromResult(Metainfo.decode(bytes))
          const files = filesOf(spec)
          const expected = spec.single
            ? [{ path: [spec.name], length: files[0]!.length }]
            : files.map((f) => ({ path: [spec.name, ...f.path], length: f.length }))
          assert.deepStrictEqual(meta.files.map(({ length, path }) => ({ path, length })), expected)
          let offset = 0
          for (const file of meta.files) {
            assert.strictEqual(file.offset, offset)
            offset += file.length
          }
          assert.strictEqual(meta.length, offset)
          assert.strictEqual(meta.pieceCount, Math.ceil(offset / spec.pieceLength))
          assert.strictEqual(
            Metainfo.pieceSize(meta, meta.pieceCount - 1),
            offset - (meta.pieceCount - 1) * spec.pieceLength
          )
          assert.deepStrictEqual(
            [meta.multiFile, meta.private, meta.comment],
            [!spec.single, spec.private, spec.comment]
          )
          assert.deepStrictEqual(meta.announce, spec.tiers)
          assert.deepStrictEqual(meta.urlList, spec.urlList)
          const root = Result.getOrThrow(Bencode.decode(bytes)) as Bencode.BDict
          assert.strictEqual(meta.infoHash, sha1(Bencode.sourceBytes(root["info"] as Bencode.BDict)!))
          const again = yield* Effect.fromResult(Metainfo.decode(Metainfo.encode(meta)))
          assert.deepStrictEqual(again, meta)
        })
    )

    it.effect.prop(
      "an unsafe component anywhere (name, name.utf-8, a folder, a file, path.utf-8) is refused",
      [Spec, Schema.Literals(unsafeForms.map(([label]) => label)), Schema.Int],
      ([spec, label, at]) =>
        Effect.sync(() => {
          const [, bad, reason] = unsafeForms.find(([l]) => l === label)!
          const place = Math.abs(at) % 5
          const bytes = build(spec, (info) => {
            if (place === 0) info["name"] = bad
            else if (place === 1) info["name.utf-8"] = bad
            else if (spec.single) info["name"] = bad
            else {
              const files = info["files"] as Array<Record<string, unknown> & { path: Array<string> }>
              const target = files[Math.abs(at) % files.length]!
              const path = [...target.path]
              path[Math.abs(at) % path.length] = bad
              // place 4 leaves `path` safe and puts the bad component in path.utf-8
              target[place === 4 ? "path.utf-8" : "path"] = path
            }
          })
          const error = err(bytes)
          assert.strictEqual(error.problem, "UnsafePath")
          assert.include(error.detail, reason)
        })
    )
  })
})
