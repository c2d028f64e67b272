import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fakeFetch, renderRoute } from "../../test/render";
import Usage from "../Usage";

const TOTAL = { input_tokens: 10, output_tokens: 5, usd: 0.01, calls: 2, unpriced_calls: 0, failed_calls: 0 };

function project(id: string, title: string) {
  return { id, title, description: "", created_at: "2026-11-29T10:00:00Z", updated_at: "2026-11-29T10:00:00Z" };
}

function renderUsage(url: string) {
  const api = fakeFetch({
    "GET /api/projects": () => ({ projects: [project("p1", "Bridge"), project("p2", "Ferry")], next_page_token: "" }),
    "GET /api/projects/p1/runs": () => ({ runs: [], next_page_token: "" }),
    "GET /api/projects/p2/runs": () => ({ runs: [], next_page_token: "" }),
    "GET /api/usage": () => ({ total: TOTAL, by_model: [], by_project: [], by_run: [], truncated: [] }),
    "GET /api/llm-calls": () => ({ llm_calls: [], next_page_token: "" }),
  });
  vi.stubGlobal("fetch", api.fetch);
  renderRoute(url, "/usage", <Usage />);
  return api;
}

function usageFilters(api: ReturnType<typeof fakeFetch>): string[] {
  return api.calls.filter((c) => c.url === "/api/usage").map((c) => new URLSearchParams(c.search).get("project_id") ?? "");
}

afterEach(() => vi.unstubAllGlobals());

describe("Usage", () => {
  it("opens on the filter its address names (a reload, a link, Back)", async () => {
    const api = renderUsage("/usage?project=p2&run=r9");
    const picker = await screen.findByLabelText("Project");
    await vi.waitFor(() => expect(picker).toHaveValue("p2"));
    const asked = api.calls.find((c) => c.url === "/api/usage");
    expect(new URLSearchParams(asked?.search).get("project_id")).toBe("p2");
    expect(new URLSearchParams(asked?.search).get("run_id")).toBe("r9");
  });

  it("a project picked is what the page then shows", async () => {
    const api = renderUsage("/usage");
    const picker = await screen.findByLabelText("Project");
    await screen.findByRole("option", { name: /Ferry/ });
    await userEvent.selectOptions(picker, "p2");

    expect(picker).toHaveValue("p2");
    await vi.waitFor(() => expect(usageFilters(api)).toContain("p2"));
  });
});
