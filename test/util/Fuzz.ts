/**
 * Fuzzing harness for parsers of untrusted bytes.
 *
 * A `Target` is a parser wrapped as `bytes -> Result`: its property is that
 * every input either parses or fails with one of the target's typed errors
 * (checked by `_tag`), never throws, and returns quickly. `fuzz` checks it on
 * random bytes and on mutations of valid inputs (bit flips, byte sets,
 * truncation, deletions, insertions, splices of another valid input, and
 * tweaks of length fields: big-endian uint32s and decimal numbers set to
 * boundary values). An input that breaks the property is saved under
 * test/fixtures/fuzz/<target>/ before the test fails, and `regressions`
 * replays every saved one on each run.
 */
import { Arbitrary, Effect, Result, Schema } from "effect"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export interface Target {
  /** Also the fixture folder's name. */
  readonly name: string
  /** Valid inputs to mutate. */
  readonly seeds: ReadonlyArray<Uint8Array>
  readonly run: (input: Uint8Array) => Result.Result<unknown, { readonly _tag: string }>
  /** The `_tag`s a failure may have. */
  readonly errors: ReadonlyArray<string>
}

const fixtures = fileURLToPath(new URL("../fixtures/fuzz", import.meta.url))

/** One input takes longer than this: a hang (or a quadratic blow-up) as far as we are concerned. */
const maxMillisPerInput = 250

/** What is wrong with the target's answer to `input`, if anything. */
export const violation = (target: Target, input: Uint8Array): string | undefined => {
  const started = performance.now()
  let result: Result.Result<unknown, { readonly _tag: string }>
  try {
    result = target.run(input)
  } catch (error) {
    return `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
  }
  const elapsed = performance.now() - started
  if (elapsed > maxMillisPerInput) return `took ${elapsed.toFixed(0)} ms`
  if (Result.isFailure(result)) {
    const tag = result.failure?._tag
    if (!target.errors.includes(tag)) return `failed with ${String(tag)}, not one of ${target.errors.join(", ")}`
  }
  return undefined
}

// Boundary values written over length fields.
const uint32s = [0, 1, 0x3fff, 0x4000, 0x4001, 0x4009, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]
const decimals = ["0", "00", "-0", "-1", "1", "19", "20", "9007199254740992", "99999999999999999999", "999999999"]

const Index = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0x7fffffff }))
const Byte = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))
const Mutation = Schema.Struct({
  kind: Schema.Literals(["flip", "set", "truncate", "delete", "insert", "splice", "uint32", "decimal"]),
  at: Index,
  value: Byte
})
type Mutation = typeof Mutation.Type

/** `seed` with the mutations applied in order; positions wrap around the current length. */
export const mutate = (
  seeds: ReadonlyArray<Uint8Array>,
  seed: number,
  mutations: ReadonlyArray<Mutation>
): Uint8Array => {
  let bytes = Buffer.from(seeds[seed % seeds.length]!)
  for (const { at, kind, value } of mutations) {
    const i = bytes.length === 0 ? 0 : at % bytes.length
    switch (kind) {
      case "flip":
        if (bytes.length > 0) bytes[i] = bytes[i]! ^ (1 << (value & 7))
        break
      case "set":
        if (bytes.length > 0) bytes[i] = value
        break
      case "truncate":
        bytes = bytes.subarray(0, at % (bytes.length + 1))
        break
      case "delete":
        bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1 + (value & 15))])
        break
      case "insert":
        bytes = Buffer.concat([bytes.subarray(0, i), Buffer.alloc(1 + (value & 3), value), bytes.subarray(i)])
        break
      case "splice": {
        const other = seeds[value % seeds.length]!
        const from = at % (other.length + 1)
        bytes = Buffer.concat([bytes.subarray(0, i), other.subarray(from, from + 1 + (value & 63)), bytes.subarray(i)])
        break
      }
      case "uint32":
        if (bytes.length >= 4) bytes.writeUInt32BE(uint32s[value % uint32s.length]!, Math.min(i, bytes.length - 4))
        break
      case "decimal": {
        // The run of ASCII digits at or after i, if any, becomes a boundary number.
        let from = i
        while (from < bytes.length && (bytes[from]! < 0x30 || bytes[from]! > 0x39)) from++
        let to = from
        while (to < bytes.length && bytes[to]! >= 0x30 && bytes[to]! <= 0x39) to++
        if (from < bytes.length) {
          bytes = Buffer.concat([
            bytes.subarray(0, from),
            Buffer.from(decimals[value % decimals.length]!),
            bytes.subarray(to)
          ])
        }
        break
      }
    }
  }
  return bytes
}

const randomInput = Arbitrary.schema(Schema.Uint8Array)
/** A few mutations at a time: more would leave little of the seed's structure. */
const mutatedInput = Arbitrary.all({
  seed: Arbitrary.schema(Index),
  mutations: Arbitrary.array(Arbitrary.schema(Mutation), { minLength: 1, maxLength: 6 })
})

/** Saves a failing input as a regression fixture; returns its path. */
const save = (target: Target, input: Uint8Array): string => {
  const dir = join(fixtures, target.name)
  Fs.mkdirSync(dir, { recursive: true })
  const file = join(dir, `${createHash("sha1").update(input).digest("hex").slice(0, 16)}.bin`)
  Fs.writeFileSync(file, input)
  return file
}

export interface FuzzReport {
  readonly runs: number
  /** What went wrong, with the saved fixture, if the property was falsified. */
  readonly failure?: string
}

/**
 * Checks the target on `runs` random inputs and `runs` mutations of its
 * seeds. A falsifying input (shrunk) is saved as a fixture.
 */
export const fuzz = (target: Target, runs: number): Effect.Effect<FuzzReport> =>
  Effect.gen(function*() {
    const check = <A>(arbitrary: Arbitrary.Arbitrary<A>, toBytes: (a: A) => Uint8Array, size: number) =>
      Arbitrary.checkEffect(arbitrary, (a) => violation(target, toBytes(a)) === undefined, {
        runs,
        size,
        maxShrinks: 200
      }).pipe(
        Effect.map((result) => {
          if (result._tag !== "Falsified") return undefined
          const input = toBytes(result.shrunkInput)
          return `${violation(target, input) ?? "flaky"} on ${save(target, input)}`
        })
      )
    // Random inputs of up to 2 KiB; `size` also bounds the numbers in mutations, so it is large.
    const random = yield* check(randomInput, (bytes) => bytes, 2048)
    const mutated = yield* check(mutatedInput, ({ mutations, seed }) => mutate(target.seeds, seed, mutations), 1 << 20)
    const failure = random ?? mutated
    return { runs: 2 * runs, ...(failure === undefined ? {} : { failure }) }
  })

/** The saved failing inputs of a target: [file name, bytes]. */
export const regressions = (target: Target): Array<readonly [string, Uint8Array]> => {
  const dir = join(fixtures, target.name)
  if (!Fs.existsSync(dir)) return []
  return Fs.readdirSync(dir).sort().map((file) => [file, Fs.readFileSync(join(dir, file))] as const)
}
