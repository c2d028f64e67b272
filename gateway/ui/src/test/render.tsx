import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes } from "react-router";

/** No retries: a test's failed request fails at once. */
function testClient() {
  return new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
}

export function renderWithProviders(ui: ReactElement) {
  return render(
    <QueryClientProvider client={testClient()}>
      <MemoryRouter>{ui}</MemoryRouter>
    </QueryClientProvider>,
  );
}

/** A route's page opened at ``url``, its parameters read from ``path`` (e.g. "/runs/:runId"). */
export function renderRoute(url: string, path: string, page: ReactElement) {
  return render(
    <QueryClientProvider client={testClient()}>
      <MemoryRouter initialEntries={[url]}>
        <Routes>
          <Route path={path} element={page} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

export interface Call {
  method: string;
  url: string;
  // The query string ("" or "?a=1…").
  search: string;
  body: unknown;
}

/** An error answer as the gateway gives one: an RFC 9457 problem (a fake route may return it). */
export function problemResponse(status: number, title: string, detail: string, extra: object = {}): Response {
  return new Response(JSON.stringify({ title, status, detail, ...extra }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });
}

/** A fetch that answers by "METHOD /path" and records every call. */
export function fakeFetch(routes: Record<string, (body: unknown) => unknown>) {
  const calls: Call[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url);
    const text = await request.text();
    const body: unknown = text ? JSON.parse(text) : null;
    calls.push({ method: request.method, url: url.pathname, search: url.search, body });
    const handler = routes[`${request.method} ${url.pathname}`];
    if (!handler) {
      return new Response(JSON.stringify({ title: "Not Found", status: 404, detail: "no such route", reason: "NOT_FOUND" }), {
        status: 404,
        headers: { "content-type": "application/problem+json" },
      });
    }
    const answer = handler(body);
    // A handler may answer in full (an error, say); otherwise its value is a 200's JSON.
    if (answer instanceof Response) return answer;
    return new Response(JSON.stringify(answer), { status: 200, headers: { "content-type": "application/json" } });
  };
  return { fetch, calls };
}

/** A WebSocket that sends the events given, once open (jsdom's would try to connect). */
export function socketSending(events: object[]) {
  return class {
    onopen: (() => void) | null = null;
    onmessage: ((message: { data: string }) => void) | null = null;
    onclose: (() => void) | null = null;
    onerror: (() => void) | null = null;
    constructor() {
      setTimeout(() => {
        this.onopen?.();
        for (const event of events) this.onmessage?.({ data: JSON.stringify(event) });
      }, 0);
    }
    close() {}
  };
}
