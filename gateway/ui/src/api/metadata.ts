/**
 * What chat messages carry in `metadata`: seed 001's recommended_run_config and run_summary, typed
 * from the OpenAPI document's ChatMessageMetadata. ChatMessage.metadata itself is a free object
 * (any writer may add keys, and the gateway passes it through unvalidated), so each accessor
 * checks the one field it relies on before trusting the documented shape.
 */
import type { Schemas } from "./client";

export type RunMode = Schemas["RunCreate"]["mode"];
export type RunParameters = Schemas["RunParameters"];
export type RecommendedRunConfig = Schemas["RecommendedRunConfig"];
export type RunSummary = Schemas["RunSummary"];
export type RunRejection = Schemas["RunRejection"];
type Metadata = Schemas["ChatMessageMetadata"];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function recommendationOf(metadata: Record<string, unknown>): RecommendedRunConfig | null {
  const config = (metadata as Metadata).recommended_run_config;
  return isObject(config) && typeof config.status === "string" && isObject(config.parameters) ? config : null;
}

export function summaryOf(metadata: Record<string, unknown>): RunSummary | null {
  const summary = (metadata as Metadata).run_summary;
  return isObject(summary) && typeof summary.run_id === "string" && isObject(summary.counts) ? summary : null;
}

function isRejection(value: unknown): value is RunRejection {
  return (
    isObject(value) &&
    typeof value.candidate_id === "string" &&
    typeof value.title === "string" &&
    typeof value.evaluations === "number" &&
    Array.isArray(value.violated_constraints) &&
    value.violated_constraints.every((v) => isObject(v) && typeof v.constraint === "string" && typeof v.scenarios === "number")
  );
}

/** The candidates a run rejected, posted beside its summary (none in a summary from before they
 *  were); an entry not shaped as the run service writes it is left out. */
export function rejectionsOf(metadata: Record<string, unknown>): RunRejection[] {
  const rejections: unknown = (metadata as Metadata).run_rejections;
  return Array.isArray(rejections) ? rejections.filter(isRejection) : [];
}
