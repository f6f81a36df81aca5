/**
 * libtorrent (Debian's python3-libtorrent) in interop tests, driven by
 * test/util/libtorrent-peer.py on loopback: how to run the helper, and the
 * JSON lines it prints.
 */

/** Debian's python3-libtorrent is for the system Python, not another on the PATH. */
export const python = process.env["LIBTORRENT_PYTHON"] ?? "/usr/bin/python3"
export const helper = "test/util/libtorrent-peer.py"

/** A JSON line a child printed (others are not). */
export const jsonLine = <A>(line: string): A | undefined => {
  try {
    return JSON.parse(line) as A
  } catch {
    return undefined
  }
}
