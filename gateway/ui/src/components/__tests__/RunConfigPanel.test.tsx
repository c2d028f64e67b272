import { fireEvent, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/client";
import { EMPTY_FORM, type RunForm, type Suggestion } from "../../runForm";
import { fakeFetch, problemResponse, renderWithProviders } from "../../test/render";
import { AGAIN_AFTER_MS, PREFLIGHT_RETRY_MS, RunConfigPanel } from "../RunConfigPanel";

const PREFLIGHT = "POST /api/projects/p1/runs/preflight";

function preflight(ready: boolean): Schemas["RunPreflight"] {
  return {
    ready,
    blockers: ready ? [] : ["missing_problem_spec"],
    blocker_details: ready ? [] : [{ code: "missing_problem_spec", message: "The project has no ProblemSpec yet.", field: "" }],
    warnings: [],
    warning_details: [],
    normalized_config: { mode: "full_search", parameters: { num_candidates: 3, num_scenarios: 5 } },
    prerequisites: { problem_spec: ready, world_model: ready, seed_candidates: false },
    notes: [],
    estimated_cost: { tokens: 50000, usd: ready ? 0.12 : null, calls: 23 },
  };
}

const SUGGESTED: RunForm = { ...EMPTY_FORM, num_candidates: "4", num_scenarios: "6" };
const SUGGESTION: Suggestion = { messageId: "msg-9", sessionId: "session-1", form: SUGGESTED };

function Harness({ initial, suggestion, onStarted }: { initial: RunForm; suggestion: Suggestion | null; onStarted?: () => void }) {
  const [form, setForm] = useState(initial);
  return (
    <RunConfigPanel
      projectId="p1"
      chatSessionId="s1"
      form={form}
      onChange={setForm}
      suggestion={suggestion}
      onStarted={onStarted ?? (() => {})}
    />
  );
}

/** The panel over an API where the configuration is ready and a run can be created and executed
 *  (or as ``routes`` answer instead). */
function renderStartable(routes: Record<string, (body: unknown) => unknown> = {}) {
  const api = fakeFetch({
    [PREFLIGHT]: () => preflight(true),
    "POST /api/runs": () => ({ id: "run-1", status: "CREATED" }),
    "POST /api/runs/run-1/execute": () => ({ id: "run-1", status: "RUNNING" }),
    ...routes,
  });
  vi.stubGlobal("fetch", api.fetch);
  const onStarted = vi.fn();
  renderWithProviders(<Harness initial={SUGGESTED} suggestion={SUGGESTION} onStarted={onStarted} />);
  return { api, onStarted };
}

afterEach(() => vi.unstubAllGlobals());

describe("RunConfigPanel", () => {
  it("blocked: shows the API's blockers above a disabled Run button", async () => {
    const api = fakeFetch({ [PREFLIGHT]: () => preflight(false) });
    vi.stubGlobal("fetch", api.fetch);
    renderWithProviders(<Harness initial={EMPTY_FORM} suggestion={null} />);

    expect(await screen.findByText("The project has no ProblemSpec yet.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Run" })).toBeDisabled();
    expect(screen.getByText(/unpriced/)).toBeInTheDocument();
    expect(screen.queryByText("Architect-suggested")).not.toBeInTheDocument();
  });

  it("ready: Run creates the run from the panel with a fresh trigger id, then executes it", async () => {
    const { api, onStarted } = renderStartable();

    const run = screen.getByRole("button", { name: "Run" });
    await waitFor(() => expect(run).toBeEnabled());
    expect(screen.getByText(/est\. \$0\.12/)).toBeInTheDocument();
    await userEvent.click(run);

    await waitFor(() => expect(onStarted).toHaveBeenCalledTimes(1));
    const create = api.calls.find((c) => c.method === "POST" && c.url === "/api/runs");
    expect(create?.body).toMatchObject({
      project_id: "p1",
      mode: "full_search",
      parameters: { num_candidates: 4, num_scenarios: 6 },
      chat_session_id: "s1",
      recommended_message_id: "msg-9",
      ui_trigger_source: "run_config_panel",
    });
    expect((create?.body as { ui_trigger_id: string }).ui_trigger_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(api.calls.map((c) => `${c.method} ${c.url}`)).toContain("POST /api/runs/run-1/execute");
  });

  it("a second click while the first is on its way starts nothing more: one press, one run", async () => {
    const { api, onStarted } = renderStartable();
    const run = screen.getByRole("button", { name: "Run" });
    await waitFor(() => expect(run).toBeEnabled());

    // Both before React renders the button disabled, as a quick double click lands.
    fireEvent.click(run);
    fireEvent.click(run);

    await waitFor(() => expect(onStarted).toHaveBeenCalledTimes(1));
    expect(api.calls.filter((c) => c.url === "/api/runs")).toHaveLength(1);
    expect(api.calls.filter((c) => c.url === "/api/runs/run-1/execute")).toHaveLength(1);
    // It says what it started, and another press is another run.
    expect(await screen.findByRole("status")).toHaveTextContent("Started run run-1 with these settings.");
    expect(screen.getByRole("link", { name: "run run-1" })).toHaveAttribute("href", "/runs/run-1");
    // A double click's second click, just after a quick start, is not a second run; a press a
    // moment later is.
    fireEvent.click(screen.getByRole("button", { name: "Run again" }), { detail: 2 });
    fireEvent.click(screen.getByRole("button", { name: "Run again" }), { detail: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(api.calls.filter((c) => c.url === "/api/runs")).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, AGAIN_AFTER_MS));
    await userEvent.click(screen.getByRole("button", { name: "Run again" }));
    await waitFor(() => expect(onStarted).toHaveBeenCalledTimes(2));
    const triggers = api.calls.filter((c) => c.url === "/api/runs").map((c) => (c.body as { ui_trigger_id: string }).ui_trigger_id);
    expect(new Set(triggers).size).toBe(2);
  }, AGAIN_AFTER_MS + 5000);

  it("pressed again after a start that failed half-way, it finishes that start rather than making a second run", async () => {
    let executions = 0;
    const { api, onStarted } = renderStartable({
      "POST /api/runs/run-1/execute": () =>
        ++executions === 1 ? problemResponse(502, "Bad Gateway", "the run service did not answer") : { id: "run-1", status: "RUNNING" },
    });
    const run = screen.getByRole("button", { name: "Run" });
    await waitFor(() => expect(run).toBeEnabled());

    await userEvent.click(run);
    expect(await screen.findByRole("alert")).toHaveTextContent("The run did not start");
    await userEvent.click(screen.getByRole("button", { name: "Run" }));

    await waitFor(() => expect(onStarted).toHaveBeenCalledTimes(1));
    const triggers = api.calls.filter((c) => c.url === "/api/runs").map((c) => (c.body as { ui_trigger_id: string }).ui_trigger_id);
    expect(triggers).toHaveLength(2);
    expect(triggers[0]).toBe(triggers[1]);
  });

  it("a start whose run the same press already started does not execute it again", async () => {
    const { api, onStarted } = renderStartable({ "POST /api/runs": () => ({ id: "run-1", status: "RUNNING" }) });
    const run = screen.getByRole("button", { name: "Run" });
    await waitFor(() => expect(run).toBeEnabled());

    await userEvent.click(run);

    await waitFor(() => expect(onStarted).toHaveBeenCalledWith({ id: "run-1", status: "RUNNING" }));
    expect(api.calls.some((c) => c.url.endsWith("/execute"))).toBe(false);
  });

  it("Enter in a field starts nothing: only the Run button does", async () => {
    const { api, onStarted } = renderStartable();
    await waitFor(() => expect(screen.getByRole("button", { name: "Run" })).toBeEnabled());

    await userEvent.type(screen.getByLabelText(/Candidates/), "{Enter}");
    await userEvent.type(screen.getByLabelText(/Budget \(USD\)/), "2{Enter}");
    await new Promise((resolve) => setTimeout(resolve, 400)); // past the preflight's debounce

    expect(api.calls.filter((c) => c.url === "/api/runs")).toEqual([]);
    expect(onStarted).not.toHaveBeenCalled();
  });

  it("a count that is no whole number, or 0, is marked at its field and blocks Run", async () => {
    vi.stubGlobal("fetch", fakeFetch({ [PREFLIGHT]: () => preflight(true) }).fetch);
    renderWithProviders(<Harness initial={SUGGESTED} suggestion={SUGGESTION} />);
    const run = screen.getByRole("button", { name: "Run" });
    await waitFor(() => expect(run).toBeEnabled());

    const candidates = screen.getByLabelText(/Candidates/);
    await userEvent.clear(candidates);
    await userEvent.type(candidates, "2.5");
    expect(screen.getByText("Candidates: a whole number")).toBeInTheDocument();
    expect(candidates).toHaveAttribute("aria-invalid", "true");
    expect(run).toBeDisabled();

    await userEvent.clear(candidates);
    await userEvent.type(candidates, "0");
    expect(screen.getByText("Candidates: at least 1 (empty: the default)")).toBeInTheDocument();

    // What a number field could not read ("5e") it gave as "": read as the default, Run enabled.
    await userEvent.clear(candidates);
    await userEvent.type(candidates, "5e");
    expect(screen.getByText("Candidates: a whole number")).toBeInTheDocument();

    await userEvent.clear(candidates);
    await waitFor(() => expect(run).toBeEnabled());
    expect(screen.queryByText(/Candidates:/)).not.toBeInTheDocument();
  });

  it("suggested: the badge shows while the form is the Architect's", async () => {
    vi.stubGlobal("fetch", fakeFetch({ [PREFLIGHT]: () => preflight(true) }).fetch);
    renderWithProviders(<Harness initial={SUGGESTED} suggestion={SUGGESTION} />);
    expect(screen.getByText("Architect-suggested")).toBeInTheDocument();
    expect(screen.getByLabelText(/Candidates/)).toHaveValue("4");
    expect(screen.getByLabelText(/Scenarios/)).toHaveValue("6");
  });

  it("edited: changing a field removes the badge and re-checks preflight with the new values", async () => {
    const api = fakeFetch({ [PREFLIGHT]: () => preflight(true) });
    vi.stubGlobal("fetch", api.fetch);
    renderWithProviders(<Harness initial={SUGGESTED} suggestion={SUGGESTION} />);
    await waitFor(() => expect(screen.getByRole("button", { name: "Run" })).toBeEnabled());

    const candidates = screen.getByLabelText(/Candidates/);
    await userEvent.clear(candidates);
    await userEvent.type(candidates, "9");

    expect(screen.queryByText("Architect-suggested")).not.toBeInTheDocument();
    await waitFor(() =>
      expect(api.calls.some((c) => c.url.endsWith("/preflight") && (c.body as { parameters: { num_candidates?: number } }).parameters.num_candidates === 9)).toBe(true),
    );
    await waitFor(() => expect(screen.getByRole("button", { name: "Run" })).toBeEnabled());
  });

  it("a preflight that failed (a service away) is asked again, and Run comes back without an edit", async () => {
    let asked = 0;
    const api = fakeFetch({
      [PREFLIGHT]: () =>
        ++asked === 1
          ? problemResponse(504, "Gateway Timeout", "Deadline Exceeded")
          : preflight(true),
    });
    vi.stubGlobal("fetch", api.fetch);
    renderWithProviders(<Harness initial={SUGGESTED} suggestion={SUGGESTION} />);

    expect(await screen.findByRole("alert")).toHaveTextContent("Preflight failed");
    expect(screen.getByRole("button", { name: "Run" })).toBeDisabled();
    await waitFor(() => expect(screen.getByRole("button", { name: "Run" })).toBeEnabled(), { timeout: PREFLIGHT_RETRY_MS + 2000 });
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  }, PREFLIGHT_RETRY_MS + 5000);

  it("what the preflight says of a field is said at that field, in words, and not again in the list", async () => {
    vi.stubGlobal(
      "fetch",
      fakeFetch({
        [PREFLIGHT]: () => ({
          ...preflight(false),
          blockers: ["validation_error"],
          blocker_details: [
            { code: "validation_error", message: "parameters.num_candidates: 1 to 50", field: "parameters.num_candidates" },
          ],
        }),
      }).fetch,
    );
    renderWithProviders(<Harness initial={{ ...SUGGESTED, num_candidates: "60" }} suggestion={null} />);

    expect(await screen.findByText("Candidates: 1 to 50")).toBeInTheDocument();
    // Nor an estimate of the refused count.
    expect(screen.queryByText(/est\./)).not.toBeInTheDocument();
    expect(screen.getByLabelText(/Candidates/)).toHaveAttribute("aria-invalid", "true");
    expect(screen.queryByText("Blocked")).not.toBeInTheDocument();
    expect(screen.getByText("Fix the fields marked above to run.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Run" })).toBeDisabled();
  });

  it("a preflight refused for a field (seed ids that are no ids) marks that field", async () => {
    vi.stubGlobal(
      "fetch",
      fakeFetch({
        [PREFLIGHT]: () =>
          problemResponse(400, "Bad Request", "invalid run parameters", {
            field_violations: [{ field: "parameters.seed_candidate_ids[0]", description: "must be a UUID (a candidate's id)" }],
          }),
      }).fetch,
    );
    renderWithProviders(<Harness initial={{ ...SUGGESTED, mode: "eval_only", seed_candidate_ids: "abc" }} suggestion={null} />);

    expect(await screen.findByText("Seed candidate ids: must be a UUID (a candidate's id)")).toBeInTheDocument();
    expect(screen.getByLabelText(/Seed candidate ids/)).toHaveAttribute("aria-invalid", "true");
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    expect(screen.getByText("Fix the fields marked above to run.")).toBeInTheDocument();
  });

  it("no estimate is shown for a form with a field it cannot read (it would be the defaults')", async () => {
    vi.stubGlobal("fetch", fakeFetch({ [PREFLIGHT]: () => preflight(true) }).fetch);
    renderWithProviders(<Harness initial={SUGGESTED} suggestion={SUGGESTION} />);
    await waitFor(() => expect(screen.getByText(/est\. \$0\.12/)).toBeInTheDocument());

    await userEvent.type(screen.getByLabelText(/Scenarios/), "x");

    expect(screen.queryByText(/est\./)).not.toBeInTheDocument();
  });

  it("evaluate-only: the latest completed run's candidates are ticked as seeds, their ids filled in", async () => {
    const api = fakeFetch({
      [PREFLIGHT]: () => preflight(true),
      "GET /api/projects/p1/runs": () => ({ runs: [{ id: "run-0000aaaa", status: "COMPLETED" }], next_page_token: "" }),
      "GET /api/runs/run-0000aaaa/candidates": () => ({
        candidates: [
          { id: "c-1", title: "Suspension bridge" },
          { id: "c-2", title: "Ferry" },
        ],
        next_page_token: "",
      }),
    });
    vi.stubGlobal("fetch", api.fetch);
    renderWithProviders(<Harness initial={{ ...SUGGESTED, mode: "eval_only" }} suggestion={null} />);

    await userEvent.click(await screen.findByRole("checkbox", { name: "Ferry" }));
    await userEvent.click(screen.getByRole("checkbox", { name: "Suspension bridge" }));
    expect(screen.getByLabelText(/Seed candidate ids/)).toHaveValue("c-2, c-1");
    await userEvent.click(screen.getByRole("checkbox", { name: "Ferry" }));
    expect(screen.getByLabelText(/Seed candidate ids/)).toHaveValue("c-1");
    // An id of another run's candidate (an earlier pick) is said to be there, not dropped.
    await userEvent.type(screen.getByLabelText(/Seed candidate ids/), ", c-9");
    expect(screen.getByText(/also holds an id of another run's candidates/)).toBeInTheDocument();
    const listed = api.calls.find((c) => c.url === "/api/projects/p1/runs");
    expect(new URLSearchParams(listed?.search).get("status")).toBe("COMPLETED");
  });

  it("an API error at Run is shown in words next to the button", async () => {
    vi.stubGlobal(
      "fetch",
      fakeFetch({
        [PREFLIGHT]: () => preflight(true),
      }).fetch,
    );
    renderWithProviders(<Harness initial={SUGGESTED} suggestion={SUGGESTION} />);
    const run = screen.getByRole("button", { name: "Run" });
    await waitFor(() => expect(run).toBeEnabled());
    await userEvent.click(run);
    expect(await screen.findByRole("alert")).toHaveTextContent("The run did not start: Not Found (404)");
  });
});
