import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../api/problem";
import { ErrorBox } from "../ui";

describe("ErrorBox", () => {
  it("lists only the refused fields its detail does not already name", () => {
    const error = new ApiError({
      type: "about:blank",
      title: "Bad Request",
      status: 400,
      detail: "invalid request: path.run_id: must be a UUID",
      reason: "VALIDATION_FAILED",
      field_violations: [
        { field: "path.run_id", description: "must be a UUID" },
        { field: "query.tab", description: "unknown" },
      ],
    });
    render(<ErrorBox error={error} action="Opening the run" />);

    expect(screen.getByText("invalid request: path.run_id: must be a UUID")).toBeInTheDocument();
    expect(screen.getAllByRole("listitem").map((item) => item.textContent)).toEqual(["query.tab unknown"]);
  });
});
