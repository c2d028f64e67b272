import { describe, expect, it } from "vitest";
import { formField, seedIds, serviceProblems } from "../runForm";

describe("runForm", () => {
  it("names the form's field a service's path points at, and nothing else", () => {
    expect(formField("parameters.num_candidates")).toBe("num_candidates");
    expect(formField("parameters.seed_candidate_ids[2]")).toBe("seed_candidate_ids");
    expect(formField("parameters.seed_candidates[0].title")).toBeNull();
    expect(formField("mode")).toBe("mode");
    expect(formField("project_id")).toBeNull();
    expect(formField("")).toBeNull();
    expect(formField("toString")).toBeNull();
  });

  it("says a service's problems at their fields in words, the first of each field", () => {
    expect(
      serviceProblems([
        { field: "parameters.num_candidates", message: "parameters.num_candidates: 1 to 50" },
        { field: "parameters.num_candidates", message: "parameters.num_candidates: another" },
        { field: "parameters.seed_candidate_ids[0]", message: "must be a UUID" },
        { field: "", message: "The project has no ProblemSpec yet." },
      ]),
    ).toEqual({ num_candidates: "Candidates: 1 to 50", seed_candidate_ids: "Seed candidate ids: must be a UUID" });
  });

  it("reads the seed field's ids, comma- or space-separated", () => {
    expect(seedIds(" a, b  c,,")).toEqual(["a", "b", "c"]);
    expect(seedIds("")).toEqual([]);
  });
});
