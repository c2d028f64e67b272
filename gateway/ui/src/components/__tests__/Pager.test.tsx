import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { Pager, usePages } from "../Pager";

// The tokens a list's pages answer with: page "" leads to "t2", "t2" to "t3", "t3" is the last.
const NEXT: Record<string, string> = { "": "t2", t2: "t3", t3: "" };

function List() {
  const pages = usePages();
  return (
    <>
      <p>page {pages.token || "first"}</p>
      <Pager pages={pages} nextToken={NEXT[pages.token]} />
    </>
  );
}

function Short() {
  return <Pager pages={usePages()} nextToken="" />;
}

describe("Pager", () => {
  it("is not there under a list that fits on one page", () => {
    render(<Short />);
    expect(screen.queryByRole("navigation", { name: "Pages" })).toBeNull();
  });


  it("goes forward by each page's token and back to the token before", async () => {
    render(<List />);
    const previous = screen.getByRole("button", { name: "Previous" });
    const next = screen.getByRole("button", { name: "Next" });
    expect(screen.getByText("page first")).toBeTruthy();
    expect(previous).toHaveProperty("disabled", true);

    await userEvent.click(next);
    await userEvent.click(next);
    expect(screen.getByText("page t3")).toBeTruthy();
    // The last page: no token onward.
    expect(next).toHaveProperty("disabled", true);

    await userEvent.click(previous);
    expect(screen.getByText("page t2")).toBeTruthy();
    await userEvent.click(previous);
    expect(screen.getByText("page first")).toBeTruthy();
    expect(previous).toHaveProperty("disabled", true);
  });
});
