// bittorrent-tracker@10 ships no types; the tests use only its Server.
declare module "bittorrent-tracker" {
  import type { EventEmitter } from "node:events"
  import type { Server as HttpServer } from "node:http"
  import type { Socket } from "node:dgram"

  export class Server extends EventEmitter {
    constructor(options: { udp?: boolean; http?: boolean; ws?: boolean; stats?: boolean; interval?: number })
    readonly http: HttpServer
    readonly udp4: Socket
    readonly udp6: Socket
    readonly torrents: Record<string, unknown>
    listen(port: number, hostname: { http: string; udp: string; udp6: string }): void
    close(callback: () => void): void
  }
}
