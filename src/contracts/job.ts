/** What the Worker and a job object (durable-objects/job/) agree on across RPC, beside the results in src/jobs/results.ts. */

/** A callback body as the Worker hands it over: inline, or staged in R2 when too large for RPC. */
export type CallbackBody = { text: string } | { staged: string };
