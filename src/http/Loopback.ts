/**
 * Whether a host name or address is this machine's loopback: a server bound
 * there is reachable only from here. A module of its own so that the CLI can
 * check `--rpc-host` without loading the HTTP server.
 */
export const isLoopback = (host: string): boolean => /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i.test(host)
