import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { MessageText } from "../Chat";

describe("MessageText", () => {
  it("shows the Architect's Markdown as such, and none of its HTML", () => {
    const { container } = render(
      <MessageText role="agent" text={"Run a **full search**:\n\n- `crucible run start`\n- then watch\n\n<img src=x onerror=alert(1)>"} />,
    );

    expect(screen.getByText("full search").tagName).toBe("STRONG");
    expect(screen.getByText("crucible run start").tagName).toBe("CODE");
    expect(screen.getAllByRole("listitem")).toHaveLength(2);
    expect(container.querySelector("img")).toBeNull();
  });

  it("fetches no image a model's answer names: its description stands in its place", () => {
    const { container } = render(<MessageText role="agent" text={"See ![the plan](https://elsewhere.example/?q=secret)"} />);

    expect(container.querySelector("img")).toBeNull();
    expect(screen.getByText("[image: the plan]")).toBeInTheDocument();
  });

  it("shows a person's message as they typed it", () => {
    render(<MessageText role="user" text="keep **this** as typed" />);
    expect(screen.getByText("keep **this** as typed")).toBeInTheDocument();
  });
});
