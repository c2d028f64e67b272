/** The gateway's error body (RFC 9457 problem+json), typed from the OpenAPI document's Problem. */
import type { components } from "./schema.gen";

export type Problem = components["schemas"]["Problem"];

export class ApiError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail || problem.title);
    this.name = "ApiError";
    this.problem = problem;
  }
}

/** A problem the UI itself observed (a socket that closed, a gateway that never answered): no HTTP status. */
export function localProblem(title: string, detail: string, reason = "CLIENT"): Problem {
  return { type: `urn:crucible:problem:${reason.toLowerCase()}`, title, status: 0, detail, reason };
}

function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && "status" in value && ("detail" in value || "title" in value);
}

export function problemFromResponse(status: number, body: unknown): Problem {
  if (isProblem(body)) {
    // Only the gateway writes these, but a proxy in between may not: fill what a reader needs.
    return { ...body, title: body.title ?? "Error", detail: body.detail ?? "", reason: body.reason ?? "" };
  }
  const text = typeof body === "string" && body ? body : `The gateway answered ${status}.`;
  return { ...localProblem(`HTTP ${status}`, text, "HTTP_ERROR"), status };
}

export function asProblem(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  if (isProblem(error)) return error;
  return localProblem("Error", error instanceof Error ? error.message : String(error), "");
}

/** The gateway refused the request itself (a 4xx): asking the same again gets the same answer;
 * but for a timeout (408) or too many requests (429), which a later try may pass. */
export function refused(error: unknown): boolean {
  const status = asProblem(error).status;
  return typeof status === "number" && status >= 400 && status < 500 && status !== 408 && status !== 429;
}
