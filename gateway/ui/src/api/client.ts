import createClient from "openapi-fetch";
import type { components, paths } from "./schema.gen";
import { ApiError, localProblem, type Problem, problemFromResponse } from "./problem";

export type Schemas = components["schemas"];

/** The typed client of the gateway's REST API (same origin: the gateway serves the UI). */
export const api = createClient<paths>({
  baseUrl: window.location.origin,
  // Looked up per call, not captured once: tests replace the global fetch.
  fetch: (request) => globalThis.fetch(request),
});

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a call, or an ApiError carrying the problem body the gateway answered with. */
export async function unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch {
    // A fetch that never got an answer: the gateway is down or unreachable.
    // The browser's own words ("TypeError: Failed to fetch") would say nothing more to a person.
    throw new ApiError(
      localProblem("Gateway unreachable", "Crucible did not answer: it may be stopped or restarting. Try again in a moment.", "UNREACHABLE"),
    );
  }
  if (!result.response.ok) {
    throw new ApiError(problemFromResponse(result.response.status, result.error));
  }
  return result.data as T;
}

export type { Problem };
