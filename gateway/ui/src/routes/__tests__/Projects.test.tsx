import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/client";
import { when } from "../../format";
import { fakeFetch, renderWithProviders } from "../../test/render";
import Projects from "../Projects";

function project(id: string, title: string, updated_at: string, replay_of_snapshot_id = ""): Schemas["Project"] {
  return { id, title, description: "", created_at: "2026-11-01T08:00:00Z", updated_at, auto_snapshot_failed_runs: false, replay_of_snapshot_id };
}

afterEach(() => vi.unstubAllGlobals());

describe("Projects", () => {
  it("gives each project's last activity as its own last change or its latest run's, whichever is later", async () => {
    const ran = { id: "r1", status: "COMPLETED", created_at: "2026-11-29T09:00:00Z", started_at: "2026-11-29T09:00:01Z", ended_at: "2026-11-29T09:30:00Z" };
    vi.stubGlobal(
      "fetch",
      fakeFetch({
        "GET /api/projects": () => ({
          projects: [project("p1", "Bridge", "2026-11-29T08:56:00Z"), project("p2", "Ferry", "2026-11-28T10:00:00Z")],
          next_page_token: "",
        }),
        "GET /api/projects/p1/runs": () => ({ runs: [ran], next_page_token: "" }),
        "GET /api/projects/p2/runs": () => ({ runs: [], next_page_token: "" }),
      }).fetch,
    );

    renderWithProviders(<Projects />);

    const bridge = (await screen.findByRole("link", { name: "Bridge" })).closest("tr")!;
    expect(await within(bridge).findByRole("link", { name: "Latest run: completed" })).toBeInTheDocument();
    expect(within(bridge).getByText(when("2026-11-29T09:30:00Z"))).toBeInTheDocument();
    const ferry = screen.getByRole("link", { name: "Ferry" }).closest("tr")!;
    expect(await within(ferry).findByText("no runs")).toBeInTheDocument();
    expect(within(ferry).getByText(when("2026-11-28T10:00:00Z"))).toBeInTheDocument();
  });

  it("lists the projects made to replay snapshots only when asked, each marked and linked to its snapshot", async () => {
    const fake = fakeFetch({
      "GET /api/projects": () => ({ projects: [project("p3", "Replay: Bridge", "2026-11-29T08:00:00Z", "s1")], next_page_token: "" }),
      "GET /api/projects/p3/runs": () => ({ runs: [], next_page_token: "" }),
    });
    vi.stubGlobal("fetch", fake.fetch);

    renderWithProviders(<Projects />);

    await screen.findByRole("link", { name: "Replay: Bridge" });
    expect(fake.calls.filter((c) => c.url === "/api/projects").map((c) => c.search)).toEqual(["?page_size=20&page_token="]);
    await userEvent.click(screen.getByRole("checkbox", { name: "Show the projects made to replay snapshots" }));
    await waitFor(() =>
      expect(fake.calls.filter((c) => c.url === "/api/projects").map((c) => new URLSearchParams(c.search).get("include_replays"))).toEqual([null, "true"]),
    );
    const row = screen.getByRole("link", { name: "Replay: Bridge" }).closest("tr")!;
    const badge = within(row).getByRole("link", { name: "Replay: Bridge: made to replay a snapshot; open the snapshot" });
    expect(badge).toHaveAttribute("href", "/snapshots/s1");
  });
});
