/**
 * The typed client of a daemon's API (`Api`), derived from its definition
 * by `HttpApiClient`, over Node's fetch; with HTTP basic credentials when
 * given. What `effect-torrent remote` drives.
 */
import { Effect } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { Api } from "./Api.ts"

export const make = (url: string, auth?: string | undefined) =>
  HttpApiClient.make(Api, {
    baseUrl: url,
    transformClient: (client) =>
      auth === undefined ? client : HttpClient.mapRequest(client, (request) => {
        const colon = auth.indexOf(":")
        return HttpClientRequest.basicAuth(request, auth.slice(0, colon), auth.slice(colon + 1))
      })
  }).pipe(Effect.provide(FetchHttpClient.layer))

export type Client = Effect.Success<ReturnType<typeof make>>
