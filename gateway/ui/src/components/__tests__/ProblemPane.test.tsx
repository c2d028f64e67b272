import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/client";
import { fakeFetch, problemResponse, renderWithProviders } from "../../test/render";
import { ProblemPane } from "../ProblemPane";

const SPEC: Schemas["ProblemSpec"] = {
  project_id: "p1",
  constraints: [
    { name: "budget", description: "under 2 M€", weight: 60 },
    { name: "safety", description: "", weight: 100 },
  ],
  goals: [{ description: "cross the river" }],
  mode: "full_search",
  resolution: "medium",
  version: 3,
  created_at: "2026-11-29T10:00:00Z",
  updated_at: "2026-11-29T10:00:00Z",
};

function refused(detail: string): Response {
  return problemResponse(400, "Bad Request", detail, { reason: "INVALID_ARGUMENT" });
}

function renderPane(patch: (body: unknown) => unknown) {
  const api = fakeFetch({ "GET /api/projects/p1/problem-spec": () => SPEC, "PATCH /api/projects/p1/problem-spec": patch });
  vi.stubGlobal("fetch", api.fetch);
  renderWithProviders(<ProblemPane projectId="p1" />);
  return api;
}

afterEach(() => vi.unstubAllGlobals());

describe("ProblemPane", () => {
  it("a refused constraint edit keeps the editor open with what was typed, saying why beside it", async () => {
    renderPane(() => refused("invalid ProblemSpec: constraints: duplicate constraint name 'safety'"));
    await userEvent.click(await screen.findByRole("button", { name: "Edit budget" }));
    const name = screen.getByLabelText("Name");
    await userEvent.clear(name);
    await userEvent.type(name, "safety");
    await userEvent.click(screen.getByRole("button", { name: "Save" }));

    const error = await screen.findByRole("alert");
    expect(error).toHaveTextContent("The change was not saved");
    expect(error).toHaveTextContent("duplicate constraint name");
    // Said once, in the editor, which still holds the typed name.
    expect(screen.getAllByRole("alert")).toHaveLength(1);
    expect(error.closest("form")).toContainElement(screen.getByLabelText("Name"));
    expect(screen.getByLabelText("Name")).toHaveValue("safety");
    // Said until what was refused is changed.
    await userEvent.type(screen.getByLabelText("Name"), " 2");
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("a stored edit closes the editor", async () => {
    const api = renderPane((body) => ({ ...SPEC, ...(body as object), version: 4 }));
    await userEvent.click(await screen.findByRole("button", { name: "Edit budget" }));
    const weight = screen.getByLabelText(/Weight/);
    await userEvent.clear(weight);
    await userEvent.type(weight, "70");
    await userEvent.click(screen.getByRole("button", { name: "Save" }));

    expect(await screen.findByRole("button", { name: "Edit budget" })).toBeInTheDocument();
    const sent = api.calls.find((c) => c.method === "PATCH")?.body as { constraints: { weight: number }[] };
    expect(sent.constraints[0]?.weight).toBe(70);
  });

  it("an empty or out-of-range weight is marked at its field and not saved as 0", async () => {
    const api = renderPane(() => SPEC);
    await userEvent.click(await screen.findByRole("button", { name: "Edit budget" }));
    const weight = screen.getByLabelText(/Weight/);

    await userEvent.clear(weight);
    expect(screen.getByText("a whole number from 0 to 100")).toBeInTheDocument();
    expect(weight).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByRole("button", { name: "Save" })).toBeDisabled();
    await userEvent.type(weight, "101{Enter}");
    expect(screen.getByText("a whole number from 0 to 100")).toBeInTheDocument();

    expect(api.calls.filter((c) => c.method === "PATCH")).toEqual([]);
  });

  it("a goal is cleared from its field once stored, and kept there when refused", async () => {
    let accept = false;
    renderPane((body) => (accept ? { ...SPEC, ...(body as object) } : refused("invalid ProblemSpec: goals: too long")));
    const goal = await screen.findByPlaceholderText("Add a goal");
    await userEvent.type(goal, "be cheap{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("goals: too long");
    expect(goal).toHaveValue("be cheap");

    accept = true;
    await userEvent.click(within(goal.closest("form") as HTMLElement).getByRole("button", { name: "Add" }));
    await vi.waitFor(() => expect(goal).toHaveValue(""));
  });
});
